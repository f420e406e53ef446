"""The cardholder's bank-side flows end to end on the demo terminal (tests/host/terminalfix.py):
the real bank host, the virtual handheld running the app from main.py, driven by taps at the
places its screen lines name. What each test checks is what the bank did (its ledger, the
request's status) and what the owner saw (the screen lines), not the app's internals.

The tests share one terminal and run in order; each leaves it unlocked at the home menu."""

import re
import time

from terminalfix import terminal  # noqa: F401 (the fixture)
from tools import demo
from tools.bank.ledger import CLEARING
from tools.bank.state import State

OWNER, ALICE = "ACC-OWNER", "ACC-ALICE"


def home(t):
    """Back at the home menu after a result screen's OK."""
    t.tap("OK")
    return t.screen("Pocket Terminal")


def confirmed(t):
    """Confirm (Pay, on a request) on the confirmation screen shown, the owner's PIN: the result screen."""
    t.tap("Pay" if "Pay" in t.screens[-1].get("buttons", {}) else "Confirm")
    t.screen("Confirm with PIN")
    t.type_pin(demo.DEMO_PIN)
    return t.screen(lambda s: s.get("error") is not None, timeout=40)


def euros(text):
    """The amounts a screen's text shows, in cents ("€1000.00" -> 100000)."""
    return [int(whole.replace(",", "")) * 100 + int(cents) for whole, cents in re.findall(r"€([\d,]+)\.(\d\d)", text)]


def balances(t):
    """The demo's balances, and the bank's clearing account (where a paid request is credited
    until it settles with the merchant)."""
    state = State(t.bank.dir)
    try:
        return dict(t.ledger(), **{CLEARING: state.ledger.account(CLEARING)["available"]})
    finally:
        state.close()


def request_status(t, answer):
    return t.bank.get("/payment-requests/" + answer["id"], answer["merchant_id"])["status"]


def test_a_pushed_request_interrupts_the_home_menu_and_is_paid_from_the_default_account(terminal):
    t = terminal
    t.unlock()
    before = balances(t)
    pushed = t.push("Corner Bakery", "ORD-PAY", 1250)
    assert t.screen("Payment request", timeout=30)["text"] == "€12.50 to Corner Bakery from Current account"
    approved = confirmed(t)
    assert approved["title"] == "Approved"
    assert approved["text"].startswith("€12.50 to Corner Bakery from Current account. Bank reference ")
    after = balances(t)
    assert after[OWNER] == before[OWNER] - 1250 and after[CLEARING] == before[CLEARING] + 1250
    assert request_status(t, pushed) == "paid"
    home(t)
    t.choose("History")
    history = t.screen("History")
    assert "€12.50 Corner Bakery" in history["buttons"]
    t.tap("Back")
    t.screen("Pocket Terminal")


def test_a_refused_request_is_refused_at_the_bank_and_moves_no_money(terminal):
    t = terminal
    before = t.ledger()
    pushed = t.push("Corner Bakery", "ORD-REFUSE", 990)
    t.screen("Payment request", timeout=30)
    t.tap("Refuse")  # on the request itself, beside Pay
    refused = t.screen("Refused", timeout=30)
    assert refused["text"] == "Corner Bakery was told you will not pay €9.90."
    assert request_status(t, pushed) == "refused"
    assert t.ledger() == before
    home(t)


def test_the_balance_shown_is_the_ledger(terminal):
    t = terminal
    t.choose("Balance")
    t.screen("Balance")
    t.choose("Current account")
    shown = t.screen(lambda s: s["title"] == "Balance" and "text" in s, timeout=30)
    assert shown["text"].startswith("Current account: ")
    assert euros(shown["text"]) == [t.ledger()[OWNER]]
    t.tap("OK")
    t.screen("Balance")  # the accounts again
    t.tap("Back")
    t.screen("Pocket Terminal")


