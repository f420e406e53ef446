"""Offline approvals end to end (issue 21 part 3): the demo terminal (terminalfix) with the
terminal parameters of an issuer that allows them (a floor limit of €80.00, caps of €60.00 a
payment, €80.00 and 2 advices waiting), the rig's visa-classic card (its own offline limit
€50.00), the real bank host. The bank goes away (the access point off, its host stopped): the
card approves below the floor with its TC and the terminal says "Approved offline"; an amount
at the floor and the caps reached (the count; the total's and the per-payment cap's arithmetic,
and a card that insists on going online: tests/host/test_offline_power.py) are refused on a
screen that says so. The bank comes back (its host started again on its ledger, the terminal
restarted): the advices are posted once, in order, and History stops marking them. The money is conserved at the bank.
An offline purchase is given back from History only once its advice is posted (while it waits,
its details say so and offer no Refund): then voided whole, named by its advice's DE11 + DE7.
One whose advice the bank refused is marked in History as never paid, with no Refund.
"""

import json
import re
import time

import pytest

import terminalfix
from tools import demo
from tools.bank.spawn import HostProcess
from tools.bank.state import State

VISA = "emv:visa-classic"
VISA_ACCOUNT = demo.card_account("visa-classic")
PARAMETERS = {"floor_limit": 8000, "offline_caps": [6000, 8000, 2],
              "contactless_limits": [["a000000003", 100000, 5000, 8000], ["a000000004", 100000, 5000, 8000],
                                     ["", 100000, 5000, 8000]]}


@pytest.fixture(scope="module")
def shop(firmware_image, tmp_path_factory):
    """terminalfix's terminal with the parameters above, unlocked and signed on."""
    t = terminalfix.Terminal(tmp_path_factory.mktemp("terminal-offline"), firmware_image)
    try:
        t.device.exec("import json\nwith open('/config/terminal.json', 'w') as f:\n    json.dump(%r, f)"
                      % json.loads(json.dumps(PARAMETERS)))
        t.restart()
        t.unlock()
        t.signed_on()
        yield t
    finally:
        t.close()


def pay(t, digits, title, pin="1234", timeout=30):
    """From the home menu: a purchase of digits with visa-classic in the slot, its PIN typed;
    the result screen `title`, OK, the card out; returns the result."""
    due = "€%d.%02d" % divmod(int(digits), 100)
    for _ in range(3):  # a tap the loaded machine lost types another amount: cancelled, typed again
        t.purchase(digits)
        if t.screen("Insert or tap card")["text"].startswith(due + " "):
            break
        t.tap("Cancel")
        t.screen("Pocket Terminal")
    t.insert(VISA)
    t.screen("Card PIN")
    t.type_pin(pin)
    result = t.screen(title, timeout)
    t.tap("OK")
    t.screen("Pocket Terminal")
    t.remove_card()
    return result


def bank_back(t, advices):
    """The bank host started again on its ledger, the access point on: the terminal restarted
    (the batch is on its flash, and a fresh boot joins at once, where the Wi-Fi's and the
    uplink's backoffs after a long outage would take up to a minute) and unlocked, until the
    bank's log has `advices` advices in all; the bank's (STAN, amount, response code) of each."""
    cards = t.bank.cards
    t.bank = HostProcess(t.bank.dir)
    t.bank.cards = cards
    t.rig.call("do", name="wifi", action="target", host=t.bank.address[0], port=t.bank.address[1])
    t.wifi(True)
    t.restart()
    t.unlock()
    deadline = time.monotonic() + 30
    while t.bank.log().count("0220/000000") < advices:
        assert time.monotonic() < deadline, t.bank.log()[-3000:] + "\n".join(
            line for line in t.console.lines if not line.startswith("screen"))[-3000:]
        time.sleep(0.2)
    return [(stan, int(amount), rc) for stan, amount, rc in re.findall(
        r"0220/000000 STAN (\d{6}) amount (\d{12}) card \S+ -> (\d\d)", t.bank.log())]


def give_back_all(t, row):
    """From the home menu: History, the entry `row` (a Purchase), "Refund", all of it, the owner's
    PIN on a pad that shows it going back to the card: (History's reference, the result screen)."""
    t.choose("History")
    t.screen("History")
    t.choose(row)
    reference = re.search(r"Reference (\d{16})\.", t.screen("Purchase")["text"]).group(1)
    t.tap("Refund")
    t.tap(next(label for label in t.screen("Give back")["buttons"] if label.startswith("All: ")))
    pad = t.screen("Confirm with PIN")
    assert pad["text"].startswith(row.split()[0] + " back to •••• 0010. "), pad
    t.type_pin(demo.DEMO_PIN)
    return reference, t.screen(lambda s: s.get("error") is not None, timeout=40)


