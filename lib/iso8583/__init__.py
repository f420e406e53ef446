"""ISO 8583 as the handheld and the bank speak it (tools/bank/PROTOCOL.md), and its framing.

    encode(mti, fields) -> bytes          fields: {de: value}
    encode_into(buf, pos, mti, fields) -> end   the same, written into a bytearray
    decode(data) -> (mti, fields)         strict: any lie or excess is an Iso8583Error
    with_mac(mti, fields, mac_fn) -> bytes   the MAC (DE64, or DE128 with a secondary bitmap)
    encode_frame(buf, mti, fields, mac_fn) -> n   length prefix, message and MAC into buf[:n]
    verify(message, mac_fn) -> (mti, fields)  raises BadMac unless the MAC is there and right
    check_mac(message, fields, mac_fn)    the same for a message already decoded
    mac_input(message_without_mac) -> bytes  what the MAC of a message is computed over
    frame(msg) -> bytes; await read_frame(stream[, max_len])   2-byte big-endian length prefix

Values: numeric fields (n) are str of ASCII digits; encode also takes an int, and zero-fills
either to a fixed field's length (decode returns the digits as str, leading zeros kept: DE3
"000000" is not DE3 0). Text fields (an, ans, z) are str of printable ASCII, fixed ones of
exactly their length (DE43 comes padded by its caller). Binary fields (b) are bytes.
mac_fn(data) returns the MAC of data (AES-CMAC under the DUKPT MAC key); its first 8 bytes
are the field. The MTI is a str of 4 digits.

Errors: Iso8583Error(message, field); field is the data element at fault, 0 for the MTI, 1 for
a bitmap. Messages name fields and lengths, never values (DE52/DE55 are secrets or close).
"""

from micropython import const

# Field kinds.
_N = const(0)  # numeric: ASCII digits
_T = const(1)  # text: printable ASCII (an, ans, z)
_B = const(2)  # binary, lengths count bytes

# (data element, kind, max length, length-prefix digits (0: fixed, of exactly max length)).
# The same table as tools/bank/spec.py; tests/host/test_uplink_codec.py checks them together.
FIELDS = (
    (2, _N, 19, 2),  # PAN
    (3, _N, 6, 0),  # processing code
    (4, _N, 12, 0),  # amount, minor units
    (7, _N, 10, 0),  # transmission date and time MMDDhhmmss UTC
    (11, _N, 6, 0),  # STAN
    (12, _N, 6, 0),  # local time hhmmss
    (13, _N, 4, 0),  # local date MMDD
    (14, _N, 4, 0),  # expiration date YYMM
    (22, _N, 3, 0),  # POS entry mode
    (23, _N, 3, 0),  # card sequence number
    (35, _T, 37, 2),  # track 2 equivalent data
    (37, _T, 12, 0),  # retrieval reference number
    (38, _T, 6, 0),  # authorization code
    (39, _T, 2, 0),  # response code
    (41, _T, 8, 0),  # terminal id: the device serial
    (42, _T, 15, 0),  # card acceptor id
    (43, _T, 40, 0),  # card acceptor name
    (48, _T, 999, 3),  # additional data
    (49, _N, 3, 0),  # currency code
    (52, _B, 16, 0),  # PIN block
    (53, _B, 48, 2),  # security control information: the KSN
    (54, _T, 120, 3),  # additional amounts
    (55, _B, 255, 3),  # ICC data
    (64, _B, 8, 0),  # MAC (primary bitmap only)
    (70, _N, 3, 0),  # network management code
    (72, _B, 999, 3),  # data record: an update package's bytes, from the bank only
    (90, _N, 42, 0),  # original data elements
    (102, _T, 28, 2),  # account 1
    (103, _T, 28, 2),  # account 2
    (128, _B, 8, 0),  # MAC (with a secondary bitmap)
)

MAC_LENGTH = const(8)
MAX_FRAME = const(4096)
# The longest message the device sends (MTI, both bitmaps, every field at its longest but DE72,
# which only the bank sends): a buffer of this size holds any message encode_into() writes for
# it, and the Uplink keeps one for its life.
MAX_MESSAGE = 4 + 16 + sum(f[2] + f[3] for f in FIELDS if f[0] != 72)


class Iso8583Error(ValueError):
    def __init__(self, message, field):
        super().__init__("DE%d: %s" % (field, message))
        self.field = field


class BadMac(Iso8583Error):
    """The message has no MAC, or a wrong one."""


def _spec(de):
    for f in FIELDS:
        if f[0] == de:
            return f
    raise Iso8583Error("not in the protocol", de)


def _check(de, kind, data, pos=0, end=None):
    # data[pos:end]: bytes of a numeric or text field, read in place.
    lo, hi = (0x30, 0x39) if kind == _N else (0x20, 0x7E)
    for i in range(pos, len(data) if end is None else end):
        c = data[i]
        if c < lo or c > hi:
            raise Iso8583Error("not a digit" if kind == _N else "not printable ASCII", de)