def test_a_transfer_to_the_payee_moves_the_ledger(terminal):
    t = terminal
    before = t.ledger()
    t.choose("Transfer")
    t.screen("From")
    t.choose("Current account")
    to = t.screen("To")
    assert "Savings" in to["buttons"] and "Current account" not in to["buttons"]
    t.choose("Alice Martin")
    t.screen("Amount")
    for key in "2500":
        t.tap(key)
        time.sleep(0.2)
    amount = t.screen(lambda s: s["title"] == "Amount" and s.get("text") == "€25.00")
    assert amount["text"] == "€25.00"
    t.tap("OK")
    assert t.screen("Transfer")["text"] == "€25.00 to Alice Martin from Current account"
    approved = confirmed(t)
    assert approved["title"] == "Approved"
    assert approved["text"].startswith("€25.00 to Alice Martin from Current account")
    after = t.ledger()
    assert after[OWNER] == before[OWNER] - 2500 and after[ALICE] == before[ALICE] + 2500
    home(t)


def test_wifi_off_shows_no_network_with_its_remedy_and_nothing_is_sent(terminal):
    t = terminal
    before, log = t.ledger(), t.bank.log()
    t.wifi(False)
    try:
        t.choose("Balance")
        t.screen("Balance")
        t.choose("Current account")
        failed = t.screen("No network", timeout=30)
        assert failed["error"] is True
        assert failed["text"].startswith("No Wi-Fi: ")
        assert "Settings > Wi-Fi" in failed["text"]  # the remedy
        t.tap("OK")
        t.screen("Balance")
        t.tap("Back")
        t.screen("Pocket Terminal")
    finally:
        t.wifi(True)
    assert t.ledger() == before
    assert t.bank.log().count("0200") == log.count("0200")


def test_the_bank_not_answering_shows_its_screen_and_the_reversal_leaves_the_ledger_unchanged(terminal):
    t = terminal
    before = t.ledger()
    t.push("Corner Bakery", "ORD-SILENT", 700)
    t.screen("Payment request", timeout=30)  # (its 0610 sent)
    reversals = t.bank.log().count(": 0400/")
    t.rig.call("do", name="wifi", action="cut_after_up")  # the bank gets the 0200, its answer is lost
    failed = confirmed(t)
    assert failed["title"] == "No answer from the bank"
    assert failed["error"] is True and "Nothing was charged" in failed["text"]
    assert failed["text"].startswith("€7.00 to Corner Bakery from Current account. The bank did not answer")
    t.wifi(True)
    deadline = time.monotonic() + 90
    while t.bank.log().count(": 0400/") == reversals:  # the journal's 0400 after the sign-on
        assert time.monotonic() < deadline, "no reversal reached the bank"
        time.sleep(0.5)
    assert t.ledger() == before
    assert "Pay requests (1)" in home(t)["buttons"]  # not paid: it can be paid again


def test_a_lock_mid_request_resumes_on_the_request_after_unlock(terminal):
    t = terminal
    t.push("Corner Bakery", "ORD-LOCK", 450)
    shown = t.screen("Payment request", timeout=30)
    t.standby()
    locked = t.screen(lambda s: s["title"].startswith("Locked"))
    assert re.fullmatch(r"Locked: \d+ requests?", locked["title"])  # the lock screen says one waits
    t.tap("PIN")
    t.screen("Unlock")
    t.type_pin(demo.DEMO_PIN)
    again = t.screen("Payment request")
    assert again["text"] == shown["text"] == "€4.50 to Corner Bakery from Current account"
    t.tap("Refuse")
    t.screen("Refused", timeout=30)
    home(t)


def paid_with_a_card(t, order, amount):
    """A pushed request, "Other way" > "A card": visa-classic inserted, its own PIN on the
    handheld's keypad. (the pushed request, the result screen)."""
    pushed = t.push("Corner Bakery", order, amount)
    t.screen("Payment request", timeout=30)
    t.tap("Other way")
    t.screen("Pay with")
    t.choose("A card")
    t.screen("Insert or tap card")
    t.insert("emv:visa-classic")
    t.screen("Card PIN")
    t.type_pin("1234")
    result = t.screen(lambda s: s.get("error") is not None, timeout=40)
    t.remove_card()
    return pushed, result


