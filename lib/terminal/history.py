"""The owner's recent transactions, as the History screen lists them.

    history = History(vault)
    history.add("purchase", 1250, "EUR", "Coffee Corner", "approved", card="4761739001010010")
    for entry in history.entries():        # newest first
        entry.kind, entry.amount, entry.card ...   # card: "•••• 0010"
    history.clear()

Kept in the vault as an owner entry: encrypted at rest, readable only while the owner is
unlocked (every transaction happens then). What is kept is what the owner needs to recognise a
payment: never a full PAN, track 2, cryptogram or anything of a PIN (PCI DSS: no sensitive
authentication data after authorisation). A PAN handed to add() is cut to its last four digits
before anything is stored.
"""

import json
import time

from micropython import const
from vault.crypto import wipe

ENTRY = "history"
MAX_ENTRIES = const(50)  # the oldest goes when a new one comes: the flash write stays small
_FIELDS = ("when", "kind", "amount", "currency", "counterparty", "result", "card", "reference")


def mask_pan(pan):
    """What the screen and the history show of a card number: its last four digits."""
    digits = "".join(c for c in str(pan) if "0" <= c <= "9")
    return "•••• " + digits[-4:] if len(digits) >= 4 else ""


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


class History:
    def __init__(self, vault, clock=time.time):
        self.vault = vault
        self.clock = clock

    def _load(self):
        try:
            raw = self.vault.get(ENTRY)
        except KeyError:
            return []
        try:
            return json.loads(bytes(raw))
        finally:
            wipe(raw)

    def add(self, kind, amount, currency, counterparty, result, card=None, reference="", account=None):
        """Record a transaction (card: a PAN, masked here; else account: the bound account's name)."""
        rows = self._load()
        rows.insert(0, Entry(int(self.clock()), kind, amount, currency, counterparty, result,
                             mask_pan(card) if card else (account or ""), reference).as_list())
        del rows[MAX_ENTRIES:]
        self.vault.put(ENTRY, json.dumps(rows).encode())

    def entries(self):
        """Newest first."""
        return [Entry(*row) for row in self._load()]

    def clear(self):
        self.vault.remove(ENTRY)
