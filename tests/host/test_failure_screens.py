"""Failures named for what they are (issue 18, part 3), produced for real on the demo terminal
(tests/host/terminalfix.py) in every flow that talks to the bank: the balance, a transfer, a
pushed request paid from the owner's account, a card purchase.

Each failure is made as the world makes it, through the rig's access point (the handheld's only
route out) or the bank's host:
    unreachable       the access point off (the radio loses it: no Wi-Fi, no route)
    refused           the bank's host stopped; the access point sent on to a port nobody listens
                      on (the connection is reset, as a host that is down resets it)
    untrusted         a TLS server with a certificate from a CA the device does not know
    timed out         a host that accepts the connection and never says a word
    declined          the genuine bank, for more than the account or the card holds
and each must show its own screen: its title, its text, its remedy, nothing charged.

The tests share one terminal and run in order; one request pushed at the start waits through
every failure (a failure leaves it listed) and is paid at the end. The terminal's bank
configuration gives its link short waits (READY_MS, RETRY_MAX_MS): a flow tells its failure
after 1 s instead of 5, and the bank is found again within 2 s instead of the up to 60 s of
the uplink's backoff; what each screen says is the same."""

import re
import socket
import time
from types import SimpleNamespace

import pytest

import uplinkfix
from terminalfix import SIGNED_ON, terminal  # noqa: F401 (the fixture)
from tools import demo
from tools.bank.spawn import HostProcess

# What each failure's screen says (lib/terminal/errors.py): title, words of its text, its remedy.
UNREACHABLE = ("No network", "No Wi-Fi: ", "Check that Wi-Fi is on and in range (Settings > Wi-Fi), then try again.")
REFUSED = ("Bank not available", "The bank's host refused the connection: it is down or not taking payments now. "
           "Nothing was sent.", "Try again in a few minutes; if it persists, call your bank.")
UNTRUSTED = ("Bank not trusted", "The bank's identity could not be checked, so nothing was sent.",
             "Check the network you are on; if it persists, call your bank.")
TIMED_OUT = ("No answer from the bank", "The bank did not answer in time; nothing was sent.", "Try again in a moment.")
DECLINED = ("Declined", "Not enough money in the account.", "Pay with another card or account.")
# The link's waits (lib/terminal/link.py): a flow's for the bank's session, the longest between
# two attempts to reach it.
READY_MS, RETRY_MAX_MS = 1000, 2000


def failed(t):
    """The next result screen (a message with its error flag)."""
    return t.screen(lambda s: s.get("error") is not None, timeout=60)


def balance(t):
    t.choose("Balance")
    t.screen("Balance")
    t.choose("Current account")
    shown = failed(t)
    t.tap("OK")
    t.screen("Balance")
    t.tap("Back")
    return shown


def transfer(t, cents=500):
    t.transfer("Current account", "Alice Martin", str(cents))
    t.tap("Confirm")
    t.screen("Confirm with PIN")
    t.type_pin(demo.DEMO_PIN)
    shown = failed(t)
    t.tap("OK")
    return shown


def pay_the_request(t):
    """The request pushed at the start, from the home menu's "Pay requests (1)": its result."""
    t.choose("Pay requests (1)")
    t.screen("Pay requests")
    t.tap(next(b for b in t.screens[-1]["buttons"] if "Corner Bakery" in b))
    t.screen("Payment request")
    t.tap("Pay")
    t.screen("Confirm with PIN")
    t.type_pin(demo.DEMO_PIN)
    return failed(t)


def request(t):
    shown = pay_the_request(t)
    t.tap("OK")
    t.screen("Pay requests")  # it stays listed after a failure
    t.tap("Back")
    return shown


def purchase(t, digits="1000"):
    t.purchase(digits)
    t.screen("Insert or tap card")
    t.insert("emv:visa-classic")
    t.screen("Card PIN", timeout=40)
    t.type_pin("1234")
    shown = failed(t)
    t.remove_card()
    t.tap("OK")
    return shown


FLOWS = (balance, transfer, request, purchase)


def sign_ons(t):
    return t.bank.log().count(SIGNED_ON)


def back_to_the_bank(t, before):
    """The genuine bank again, and the device signed on to it (a sign-on more than `before`)."""
    t.rig.call("do", name="wifi", action="target", host=t.bank.address[0], port=t.bank.address[1])
    t.wifi(True)
    # The uplink's waits double up to RETRY_MAX_MS; the Wi-Fi's own, after a long outage, up to 60 s.
    deadline = time.monotonic() + 90
    while sign_ons(t) <= before:
        assert time.monotonic() < deadline, "the device did not sign on to the bank again"
        time.sleep(0.2)


def joined(t):
    """Wait until the handheld's Wi-Fi has joined the access point again (its address given): with
    READY_MS short, a flow begun before would meet the radio rejoining, not the bank's side."""
    deadline = time.monotonic() + 30
    while not t.rig.call("model", name="wifi")["station"]["ip"]:
        assert time.monotonic() < deadline, "the handheld did not join the Wi-Fi again"
        time.sleep(0.1)


