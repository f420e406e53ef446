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
from binascii import unhexlify

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
        modulus = e["modulus"]  # bytes already when read from the file (_Entries)
        modulus = bytes.fromhex(modulus) if isinstance(modulus, str) else modulus
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


def _names(e, rid, index):
    """Whether a parsed entry is the key (rid, index), or may be: a malformed one is, for
    _entry to say what is wrong with it."""
    try:
        return bytes.fromhex(e["rid"]) == rid and int(e["index"], 16) == index
    except (KeyError, ValueError, TypeError):
        return True


_CHUNK = const(128)  # bytes of the file read at a time
_MODULUS_MAX = const(248)  # bytes: EMV's largest CA key (1984 bits, Book 2 section 11.2)
_WHITE = (0x20, 0x09, 0x0D, 0x0A)  # JSON's white space
_QUOTE = const(0x22)


class _Entries:
    """The objects of a JSON list in a file, one at a time: what json.load(f) gives, but with
    the modulus as bytes (decoded as it is read) and no entry's text in memory. CA key entries
    are flat objects of strings (hex digits, the expiry's digits), so no escapes. On a steady
    unit's 32 keys of 1984 bits each get() made an entry's text (642 bytes) and its modulus'
    hex string (497) 32 times while the card is read, a purchase's fullest heap: on a
    fragmented one no hole was that large. Here the largest block made is the modulus, in
    one buffer of _MODULUS_MAX for the whole file; CaKey takes a copy of the one it keeps.

    want: (rid, index) of the one key get() looks for, or None (load(): every entry whole).
    An entry whose RID and index are read and are not it has the rest of its strings passed
    over, not decoded: each modulus' hex, decoded a chunk at a time through copies of it, made
    ~3 KB of garbage, and a get() on a steady unit's 32 keys 115 KB (13 KB now), in the card's
    ODA, the payment's fullest heap."""

    def __init__(self, f, path, want=None):
        self.f = f
        self.path = path
        self.buf = bytearray(_CHUNK)
        self.modulus = bytearray(_MODULUS_MAX)
        self.rewind(want)

    def rewind(self, want):
        """The file read again from its start, for `want` (a held Store's next get())."""
        self.f.seek(0)
        self.want = want
        self.n = self.pos = 0
        self.count = 0  # entries read: the next one's position, for the messages
        return self

    def _bad(self):
        return CapkError("%s is not a JSON list of CA keys" % self.path)

    def _more(self):
        """The next bytes of the file in buf; False at its end."""
        self.n = self.f.readinto(self.buf)
        self.pos = 0
        return self.n > 0

    def _char(self):
        """The next byte that is not white space; -1 at the end of the file."""
        while True:
            if self.pos >= self.n and not self._more():
                return -1
            c = self.buf[self.pos]
            self.pos += 1
            if c not in _WHITE:
                return c

    def _string(self, hexed, keep=True):
        """The string whose opening quote was just read: a str, or (hexed) its hex digits
        decoded into self.modulus (a memoryview of it); not keep: passed over, None."""
        text, m, odd = "", 0, b""
        while True:
            if self.pos >= self.n and not self._more():
                raise self._bad()
            end = self.buf.find(b'"', self.pos, self.n)
            stop = self.n if end < 0 else end
            if self.buf.find(b"\\", self.pos, stop) >= 0:
                raise self._bad()
            if keep and hexed:
                part = memoryview(self.buf)[self.pos:stop]
                try:
                    digits = odd + part if odd else part  # (a view of buf: no copy of the chunk)
                    k = len(digits) // 2
                    if m + k > _MODULUS_MAX:
                        raise ValueError("modulus longer than %d bytes" % _MODULUS_MAX)
                    # The ESP32 stubs type unhexlify's argument str or bytes; MicroPython's
                    # takes any buffer, a memoryview too.
                    self.modulus[m:m + k] = unhexlify(digits[:2 * k])  # type: ignore
                except ValueError as x:
                    raise CapkError("CA key entry %d is malformed (%r)" % (self.count, x))
                odd = bytes(digits[2 * k:])  # its own: buf is read over next
                m += k
            elif keep:
                text += str(memoryview(self.buf)[self.pos:stop], "ascii")
            self.pos = stop
            if end >= 0:
                self.pos += 1
                if odd:
                    raise CapkError("CA key entry %d is malformed (odd-length hex)" % self.count)
                if not keep:
                    return None
                return memoryview(self.modulus)[:m] if hexed else text

    def _object(self):
        """The object whose "{" was just read, up to its "}"."""
        e = {}
        keep = True  # False once the entry is known not to be the one wanted
        c = self._char()
        while c != 0x7D:  # "}"
            if c != _QUOTE:
                raise self._bad()
            key = self._string(False, keep)
            if self._char() != 0x3A or self._char() != _QUOTE:  # ':' then a string
                raise self._bad()
            if keep:
                e[key] = self._string(key == "modulus")
                keep = self.want is None or "rid" not in e or "index" not in e or _names(e, *self.want)
            else:
                self._string(False, False)
            c = self._char()
            if c == 0x2C:  # ","
                c = self._char()
                if c != _QUOTE:
                    raise self._bad()
            elif c != 0x7D:
                raise self._bad()
        return e

    def __iter__(self):
        if self._char() != 0x5B:  # "["
            raise self._bad()
        c = self._char()
        while c != 0x5D:  # "]"
            if c != 0x7B:  # "{"
                raise self._bad()
            yield self._object()
            self.count += 1
            c = self._char()
            if c == 0x2C:
                c = self._char()
                if c != 0x7B:
                    raise self._bad()
            elif c != 0x5D:
                raise self._bad()
        if self._char() >= 0:
            raise self._bad()