def _width(n):
    # The digits of n >= 0.
    w = 1
    while n >= 10:
        n //= 10
        w += 1
    return w


def _put_digits(buf, pos, n, width):
    # n >= 0 as `width` ASCII digits, zero-filled, at buf[pos:] (n has at most width digits).
    for i in range(pos + width - 1, pos - 1, -1):
        buf[i] = 0x30 + n % 10
        n //= 10


def _put(buf, pos, de, kind, size, prefix, v):
    """The field (its length prefix first) written, checked, at buf[pos:]; the position after it.
    Straight from the value into buf: no bytes of the field on the way."""
    if kind == _B:
        if not isinstance(v, (bytes, bytearray, memoryview)):
            raise Iso8583Error("binary field needs bytes", de)
        n = len(v)
    elif kind == _N and isinstance(v, int):
        if v < 0:
            raise Iso8583Error("negative", de)
        n = _width(v)
    elif isinstance(v, str):
        n = len(v)
    else:
        raise Iso8583Error("needs str", de)
    start = pos + prefix
    if start + (min(n, size) if prefix else size) > len(buf):
        raise Iso8583Error("message over %d bytes" % len(buf), de)
    if kind == _B:
        if n <= size:
            buf[start:start + n] = v
    elif isinstance(v, str):
        lo, hi = (0x30, 0x39) if kind == _N else (0x20, 0x7E)
        for i in range(n):  # all checked, even past size: a wrong character is the first error
            c = ord(v[i])
            if c < lo or c > hi:
                raise Iso8583Error("not a digit" if kind == _N else "not printable ASCII", de)
            if i < size:
                buf[start + i] = c
    fill = size - n if kind == _N and not prefix and n < size else 0  # a fixed numeric: zero-filled
    if n > size or not prefix and n + fill != size:
        raise Iso8583Error("length %d, %s %d" % (n, "max" if prefix else "fixed", size), de)
    if fill:
        if isinstance(v, str):
            for i in range(n - 1, -1, -1):  # the digits moved right past the zeros
                buf[start + fill + i] = buf[start + i]
            for i in range(fill):
                buf[start + i] = 0x30
        else:
            _put_digits(buf, start, v, size)
    elif kind == _N and isinstance(v, int):
        _put_digits(buf, start, v, n)
    if prefix:
        _put_digits(buf, pos, n, prefix)
    return start + n + fill


def encode_into(buf, pos, mti, fields):
    """The message (MTI, bitmap(s), the fields in order) written into the bytearray buf from
    pos; the position after it. MAX_MESSAGE bytes hold any message."""
    if not (isinstance(mti, str) and len(mti) == 4):
        raise Iso8583Error("MTI is not 4 digits", 0)
    if pos + 12 > len(buf):
        raise Iso8583Error("message over %d bytes" % len(buf), 0)
    for i in range(4):
        c = ord(mti[i])
        if c < 0x30 or c > 0x39:
            raise Iso8583Error("not a digit", 0)
        buf[pos + i] = c
    wide = False  # a field above 64: a secondary bitmap
    for de in fields:
        if isinstance(de, int) and de > 64 and fields[de] is not None:
            wide = True
    bitmap = pos + 4
    at = bitmap + (16 if wide else 8)
    if at > len(buf):
        raise Iso8583Error("message over %d bytes" % len(buf), 1)
    for i in range(bitmap, at):
        buf[i] = 0
    for f in FIELDS:
        de = f[0]
        v = fields.get(de)
        if v is None:
            continue
        at = _put(buf, at, de, f[1], f[2], f[3], v)
        buf[bitmap + ((de - 1) >> 3)] |= 0x80 >> ((de - 1) & 7)
    for de in fields:
        _spec(de)  # a field the protocol does not have
    if wide:
        buf[bitmap] |= 0x80
    return at


def encode(mti, fields):
    """The message: MTI, bitmap(s), the fields in order."""
    buf = bytearray(MAX_MESSAGE)
    return bytes(memoryview(buf)[:encode_into(buf, 0, mti, fields)])


def _digits_at(de, data, pos, n):
    # The number written in the n ASCII digits at data[pos:].
    v = 0
    for i in range(pos, pos + n):
        c = data[i]
        if c < 0x30 or c > 0x39:
            raise Iso8583Error("not a digit", de)
        v = v * 10 + c - 0x30
    return v


