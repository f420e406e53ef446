"""The monkey (tools/monkey.py), short: a fixed seed drives the demo terminal (terminalfix) at
random for about a minute of actions, checking its invariants all along and at the end (no crash
or restart but after a power cut, every "Approved" posted once at the bank, and every "Approved
offline" once its advice came, money conserved, no reversal or advice lost, the heap never out;
the terminal parameters it publishes at its start allow offline approvals). The long soak is the command: python -m tools.monkey --minutes 30.

A monkey that did nothing would pass its invariants too: the run must also reach the screens
of a payment (the lock, the PIN, the home menu, a pushed request, its approval at the bank), set
out on errands (a menu entry pages deep, tools/monkey.py ERRANDS), and account for every screen
of its list as reached or never reached. About 75 s (50 actions in ~50 s; the rest is the
terminal's start and the journal's drain at the end)."""

import pytest

from terminalfix import terminal  # noqa: F401 (the fixture)
from tools.monkey import SCREENS, Monkey

SEED = 2
ACTIONS = 50
# The screens this seed reaches on every run (the device's timing moves the rest).
REACHED = {"Locked", "Unlock", "Pocket Terminal", "Payment request", "Confirm with PIN", "Authorising", "Approved"}


@pytest.mark.timeout(600)  # the end waits for the device's journal to drain, a reboot if need be
def test_the_monkey_finds_every_invariant_kept(terminal):
    summary = Monkey(terminal, SEED).run(actions=ACTIONS)
    assert summary["actions"] == ACTIONS
    assert REACHED <= set(summary["screens"]), summary["screens"]
    assert summary["approvals"] >= 1 and summary["postings"] == summary["approvals"], summary
    assert summary["errands"], summary  # this seed sets out to clear the history
    assert REACHED <= set(summary["reached"]) and not REACHED & set(summary["never reached"])
    assert sorted(summary["reached"] + summary["never reached"]) == sorted(SCREENS)

