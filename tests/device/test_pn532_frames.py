# The PN532 driver's frame layer (UM0701-02 6.2.1), on the device: building and checking frames.
# The driver's behaviour on a line is tested against the rig's PN532 model (tests/host/test_pn532.py).
from drivers import pn532 as p

from expect import raises


def test_normal_frame_bytes():
    # GetFirmwareVersion, the frame every PN532 library sends first.
    assert p.frame_bytes(0x02) == bytes.fromhex("0000ff02fed4022a00")
    # SAMConfiguration normal mode, timeout 1 s, IRQ: LEN 5, LCS FB, DCS 0C.
    assert p.frame_bytes(0x14, b"\x01\x14\x01") == bytes.fromhex("0000ff05fbd4140114010200")
    f = p.frame_bytes(0x14, b"\x01\x14\x01")
    assert f[:5] == b"\x00\x00\xff\x05\xfb" and (f[3] + f[4]) & 0xFF == 0
    assert sum(f[5:-1]) & 0xFF == 0 and f[-1] == 0  # DCS, postamble
    # The longest normal frame: LEN 255 (TFI included), LCS 01.
    f = p.frame(b"\xd4\x40" + bytes(253))
    assert len(f) == 255 + 7 and f[3] == 0xFF and f[4] == 0x01


def test_extended_frame_bytes():
    data = b"\xd4\x40\x01" + bytes(range(256)) + b"\x00\x01\x02"  # 262 bytes
    f = p.frame(data)
    assert f[:5] == b"\x00\x00\xff\xff\xff"
    assert (f[5], f[6]) == (0x01, 0x06) and (f[5] + f[6] + f[7]) & 0xFF == 0  # LENM LENL LCS
    assert f[8:8 + 262] == data and (sum(data) + f[8 + 262]) & 0xFF == 0 and f[-1] == 0
    assert len(f) == 262 + 10
    with raises(ValueError):
        p.frame(bytes(266))
    with raises(ValueError):
        p.frame(b"")


def test_parse_information_frames():
    a = p.answer_frame(0x02, b"\x32\x01\x06\x07")
    assert a == bytes.fromhex("0000ff06fad50332010607e800")
    kind, value, nxt, skipped, damaged = p.parse(a)
    assert (kind, value, nxt, skipped, damaged) == (p.DATA, b"\xd5\x03\x32\x01\x06\x07", len(a), 0, 0)
    # Extended, round trip through the builder; 264 bytes of PD is the PN532's most.
    big = p.frame(b"\xd5\x41\x00" + bytes(i & 0xFF for i in range(262)))
    kind, value, nxt, _, _ = p.parse(big)
    assert kind == p.DATA and len(value) == 265 and value[3:] == bytes(i & 0xFF for i in range(262))
    assert nxt == len(big)
    # Two frames back to back: the second from where the first ended; no postamble needed.
    two = p.ACK + a[:-1] + p.ACK
    kind, _, nxt, _, _ = p.parse(two)
    assert kind == p.FRAME_ACK and nxt == 6
    kind, value, nxt, _, _ = p.parse(two, nxt)
    assert kind == p.DATA and value[1] == 0x03
    assert p.parse(two, nxt)[0] == p.FRAME_ACK


def test_parse_ack_nack_and_error_frame():
    assert p.parse(p.ACK)[:3] == (p.FRAME_ACK, None, 6)
    assert p.parse(p.NACK)[:3] == (p.FRAME_NACK, None, 6)
    assert p.ERROR_FRAME == bytes.fromhex("0000ff01ff7f8100")
    assert p.parse(p.ERROR_FRAME)[:3] == (p.FRAME_ERROR, None, 8)
    # The preamble and postamble may be longer (6.2.1.6), or the preamble absent.
    assert p.parse(b"\x00\x00\x00\x00\xff\x00\xff\x00\x00")[0] == p.FRAME_ACK
    assert p.parse(b"\x00\xff\x00\xff")[0] == p.FRAME_ACK


def test_checksums_are_checked():
    a = bytearray(p.answer_frame(0x4A, b"\x00"))
    a[-2] ^= 0x01  # DCS
    assert p.parse(a)[0] == p.BAD
    a = bytearray(p.answer_frame(0x4A, b"\x00"))
    a[6] ^= 0x10  # a data byte: DCS no longer fits
    assert p.parse(a)[0] == p.BAD
    # A damaged LCS: the start is not trusted (it could be noise); passed over and counted.
    a = bytearray(p.answer_frame(0x02, b"\x32\x01\x06\x07"))
    a[4] ^= 0x01
    kind, _, _, _, damaged = p.parse(a)
    assert kind == p.NOTHING and damaged == 1
    # Extended frame with a damaged LENM/LENL/LCS: likewise.
    big = bytearray(p.frame(b"\xd5\x41\x00" + bytes(262)))
    big[6] ^= 0x01
    kind, _, _, _, damaged = p.parse(big)
    assert kind in (p.NOTHING, p.NEED) and damaged >= 1