def history(t):
    """The labels of History's first page (a set: the screen line's buttons are a dict)."""
    t.choose("History")
    labels = set(t.screen("History")["buttons"])
    t.tap("Back")
    t.screen("Pocket Terminal")
    return labels


def test_offline_below_the_floor_with_the_bank_away_then_forwarded_once(shop):
    t = shop
    before = t.ledger()
    t.wifi(False)
    t.bank.stop()
    started = time.monotonic()
    # Below the card's own offline limit: its TC, stored.
    first = pay(t, "3000", "Approved offline")
    assert first["text"].startswith("€30.00 from card •••• 0010. Approved by the card"), first
    # At the floor: declined offline (Z1) by the terminal's default action, said as such.
    floor = pay(t, "8000", "Bank needed")
    assert "more than the terminal may approve without it" in floor["text"], floor
    second = pay(t, "1000", "Approved offline")
    count = pay(t, "500", "Bank needed")                 # two advices wait: the count cap
    print("offline payments: %.1f s" % (time.monotonic() - started))
    # History marks the approvals whose advice waits (the newest three on its first page).
    t.choose("History")
    labels = set(t.screen("History")["buttons"])
    assert {"€10.00 Purchase (to send)", "€5.00 Purchase", "€80.00 Purchase"} <= labels, labels
    t.tap("€10.00 Purchase (to send)")
    waiting = t.screen("Purchase")
    entry = waiting["text"]
    assert entry.startswith("Purchase of €10.00: approved offline. With •••• 0010. Reference ") \
        and entry.endswith(" Not yet sent to the bank: it can be given back once it is there."), entry
    assert "Refund" not in waiting["buttons"], waiting     # the bank has nothing to give back yet
    t.tap("OK")
    t.screen("History")
    t.tap("Back")
    t.screen("Pocket Terminal")
    assert t.ledger() == before                          # the bank knows nothing yet

    posted = bank_back(t, 2)
    assert [(a, rc) for _, a, rc in posted] == [(3000, "00"), (1000, "00")], posted  # in order
    after = t.ledger()
    assert before[VISA_ACCOUNT] - after[VISA_ACCOUNT] == 4000 and after[demo.SHOP] - before[demo.SHOP] == 4000
    assert sum(after.values()) == sum(before.values())
    assert "€10.00 Purchase" in history(t)                # sent: no longer marked
    assert count["title"] == "Bank needed"


def test_an_offline_purchase_posted_is_voided_whole_from_history(shop):
    # The €10.00 approved offline above, its advice posted since: given back as any purchase,
    # the same business day a void, named by History's reference (the advice's DE11 + DE7).
    t = shop
    before = t.ledger()
    reference, done = give_back_all(t, "€10.00 Purchase")
    assert done["title"] == "Voided" and done["error"] is False, done
    void_rrn = re.fullmatch(r"Given back: €10\.00 to •••• 0010\. Bank reference (\d{12}) for %s\." % reference,
                            done["text"]).group(1)
    t.tap("OK")
    rows = t.screen("History")["buttons"]
    assert "€10.00 Void: Purchase" in rows and "€10.00 Purchase" in rows, rows   # both sides
    t.tap("Back")
    t.screen("Pocket Terminal")
    after = t.ledger()
    assert after[VISA_ACCOUNT] - before[VISA_ACCOUNT] == 1000 and before[demo.SHOP] - after[demo.SHOP] == 1000
    assert sum(after.values()) == sum(before.values())
    state = State(t.bank.dir)
    try:
        advice = next(x for x in state.ledger.transactions() if x["mti"] == "0220" and x["amount"] == 1000)
        assert advice["stan"] == reference[:6] and advice["reversed"] == 1
        assert [(r["rrn"], r["kind"], r["amount"]) for r in state.ledger.refunds(advice["rrn"])] == [
            (void_rrn, "void", 1000)]
    finally:
        state.close()


def test_an_offline_purchase_the_bank_refused_is_marked_never_paid_and_not_given_back(shop):
    # Approved offline by the card, its advice refused when it came (the issuer blocked the card
    # meanwhile: the ledger has no command for it, its card row set as the issuer's card system
    # would): nothing was paid. History says so, and offers no refund.
    t = shop
    t.wifi(False)
    t.bank.stop()
    pay(t, "2000", "Approved offline")
    state = State(t.bank.dir)
    try:
        state.ledger.db.execute("UPDATE cards SET status = 'blocked' WHERE account_id = ?", (VISA_ACCOUNT,))
    finally:
        state.close()
    assert bank_back(t, 3)[-1][1:] == (2000, "05")
    t.choose("History")
    t.screen("History")
    t.choose("€20.00 Purchase (refused)")
    shown = t.screen("Purchase")
    assert shown["text"].endswith("The bank refused it when the terminal sent it: it was never paid."), shown
    assert "Refund" not in shown["buttons"], shown
    t.tap("OK")
    t.screen("History")
    t.tap("Back")
    t.screen("Pocket Terminal")
