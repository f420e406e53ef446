"""Cryptogram versions (Visa CVN 10, 18, 22; M/Chip CVN 16, 17) and ARPC methods 1 and 2, as the
rig's cards compute them (tools/emvcard/applet.py over cardcrypto.py, the card's own 3DES) and as
the bank's HSM checks them (tools/bank/hsm.py over pyemv's pyemv.cvn).

Oracles: the vectors of pyemv's own HSM-checked tests (knovichikhin/pyemv tests/test_cvn_hsm.py:
Visa CVN 10 and 18, Mastercard CVN 16 and 17, issuer master key 0123...3210, PAN
1234567890123456, PSN 00, ATC 001C) and of its documentation; then each test card against the
real HSM class in whole transactions by APDU: ARQC, ARPC, second GENERATE AC, a tampered
cryptogram refused. The kernel's part is in test_emv_kernel.py (on the device); the whole
purchase through the bank host in test_terminal_card.py.
"""

import itertools
import os

import pytest
from pyemv import ac as pyemv_ac
from pyemv import kd
from pyemv import tlv as pyemv_tlv

from tools import emvcard
from tools.bank.hsm import Hsm
from tools.emvcard import applet, cardcrypto, cryptogram as cv

IMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PAN, PSN, ATC = "1234567890123456", "00", bytes.fromhex("001C")
VISA_AID, MC_AID = bytes.fromhex("A0000000031010"), bytes.fromhex("A0000000041010")
_fresh = itertools.count()


def _tags(amount, tvr, date, txn_type, un, iad, aid):
    return {0x9F02: bytes.fromhex(amount), 0x9F03: bytes(6), 0x9F1A: b"\x01\x24",
            0x95: bytes.fromhex(tvr), 0x5F2A: b"\x01\x24", 0x9A: bytes.fromhex(date),
            0x9C: bytes.fromhex(txn_type), 0x9F37: bytes.fromhex(un), 0x82: b"\x18\x00",
            0x9F36: ATC, 0x9F10: bytes.fromhex(iad), 0x84: aid}


# (version, tags, ARQC, ARC or CSU, ARPC): pyemv's tests/test_cvn_hsm.py
VECTORS = [
    (cv.VISA_CVN10, _tags("000000004000", "8000048000", "191105", "01", "52BF4585", "06010A03A06010", VISA_AID),
     "29CCA15AE665FA2E", "3030", "28993816AFAE4AEB"),
    (cv.VISA_CVN18, _tags("000000004000", "8000048000", "191105", "01", "52BF4585", "06011203A0B800", VISA_AID),
     "7A788EA6B8A3E733", "00000000", "9AF514C1"),
    (cv.MCHIP_CVN16, _tags("000000009999", "8000000000", "209906", "00", "ABCDEF12",
                           "0110A00003220000000000000000000000FF", MC_AID),
     "24CCF3DEE3158C70", "0010", "73F6BBF389A6586C"),
    (cv.MCHIP_CVN17, _tags("000000009999", "8000000000", "209906", "00", "ABCDEF12",
                           "0111A00003220000000000000000000322FF", MC_AID),
     "EAE8A620A75648D8", "0010", "29CF11FBDB9CA650"),
]


@pytest.mark.parametrize("version, tags, arqc, answer, arpc", VECTORS, ids=[v[0] for v in VECTORS])
def test_published_vectors_issuer_and_card(version, tags, arqc, answer, arpc):
    # The issuer's side (pyemv through cryptogram.py), the version told by the IAD alone
    assert cv.version_of(tags, PAN)[0] == version
    assert cv.cryptogram(IMK, PAN, PSN, tags).hex().upper() == arqc
    # The card's own implementation
    option_b = version in (cv.VISA_CVN18, cv.VISA_CVN22)
    mk = cardcrypto.icc_master_key(IMK, PAN, PSN, option_b)
    ac, key = applet.application_cryptogram(version, mk, tags, tags[0x9F10])
    assert ac.hex().upper() == arqc
    answer = bytes.fromhex(answer)
    if cv.VERSIONS[version][2] == 1:
        assert cardcrypto.arpc1(key, ac, answer).hex().upper() == arpc
    else:
        assert cardcrypto.arpc2(key, ac, answer).hex().upper() == arpc


