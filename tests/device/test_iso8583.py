# lib/iso8583 on the device: byte-exact encodings, the strict decoder's errors, the MAC
# placement and framing. Cross-checks against pyiso8583: tests/host/test_uplink_codec.py.
import asyncio
import hashlib

import iso8583
from iso8583 import BadMac, Iso8583Error, decode, encode, frame, read_frame, verify, with_mac

from expect import raises

ECHO = {7: "1121080000", 11: 42, 41: "PT000001", 53: bytes(range(12)), 70: "301"}
# 0800, primary bitmap 8220 0000 0080 0800: DE70 sets bit 1 and brings the
# secondary bitmap 0400 0000 0000 0000.
ECHO_RAW = (b"0800" + bytes.fromhex("8220000000800800") + bytes.fromhex("0400000000000000")
            + b"1121080000" + b"000042" + b"PT000001" + b"12" + bytes(range(12)) + b"301")


def test_encode_is_byte_exact():
    assert encode("0800", ECHO) == ECHO_RAW
    # Primary bitmap only: 0200 with 3, 4, 11, 52.
    raw = encode("0200", {3: "000000", 4: 1250, 11: "7", 52: b"\xaa" * 16})
    assert raw == (b"0200" + bytes.fromhex("3020000000001000") + b"000000" + b"000000001250"
                   + b"000007" + b"\xaa" * 16)


def test_round_trip_every_field():
    fields = {}
    for de, kind, size, prefix in iso8583.FIELDS:
        n = size if not prefix else min(size, 30)
        fields[de] = bytes((i * 7 + de) & 0xFF for i in range(n)) if kind == 2 else (
            "".join(str((i + de) % 10) for i in range(n)) if kind == 0 else
            "".join(chr(0x20 + (i + de) % 95) for i in range(n)))
    raw = encode("0210", fields)
    assert decode(raw) == ("0210", fields)
    # Lengths at their maximum: DE48 999, DE55 255.
    big = {48: "x" * 999, 55: bytes(255), 2: "4" * 19}
    assert decode(encode("0200", big))[1] == big


def test_numeric_values():
    # int or str, zero-filled to the fixed length; decode keeps the leading zeros.
    assert decode(encode("0200", {4: 5, 11: "000005"}))[1] == {4: "000000000005", 11: "000005"}
    for bad in ({4: -1}, {4: 10 ** 12}, {4: "12a"}, {3: "1234567"}, {2: "4" * 20}, {2: "41 1"}):
        with raises(Iso8583Error) as e:
            encode("0200", bad)
        assert e.value.field == list(bad)[0]


def test_encode_refuses():
    cases = (({1: "x"}, 1), ({5: "1"}, 5), ({129: b""}, 129), ({52: b"\x00" * 15}, 52),
             ({52: "00" * 16}, 52), ({41: "PT00001"}, 41), ({41: "PT00001\n"}, 41),
             ({48: "x" * 1000}, 48), ({53: bytes(49)}, 53), ({39: 0}, 39))
    for fields, de in cases:
        with raises(Iso8583Error) as e:
            encode("0200", fields)
        assert e.value.field == de, (fields, e.value.field)
    for mti in ("200", "02a0", 200):
        with raises(Iso8583Error) as e:
            encode(mti, {})
        assert e.value.field == 0


def test_decode_refuses_lies_and_truncation():
    def err(raw):
        with raises(Iso8583Error) as e:
            decode(raw)
        return e.value.field

    assert err(b"080") == 0
    assert err(b"08x0" + bytes(8)) == 0
    assert err(b"0800" + bytes(7)) == 1
    assert err(b"0800" + b"\x80" + bytes(7) + bytes(7)) == 1  # secondary bitmap cut short
    for cut in range(20, len(ECHO_RAW)):
        f = err(ECHO_RAW[:cut])
        assert f in (7, 11, 41, 53, 70), (cut, f)
    assert err(ECHO_RAW + b"0") == 70  # trailing byte
    # DE53 says 13 bytes: the decoder reads into DE70 and then runs short.
    lie = bytearray(ECHO_RAW)
    i = ECHO_RAW.index(b"12" + bytes(range(12)))
    lie[i:i + 2] = b"13"
    assert err(bytes(lie)) == 70
    lie[i:i + 2] = b"49"  # above DE53's maximum
    assert err(bytes(lie)) == 53
    lie[i:i + 2] = b"1x"
    assert err(bytes(lie)) == 53
    # A bit the protocol has no field for.
    odd = bytearray(ECHO_RAW)
    odd[4] |= 0x08  # DE5
    assert err(bytes(odd)) == 5
    # A non-digit in a numeric field, a control character in a text field.
    bad = ECHO_RAW.replace(b"000042", b"0000 2")
    assert err(bad) == 11
    assert err(ECHO_RAW.replace(b"PT000001", b"PT00000\x00")) == 41