def cut(t):
    """The session the device holds ends (the access point off and on): it connects again."""
    t.wifi(False)
    t.wifi(True)
    joined(t)


@pytest.fixture(scope="module")
def waiting(terminal):
    """The terminal unlocked at its home menu, a request of €7.25 from Corner Bakery waiting."""
    t = terminal
    t.link_waits(ready_ms=READY_MS, retry_max_ms=RETRY_MAX_MS)
    t.unlock()
    pushed = t.push("Corner Bakery", "ORD-FAILURES", 725)
    t.screen("Payment request", timeout=30)
    t.tap("Back")  # it waits in "Pay requests (1)"
    t.screen("Pocket Terminal")
    return pushed


def check(t, flows, kind, before):
    title, text, remedy = kind
    for flow in flows:
        shown = flow(t)
        assert shown["title"] == title and shown["error"] is True, (flow.__name__, shown)
        assert text in shown["text"] and shown["text"].endswith(" " + remedy), (flow.__name__, shown)
        t.screen("Pocket Terminal")
    assert t.ledger() == before  # nothing charged, whatever the flow


def test_wifi_down_is_no_network_in_every_flow(terminal, waiting):
    t = terminal
    before, count = t.ledger(), sign_ons(t)
    t.wifi(False)
    try:
        check(t, FLOWS, UNREACHABLE, before)
    finally:
        back_to_the_bank(t, count)  # the next failure starts from a session, as each does


def test_a_stopped_bank_host_refuses_in_every_flow(terminal, waiting):
    t = terminal
    before = t.ledger()
    t.bank.stop()
    try:
        check(t, FLOWS, REFUSED, before)
    finally:
        cards = t.bank.cards
        t.bank = HostProcess(t.bank.dir)  # the same state: the host started again (a log of its own)
        t.bank.cards = cards
        back_to_the_bank(t, 0)


def test_a_port_that_refuses_is_the_bank_not_available(terminal, waiting):
    t = terminal
    before, count = t.ledger(), sign_ons(t)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # a port of ours that no one listens on
        t.rig.call("do", name="wifi", action="target", host="127.0.0.1", port=closed.getsockname()[1])
        cut(t)
        try:
            check(t, FLOWS, REFUSED, before)
        finally:
            back_to_the_bank(t, count)


def test_a_bank_with_a_wrong_certificate_is_not_trusted(terminal, waiting, tmp_path):
    t = terminal
    before, count = t.ledger(), sign_ons(t)
    server = uplinkfix.impostor(tmp_path, SimpleNamespace(pki=t.bank.dir / "pki"))
    t.rig.call("do", name="wifi", action="target", host=server.address[0], port=server.address[1])
    cut(t)
    try:
        check(t, FLOWS, UNTRUSTED, before)
        assert server.accepted >= 1  # the impostor is what the device met
    finally:
        server.close()
        back_to_the_bank(t, count)


def test_a_bank_that_accepts_and_never_answers_timed_out(terminal, waiting):
    t = terminal
    before, count = t.ledger(), sign_ons(t)
    held = []
    silent = uplinkfix.TcpServer(held.append)  # each connection kept open, never a byte sent
    t.rig.call("do", name="wifi", action="target", host=silent.address[0], port=silent.address[1])
    cut(t)
    try:
        check(t, FLOWS, TIMED_OUT, before)
        assert silent.accepted >= 1
    finally:
        silent.close()
        for conn in held:
            conn.close()
        back_to_the_bank(t, count)


def test_declines_are_declines_and_the_bank_was_reached(terminal, waiting):
    t = terminal
    before = t.ledger()
    # More than the owner's account (€1,000.00 at the start), more than the card's (€500.00).
    shown = transfer(t, 500_000)
    assert shown["title"] == DECLINED[0] and DECLINED[1] in shown["text"], shown
    t.screen("Pocket Terminal")
    shown = purchase(t, "60000")
    assert shown["title"] == DECLINED[0] and shown["text"].startswith("€600.00"), shown
    assert DECLINED[1] in shown["text"] and shown["text"].endswith(DECLINED[2]), shown
    t.screen("Pocket Terminal")
    assert t.ledger() == before


def test_the_request_that_waited_through_every_failure_is_paid(terminal, waiting):
    t = terminal
    before = t.ledger()
    shown = pay_the_request(t)
    assert shown["title"] == "Approved", shown
    assert re.match(r"€7\.25 to Corner Bakery from Current account\. Bank reference ", shown["text"]), shown
    assert t.ledger()["ACC-OWNER"] == before["ACC-OWNER"] - 725
    assert t.bank.get("/payment-requests/" + waiting["id"], waiting["merchant_id"])["status"] == "paid"
    t.tap("OK")
    t.screen("Pocket Terminal")  # the list is empty: home
