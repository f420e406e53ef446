"""Topping up the transit card, end to end on the demo terminal (tests/host/terminalfix.py)
against the real bank host (issue 21 part 1): Card mode > Top up transit card, the account, the
amount, the approval screen with both whole, the owner's PIN, the bank's 0200/920000, the card
credited; History and the ledger show it. Then its boundaries: more than the card can take, a
decline (51), the bank away, the answer lost (the connection dropped after the 0200 reached the
bank: the 0400 undoes it), the power cut while the answer is awaited (the 0400 goes after the
next boot's sign-on, History says so), the card full.

The tests share one terminal and run in order; each leaves it at the home menu."""

import re
import socket
import threading
import time

import pytest

import uplinkfix
from terminalfix import SIGNED_ON, terminal  # noqa: F401 (the fixture)
from test_terminal_emulate import card_mode, screen_with
from test_terminal_flows import OWNER, balances
from test_terminal_power import wait_for
from tools import demo
from tools.bank.ledger import TRANSIT
from tools.bank.state import State


def transit(t):
    state = State(t.bank.dir)
    try:
        return state.ledger.account(TRANSIT)["balance"]
    finally:
        state.close()


class AnswerEater:
    """Between the handheld and the bank (the rig's access point sends it here): passes every
    byte both ways, until armed: then the next bytes the device sends (its 0200) still reach the
    bank, and nothing the bank sends after them reaches the device (the 0210 is lost); with
    close, the connection is closed a moment later, as a network that failed."""

    def __init__(self, bank):
        self.bank, self.close, self.armed = bank, False, False
        self.server = uplinkfix.TcpServer(self._handle)
        self.routed = False

    def _handle(self, device):
        upstream = socket.create_connection(tuple(self.bank))
        eating = threading.Event()

        def pump(src, dst, to_bank):
            try:
                while True:
                    data = src.recv(4096)
                    if not data:
                        break
                    if not eating.is_set():
                        dst.sendall(data)
                    if to_bank and self.armed:
                        self.armed = False
                        eating.set()
                        if self.close:
                            time.sleep(0.2)
                            break
            except OSError:
                pass
            for s in (device, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(upstream, device, False), daemon=True).start()
        pump(device, upstream, True)

    def route(self, t):
        """The device's sessions go through here from now on (Wi-Fi off and on: it connects
        again), armed to eat the next answer, closing the connection or not."""
        if self.routed:
            return
        self.routed = True
        signed = t.bank.log().count(SIGNED_ON)
        t.rig.call("do", name="wifi", action="target", host=self.server.address[0], port=self.server.address[1])
        t.wifi(False)
        t.wifi(True)
        wait_for(lambda: t.bank.log().count(SIGNED_ON) > signed)


def confirm_top_up(t, account, digits):
    top_up(t, account, digits)
    t.screen("Top-up")
    t.tap("Confirm")
    t.screen("Confirm with PIN")
    t.type_pin(demo.DEMO_PIN)


def top_up(t, account, digits):
    """From the home menu: Card mode > Top up transit card, the account, the amount typed."""
    card_mode(t, "Top up transit card")
    t.screen("Top up from")
    t.choose(account)
    t._amount(digits)


def home(t):
    t.tap("OK")
    t.screen("Card mode")
    t.tap("Back")
    t.screen("Pocket Terminal")


def card_and_history(t, amount, entry_starts):
    """From the transit card's screen (its balance €20.00): home, then the top-up's History
    entry (labelled by its amount) opened, read and left."""
    screen_with(t, "Transit card", "Balance €20.00.")
    t.tap("Back")
    t.screen("Card mode")
    t.tap("Back")
    t.screen("Pocket Terminal")
    t.choose("History")
    label = "%s Transit card" % amount
    assert label in t.screen("History")["buttons"]
    t.tap(label)
    entry = t.screen("Transit card")
    assert entry["text"].startswith(entry_starts), entry
    t.tap("OK")
    t.screen("History")
    t.tap("Back")
    t.screen("Pocket Terminal")


def test_the_owner_tops_up_the_transit_card_from_a_bound_account(terminal):
    t = terminal
    before, loaded = balances(t), transit(t)
    top_up(t, "Current account", "2000")
    approval = t.screen("Top-up")
    assert approval["text"] == "€20.00 to Transit card from Current account", approval
    t.tap("Confirm")
    pad = t.screen("Confirm with PIN")
    assert pad["text"].startswith("€20.00 to Transit card. "), pad
    t.type_pin(demo.DEMO_PIN)
    done = t.screen(lambda s: s.get("error") is not None, timeout=40)
    assert done["title"] == "Topped up" and done["error"] is False, done
    assert re.fullmatch(r"€20\.00 to Transit card from Current account\. The card now holds €20\.00\. "
                        r"Bank reference \d{12}\.", done["text"]), done
    assert balances(t)[OWNER] == before[OWNER] - 2000 and transit(t) == loaded + 2000
    assert "0200/920000" in t.bank.log() and "0400" not in t.bank.log()
    t.tap("OK")
    t.screen("Card mode")
    t.tap("Transit card")
    card_and_history(t, "€20.00", "Top-up of €20.00: approved. With Current account. Reference ")


