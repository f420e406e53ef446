"""The certification authority public keys (EMV Book 2 section 11.2), from `/data/capk.json`:

    store = capk.Store.load()                    CapkError on a malformed entry or bad checksum
    key = store.get(rid, index, today="261121")  OdaFailed when absent or expired

The file is a JSON list of {"rid", "index", "modulus", "exponent", "expiry" (YYMMDD),
"checksum"}, hex strings but the expiry (lib/emv/README.md). Every entry's checksum, SHA-1 over
RID, index, modulus and exponent, is verified when the file is loaded: one bad entry refuses
the file, as a corrupted key could otherwise fail every card of a scheme for no clear reason.
"""

import hashlib
import json

from emv import CapkError, OdaFailed


def stamp(yymmdd):
    """An int that orders YYMMDD dates (years 50-99 are 19xx, as EMV reads two-digit years)."""
    if len(yymmdd) != 6 or not yymmdd.isdigit():
        raise ValueError("date %r is not YYMMDD" % yymmdd)
    yy = int(yymmdd[:2])
    return (yy + (1900 if yy >= 50 else 2000)) * 10000 + int(yymmdd[2:])


class CaKey:
    """One CA public key: rid (5 bytes), index (int), modulus (bytes), exponent (int), expiry
    ("YYMMDD", the last day it may be used)."""

    def __init__(self, rid, index, modulus, exponent, expiry):
        self.rid = rid
        self.index = index
        self.modulus = modulus
        self.exponent = exponent
        self.expiry = expiry

    def __repr__(self):
        return "CaKey(%s/%02X, %d bits, expires %s)" % (
            self.rid.hex().upper(), self.index, len(self.modulus) * 8, self.expiry)


def _entry(n, e):
    """A CaKey from one parsed JSON object (n: its position, for the messages)."""
    try:
        rid = bytes.fromhex(e["rid"])
        index = bytes.fromhex(e["index"])
        modulus = bytes.fromhex(e["modulus"])
        exponent = bytes.fromhex(e["exponent"])
        checksum = bytes.fromhex(e["checksum"])
        expiry = e["expiry"]
        stamp(expiry)
    except (KeyError, ValueError, TypeError, AttributeError) as x:
        raise CapkError("CA key entry %d is malformed (%r)" % (n, x))
    if len(rid) != 5 or len(index) != 1 or not modulus or exponent not in (b"\x03", b"\x01\x00\x01"):
        raise CapkError("CA key entry %d: bad RID, index, modulus or exponent" % n)
    h = hashlib.sha1(rid)
    h.update(index)
    h.update(modulus)
    h.update(exponent)
    if h.digest() != checksum:
        raise CapkError("CA key %s/%s: checksum does not match" % (e["rid"], e["index"]))
    return CaKey(rid, index[0], modulus, int.from_bytes(exponent, "big"), expiry)


class Store:
    """The CA keys by (RID, index)."""

    def __init__(self, entries):
        if not isinstance(entries, list):
            raise CapkError("CA key file is not a list")
        self._keys = {}
        for n, e in enumerate(entries):
            k = _entry(n, e)
            self._keys[(k.rid, k.index)] = k

    @classmethod
    def load(cls, path="/data/capk.json"):
        try:
            with open(path) as f:
                entries = json.load(f)
        except ValueError as x:
            raise CapkError("%s is not JSON (%r)" % (path, x))
        return cls(entries)

    def __len__(self):
        return len(self._keys)

    def get(self, rid, index, today):
        """The key for a card's RID (the AID's first 5 bytes) and CA index (tag 8F), valid on
        today ("YYMMDD"); OdaFailed when there is none or it has expired."""
        k = self._keys.get((bytes(rid[:5]), index))
        if k is None:
            raise OdaFailed("no CA key %s/%02X" % (bytes(rid[:5]).hex().upper(), index))
        if stamp(today) > stamp(k.expiry):
            raise OdaFailed("CA key %s/%02X expired %s" % (k.rid.hex().upper(), index, k.expiry))
        return k
