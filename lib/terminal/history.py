"""The owner's recent transactions, as the History screen lists them.

    history = History(vault)
    history.add("purchase", 1250, "EUR", "Coffee Corner", "approved", card="4761739001010010")
    history.count()                        # how many are kept (at most MAX_ENTRIES)
    for entry in history.page(0, 3):       # the 3 newest; page(3, 3) the 3 before them
        entry.kind, entry.amount, entry.card ...   # card: "•••• 0010"
    history.clear()

Kept with the vault, sealed under the owner's data key: readable only while the owner is
unlocked (every transaction happens then). What is kept is what the owner needs to recognise a
payment: never a full PAN, track 2, cryptogram or anything of a PIN (PCI DSS: no sensitive
authentication data after authorisation). A PAN handed to add() is cut to its last four digits
before anything is stored.

In records, never whole: each entry is one sealed file of ~200 bytes in the vault's directory,
"h.<slot>", in a ring of _SLOTS; a small head in the vault (the owner entry "history.head":
the sequence number of the next entry, and of the first one not cleared) says which are kept.
add() writes one record and the head; a page reads its few records; nothing reads them all.
Entry number n is sealed with n as associated data and lives in slot n % _SLOTS, so a record
moved to another slot, or an older one put back in its place, fails its authentication.

Power cuts: the head is the commit point (a vault put: atomic and authenticated by the vault's
index). add() writes record n first, whole or not at all (LittleFS makes it current at its
close), into the one slot the head does not show — the ring has a slot more than it keeps —,
then the head. Cut
before the head, the history is the old one (record n is not shown, and the next add writes it
again); after it, the new one. clear() moves the head's first past every entry (the commit),
then removes the files. Accepted: a record n written before a cut and copied off the flash could
later be put in place of the record n written again, showing one real transaction of the
owner's in place of another (both sealed under the owner's key; nothing else can be forged).

A unit that kept the former single entry "history" (every entry in one JSON list) loses it:
reading it means holding the whole list in RAM at once, which is what does not fit the board
(it ran out in History.add with the history full), and the bank's statement has every entry.
The first History call on such a unit removes it (_head).
"""

import json
import os
import time

from micropython import const
from vault import crypto
from vault.store import Tampered

HEAD = "history.head"
_FORMER = "history"  # the single-entry history of earlier firmware (dropped: see above)
MAX_ENTRIES = const(50)  # the oldest goes when a new one comes
_SLOTS = const(51)  # one more than is kept: the slot add() writes is never one the head shows
_FIELDS = ("when", "kind", "amount", "currency", "counterparty", "result", "card", "reference")


def mask_pan(pan):
    """What the screen and the history show of a card number: its last four digits."""
    digits = "".join(c for c in str(pan) if "0" <= c <= "9")
    return "•••• " + digits[-4:] if len(digits) >= 4 else ""


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Entry:
    __slots__ = _FIELDS

    def __init__(self, when, kind, amount, currency, counterparty, result, card, reference):
        self.when = when  # seconds since the epoch
        self.kind = kind  # "purchase", "request", "balance", "transfer", "emulation"
        self.amount = amount  # minor units (None for a balance inquiry)
        self.currency = currency
        self.counterparty = counterparty  # merchant, payee or account shown to the owner
        self.result = result  # "approved", "declined (51)", "refused", "reversed", ...
        self.card = card  # masked: "•••• 0010", or the bound account's name
        self.reference = reference  # the bank's RRN or the merchant's order number

    def as_list(self):
        return [getattr(self, f) for f in _FIELDS]

    def describe(self):
        """The entry in words, for its screen: what, how much, the outcome, with what, its
        reference, when. ("Request, approved. Current account 101236940001" had no amount, and
        the bank's reference read as an account number.)"""
        import time

        from ui.screens import format_amount

        text = "%s%s: %s." % (self.kind, "" if self.amount is None else " of " + format_amount(self.amount, self.currency),
                              self.result)
        if self.card:
            text += " With %s." % self.card
        if self.reference:
            text += " Reference %s." % self.reference
        t = time.localtime(self.when)
        return text + " %d %s %d, %02d:%02d." % (t[2], _MONTHS[t[1] - 1], t[0], t[3], t[4])


def _associated(n):
    return b"history\x00" + n.to_bytes(4, "big")


class History:
    def __init__(self, vault, clock=time.time):
        self.vault = vault
        self.clock = clock

    def _path(self, n):
        return "%s/h.%d" % (self.vault.store.root, n % _SLOTS)

    def _head(self):
        """(next, first): the sequence number the next entry gets, and the first one kept
        (clear() moves it up). Raises vault.Locked while the owner is locked."""
        try:
            raw = self.vault.get(HEAD)
        except KeyError:
            self.vault.remove(_FORMER)  # nothing when it is not there (an index lookup)
            return 0, 0
        head = int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:8], "big")
        crypto.wipe(raw)
        return head

    def _keys(self):
        # Under the owner's data key (the vault's own entries use other labels of it): gone,
        # with every record, when the vault blocks or is wiped.
        key = self.vault.data_key
        return crypto.subkey(key, b"history-enc"), crypto.subkey(key, b"history-mac")

    def count(self):
        """How many entries are kept."""
        n, first = self._head()
        return n - max(first, n - MAX_ENTRIES)

    def add(self, kind, amount, currency, counterparty, result, card=None, reference="", account=None):
        """Record a transaction (card: a PAN, masked here; else account: the bound account's name)."""
        n, first = self._head()
        row = json.dumps(Entry(int(self.clock()), kind, amount, currency, counterparty, result,
                               mask_pan(card) if card else (account or ""), reference).as_list()).encode()
        enc, mac = self._keys()
        try:
            sealed = crypto.seal(enc, mac, row, _associated(n))
        finally:
            crypto.wipe(enc)
            crypto.wipe(mac)
        # Straight into its slot, which the head does not show until the put below (no temporary
        # file renamed: a rename in the store's folder is ~2,000 reads of the flash chip, ~0.2 s
        # on the ESP32; tools/flowbench.py).
        with open(self._path(n), "wb") as f:
            f.write(sealed)
        self.vault.put(HEAD, (n + 1).to_bytes(4, "big") + first.to_bytes(4, "big"))

    def page(self, start, count):
        """Up to count entries, newest first, from the start-th newest on (0: the newest)."""
        n, first = self._head()
        top = n - 1 - start
        bottom = max(first, n - MAX_ENTRIES, top + 1 - count)
        entries = []
        if top < bottom:
            return entries
        enc, mac = self._keys()
        try:
            for i in range(top, bottom - 1, -1):
                try:
                    with open(self._path(i), "rb") as f:
                        row = crypto.unseal(enc, mac, f.read(), _associated(i))
                except (OSError, crypto.TagMismatch):
                    raise Tampered("history: entry %d is missing or fails its authentication" % i)
                try:
                    entries.append(Entry(*json.loads(bytes(row))))
                finally:
                    crypto.wipe(row)
        finally:
            crypto.wipe(enc)
            crypto.wipe(mac)
        return entries

    def clear(self):
        """Forget every entry: the head first (the commit), then the records (every slot: also
        what a clear cut short, or an owner before a block, left)."""
        n, first = self._head()
        if first != n:
            self.vault.put(HEAD, n.to_bytes(4, "big") * 2)
        for i in range(_SLOTS):
            try:
                os.remove(self._path(i))
            except OSError:
                pass  # a slot never written