def test_more_than_the_card_takes_and_a_decline(terminal):
    t = terminal
    # €20.00 on the card, €150.00 the most: €130.01 is refused before anything is sent.
    top_up(t, "Current account", "13001")
    too_much = t.screen("Too much for the card")
    assert too_much["text"] == "The card holds €20.00 and can take €130.00 more at most. Enter a smaller amount.", \
        too_much
    t.tap("OK")
    t.screen("Amount")
    t.tap("Cancel")
    t.screen("Top up from")
    t.tap("Back")
    t.screen("Card mode")
    t.tap("Back")
    t.screen("Pocket Terminal")

    # Savings left with €1.00: the bank declines (51), nothing moves, the card keeps its €20.00.
    state = State(t.bank.dir)
    state.ledger.debit("ACC-SAVINGS", state.ledger.account("ACC-SAVINGS")["balance"] - 100)
    state.close()
    before, loaded = balances(t), transit(t)
    top_up(t, "Savings", "500")
    t.screen("Top-up")
    t.tap("Confirm")
    t.screen("Confirm with PIN")
    t.type_pin(demo.DEMO_PIN)
    declined = t.screen(lambda s: s.get("error") is not None, timeout=40)
    assert declined["title"] == "Declined" and "Not enough money in the account." in declined["text"], declined
    assert balances(t) == before and transit(t) == loaded
    home(t)


def test_the_bank_away_sends_nothing_and_loads_nothing(terminal):
    t = terminal
    before, loaded = balances(t), transit(t)
    top_up(t, "Current account", "500")
    t.screen("Top-up")
    t.wifi(False)  # the network gone as the owner confirms
    t.tap("Confirm")
    t.screen("Confirm with PIN")
    t.type_pin(demo.DEMO_PIN)
    away = t.screen(lambda s: s.get("error") is not None, timeout=40)
    assert away["title"] == "No network" and away["text"].startswith("€5.00 to Transit card from Current account"), away
    t.wifi(True)
    assert balances(t) == before and transit(t) == loaded
    home(t)  # the card's €20.00 untouched: the last test fills it to €150.00 exactly with €130.00


@pytest.fixture(scope="module")
def eater(terminal):
    proxy = AnswerEater(terminal.bank.address)
    yield proxy
    proxy.server.close()


def test_a_lost_answer_is_reversed(terminal, eater):
    t = terminal
    before, loaded = balances(t), transit(t)
    eater.route(t)
    eater.close, eater.armed = True, True
    confirm_top_up(t, "Current account", "700")
    lost = t.screen(lambda s: s.get("error") is not None, timeout=40)
    assert lost["title"] == "No answer from the bank", lost
    assert lost["text"].startswith("€7.00 to Transit card from Current account. "), lost
    stan = re.findall(r"0200/920000 STAN (\d{6}) amount 000000000700 -> 00", t.bank.log())[-1]  # debited
    reversal = wait_for(lambda: re.search(r"0400 STAN \d{6} reverses STAN %s \(reason 68\)" % stan, t.bank.log()))
    assert reversal
    wait_for(lambda: balances(t) == before)
    assert transit(t) == loaded
    home(t)  # the card's €20.00 untouched: the last test fills it to €150.00 exactly with €130.00


def test_a_power_cut_while_the_answer_is_awaited_is_reversed_after_the_boot(terminal, eater):
    t = terminal
    before, loaded = balances(t), transit(t)
    eater.route(t)
    eater.close, eater.armed = False, True
    confirm_top_up(t, "Current account", "900")
    stan = wait_for(lambda: re.findall(r"0200/920000 STAN (\d{6}) amount 000000000900 -> 00", t.bank.log()))[-1]
    assert balances(t)[OWNER] == before[OWNER] - 900  # debited at the bank, the answer never on the device
    boots = t.rig.call("device")["boots"]
    t.rig.call("power_cut")
    t.vdevice.wait_booted(after_boots=boots, timeout=20)
    t.console.close()
    t.console = None
    t.restart()
    wait_for(lambda: re.search(r"0400 STAN \d{6} reverses STAN %s \(reason 68\)" % stan, t.bank.log()))
    wait_for(lambda: balances(t) == before)
    assert transit(t) == loaded
    t.unlock()
    card_mode(t, "Transit card")  # Card mode puts what the boot decided in History
    card_and_history(t, "€9.00", "Top-up of €9.00: reversed (no answer). With Current account.")


def test_the_card_full(terminal):
    t = terminal
    # To €150.00 exactly (what failed before loaded nothing), then the card is full: no account
    # is even offered.
    top_up(t, "Current account", "13000")
    t.screen("Top-up")
    t.tap("Confirm")
    t.screen("Confirm with PIN")
    t.type_pin(demo.DEMO_PIN)
    assert "The card now holds €150.00." in t.screen("Topped up", timeout=40)["text"]
    t.tap("OK")
    t.screen("Card mode")
    t.tap("Top up transit card")
    full = t.screen("Transit card full")
    assert full["text"].startswith("It holds €150.00, the most a transit card can hold."), full
    home(t)


