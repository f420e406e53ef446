"""BER-TLV as the test cards write and read it (EMV Book 3 Annex B): encoding of the cards'
answers and records, strict decoding of what a terminal sends (command templates, DOLs).

Tags are ints (0x9F02); values bytes. The card is the trusted side here, the decoder still
raises TlvError on anything that does not fit, so a wrong command gets a status word and not
a traceback.
"""


class TlvError(ValueError):
    """Malformed BER-TLV or DOL data."""


def tag_bytes(tag):
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def length_bytes(n):
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def tlv(tag, value):
    """One data object: tag, BER length, value."""
    value = bytes(value)
    return tag_bytes(tag) + length_bytes(len(value)) + value


def tlvs(*items):
    """Data objects in order, from (tag, value) pairs; a value None leaves its object out."""
    return b"".join(tlv(t, v) for t, v in items if v is not None)


def _tag(data, i):
    if i >= len(data):
        raise TlvError("tag runs past the end")
    start = i
    i += 1
    if data[start] & 0x1F == 0x1F:
        while True:
            if i >= len(data):
                raise TlvError("tag runs past the end")
            i += 1
            if not data[i - 1] & 0x80:
                break
    return int.from_bytes(data[start:i], "big"), i


def decode(data):
    """[(tag, value), ...] of one level of BER-TLV; 00/FF padding between objects skipped."""
    out = []
    i = 0
    data = bytes(data)
    while i < len(data):
        if data[i] in (0x00, 0xFF):
            i += 1
            continue
        tag, i = _tag(data, i)
        if i >= len(data):
            raise TlvError("length runs past the end")
        n = data[i]
        i += 1
        if n & 0x80:
            k = n & 0x7F
            if not 1 <= k <= 2 or i + k > len(data):
                raise TlvError("bad length encoding")
            n = int.from_bytes(data[i:i + k], "big")
            i += k
        if i + n > len(data):
            raise TlvError("value of %X runs past the end" % tag)
        out.append((tag, data[i:i + n]))
        i += n
    return out


def find(data, tag):
    """The value of the first object `tag` in one level of data, or None."""
    for t, v in decode(data):
        if t == tag:
            return v
    return None


def parse_dol(dol):
    """[(tag, length), ...] of a data object list (tags and lengths, no values)."""
    out = []
    i = 0
    dol = bytes(dol)
    while i < len(dol):
        tag, i = _tag(dol, i)
        if i >= len(dol):
            raise TlvError("DOL entry lacks its length")
        out.append((tag, dol[i]))
        i += 1
    return out


def dol_length(dol):
    return sum(n for _, n in parse_dol(dol))


def split_dol(dol, data):
    """{tag: value} of DOL-built data (the terminal's concatenated values, in DOL order)."""
    entries = parse_dol(dol)
    if sum(n for _, n in entries) != len(data):
        raise TlvError("DOL data is %d bytes, the DOL asks %d" % (len(data), dol_length(dol)))
    out = {}
    i = 0
    for tag, n in entries:
        out[tag] = bytes(data[i:i + n])
        i += n
    return out
