"""Giving back a paid request from History, end to end on the demo terminal (tests/host/
terminalfix.py) against the real bank host (issue 21 part 2): the owner opens the entry, asks to
give it back, confirms with the PIN; the bank voids it the day it was paid and refunds it after
its cut-over (`python -m tools.bank.admin cutover`), in part, never beyond what is left; History
lists the refund beside the payment, naming its reference.

The tests share one terminal and run in order; each leaves it at the home menu."""

import re
import time

from terminalfix import terminal  # noqa: F401 (the fixture)
from test_terminal_flows import OWNER, balances, confirmed, home, request_status
from tools import demo
from tools.bank import admin
from tools.bank.ledger import CLEARING

RRN = re.compile(r"Bank reference (\d{12}) for (\d{12})\.")


def paid(t, order, amount):
    """A request pushed by Corner Bakery and paid from the default account: the merchant API's
    answer for it, and the RRN the Approved screen showed."""
    pushed = t.push("Corner Bakery", order, amount)
    t.screen("Payment request", timeout=30)
    approved = confirmed(t)
    assert approved["title"] == "Approved", approved
    home(t)
    return pushed, re.search(r"Bank reference (\d{12})", approved["text"]).group(1)


def give_back(t, row, shown, part=None):
    """From the home menu: History, the entry `row`, "Refund" beside its details' OK, all of it
    (or `part`, typed), the owner's PIN on a pad that shows `shown` (the amount) going back to the
    account that paid: the result screen."""
    t.choose("History")
    t.screen("History")
    t.choose(row)
    assert "Refund" in t.screen("Corner Bakery")["buttons"]
    t.tap("Refund")
    options = t.screen("Give back")["buttons"]
    if part is None:
        t.tap(next(label for label in options if label.startswith("All: ")))
    else:
        t.tap("Part of it")
        t._amount(part)
    pad = t.screen("Confirm with PIN")
    assert pad["text"].startswith(shown + " back to Current account. "), pad
    t.type_pin(demo.DEMO_PIN)
    return t.screen(lambda s: s.get("error") is not None, timeout=40)


def to_home(t):
    """From a result screen back to History (where the entry was opened), then home."""
    t.tap("OK")
    t.screen("History")
    t.tap("Back")
    t.screen("Pocket Terminal")


def test_the_day_it_was_paid_a_request_is_voided_whole(terminal):
    t = terminal
    t.unlock()
    pushed, rrn = paid(t, "ORD-VOID", 1250)
    before = balances(t)
    done = give_back(t, "€12.50 Corner Bakery", "€12.50")
    assert done["title"] == "Voided" and done["error"] is False, done
    assert done["text"].startswith("Given back: €12.50 by Corner Bakery to Current account. ")
    assert RRN.search(done["text"]).group(2) == rrn
    after = balances(t)
    assert after[OWNER] == before[OWNER] + 1250 and after[CLEARING] == before[CLEARING] - 1250
    assert request_status(t, pushed) == "voided"
    # Back in History, which shows both: the void (newest) naming the payment, and the payment.
    t.tap("OK")
    rows = t.screen("History")["buttons"]
    assert "€12.50 Void: Corner Bakery" in rows and "€12.50 Corner Bakery" in rows
    t.tap("€12.50 Void: Corner Bakery")
    entry = t.screen("Void: Corner Bakery")
    assert entry["text"].startswith("Void of €12.50: approved. With Current account. Reference ")
    assert ("for %s." % rrn) in entry["text"]
    t.tap("OK")                                     # a void is not given back again: no offer
    t.screen("History")
    t.tap("Back")
    t.screen("Pocket Terminal")


def test_after_the_cutover_refunds_in_part_and_never_beyond(terminal):
    t = terminal
    pushed, rrn = paid(t, "ORD-REFUND", 2000)
    assert admin.main(["--state-dir", str(t.bank.dir), "cutover"]) == 0
    before = balances(t)
    done = give_back(t, "€20.00 Corner Bakery", "€5.00", part="500")
    assert done["title"] == "Refunded", done
    assert done["text"].startswith("Given back: €5.00 by Corner Bakery to Current account. ")
    assert RRN.search(done["text"]).group(2) == rrn
    to_home(t)
    beyond = give_back(t, "€20.00 Corner Bakery", "€20.00")              # all of it: only €15.00 is left
    assert beyond["error"] is True and beyond["title"] == "Declined", beyond
    assert beyond["text"].startswith("Giving back €20.00 by Corner Bakery to Current account. "
                                     "The bank says this is more than is left of the payment.")
    to_home(t)
    after = balances(t)
    assert after[OWNER] == before[OWNER] + 500 and after[CLEARING] == before[CLEARING] - 500
    assert request_status(t, pushed) == "paid"
    assert t.bank.get("/payment-requests/" + pushed["id"], pushed["merchant_id"])["refunded"] == 500


def test_a_give_back_whose_answer_is_lost_is_undone_and_can_be_asked_again(terminal):
    # The link drops right after the give-back went up: the bank refunded, its answer never came.
    # The terminal says so; once back, its journal's reversal undoes the refund at the bank, and
    # what is left of the payment is as it was: it is given back again, once.
    t = terminal
    before = balances(t)
    log = t.bank.log()
    t.rig.call("do", name="wifi", action="cut_after_up")  # the bank gets the 0200, its answer is lost
    lost = give_back(t, "€20.00 Corner Bakery", "€15.00", part="1500")
    assert lost["title"] == "No answer from the bank" and lost["error"] is True, lost
    to_home(t)
    t.wifi(True)
    deadline = time.monotonic() + 90
    while t.bank.log().count(": 0400/") == log.count(": 0400/"):  # the journal's 0400 after the sign-on
        assert time.monotonic() < deadline, "no reversal reached the bank"
        time.sleep(0.5)
    assert t.bank.log().count("0200/200000") == log.count("0200/200000") + 1  # the bank had it
    assert balances(t) == before
    done = give_back(t, "€20.00 Corner Bakery", "€15.00", part="1500")
    assert done["title"] == "Refunded", done
    to_home(t)
    after = balances(t)
    assert after[OWNER] == before[OWNER] + 1500 and after[CLEARING] == before[CLEARING] - 1500
