# The owner's transaction history (lib/terminal/history.py) in a real vault: bounded, newest
# first, masked card numbers only, readable only unlocked, cleared by the owner, and kept across
# a reboot.
import vault as V
from terminal.history import MAX_ENTRIES, History, mask_pan

import vaultfix
from expect import raises

PAN = "4761739001010010"


def unlocked():
    vault = vaultfix.personalized()
    vault.verify_pin(bytearray(vaultfix.PIN))
    return vault


def test_mask_pan_keeps_the_last_four_digits_only():
    assert mask_pan(PAN) == "•••• 0010"
    assert mask_pan("5413 3300 8902 0011") == "•••• 0011"
    assert mask_pan("12") == ""


def test_entries_newest_first_and_no_full_pan_stored():
    vault = unlocked()
    history = History(vault, clock=lambda: 1_800_000_000)
    history.add("purchase", 1250, "EUR", "Coffee Corner", "approved", card=PAN, reference="000000000123")
    history.add("request", 990, "EUR", "Book Shop", "declined (51)")
    first, second = history.entries()
    assert (first.kind, first.amount, first.result, first.card) == ("request", 990, "declined (51)", "")
    assert (second.counterparty, second.card, second.reference) == ("Coffee Corner", "•••• 0010", "000000000123")
    assert second.when == 1_800_000_000
    raw = bytes(vault.get("history"))
    assert PAN.encode() not in raw and b"47617390" not in raw
    # and nothing readable on flash: the entry is sealed
    sealed = open(vaultfix.ROOT + "/e.history", "rb").read()
    assert b"Coffee" not in sealed


def test_bounded_and_kept_across_a_reboot():
    vault = unlocked()
    history = History(vault)
    for i in range(MAX_ENTRIES + 3):
        history.add("purchase", i, "EUR", "Shop %d" % i, "approved")
    vault = vaultfix.reopened(vault)
    vault.verify_pin(bytearray(vaultfix.PIN))
    entries = History(vault).entries()
    assert len(entries) == MAX_ENTRIES
    assert entries[0].amount == MAX_ENTRIES + 2 and entries[-1].amount == 3


def test_locked_history_cannot_be_read_and_clear_empties_it():
    vault = unlocked()
    history = History(vault)
    history.add("balance", None, "EUR", "Current account", "approved")
    vault.lock()
    with raises(V.Locked):
        history.entries()
    vault.verify_pin(bytearray(vaultfix.PIN))
    history.clear()
    assert history.entries() == []
    history.clear()  # nothing there: no error
