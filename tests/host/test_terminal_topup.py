"""Topping up the transit card, end to end on the demo terminal (tests/host/terminalfix.py)
against the real bank host (issue 21 part 1): Card mode > Top up transit card, the account, the
amount, the approval screen with both whole, the owner's PIN, the bank's 0200/920000, the card
credited; History and the ledger show it. Then its boundaries: more than the card can take, a
decline (51), the card full, the bank away.

The tests share one terminal and run in order; each leaves it at the home menu."""

import re

from terminalfix import terminal  # noqa: F401 (the fixture)
from test_terminal_emulate import card_mode, screen_with
from test_terminal_flows import OWNER, balances
from tools import demo
from tools.bank.ledger import TRANSIT
from tools.bank.state import State


def transit(t):
    state = State(t.bank.dir)
    try:
        return state.ledger.account(TRANSIT)["balance"]
    finally:
        state.close()


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
    screen_with(t, "Transit card", "Balance €20.00.")
    t.tap("Back")
    t.screen("Card mode")
    t.tap("Back")
    t.screen("Pocket Terminal")
    t.choose("History")
    assert "€20.00 Transit card" in t.screen("History")["buttons"]
    t.tap("€20.00 Transit card")
    entry = t.screen("Transit card")
    assert entry["text"].startswith("Top-up of €20.00: approved. With Current account. Reference "), entry
    t.tap("OK")
    t.screen("History")
    t.tap("Back")
    t.screen("Pocket Terminal")


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
    t.wifi(False)
    top_up(t, "Current account", "500")
    t.screen("Top-up")
    t.tap("Confirm")
    t.screen("Confirm with PIN")
    t.type_pin(demo.DEMO_PIN)
    away = t.screen(lambda s: s.get("error") is not None, timeout=40)
    assert away["title"] == "No network" and away["text"].startswith("€5.00 to Transit card from Current account"), away
    t.wifi(True)
    assert balances(t) == before and transit(t) == loaded
    home(t)
    card_mode(t, "Transit card")
    screen_with(t, "Transit card", "Balance €20.00.")
    t.tap("Back")
    t.screen("Card mode")
    t.tap("Back")
    t.screen("Pocket Terminal")


def test_the_card_full(terminal):
    t = terminal
    # To €150.00 exactly, then the card is full: no account is even offered.
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