def test_garbage_before_the_start_is_skipped():
    a = p.answer_frame(0x02, b"\x32\x01\x06\x07")
    kind, value, nxt, skipped, damaged = p.parse(b"\xff\x55\x12" + a)
    assert (kind, value[1], nxt, skipped, damaged) == (p.DATA, 0x03, 3 + len(a), 3, 0)
    # Noise holding a false start code (00 FF with a length whose LCS does not fit).
    kind, value, _, skipped, damaged = p.parse(b"\x00\xff\x05\x02\x99" + a)
    assert kind == p.DATA and value[1] == 0x03 and damaged == 1
    # A lone FF then 00: not a start; and a trailing 00 kept for the bytes still to come.
    kind, _, nxt, skipped, _ = p.parse(b"\xff\x00\x12\x00")
    assert kind == p.NOTHING and nxt == 3 and skipped == 2
    assert p.parse(b"")[0] == p.NOTHING


def test_incomplete_frames_say_how_much_they_need():
    a = p.answer_frame(0x02, b"\x32\x01\x06\x07")
    for cut in range(3, len(a) - 1):
        kind, need, at, _, _ = p.parse(a[:cut])
        assert kind == p.NEED and at == 1, (cut, kind)
        if cut >= 5:
            assert need == len(a) - 1  # from the start code to the postamble
    big = p.frame(b"\xd5\x41\x00" + bytes(262))
    kind, need, at, _, _ = p.parse(big[:40])
    assert (kind, need, at) == (p.NEED, len(big) - 1, 1)
    # With garbage first, "at" is where the frame begins.
    kind, need, at, skipped, _ = p.parse(b"\x01\x02" + big[:40])
    assert (kind, at, skipped) == (p.NEED, 3, 2)


def test_status_codes_are_typed_errors():
    expected = {0x01: p.NfcTimeout, 0x02: p.NfcProtocolError, 0x03: p.NfcProtocolError, 0x0B: p.NfcProtocolError,
                0x13: p.NfcProtocolError, 0x10: p.NfcParameterError, 0x14: p.NfcAuthError, 0x0D: p.NfcHardwareError,
                0x25: p.WrongContext, 0x26: p.WrongContext, 0x27: p.WrongContext, 0x29: p.Released,
                0x2A: p.CardRemoved, 0x2B: p.CardRemoved, 0x2D: p.NfcHardwareError, 0x3E: p.NfcProtocolError}
    for code, cls in expected.items():
        e = p.error(code)
        assert type(e) is cls, (code, type(e).__name__)
        assert e.code == code and isinstance(e, p.NfcError)
        assert ("0x%02X" % code) in str(e)
    assert issubclass(p.NfcApplicationError, p.NfcProtocolError)


def test_target_data_of_in_list_passive_target():
    nfc = p.PN532(None)
    # An ISO 14443-4 card: Tg 1, SENS_RES 00 04, SEL_RES 20, a 4-byte UID, and its ATS: TL 8,
    # T0 78 (TA, TB, TC present, FSCI 8), TA TB TC, then the historical bytes C1 05 31.
    ans = bytes.fromhex("01" "01" "0004" "20" "04" "08123456" "08" "78807002" "c10531")
    (t,) = nfc._targets(ans)
    assert t.uid == bytes.fromhex("08123456") and t.sens_res == b"\x00\x04" and t.sel_res == 0x20
    assert isinstance(t, p.IsoDep) and t.iso_dep and t.tg == 1
    assert t.ats == bytes.fromhex("0878807002c10531") and t.historical_bytes == b"\xc1\x05\x31"
    # A 7-byte UID tag that is not ISO 14443-4 (MIFARE Ultralight: SENS_RES 00 44, SEL_RES 00).
    ans = bytes.fromhex("01" "01" "0044" "00" "07" "04a1b2c3d4e5f6")
    (t,) = nfc._targets(ans)
    assert type(t) is p.Target and not t.iso_dep and t.uid.hex() == "04a1b2c3d4e5f6" and t.ats == b""
    assert nfc._targets(b"\x00") == []
    with raises(p.NfcProtocolError):
        nfc._targets(bytes.fromhex("01" "01" "0044" "00" "07" "04a1b2"))  # cut short