def decode(data):
    """(mti, {de: value}) of one message (no frame prefix). Nothing is read beyond the lengths
    the table allows, and every byte of data must belong to a field. Read in place: the
    values are the only copies."""
    data = memoryview(data)
    end = len(data)
    if end < 12:
        raise Iso8583Error("message too short for MTI and bitmap", 0 if end < 4 else 1)
    _check(0, _N, data, 0, 4)
    pos = 12
    if data[4] & 0x80:
        if end < 20:
            raise Iso8583Error("truncated secondary bitmap", 1)
        pos = 20
    fields = {}
    for de in range(2, 8 * (pos - 4) + 1):
        if not data[4 + ((de - 1) >> 3)] & (0x80 >> ((de - 1) & 7)):
            continue
        _, kind, size, prefix = _spec(de)
        n = size
        if prefix:
            if pos + prefix > end:
                raise Iso8583Error("truncated length", de)
            n = _digits_at(de, data, pos, prefix)
            pos += prefix
            if n > size:
                raise Iso8583Error("length %d, max %d" % (n, size), de)
        if pos + n > end:
            raise Iso8583Error("truncated: %d bytes, %d left" % (n, end - pos), de)
        if kind == _B:
            v = bytes(data[pos:pos + n])
        else:
            _check(de, kind, data, pos, pos + n)
            v = str(data[pos:pos + n], "ascii")
        pos += n
        fields[de] = v
    if pos != end:
        raise Iso8583Error("%d bytes after the last field" % (end - pos), max(fields) if fields else 1)
    return str(data[:4], "ascii"), fields


def _mac_de(message, pos=0):
    return 128 if message[pos + 4] & 0x80 else 64


def _set_mac_bit(buf, pos):
    # The MAC's bitmap bit set in the message at buf[pos:] (PROTOCOL.md: the MAC covers it).
    de = _mac_de(buf, pos)
    buf[pos + 4 + ((de - 1) >> 3)] |= 0x80 >> ((de - 1) & 7)


def mac_input(message):
    """message, encoded without its MAC, with the MAC's bitmap bit set: what the MAC covers
    (PROTOCOL.md: from the MTI to the byte before the MAC, the MAC's bit set). The MAC is
    the message's last field, so the MAC'd message is this plus the MAC."""
    decode(message)  # a well-formed message
    b = bytearray(message)
    _set_mac_bit(b, 0)
    return bytes(b)


def encode_frame(buf, mti, fields, mac_fn):
    """The framed message with its MAC written into the bytearray buf: the 2-byte big-endian
    length, then the message, its MAC (DE64, or DE128 when a field above 64 brings a
    secondary bitmap; fields must hold neither) computed over buf in place. Returns the
    frame's length, prefix included. MAX_MESSAGE + 2 bytes hold any frame."""
    if 64 in fields or 128 in fields:
        raise Iso8583Error("MAC given as a field", 128 if 128 in fields else 64)
    end = encode_into(buf, 2, mti, fields)
    if end + MAC_LENGTH > len(buf):
        raise Iso8583Error("message over %d bytes" % len(buf), _mac_de(buf, 2))
    _set_mac_bit(buf, 2)
    mac = mac_fn(memoryview(buf)[2:end])
    for i in range(MAC_LENGTH):
        buf[end + i] = mac[i]
    end += MAC_LENGTH
    buf[0], buf[1] = (end - 2) >> 8, (end - 2) & 0xFF
    return end


def with_mac(mti, fields, mac_fn):
    """The message with its MAC: DE64, or DE128 when a field above 64 brings a secondary
    bitmap (fields must hold neither)."""
    buf = bytearray(MAX_MESSAGE + 2)
    return bytes(memoryview(buf)[2:encode_frame(buf, mti, fields, mac_fn)])


def check_mac(message, fields, mac_fn):
    """BadMac unless message (decoded: its fields) ends with its right MAC (compared in
    constant time)."""
    de = _mac_de(message)
    mac = fields.get(de)
    if mac is None:
        raise BadMac("no MAC", de)
    want = mac_fn(memoryview(message)[:-MAC_LENGTH])
    diff = 0
    for i in range(MAC_LENGTH):
        diff |= want[i] ^ mac[i]
    if diff:
        raise BadMac("wrong MAC", de)


def verify(message, mac_fn):
    """(mti, fields) of a message whose MAC is right; BadMac if it has none or a wrong one
    (compared in constant time), Iso8583Error if it is malformed."""
    mti, fields = decode(message)
    check_mac(message, fields, mac_fn)
    return mti, fields


def frame(msg):
    """msg with its 2-byte big-endian length."""
    n = len(msg)
    if not 0 < n <= MAX_FRAME:
        raise Iso8583Error("frame of %d bytes" % n, 0)
    return bytes((n >> 8, n & 0xFF)) + msg


async def read_frame(stream, max_len=MAX_FRAME):
    """The next message from an asyncio stream (readexactly); Iso8583Error on an empty or
    over-long frame (the stream is then out of step: close it). The stream's own error
    (EOFError on MicroPython) when it closes mid-frame."""
    head = await stream.readexactly(2)
    n = head[0] << 8 | head[1]
    if not 0 < n <= max_len:
        raise Iso8583Error("frame of %d bytes, max %d" % (n, max_len), 0)
    return await stream.readexactly(n)
