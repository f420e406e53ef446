"""A transit / ID card applet: a stored balance that a gate debits, with MACs both ways.

    applet = TransitApplet(key, path="/data/transit.bin")
    applet.credit(2000, b"0000421205101530")  # a top-up the app did with the bank (terminal.topup), named
    applet.last_topup                         # the name of the last one it took
    await pn532.emulate(applet)              # or behind nfc.Router

Commands (CLA 80 but SELECT):
  SELECT     00 A4 04 00 Lc AID      -> FCI: 6F { 84 AID, A5 { C0 card id (8), C1 currency (2) } }
  GET BALANCE 80 5C 00 00 [Le]        -> balance (4) · counter (4) · currency (2)
  DEBIT      80 54 00 00 Lc=24 amount (4) · terminal id (4) · nonce (8) · MAC (8) [Le]
                                      -> balance (4) · counter (4) · receipt MAC (8)
  READ LOG   80 B2 P1 00 [Le]         -> P1 = 0: every entry, newest first; P1 = n: the n-th newest
                                         entry: counter (4) · amount (4) · balance after (4) · terminal (4)
Numbers are big-endian; amounts in the currency's minor units; currency is ISO 4217 numeric.

The terminal's MAC: HMAC-SHA256(key, "PT-DEBIT" · card id · counter · amount · terminal · nonce),
its first 8 bytes, where counter is the card's transaction counter as GET BALANCE gave it: the
MAC is checked before anything changes, and a replay (the counter has moved) fails with 6982.
The receipt: HMAC-SHA256(key, "PT-RECEIPT" · card id · new counter · amount · new balance ·
terminal · nonce), 8 bytes. Not enough balance: 6985; amount 0: 6A80.

The card holds at most MAX_BALANCE (€150.00, as the bank's cap on one top-up: tools/bank/host.py
TOPUP_MAX): a credit beyond is refused (ValueError) before anything changes.

The state (card id, balance, counter, log, the last top-up's name) is one file (by default /data/transit.bin: not in a
folder named like a package, as the flash's root is on sys.path before /lib), rewritten whole
for each change: written
to a temporary file, then renamed over the old one, so a power cut leaves the old state or the
new, never half of one. It carries an HMAC under the key ("PT-STORE"): a file altered on the
flash is refused (every command then answers 6581) rather than believed.
"""

import os
import struct

from micropython import const

from nfc import (CLA_PROPRIETARY, SW_CLA_NOT_SUPPORTED, SW_CONDITIONS, SW_INS_NOT_SUPPORTED, SW_MEMORY_FAILURE,
                 SW_NOT_ALLOWED, SW_NOT_FOUND, SW_OK, SW_RECORD_NOT_FOUND, SW_SECURITY, SW_WRONG_DATA,
                 SW_WRONG_LENGTH, SW_WRONG_P1P2, ApduError, is_select, parse, reply, tlv)
from vault.crypto import equal, hmac_sha256

AID = b"\xf0PT-TRANSIT"
DEFAULT_PATH = "/data/transit.bin"
EUR = const(978)
MAX_BALANCE = const(15000)
LOG_SIZE = const(8)
MAC_SIZE = const(8)

INS_GET_BALANCE = const(0x5C)
INS_DEBIT = const(0x54)
INS_READ_LOG = const(0xB2)

_MAGIC = b"PTT2"
_STORE_MAC = const(16)
_HEAD = ">4s8sHIIB16s"  # magic, card id, currency, balance, counter, entries, last top-up
_HEAD_SIZE = const(39)
# The state of firmware before top-ups: the same head without the last top-up (_HEAD less its
# last field, "16s"), still read; the next write is in the new format.
_MAGIC_1 = b"PTT1"
_HEAD_1_SIZE = const(23)
_NO_TOPUP = bytes(16)
_ENTRY = ">IIII"  # counter, amount, balance after, terminal
_ENTRY_SIZE = const(16)
_TMP = ".tmp"


class TransitError(Exception):
    """The stored state cannot be used (altered, truncated)."""


def debit_mac(key, card_id, counter, amount, terminal, nonce):
    """The terminal's MAC on a DEBIT (what a gate computes)."""
    return hmac_sha256(key, b"PT-DEBIT" + card_id + struct.pack(">III", counter, amount, terminal) + nonce)[:MAC_SIZE]


def receipt_mac(key, card_id, counter, amount, balance, terminal, nonce):
    """The card's MAC on the receipt of a DEBIT."""
    return hmac_sha256(key, b"PT-RECEIPT" + card_id + struct.pack(">IIII", counter, amount, balance, terminal)
                       + nonce)[:MAC_SIZE]


