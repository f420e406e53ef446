"""ISO 8583 as the handheld and the bank speak it (tools/bank/PROTOCOL.md), and its framing.

    encode(mti, fields) -> bytes          fields: {de: value}
    decode(data) -> (mti, fields)         strict: any lie or excess is an Iso8583Error
    with_mac(mti, fields, mac_fn) -> bytes   the MAC (DE64, or DE128 with a secondary bitmap)
    verify(message, mac_fn) -> (mti, fields)  raises BadMac unless the MAC is there and right
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
    (90, _N, 42, 0),  # original data elements
    (102, _T, 28, 2),  # account 1
    (103, _T, 28, 2),  # account 2
    (128, _B, 8, 0),  # MAC (with a secondary bitmap)
)

MAC_LENGTH = const(8)
MAX_FRAME = const(4096)


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


def _check(de, kind, data):
    # data: bytes of a numeric or text field.
    lo, hi = (0x30, 0x39) if kind == _N else (0x20, 0x7E)
    for c in data:
        if c < lo or c > hi:
            raise Iso8583Error("not a digit" if kind == _N else "not printable ASCII", de)


def _digits(n, width):
    s = str(n)
    return ("0" * (width - len(s)) + s).encode()


def _value(de, kind, size, prefix, v):
    """The field's bytes, checked (its length prefix aside)."""
    if kind == _B:
        if not isinstance(v, (bytes, bytearray, memoryview)):
            raise Iso8583Error("binary field needs bytes", de)
        data = bytes(v)
    else:
        if kind == _N and isinstance(v, int):
            if v < 0:
                raise Iso8583Error("negative", de)
            v = str(v)
        if not isinstance(v, str):
            raise Iso8583Error("needs str", de)
        data = v.encode()
        _check(de, kind, data)
        if kind == _N and not prefix and len(data) < size:
            data = _digits(v, size)
    if len(data) > size or not prefix and len(data) != size:
        raise Iso8583Error("length %d, %s %d" % (len(data), "max" if prefix else "fixed", size), de)
    return data


def encode(mti, fields):
    """The message: MTI, bitmap(s), the fields in order."""
    if not (isinstance(mti, str) and len(mti) == 4):
        raise Iso8583Error("MTI is not 4 digits", 0)
    m = mti.encode()
    _check(0, _N, m)
    bitmap = bytearray(16)
    parts = [m, bitmap]
    for f in FIELDS:
        de = f[0]
        v = fields.get(de)
        if v is None:
            continue
        data = _value(*f, v)
        if f[3]:
            parts.append(_digits(len(data), f[3]))
        parts.append(data)
        bitmap[(de - 1) >> 3] |= 0x80 >> ((de - 1) & 7)
    for de in fields:
        _spec(de)  # a field the protocol does not have
    if any(bitmap[8:]):
        bitmap[0] |= 0x80
    else:
        parts[1] = bitmap[:8]
    return b"".join(parts)


def decode(data):
    """(mti, {de: value}) of one message (no frame prefix). Nothing is read beyond the lengths
    the table allows, and every byte of data must belong to a field."""
    data = memoryview(data)
    end = len(data)
    if end < 12:
        raise Iso8583Error("message too short for MTI and bitmap", 0 if end < 4 else 1)
    mti = bytes(data[:4])
    _check(0, _N, mti)
    bitmap = bytes(data[4:12])
    pos = 12
    if bitmap[0] & 0x80:
        if end < 20:
            raise Iso8583Error("truncated secondary bitmap", 1)
        bitmap += bytes(data[12:20])
        pos = 20
    fields = {}
    for de in range(2, 8 * len(bitmap) + 1):
        if not bitmap[(de - 1) >> 3] & (0x80 >> ((de - 1) & 7)):
            continue
        _, kind, size, prefix = _spec(de)
        n = size
        if prefix:
            if pos + prefix > end:
                raise Iso8583Error("truncated length", de)
            ln = bytes(data[pos:pos + prefix])
            _check(de, _N, ln)
            n = int(ln)
            pos += prefix
            if n > size:
                raise Iso8583Error("length %d, max %d" % (n, size), de)
        if pos + n > end:
            raise Iso8583Error("truncated: %d bytes, %d left" % (n, end - pos), de)
        v = bytes(data[pos:pos + n])
        pos += n
        if kind != _B:
            _check(de, kind, v)
            v = v.decode()
        fields[de] = v
    if pos != end:
        raise Iso8583Error("%d bytes after the last field" % (end - pos), max(fields) if fields else 1)
    return mti.decode(), fields


def _mac_de(message):
    return 128 if message[4] & 0x80 else 64


def mac_input(message):
    """message, encoded without its MAC, with the MAC's bitmap bit set: what the MAC covers
    (PROTOCOL.md: from the MTI to the byte before the MAC, the MAC's bit set). The MAC is
    the message's last field, so the MAC'd message is this plus the MAC."""
    decode(message)  # a well-formed message
    b = bytearray(message)
    de = _mac_de(b)
    b[4 + ((de - 1) >> 3)] |= 0x80 >> ((de - 1) & 7)
    return bytes(b)


def with_mac(mti, fields, mac_fn):
    """The message with its MAC: DE64, or DE128 when a field above 64 brings a secondary
    bitmap (fields must hold neither)."""
    if 64 in fields or 128 in fields:
        raise Iso8583Error("MAC given as a field", 128 if 128 in fields else 64)
    msg = mac_input(encode(mti, fields))
    return msg + bytes(mac_fn(msg))[:MAC_LENGTH]


def verify(message, mac_fn):
    """(mti, fields) of a message whose MAC is right; BadMac if it has none or a wrong one
    (compared in constant time), Iso8583Error if it is malformed."""
    mti, fields = decode(message)
    de = _mac_de(message)
    mac = fields.get(de)
    if mac is None:
        raise BadMac("no MAC", de)
    want = bytes(mac_fn(memoryview(message)[:-MAC_LENGTH]))
    diff = 0
    for i in range(MAC_LENGTH):
        diff |= want[i] ^ mac[i]
    if diff:
        raise BadMac("wrong MAC", de)
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
