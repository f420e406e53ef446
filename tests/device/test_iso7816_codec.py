# lib/iso7816 without a line, on the device: the T=1 block codec (LRC, CRC), the Fi/Di tables,
# the inverse convention, ATR length, APDU cases, PPS. The protocols on a line are tested
# against the rig's chip-card model (tests/host/test_iso7816.py).
import iso7816
from iso7816 import atr as A
from iso7816 import pps
from iso7816 import t0
from iso7816 import t1

from expect import raises


def test_lrc_and_crc_vectors():
    assert t1.lrc(b"") == 0
    # The CRC: CRC-16 reflected 0x8408, initial FFFF, no final XOR (CRC-16/MCRF4XX): its check
    # value over "123456789" is 6F91.
    assert t1.crc16(b"123456789") == 0x6F91
    assert t1.crc16(b"") == 0xFFFF
    # S(IFS request) IFSD FE with LRC (the block every reader sends after the ATR): 00 C1 01 FE 3E.
    assert t1.block(0, 0xC1, b"\xfe") == bytes.fromhex("00c101fe3e")
    # An I-block (N(S)=0) with a SELECT, LRC.
    b = t1.block(0, 0x00, bytes.fromhex("00a4040000"))
    assert b[:3] == b"\x00\x00\x05" and t1.lrc(b) == 0
    # CRC blocks: two EDC bytes, high first, that check.
    b = t1.block(0, 0xC1, b"\xfe", crc=True)
    v = t1.crc16(b[:-2])
    assert len(b) == 6 and b[-2:] == bytes((v >> 8, v & 0xFF))
    assert t1.check(b, crc=True) == (0, 0xC1, b"\xfe")


def test_block_check_errors():
    good = t1.block(0, 0x40, b"\x01\x02")
    assert t1.check(good) == (0, 0x40, b"\x01\x02")
    bad = bytearray(good)
    bad[3] ^= 1
    with raises(t1.BadBlock) as e:
        t1.check(bytes(bad))
    assert e.value.edc
    with raises(t1.BadBlock):
        t1.check(good[:-1])  # LEN does not match
    assert isinstance(t1.BadBlock("x"), iso7816.ProtocolError)


def test_fi_di_tables():
    assert [A.FI_TABLE[i] for i in range(16)] == [372, 372, 558, 744, 1116, 1488, 1860, 0, 0, 512, 768,
                                                   1024, 1536, 2048, 0, 0]
    assert [A.DI_TABLE[i] for i in range(16)] == [0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0]
    assert A.f_of(0x9) == 512 and A.d_of(0x5) == 16
    with raises(iso7816.AtrError):
        A.f_of(7)
    with raises(iso7816.AtrError):
        A.d_of(0)
    # TA1 96 (F 512, D 32) at 4 MHz: 250000 baud.
    assert 4_000_000 * A.d_of(6) // A.f_of(9) == 250_000


def test_inverse_convention():
    assert A.inverse_byte(0x03) == 0x3F and A.inverse_byte(0x3F) == 0x03
    for b in (0, 0x55, 0xA5, 0xFF, 0x81):
        assert A.inverse_byte(A.inverse_byte(b)) == b
    assert A.decode_inverse(b"\x03") == b"\x3f"


def test_expected_length():
    visa = bytes.fromhex("3b6800000073c84012009000")
    for n in range(2, len(visa) + 1):
        need, complete = A.expected_length(visa[:n])
        assert complete and need == len(visa)
    jcop = bytes.fromhex("3be900008131fe454a434f5034315632 32a7".replace(" ", ""))
    assert A.expected_length(jcop[:4]) == (5, False)
    assert A.expected_length(jcop) == (len(jcop), True)


def test_apdu_cases():
    assert t0.case_of(bytes.fromhex("00700000")) == (1, 0, 0)
    assert t0.case_of(bytes.fromhex("00b0000000")) == (2, 0, 256)
    assert t0.case_of(bytes.fromhex("00da000002aabb")) == (3, 2, 0)
    assert t0.case_of(bytes.fromhex("00a4040002aabb00")) == (4, 2, 256)
    with raises(iso7816.ProtocolError):
        t0.case_of(b"\x00\xa4\x04")
    with raises(iso7816.ProtocolError):
        t0.case_of(bytes.fromhex("00da000005aabb"))


def test_pps():
    req = pps.request(1, 1, 3)  # T=1, F 372, D 4
    assert req == bytes.fromhex("ff1113fd")
    assert pps.accepted(req, req) is True
    assert pps.accepted(req, bytes.fromhex("ff01fe")) is False  # PPS1 left out: the defaults
    with raises(iso7816.ProtocolError):
        pps.accepted(req, bytes.fromhex("ff1113fe"))  # PCK
    with raises(iso7816.ProtocolError):
        pps.accepted(req, bytes.fromhex("ff1112fc"))  # another PPS1
