# lib/emv/tlv.py and tags.py on the device: BER-TLV of real cards' answers (captures published in
# open-source EMV projects), DOL building as EMV Book 3 section 5.4 says, and every malformation
# a card could send raising TlvError with what and where.
from emv import TlvError, tags as T  # its names are the compiler's consts: tags by number here
from emv import tlv

from expect import raises

H = bytes.fromhex
# SELECT 2PAY.SYS.DDF01 answered by a Mastercard: one directory entry, priority 1.
PPSE = H("6F23840E325041592E5359532E4444463031A511BF0C0E610C4F07A00000000410108701019000")[:-2]
# SELECT A0000000031010 answered by a Visa contactless card: a PDOL, BF0C with a nested template.
VISA_FCI = H("6F458407A0000000031010A53A9F381B9F66049F02069F03069F1A0295055F2A029A039C019F3704"
             "9F4E14BF0C149F5A0531082608269F4D021405BF6304DF2001805F2D02656E")
GPO_1 = H("800E7800080202001001040018010201")  # format 1: AIP 7800, AFL of 3 entries
GPO_2 = H("770E8202390094081801020120020400")  # format 2 from a personalised Mastercard
# READ RECORD SFI 1 record 1 of a Maestro card (PAN padded with F, track 2 equivalent).
RECORD = H("703E5A0967030405123456789F5F3401025F25030801015F2403121231571367030405123456789D1212"
           "221000002200009F5F280200569F420209789F440102")


def test_ppse_directory():
    assert tlv.decode(PPSE) == [(0x6F, PPSE[2:])]
    assert tlv.is_constructed(0x6F) and tlv.is_constructed(0xBF0C)
    assert not tlv.is_constructed(0x84) and not tlv.is_constructed(0x9F38)
    assert tlv.flatten(PPSE) == {0x84: b"2PAY.SYS.DDF01", 0x4F: H("A0000000041010"),
                                 0x87: b"\x01"}
    entry = tlv.find(PPSE, 0x61)
    assert tlv.decode(entry) == [(0x4F, H("A0000000041010")), (0x87, b"\x01")]
    assert tlv.find(PPSE, 0x50) is None


def test_visa_fci_and_its_pdol():
    f = tlv.flatten(VISA_FCI)
    assert f[0x84] == H("A0000000031010") and f[0x5F2D] == b"en"
    assert f[0xDF20] == b"\x80"  # inside BF63 inside BF0C: two-byte constructed tags open
    dol = tlv.parse_dol(f[0x9F38])
    assert dol == [(0x9F66, 4), (0x9F02, 6), (0x9F03, 6), (0x9F1A, 2),
                   (0x95, 5), (0x5F2A, 2), (0x9A, 3), (0x9C, 1),
                   (0x9F37, 4), (0x9F4E, 20)]
    values = {0x9F66: H("36204000"), 0x9F02: H("000000001234"), 0x9F1A: H("0978"),
              0x95: bytes(5), 0x5F2A: H("0978"), 0x9A: H("261121"),
              0x9C: b"\x00", 0x9F37: H("0a1b2c3d"),
              0x9F4E: b"Caffe Nero, Roma"}
    data = tlv.build_dol(dol, values)
    assert data == (H("36204000" "000000001234" "000000000000" "0978" "0000000000" "0978" "261121" "00"
                      "0a1b2c3d") + b"Caffe Nero, Roma" + bytes(4))  # 9F03 absent: zeros; ans: 00 pad
    assert len(data) == 53 and tlv.encode(0x83, data)[:2] == H("8335")


def test_gpo_answers_and_records():
    assert tlv.decode(GPO_1) == [(0x80, H("7800080202001001040018010201"))]
    assert tlv.flatten(GPO_2) == {0x82: H("3900"), 0x94: H("1801020120020400")}
    r = tlv.flatten(RECORD)
    assert r[0x5A] == H("67030405123456789F") and r[0x5F34] == b"\x02"
    assert r[0x5F24] == H("121231") and r[0x5F25] == H("080101")
    assert r[0x57] == H("67030405123456789D1212221000002200009F")
    assert len(r) == 8
    # Padding 00 / FF between and after objects (Book 3 Annex B) is skipped.
    assert tlv.decode(b"\x00\xff" + GPO_2 + b"\x00\x00") == tlv.decode(GPO_2)
    assert tlv.decode(b"") == [] and tlv.flatten(b"\x00") == {}