def cmac_stand_in(data):
    # Any keyed function will do for placement tests; the real MAC is aescmac (test_aescmac).
    return hashlib.sha256(b"k" + bytes(data)).digest()


def test_mac_placement():
    raw = with_mac("0800", ECHO, cmac_stand_in)
    # Secondary bitmap: DE128, the last bit of the secondary bitmap.
    assert raw[:-8] == iso8583.mac_input(ECHO_RAW)
    assert raw[19] & 0x01 and raw[-8:] == cmac_stand_in(raw[:-8])[:8]
    mti, fields = verify(raw, cmac_stand_in)
    assert mti == "0800" and fields[128] == raw[-8:] and 64 not in fields
    # Primary only: DE64.
    raw = with_mac("0810", {11: 1, 39: "00"}, cmac_stand_in)
    assert raw[11] & 0x01 and not raw[4] & 0x80 and len(raw) == 4 + 8 + 6 + 2 + 8
    assert verify(raw, cmac_stand_in)[1][64] == raw[-8:]
    with raises(Iso8583Error) as e:
        with_mac("0810", {64: bytes(8)}, cmac_stand_in)
    assert e.value.field == 64


def test_frames_into_a_reused_buffer():
    # The uplink's send buffer: a frame written over a longer one (a secondary bitmap, DE48 at
    # its longest) is the same bytes as one made from scratch, and so is the one after it.
    buf = bytearray(iso8583.MAX_MESSAGE + 2)
    for mti, fields in (("0200", {48: "y" * 999, 55: bytes(range(255)), 102: "ACC-1", 2: "4" * 19}),
                        ("0800", ECHO), ("0810", {11: 1, 39: "00"}), ("0800", ECHO)):
        n = iso8583.encode_frame(buf, mti, fields, cmac_stand_in)
        assert bytes(buf[:n]) == frame(with_mac(mti, fields, cmac_stand_in))
        assert bytes(buf[2:n - 8]) == iso8583.mac_input(encode(mti, fields))
    assert iso8583.encode_into(buf, 5, "0800", ECHO) == 5 + len(ECHO_RAW) and buf[5:5 + len(ECHO_RAW)] == ECHO_RAW
    # A buffer too small: a typed error, not an IndexError.
    with raises(Iso8583Error) as e:
        iso8583.encode_frame(bytearray(40), "0800", ECHO, cmac_stand_in)
    assert e.value.field == 41  # 2 + 4 + 16 + DE7 10 + DE11 6: no room for its 8
    with raises(Iso8583Error) as e:
        iso8583.encode_frame(bytearray(len(ECHO_RAW) + 2), "0800", ECHO, cmac_stand_in)
    assert e.value.field == 128


def test_verify_refuses():
    raw = with_mac("0800", ECHO, cmac_stand_in)
    for i in (0, 5, 20, len(raw) - 9, len(raw) - 1):
        bad = bytearray(raw)
        bad[i] ^= 0x01 if i else 0x02  # '0' -> '2': still a digit
        with raises(Iso8583Error):
            verify(bytes(bad), cmac_stand_in)
    with raises(BadMac) as e:
        verify(encode("0800", ECHO), cmac_stand_in)
    assert e.value.field == 128
    with raises(BadMac):
        verify(raw, lambda d: bytes(8))
    # The same checks on a message already decoded (the uplink's receive path).
    iso8583.check_mac(raw, decode(raw)[1], cmac_stand_in)
    with raises(BadMac):
        iso8583.check_mac(raw, decode(raw)[1], lambda d: bytes(8))
    with raises(BadMac):
        iso8583.check_mac(ECHO_RAW, decode(ECHO_RAW)[1], cmac_stand_in)


class Stream:
    def __init__(self, data):
        self.data = data

    async def readexactly(self, n):
        if len(self.data) < n:
            raise EOFError
        out, self.data = self.data[:n], self.data[n:]
        return out


def test_framing():
    assert frame(b"abc") == b"\x00\x03abc"
    s = Stream(frame(ECHO_RAW) + frame(b"x" * 4096))
    assert asyncio.run(read_frame(s)) == ECHO_RAW
    assert asyncio.run(read_frame(s)) == b"x" * 4096
    for head in (b"\x10\x01", b"\x00\x00", b"\xff\xff"):
        with raises(Iso8583Error):
            asyncio.run(read_frame(Stream(head + b"x" * 10)))
    with raises(Iso8583Error):
        asyncio.run(read_frame(Stream(b"\x00\x10" + b"x" * 16), 15))
    with raises(EOFError):
        asyncio.run(read_frame(Stream(b"\x00\x10abc")))
    for n in (0, 4097):
        with raises(Iso8583Error):
            frame(b"x" * n)