class TransitApplet:
    AID = AID

    def __init__(self, key, path=DEFAULT_PATH, card_id=None, currency=EUR, log_size=LOG_SIZE):
        self._key = key
        self.path = path
        self.log_size = log_size
        self.selected = False
        self.broken = None  # why the stored state was refused, if it was
        self.card_id = card_id
        self.currency = currency
        self.balance = 0
        self.counter = 0
        self.log = []  # (counter, amount, balance after, terminal), newest first
        self.last_topup = _NO_TOPUP  # the name of the last top-up credited (16 bytes)
        try:
            self._load()
        except TransitError as e:
            self.broken = str(e)
        if self.card_id is None and not self.broken:
            self.card_id = os.urandom(8)  # a new card: its number, kept from now on
            self._save()

    # ---- the stored state --------------------------------------------------------------------

    def _encode(self):
        out = bytearray(struct.pack(_HEAD, _MAGIC, self.card_id, self.currency, self.balance, self.counter,
                                    len(self.log), self.last_topup))
        for entry in self.log:
            out.extend(struct.pack(_ENTRY, *entry))
        out.extend(hmac_sha256(self._key, b"PT-STORE" + out)[:_STORE_MAC])
        return out

    def _load(self):
        try:
            os.remove(self.path + _TMP)  # a write that never reached its rename
        except OSError:
            pass
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except OSError:
            return  # a new card
        body, tag = raw[:-_STORE_MAC], raw[-_STORE_MAC:]
        if len(raw) < _HEAD_1_SIZE + _STORE_MAC or not equal(hmac_sha256(self._key, b"PT-STORE" + body)[:_STORE_MAC], tag):
            raise TransitError("the transit state on flash does not verify")
        size, last = _HEAD_SIZE, _NO_TOPUP
        if body[:4] == _MAGIC_1:
            size = _HEAD_1_SIZE
            magic, card_id, currency, balance, counter, n = struct.unpack(_HEAD[:-3], body[:size])
        else:
            magic, card_id, currency, balance, counter, n, last = struct.unpack(_HEAD, body[:size])
        if magic not in (_MAGIC, _MAGIC_1) or len(body) != size + n * _ENTRY_SIZE:
            raise TransitError("the transit state on flash has a wrong format")
        if self.card_id is not None and card_id != self.card_id:
            raise TransitError("the transit state on flash is another card's")
        self.card_id, self.currency, self.balance, self.counter = card_id, currency, balance, counter
        self.last_topup = last
        self.log = [struct.unpack(_ENTRY, body[size + i * _ENTRY_SIZE:size + (i + 1) * _ENTRY_SIZE])
                    for i in range(n)]

    def _save(self):
        data = self._encode()
        from flashfs import makedirs

        makedirs(self.path)
        tmp = self.path + _TMP
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, self.path)

    def credit(self, amount, topup=_NO_TOPUP):
        """Add to the balance (a top-up the app made with the bank); on flash before it returns,
        with `topup` (16 bytes, the top-up's name) as the last one taken, in the same write: after
        a power cut the app tells from last_topup whether the card took it, and a credit of the
        top-up the card took last does nothing (the balance returned): a top-up is loaded once.
        ValueError for an amount of 0 or less or past MAX_BALANCE."""
        if self.broken:
            raise TransitError(self.broken)
        if topup != _NO_TOPUP and topup == self.last_topup:
            return self.balance
        if amount <= 0 or self.balance + amount > MAX_BALANCE:
            raise ValueError("amount out of range")
        before = (self.balance, self.last_topup)
        self.balance += amount
        self.last_topup = topup
        try:
            self._save()
        except OSError:
            self.balance, self.last_topup = before
            raise
        return self.balance

    def reset(self):
        self.selected = False

    # ---- commands ----------------------------------------------------------------------------

    async def process(self, apdu):
        try:
            cla, ins, p1, p2, data, _ = parse(apdu)
            if is_select(cla, ins, p1):
                return self._select(data)
            if not self.selected:
                return reply(SW_NOT_ALLOWED)
            if self.broken:
                return reply(SW_MEMORY_FAILURE)
            if cla != CLA_PROPRIETARY:
                return reply(SW_CLA_NOT_SUPPORTED)
            if ins == INS_GET_BALANCE:
                if p1 or p2:
                    return reply(SW_WRONG_P1P2)
                return reply(SW_OK, struct.pack(">IIH", self.balance, self.counter, self.currency))
            if ins == INS_DEBIT:
                if p1 or p2:
                    return reply(SW_WRONG_P1P2)
                return self._debit(data)
            if ins == INS_READ_LOG:
                return self._read_log(p1, p2)
            return reply(SW_INS_NOT_SUPPORTED)
        except ApduError as e:
            return reply(e.sw)

    def _select(self, aid):
        if aid != AID[:len(aid)] or not aid:
            self.selected = False
            return reply(SW_NOT_FOUND)
        self.selected = True
        card_id = self.card_id or b""
        return reply(SW_OK, tlv(0x6F, tlv(0x84, AID) + tlv(0xA5, tlv(0xC0, card_id)
                                                         + tlv(0xC1, struct.pack(">H", self.currency)))))

    def _debit(self, data):
        if len(data) != 24:
            return reply(SW_WRONG_LENGTH)
        amount, terminal = struct.unpack(">II", data[:8])
        nonce, mac = data[8:16], data[16:24]
        card_id = self.card_id or b""
        # The MAC first: nothing about the card is told to a terminal that cannot make it.
        if not equal(debit_mac(self._key, card_id, self.counter, amount, terminal, nonce), mac):
            return reply(SW_SECURITY)
        if amount == 0:
            return reply(SW_WRONG_DATA)
        if amount > self.balance:
            return reply(SW_CONDITIONS)
        before = (self.balance, self.counter, self.log)
        self.balance -= amount
        self.counter += 1
        self.log = [(self.counter, amount, self.balance, terminal)] + self.log[:self.log_size - 1]
        try:
            self._save()
        except OSError:
            self.balance, self.counter, self.log = before
            return reply(SW_MEMORY_FAILURE)
        receipt = receipt_mac(self._key, card_id, self.counter, amount, self.balance, terminal, nonce)
        return reply(SW_OK, struct.pack(">II", self.balance, self.counter) + receipt)

    def _read_log(self, p1, p2):
        if p2:
            return reply(SW_WRONG_P1P2)
        if p1 == 0:
            entries = self.log
        elif p1 <= len(self.log):
            entries = self.log[p1 - 1:p1]
        else:
            return reply(SW_RECORD_NOT_FOUND)
        out = bytearray()
        for entry in entries:
            out.extend(struct.pack(_ENTRY, *entry))
        return reply(SW_OK, bytes(out))
