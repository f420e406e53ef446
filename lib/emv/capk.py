"""The certification authority public keys (EMV Book 2 section 11.2), from `/data/capk.json`:

    store = capk.Store.load()                    CapkError on a malformed entry or bad checksum
    key = store.get(rid, index, today="261121")  OdaFailed when absent or expired

The file is a JSON list of {"rid", "index", "modulus", "exponent", "expiry" (YYMMDD),
"checksum"}, hex strings but the expiry (lib/emv/README.md). Every entry's checksum, SHA-1 over
RID, index, modulus and exponent, is verified when the file is loaded: one bad entry refuses
the file, as a corrupted key could otherwise fail every card of a scheme for no clear reason.

The file is read an entry at a time, at load() (to check it) and at each get() (for the one key
a card names), and nothing of it is kept: parsed whole it cost 7.4 KB of the board's heap for
the whole of every purchase (three test keys; a real terminal holds every scheme's).
"""

import hashlib
import json

from micropython import const

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


_CHUNK = const(128)  # bytes of the file read at a time
_WHITE = " \t\r\n"


class _Entries:
    """The objects of a JSON list in a file, parsed one at a time: what json.load(f) gives,
    with one entry's text in memory instead of the file's. CA key entries are flat objects of
    strings without braces, so an entry's text ends at its first '}' (json.loads checks it)."""

    def __init__(self, f, path):
        self.f = f
        self.path = path
        self.data = ""
        self.pos = 0

    def _bad(self):
        return CapkError("%s is not a JSON list of CA keys" % self.path)

    def _char(self):
        """The next character that is not white space; "" at the end of the file."""
        while True:
            if self.pos >= len(self.data):
                self.data = self.f.read(_CHUNK)
                self.pos = 0
                if not self.data:
                    return ""
            c = self.data[self.pos]
            self.pos += 1
            if c not in _WHITE:
                return c

    def _object(self):
        """The text of the object whose "{" was just read, up to its "}"."""
        text = "{"
        while True:
            end = self.data.find("}", self.pos)
            if end >= 0:
                text += self.data[self.pos:end + 1]
                self.pos = end + 1
                return text
            text += self.data[self.pos:]
            self.data = self.f.read(_CHUNK)
            self.pos = 0
            if not self.data:
                raise self._bad()

    def __iter__(self):
        if self._char() != "[":
            raise self._bad()
        c = self._char()
        while c != "]":
            if c != "{":
                raise self._bad()
            try:
                yield json.loads(self._object())
            except ValueError:
                raise self._bad()
            c = self._char()
            if c == ",":
                c = self._char()
                if c != "{":
                    raise self._bad()
            elif c != "]":
                raise self._bad()
        if self._char():
            raise self._bad()


class Store:
    """The CA keys by (RID, index): of a list of parsed entries, or of the file at a path (read
    again at each get(), see the module's docstring). Every entry is checked on construction."""

    def __init__(self, entries):
        if not isinstance(entries, (list, str)):
            raise CapkError("CA key file is not a list")
        self._source = entries
        for n, e in enumerate(self._entries()):
            _entry(n, e)

    @classmethod
    def load(cls, path="/data/capk.json"):
        return cls(path)

    def _entries(self):
        if isinstance(self._source, list):
            yield from self._source
            return
        with open(self._source) as f:
            yield from _Entries(f, self._source)

    def __len__(self):
        return sum(1 for _ in self._entries())

    def get(self, rid, index, today):
        """The key for a card's RID (the AID's first 5 bytes) and CA index (tag 8F), valid on
        today ("YYMMDD"); OdaFailed when there is none or it has expired."""
        rid = bytes(rid[:5])
        k = None
        for n, e in enumerate(self._entries()):
            # Each entry checked again as it is read (the file may have changed since load());
            # a later entry for the same key stands, as a dict keyed by (RID, index) had it.
            found = _entry(n, e)
            if found.rid == rid and found.index == index:
                k = found
        if k is None:
            raise OdaFailed("no CA key %s/%02X" % (rid.hex().upper(), index))
        if stamp(today) > stamp(k.expiry):
            raise OdaFailed("CA key %s/%02X expired %s" % (k.rid.hex().upper(), index, k.expiry))
        return k
