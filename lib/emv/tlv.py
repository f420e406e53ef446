"""BER-TLV as EMV uses it (EMV Book 3 Annex B) and data object lists (Book 3 section 5.4).

    from emv import tlv
    tlv.decode(data)            [(tag, value), ...] one level; 00/FF padding between objects skipped
    tlv.walk(data)              (tag, value start, value end) of each, one level: read in place
    tlv.flatten(data)           {tag: value} of every primitive object, recursing into templates
    tlv.find(data, 0x9F38)      the first object with that tag at any depth, or None
    tlv.encode(0x9F02, value)   tag, length, value
    tlv.parse_dol(dol)          [(tag, length), ...]
    tlv.build_dol(entries, {tag: value})   the concatenated values, padded/truncated per format

Tags are ints (their bytes big-endian: 9F02 -> 0x9F02), at most 3 bytes. Lengths take the
short form or 81/82/83 (EMV never needs more). Everything a card sends goes through here, so
every read is bounded and every malformation raises TlvError saying what and at which offset.
"""

from micropython import const

from emv import TlvError
from emv.tags import format_of

MAX_DEPTH = const(8)  # templates nest 4 deep in practice (6F > A5 > BF0C > 61)


def _tag(data, i, end):
    """(tag, offset after it) of the tag at data[i]."""
    if i >= end:
        raise TlvError("truncated tag at %d" % i)
    t = data[i]
    j = i + 1
    if t & 0x1F == 0x1F:  # subsequent bytes follow, each with bit 8 set but the last
        while True:
            if j >= end:
                raise TlvError("truncated tag at %d" % i)
            b = data[j]
            t = (t << 8) | b
            j += 1
            if not b & 0x80:
                break
            if j - i == 3:
                raise TlvError("tag longer than 3 bytes at %d" % i)
    return t, j


def _header(data, i, end):
    """(tag, value start, value end) of the object at data[i]."""
    tag, j = _tag(data, i, end)
    if j >= end:
        raise TlvError("missing length at %d" % j)
    n = data[j]
    j += 1
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 3:
            raise TlvError("length form %02X at %d" % (n, j - 1))
        if j + k > end:
            raise TlvError("truncated length at %d" % (j - 1))
        n = 0
        for _ in range(k):
            n = (n << 8) | data[j]
            j += 1
    if j + n > end:
        raise TlvError("length %d beyond the data at %d" % (n, i))
    return tag, j, j + n


def walk(data, i=0, end=None):
    """Yield (tag, value start, value end) of each object in data[i:end] (to its end if None):
    where each value is, for a caller that reads it in place (ODA, CDA) rather than copied."""
    if end is None:
        end = len(data)
    while i < end:
        b = data[i]
        if b == 0x00 or b == 0xFF:  # padding before, between, after objects (Book 3 B1)
            i += 1
            continue
        tag, vs, ve = _header(data, i, end)
        yield tag, vs, ve
        i = ve


def is_constructed(tag):
    """True for a template (bit 6 of the tag's first byte)."""
    while tag > 0xFF:
        tag >>= 8
    return bool(tag & 0x20)


def decode(data):
    """[(tag, value bytes), ...] of the objects at the top level of data."""
    return [(t, bytes(data[vs:ve])) for t, vs, ve in walk(data)]


def _flatten(data, i, end, out, depth):
    if depth > MAX_DEPTH:
        raise TlvError("templates nested deeper than %d at %d" % (MAX_DEPTH, i))
    for t, vs, ve in walk(data, i, end):
        if is_constructed(t):
            _flatten(data, vs, ve, out, depth + 1)
        elif t in out:
            raise TlvError("redundant tag %X at %d" % (t, vs))
        else:
            out[t] = bytes(data[vs:ve])


def flatten(data, out=None):
    """{tag: value} of every primitive object in data, templates opened. A primitive tag seen
    twice (here or already in out) is a redundant data object: TlvError."""
    if out is None:
        out = {}
    _flatten(data, 0, len(data), out, 0)
    return out


def _find(data, i, end, tag, depth):
    if depth > MAX_DEPTH:
        raise TlvError("templates nested deeper than %d at %d" % (MAX_DEPTH, i))
    for t, vs, ve in walk(data, i, end):
        if t == tag:
            return bytes(data[vs:ve])
        if is_constructed(t):
            v = _find(data, vs, ve, tag, depth + 1)
            if v is not None:
                return v
    return None


def find(data, tag):
    """The value of the first object with that tag (depth first), or None."""
    return _find(data, 0, len(data), tag, 0)


def encode(tag, value):
    """The object's bytes: tag, length (short form or 81/82/83), value."""
    n = len(value)
    if n < 0x80:
        ln = bytes((n,))
    elif n <= 0xFF:
        ln = bytes((0x81, n))
    elif n <= 0xFFFF:
        ln = bytes((0x82, n >> 8, n & 0xFF))
    elif n <= 0xFFFFFF:
        ln = bytes((0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF))
    else:
        raise TlvError("value of %d bytes is too long" % n)
    if tag > 0xFFFF:
        t = bytes((tag >> 16, (tag >> 8) & 0xFF, tag & 0xFF))
    elif tag > 0xFF:
        t = bytes((tag >> 8, tag & 0xFF))
    else:
        t = bytes((tag,))
    return t + ln + value


def parse_dol(dol):
    """[(tag, length), ...] of a data object list: tags, each followed by a one-byte length."""
    out = []
    i, end = 0, len(dol)
    while i < end:
        if dol[i] == 0x00:
            raise TlvError("tag 00 in DOL at %d" % i)
        tag, i = _tag(dol, i, end)
        if i >= end:
            raise TlvError("missing length in DOL at %d" % i)
        out.append((tag, dol[i]))
        i += 1
    return out


def build_dol(dol_entries, values):
    """The DOL's data (Book 3 section 5.4) from [(tag, length), ...] and {tag: value}: a tag
    absent from values, or a template, gives zeros; a longer value is cut and a shorter one
    padded by format: n keeps its rightmost bytes / pads leading 00; cn keeps its leftmost /
    pads trailing FF; other formats keep the leftmost / pad trailing 00."""
    out = bytearray(sum(n for _, n in dol_entries))
    i = 0
    for tag, n in dol_entries:
        v = None if is_constructed(tag) else values.get(tag)
        if v:
            k = len(v)
            fmt = format_of(tag)
            if fmt == "n":
                if k >= n:
                    out[i:i + n] = v[k - n:]
                else:
                    out[i + n - k:i + n] = v
            else:
                if k >= n:
                    out[i:i + n] = v[:n]
                else:
                    out[i:i + k] = v
                    if fmt == "cn":
                        for j in range(i + k, i + n):
                            out[j] = 0xFF
        i += n
    return bytes(out)