def test_encode_length_forms():
    assert tlv.encode(0x9F02, H("000000001234")) == H("9F0206000000001234")
    assert tlv.encode(0x9F8101, b"") == H("9F810100")  # three-byte tag
    for n, head in ((127, "7F"), (128, "8180"), (255, "81FF"), (256, "820100")):
        v = bytes(n)
        obj = tlv.encode(0x90, v)
        assert obj[:1 + len(head) // 2] == H("90" + head)
        assert tlv.decode(obj) == [(0x90, v)]
    nested = tlv.encode(0x70, tlv.encode(0x5A, H("4761739001010119")) + tlv.encode(0x8C, bytes(200)))
    assert tlv.flatten(nested) == {0x5A: H("4761739001010119"), 0x8C: bytes(200)}


def test_build_dol_book3_rules():
    dol = tlv.parse_dol(H("9F0204" "9F0208" "5A05" "5A0C" "9504" "9506" "5F2D04" "7002" "9F3703"))
    v = {0x9F02: H("000000012345"), 0x5A: H("4761739001010119"), 0x95: H("8000048000"),
         0x5F2D: b"en", 0x70: b"\x01\x02"}
    assert tlv.build_dol(dol, v) == H(
        "00012345"                  # n, shorter: the rightmost bytes
        "0000000000012345"          # n, longer: leading zeros
        "4761739001"                # cn, shorter: the leftmost
        "4761739001010119FFFFFFFF"  # cn, longer: trailing FF
        "80000480"                  # b, shorter: the leftmost
        "800004800000"              # b, longer: trailing 00
        "656E0000"                  # an: trailing 00
        "0000"                      # a template: zeros whatever values holds
        "000000")                   # absent: zeros
    assert tlv.build_dol([], v) == b""
    assert T.format_of(0x9F02) == "n" and T.format_of(0x5A) == "cn"
    assert T.format_of(0x9F1C) == "an" and T.format_of(0x9F4E) == "ans"
    assert T.format_of(0x57) == "b" and T.format_of(0x9F37) == "b"


def _bad(f, data, words):
    with raises(TlvError) as e:
        f(data)
    msg = str(e.value)
    for w in words:
        assert w in msg, msg


def test_malformed_tlv():
    _bad(tlv.decode, H("9F"), ("truncated tag", "at 0"))
    _bad(tlv.decode, H("5A0101" "9F81"), ("truncated tag", "at 3"))
    _bad(tlv.decode, H("9F818101" "00"), ("longer than 3 bytes", "at 0"))
    _bad(tlv.decode, H("5A"), ("missing length", "at 1"))
    _bad(tlv.decode, H("5A80" "0000"), ("length form 80", "at 1"))
    _bad(tlv.decode, H("5A84" "00000001" "00"), ("length form 84", "at 1"))
    _bad(tlv.decode, H("5A8201"), ("truncated length", "at 1"))
    _bad(tlv.decode, H("5A83010000" "00"), ("length 65536 beyond", "at 0"))
    _bad(tlv.decode, H("5A050102"), ("length 5 beyond the data", "at 0"))
    _bad(tlv.decode, H("9F0206000000001234" "5A8180" + "00" * 127), ("length 128 beyond", "at 9"))
    # Inside a template the bounds are the template's, not the buffer's.
    _bad(tlv.flatten, H("7003" "5A0501" "02030405"), ("length 5 beyond", "at 2"))
    _bad(lambda d: tlv.find(d, 0x5A), H("7003" "5A0501" "02030405"), ("length 5 beyond",))
    # A redundant primitive object terminates the transaction (Book 3 section 10.2).
    _bad(tlv.flatten, H("7008" "5F340101" "5F340101"), ("redundant tag 5F34",))
    out = tlv.flatten(GPO_2)
    _bad(lambda d: tlv.flatten(d, out), H("82025800"), ("redundant tag 82",))
    # A card cannot make the parser recurse without end.
    deep = H("5A0100")
    for _ in range(12):
        deep = tlv.encode(0x70, deep)
    _bad(tlv.flatten, deep, ("nested deeper",))
    _bad(lambda d: tlv.find(d, 0x82), deep, ("nested deeper",))
    assert tlv.find(tlv.encode(0x70, tlv.encode(0x70, H("5A0100"))), 0x5A) == b"\x00"


def test_malformed_dol():
    _bad(tlv.parse_dol, H("9F02"), ("missing length", "at 2"))
    _bad(tlv.parse_dol, H("9F0206" "9F"), ("truncated tag", "at 3"))
    _bad(tlv.parse_dol, H("9F0206" "00" "04"), ("tag 00", "at 3"))
    _bad(tlv.parse_dol, H("9F818101"), ("longer than 3 bytes",))
    assert tlv.parse_dol(b"") == []