def test_pyemv_documented_cvn18_and_option_b():
    # pyemv.cvn's module example (CVN 18, IMK AA..AA, ATC 0FFF) and kd's option B example
    imk = bytes.fromhex("AA" * 16)
    tags = _tags("000000009999", "8000048000", "991231", "01", "52BF4585", "06011203A0B800", VISA_AID)
    tags.update({0x9F1A: b"\x08\x40", 0x5F2A: b"\x08\x40", 0x9F36: b"\x0f\xff"})
    assert cv.cryptogram(imk, PAN, PSN, tags).hex().upper() == "769577B5ABE9FE62"
    tags[0x9F26] = bytes.fromhex("769577B5ABE9FE62")
    csu = bytes(4)
    sk = cardcrypto.session_key(cardcrypto.icc_master_key(imk, PAN, PSN, True), b"\x0f\xff" + bytes(6))
    assert cardcrypto.arpc2(sk, tags[0x9F26], csu).hex().upper() == "76503F48"
    mk = cardcrypto.icc_master_key(IMK, "12345678901234567", "01", option_b=True)
    assert mk.hex().upper() == "AD406D7F6D7570916D75E5DCAB8CF737"


def test_option_b_and_visa_padding_equal_pyemv():
    # Option B differs from A only past 16 digits of PAN; zero padding adds no block when whole
    for pan in ("4761739001010010", "47617390010100101", "4761739001010010123"):
        for psn in ("00", "01", "45"):
            assert cardcrypto.icc_master_key(IMK, pan, psn, True) == kd.derive_icc_mk_b(IMK, pan, psn)
    key = os.urandom(16)
    for n in (1, 7, 8, 9, 16, 43):
        data = os.urandom(n)
        assert cardcrypto.mac3(key, data, pad=cardcrypto.pad1) == \
            pyemv_ac.generate_ac(key, data, pyemv_ac.PaddingType.VISA)


@pytest.mark.parametrize("version", sorted(cv.VERSIONS))
@pytest.mark.parametrize("atc", [1, 0x1C, 0xFFFF])
def test_card_and_issuer_agree_on_random_keys(version, atc):
    imk, un = os.urandom(16), os.urandom(4)
    pan = "47617390010100101" if version == cv.VISA_CVN18 else "4761739001010010"  # option B
    mc = cv.VERSIONS[version][1]
    cvr = os.urandom(cv.CVR_LENGTH[version])
    tags = _tags("000000001234", "0000008000", "261205", "00", un.hex(), "", MC_AID if mc else VISA_AID)
    tags[0x9F36] = atc.to_bytes(2, "big")
    tags[0x9F10] = cv.iad(version, cvr, counters=os.urandom(8))
    option_b = version in (cv.VISA_CVN18, cv.VISA_CVN22)
    mk = cardcrypto.icc_master_key(imk, pan, "01", option_b)
    ac, key = applet.application_cryptogram(version, mk, tags, tags[0x9F10])
    assert ac == cv.cryptogram(imk, pan, "01", tags)
    tags[0x9F26] = ac
    for arc in (b"00", b"05"):
        auth = cv.issuer_auth(imk, pan, "01", tags, arc)
        if cv.VERSIONS[version][2] == 1:
            assert auth == cardcrypto.arpc1(key, ac, arc) + arc
        else:
            assert auth[4:] == cv.card_status_update(arc) and auth[5] & 0x80 == (arc == b"00") * 0x80
            assert auth[:4] == cardcrypto.arpc2(key, ac, auth[4:8])
    # method 2 with proprietary authentication data: covered by the ARPC
    if cv.VERSIONS[version][2] == 2:
        auth = cv.issuer_auth(imk, pan, "01", tags, b"00", proprietary=b"\x12\x34")
        assert len(auth) == 10 and auth[:4] == cardcrypto.arpc2(key, ac, auth[4:8], b"\x12\x34")