def test_a_pushed_request_paid_with_a_card_read_on_the_spot(terminal):
    # The card's account pays, the owner's accounts do not move.
    t = terminal
    card = demo.card_account("visa-classic")
    before = balances(t)
    pushed, result = paid_with_a_card(t, "ORD-CARD", 2150)
    assert result["title"] == "Approved", result
    assert result["text"].startswith("€21.50 to Corner Bakery from card •••• 0010. Bank reference "), result
    assert "4761739001010010" not in t.log()
    after = balances(t)
    assert after[card] == before[card] - 2150 and after[OWNER] == before[OWNER]
    assert request_status(t, pushed) == "paid"
    home(t)


def test_a_pushed_request_a_card_cannot_pay_names_the_card(terminal):
    # The card's account at the bank holds €500.00 (tools/demo CARD_BALANCE): €600.00 is
    # declined (51), and the failure says which card it was, masked, as the approval would.
    t = terminal
    before = balances(t)
    _, result = paid_with_a_card(t, "ORD-BIG", 60000)
    assert result["title"] == "Declined" and result["error"] is True, result
    assert result["text"].startswith("€600.00 to Corner Bakery from card •••• 0010."), result
    assert balances(t) == before
    home(t)


def waiting_requests(screen):
    """N of the home menu's "Pay requests (N)" (0 when it has no such entry)."""
    for label in screen.get("buttons", {}):
        m = re.fullmatch(r"Pay requests \((\d+)\)", label)
        if m:
            return int(m.group(1))
    return 0


def push_expiring(t, order, amount, ttl):
    """A merchant's request that the bank lets live ttl seconds (the merchant API's "ttl")."""
    t.signed_on()
    return t.bank.post("/payment-requests", {"device": demo.SERIAL, "order": order, "amount": amount,
                                             "currency": demo.CURRENCY, "ttl": ttl}, "Corner Bakery")


def test_a_request_left_unanswered_leaves_the_list_when_it_expires(terminal):
    t = terminal
    waiting = waiting_requests(t.screens[-1])  # the home menu the test before ended on
    pushed = push_expiring(t, "ORD-EXPIRE", 333, 10)
    t.screen("Payment request", timeout=30)
    t.tap("Back")  # not answered: it waits
    listed = t.screen("Pocket Terminal")
    assert waiting_requests(listed) == waiting + 1
    assert request_status(t, pushed) == "pushed"
    # Its time passes while the home menu waits: the menu is drawn again, one request less.
    t.screen(lambda s: s["title"] == "Pocket Terminal" and waiting_requests(s) == waiting, timeout=20)
    assert request_status(t, pushed) == "expired"  # the bank's clock agrees


def test_a_request_opened_after_it_expired_says_so_and_pays_nothing(terminal):
    t = terminal
    before = t.ledger()
    waiting = waiting_requests(t.screens[-1])
    pushed = push_expiring(t, "ORD-TOO-LATE", 444, 3)
    assert t.screen("Payment request", timeout=30)["text"] == "€4.44 to Corner Bakery from Current account"
    time.sleep(4)  # the owner reads it for longer than the merchant allowed
    t.tap("Pay")
    expired = t.screen("Request expired")  # at once: no PIN asked for a payment that cannot be made
    assert expired["error"] is True
    assert expired["text"].startswith("€4.44 to Corner Bakery. The merchant's payment request has expired"), expired
    assert waiting_requests(home(t)) == waiting  # not listed
    assert request_status(t, pushed) == "expired" and t.ledger() == before
    assert "amount 000000000444" not in t.bank.log()  # no payment of it was sent


def test_make_run_stopped_and_started_again_a_card_pays_again(terminal):
    # `make run` keeps the bank's state and the handheld's flash, and the rig keeps its cards'
    # counters in its state dir, as a card's EEPROM does: the card's ATC carries on in the new
    # rig process (from 0 again, the bank, which refuses an ATC it has seen, would decline 05).
    t = terminal
    card = demo.card_account("visa-classic")
    before = balances(t)
    assert paid_with_a_card(t, "ORD-BEFORE", 111)[1]["title"] == "Approved"
    home(t)
    t.run_again()
    t.unlock()
    pushed, result = paid_with_a_card(t, "ORD-AGAIN", 222)
    assert result["title"] == "Approved", result
    assert balances(t)[card] == before[card] - 333 and request_status(t, pushed) == "paid"
    home(t)