class Store:
    """The CA keys by (RID, index): of a list of parsed entries, or of the file at a path (read
    again at each get(), see the module's docstring). Every entry is checked on construction.

    hold() opens the file and makes its reader's buffers (~0.8 KB: LittleFS's file object with
    its 256-byte cache, the chunk and the modulus) at once, for every get() until close() to
    read it again from its start: the terminal holds them from before the card is read, when
    the heap has just been collected. Made at get(), in the card's ODA, they were the payment's
    fullest heap's fresh blocks: on a steady unit's fragmented heap the open's 380 bytes found
    no hole, with more than that free in smaller pieces."""

    def __init__(self, entries):
        if not isinstance(entries, (list, str)):
            raise CapkError("CA key file is not a list")
        self._source = entries
        self._held = None  # hold()'s reader
        for n, e in enumerate(self._entries()):
            _entry(n, e)

    def hold(self):
        """The file kept open for get() until close() (see the class); a list's store: itself."""
        if isinstance(self._source, str) and self._held is None:
            self._held = _Entries(open(self._source, "rb"), self._source)
        return self

    def close(self):
        """The file hold() opened closed (none: nothing to do)."""
        held, self._held = self._held, None
        if held is not None:
            held.f.close()

    @classmethod
    def load(cls, path="/data/capk.json"):
        return cls(path)

    def _entries(self, want=None):
        if isinstance(self._source, list):
            yield from self._source
            return
        if self._held is not None:
            yield from self._held.rewind(want)
            return
        with open(self._source, "rb") as f:
            yield from _Entries(f, self._source, want)

    def __len__(self):
        return sum(1 for _ in self._entries())

    def get(self, rid, index, today):
        """The key for a card's RID (the AID's first 5 bytes) and CA index (tag 8F), valid on
        today ("YYMMDD"); OdaFailed when there is none or it has expired."""
        rid = bytes(rid[:5])
        k = None
        for n, e in enumerate(self._entries((rid, index))):
            # The card's key checked again as it is read (the file may have changed since
            # load()); a later entry for the same key stands, as a dict keyed by (RID, index)
            # had it. The others are passed over unbuilt (_Entries' want).
            if _names(e, rid, index):
                found = _entry(n, e)
                found.modulus = bytes(found.modulus)  # its own: the file's next modulus reuses the buffer
                k = found
        if k is None:
            raise OdaFailed("no CA key %s/%02X" % (rid.hex().upper(), index))
        if stamp(today) > stamp(k.expiry):
            raise OdaFailed("CA key %s/%02X expired %s" % (k.rid.hex().upper(), index, k.expiry))
        return k