def test_issuer_application_data_layouts():
    assert cv.parse_iad(bytes.fromhex("0111A00003220000000000000000000322FF"), True) == \
        (cv.MCHIP_CVN17, bytes.fromhex("A00003220000"), bytes.fromhex("00000000000322FF"))  # 6-byte CVR
    fmt2 = cv.iad(cv.VISA_CVN22, bytes.fromhex("03A0B80000"))
    assert len(fmt2) == 32 and fmt2[:3] == b"\x1f\x22\x01"
    assert cv.parse_iad(fmt2, False) == (cv.VISA_CVN22, bytes.fromhex("03A0B80000"), b"")
    for bad, mc, what in ((b"\x06\x01\x11\x03\xa0\x00\x00", False, "CVN 11"),   # CVN 17: not run
                          (fmt2[:20], False, "format 2 of 20"),
                          (bytes.fromhex("0110A000032200"), True, "M/Chip IAD of 7"),
                          (b"\x07\x01\x12\x03\xa0\x00\x00", False, "neither")):
        with pytest.raises(ValueError, match=what):
            cv.parse_iad(bad, mc)
    with pytest.raises(ValueError):
        cv.iad(cv.MCHIP_CVN16, b"\xa0\x00\x00")  # a 3-byte CVR where M/Chip has 6
    # the network: the AID's RID, else the PAN's brand
    assert cv.is_mastercard({0x84: MC_AID}, "4761739001010010")
    assert not cv.is_mastercard({0x84: VISA_AID}, "5413330089020011")
    assert cv.is_mastercard({}, "5413330089020011") and cv.is_mastercard({}, "2221000000000009")


# ---- each test card against the bank's HSM, by APDU ---------------------------------------------

CARDS = [("visa-classic", cv.VISA_CVN10), ("visa-cvn18", cv.VISA_CVN18), ("visa-cvn22", cv.VISA_CVN22),
         ("mastercard-sda", cv.MCHIP_CVN16), ("mastercard-cvn17", cv.MCHIP_CVN17)]
CDOL1 = "000000001000" "000000000000" "0276" "0000000000" "0978" "261205" "00" "11223344" "22" "1F0302"


@pytest.fixture()
def bank(tmp_path):
    keys = Hsm.create(tmp_path / "keys.json")
    for name, _ in CARDS:
        app = emvcard.load_profile(name)["apps"][0]
        keys.add_issuer_key(app["issuer"], bytes.fromhex(app["imk_ac"]))
    return keys


def _apdu(c, hexapdu, sw="9000"):
    r = c.process(bytes.fromhex(hexapdu))
    assert r[-2:].hex().upper() == sw, (hexapdu, r.hex())
    return r[:-2]


def _objects(data):
    """{tag: value} of a 77 template."""
    return {int(t, 16): v for t, v in pyemv_tlv.decode(bytes(data)).popitem()[1].items()}


def _card(name):
    c = emvcard.card_applet("%s#v%d" % (name, next(_fresh)))
    app = c.profile["apps"][0]
    _apdu(c, "00A4040007" + app["aid"] + "00")
    return c, app


def _first(c, app, un="11223344"):
    """GPO, then the first GENERATE AC asking an ARQC: DE55's tags as the terminal sends them."""
    pdol = ("00000000" "000000001000" "000000000000" "0276" "0000000000" "0978" "261205" "00" + un) \
        if app["pdol"] else ""  # a contact-only card asks nothing
    _apdu(c, "80A80000%02X83%02X" % (len(pdol) // 2 + 2, len(pdol) // 2) + pdol + "00")
    cdol1 = CDOL1.replace("11223344", un)
    r = _objects(_apdu(c, "80AE8000%02X" % (len(cdol1) // 2) + cdol1 + "00"))
    tags = {0x9F02: bytes.fromhex(cdol1[:12]), 0x9F03: bytes(6), 0x9F1A: b"\x02\x76", 0x95: bytes(5),
            0x5F2A: b"\x09\x78", 0x9A: bytes.fromhex("261205"), 0x9C: b"\x00", 0x9F37: bytes.fromhex(un),
            0x82: bytes.fromhex(app["aip"]), 0x84: bytes.fromhex(app["aid"])}
    tags.update(r)
    return tags


@pytest.mark.parametrize("name, version", CARDS)
def test_card_arqc_hsm_arpc_second_generate_ac(bank, name, version):
    c, app = _card(name)
    pan, psn, key = app["pan"], app["psn"], app["issuer"]
    tags = _first(c, app)
    assert tags[0x9F27] == b"\x80" and cv.version_of(tags, pan)[0] == version
    assert bank.verify_arqc(key, pan, psn, tags)
    for tag, flip in ((0x9F26, 7), (0x9F02, 5), (0x9F10, 6)):  # the cryptogram, the amount, the CVR
        bad = dict(tags)
        bad[tag] = bytes(tags[tag][:flip]) + bytes((tags[tag][flip] ^ 1,)) + bytes(tags[tag][flip + 1:])
        assert not bank.verify_arqc(key, pan, psn, bad), hex(tag)
    auth = bank.arpc(key, pan, psn, tags, b"00")
    assert len(auth) == (10 if cv.VERSIONS[version][2] == 1 else 8)
    _apdu(c, "00820000%02X" % len(auth) + auth.hex())  # EXTERNAL AUTHENTICATE
    cdol2 = "3030" + "00" * int(app["cdol2"][6:8], 16) + "0000000000" + "55667788"
    tc = _objects(_apdu(c, "80AE4000%02X" % (len(cdol2) // 2) + cdol2 + "00"))
    assert tc[0x9F27] == b"\x40"
    tags.update(tc)
    tags[0x9F37] = bytes.fromhex("55667788")  # the TC covers the second GENERATE AC's data
    tags[0x95] = bytes(5)
    assert bank.verify_arqc(key, pan, psn, tags)  # the same check serves a TC


@pytest.mark.parametrize("name", ["visa-cvn18", "visa-cvn22"])
def test_method_2_the_csu_decides_not_the_terminal(bank, name):
    # The issuer declines (CSU without "approves"); a terminal that says 00 and asks a TC gets
    # an AAC: the decision is in the ARPC's data. A CSU changed to approve fails the ARPC.
    c, app = _card(name)
    tags = _first(c, app)
    auth = bank.arpc(app["issuer"], app["pan"], app["psn"], tags, b"05")
    assert not auth[5] & cv.CSU_APPROVED
    _apdu(c, "0082000008" + auth.hex())
    cdol2 = "3030" + "00" * 8 + "0000000000" + "55667788"
    assert _objects(_apdu(c, "80AE4000%02X" % (len(cdol2) // 2) + cdol2 + "00"))[0x9F27] == b"\x00"
    c, app = _card(name)
    tags = _first(c, app)
    auth = bytearray(bank.arpc(app["issuer"], app["pan"], app["psn"], tags, b"05"))
    auth[5] |= cv.CSU_APPROVED
    _apdu(c, "0082000008" + auth.hex(), sw="6300")


@pytest.mark.parametrize("name, version", [n for n in CARDS if n[0] != "mastercard-sda"])  # contact only
def test_contactless_arqc_checks(bank, name, version):
    c, app = _card(name)
    pdol = "26800000" "000000001000" "000000000000" "0276" "0000000000" "0978" "261205" "00" "CAFEF00D"
    r = _objects(_apdu(c, "80A80000%02X83%02X" % (len(pdol) // 2 + 2, len(pdol) // 2) + pdol + "00"))
    tags = {0x9F02: bytes.fromhex("000000001000"), 0x9F03: bytes(6), 0x9F1A: b"\x02\x76", 0x95: bytes(5),
            0x5F2A: b"\x09\x78", 0x9A: bytes.fromhex("261205"), 0x9C: b"\x00", 0x9F37: bytes.fromhex("CAFEF00D"),
            0x84: bytes.fromhex(app["aid"])}
    tags.update(r)
    assert tags[0x9F27] == b"\x80" and cv.version_of(tags, app["pan"])[0] == version
    assert bank.verify_arqc(app["issuer"], app["pan"], app["psn"], tags)
    tags[0x9F37] = bytes.fromhex("CAFEF00E")  # M/Chip's session key takes the UN: all refuse
    assert not bank.verify_arqc(app["issuer"], app["pan"], app["psn"], tags)
