"""The rig's EMV test cards (tools/emvcard), by direct APDU calls to their applets.

Oracles: pyemv (through tools/emvcard/cryptogram.py, the bank HSM's code) for the card's own
key derivation, cryptograms, ARPC and script MACs; the `cryptography` package's public numbers
with pow(x, e, n), SHA-1 from hashlib and pyemv's TLV decoder for the certificates, which are
taken apart here by the byte layout of EMV Book 2, not by tools/emvcard/certs.py.
"""

import hashlib
import itertools
import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pyemv import kd, sm, tlv as pyemv_tlv

from tools import emvcard
from tools.emvcard import cardcrypto, cryptogram
from tools.rig.pn532 import APPLETS

CARDS = emvcard.CARDS_DIR
_fresh = itertools.count()

PDOL_TAGS = ((0x9F66, "20000000"), (0x9F02, "000000001000"), (0x9F03, "000000000000"),
             (0x9F1A, "0276"), (0x95, "0000000000"), (0x5F2A, "0978"), (0x9A, "261121"),
             (0x9C, "00"), (0x9F37, "11223344"))


def card(name):
    """A new card of profile `name` (its own counters)."""
    return emvcard.card_applet("%s#t%d" % (name, next(_fresh)))


def run(c, hexapdu):
    r = c.process(bytes.fromhex(hexapdu.replace(" ", "")))
    return r[:-2], r[-2:].hex().upper()


def ok(c, hexapdu):
    data, sw = run(c, hexapdu)
    assert sw == "9000", (hexapdu, sw)
    return data


def apdu(header, data, le=True):
    return header + "%02X" % (len(data) // 2) + data + ("00" if le else "")


def decode(data):
    return pyemv_tlv.decode(bytes(data))


def gpo(c, contactless=False, amount="000000001000"):
    tags = dict(PDOL_TAGS)
    tags[0x9F66] = "20000000" if contactless else "00000000"
    tags[0x9F02] = amount
    pdol = "".join(tags[t] for t, _ in PDOL_TAGS)
    return ok(c, apdu("80A80000", "83%02X" % (len(pdol) // 2) + pdol))


def cdol1(amount="000000001000", un="11223344"):
    return amount + "000000000000" + "0276" + "0000000000" + "0978" + "261121" + "00" + un \
        + "00" + "010302"


def cdol1_tags(amount="000000001000", un="11223344"):
    return {0x9F02: bytes.fromhex(amount), 0x9F03: bytes(6), 0x9F1A: b"\x02\x76",
            0x95: bytes(5), 0x5F2A: b"\x09\x78", 0x9A: bytes.fromhex("261121"), 0x9C: b"\x00",
            0x9F37: bytes.fromhex(un)}


def start(c, aid="A0000000031010", contactless=False, pin=None):
    ok(c, apdu("00A40400", aid))
    out = gpo(c, contactless)
    if pin:
        run(c, "0020008008" + "2%X" % len(pin) + pin + "F" * (14 - len(pin)))
    return out


def profile(name):
    with open(os.path.join(CARDS, name + ".json")) as f:
        return json.load(f)


def first_app(name):
    return profile(name)["apps"][0]


# ---- the card's symmetric cryptography against pyemv ------------------------------------------

def test_published_icc_master_key_example():
    imk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    mk = cardcrypto.icc_master_key(imk, "99012345678901234", "45")
    assert mk.hex().upper() == "67F8292358083E5EA7AB7FDA58D53B6B"


def test_pyemv_published_session_key_and_script_mac():
    mk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    sk = cardcrypto.session_key(mk, bytes.fromhex("001C000000000000"))
    assert sk.hex().upper() == "E9FB384AF807B940FEDCEA613461B0C4"
    cmd = bytes.fromhex("8424000008FFFF1234567890123456")
    assert cardcrypto.mac3(mk, cmd).hex().upper() == "E07B8DF1B4184282"


# ---- certificates, checked by layout with an independent RSA public operation -----------------

def _public(modulus_hex, exp_hex):
    numbers = rsa.RSAPublicNumbers(int(exp_hex, 16), int(modulus_hex, 16))
    numbers.public_key()  # cryptography accepts it as an RSA public key
    return numbers


def _recover(numbers, sig):
    n_len = (numbers.n.bit_length() + 7) // 8
    assert len(sig) == n_len
    block = pow(int.from_bytes(sig, "big"), numbers.e, numbers.n).to_bytes(n_len, "big")
    assert block[0] == 0x6A and block[-1] == 0xBC
    return block


def _records(app):
    return {k: decode(bytes.fromhex(v))["70"] for k, v in app["records"].items()}


def _static(app):
    # AFL 08010100 10010101 18010200: only SFI 2 record 1 is signed, then the AIP (9F4A = 82)
    raw = bytes.fromhex(app["records"]["2.1"])
    assert raw[0] == 0x70
    body = raw[3:] if raw[1] == 0x81 else raw[2:]
    return body + bytes.fromhex(app["aip"])


def _issuer_key(app, ca_file=None):
    rec = _records(app)["3.1"]
    ca = json.load(open(ca_file or os.path.join(
        CARDS, "ca-%s-%s.json" % ("A000000004" if app["aid"].startswith("A000000004")
                                  else "A000000003", rec["8F"].hex().upper()))))
    block = _recover(_public(ca["modulus"], ca["exponent"]), rec["90"])
    n_ca = len(block)
    data, digest = block[1:n_ca - 21], block[n_ca - 21:n_ca - 1]
    assert data[0] == 0x02
    assert data[1:5].hex().upper().rstrip("F") == app["pan"][:6]
    iss_len, exp_len = data[12], data[13]
    assert data[10:12] == b"\x01\x01" and exp_len == 1
    remainder = rec.get("92", b"")
    assert hashlib.sha1(data + remainder + rec["9F32"]).digest() == digest
    modulus = (data[14:14 + n_ca - 36] + remainder)[:iss_len]
    return _public(modulus.hex(), rec["9F32"].hex())


def _icc_key(app, issuer):
    rec = _records(app)["3.2"]
    block = _recover(issuer, rec["9F46"])
    n_i = len(block)
    data, digest = block[1:n_i - 21], block[n_i - 21:n_i - 1]
    assert data[0] == 0x04 and data[1:11].hex().upper().rstrip("F") == app["pan"]
    assert data[11:13].hex() == app["expiry"][2:4] + app["expiry"][:2]
    assert data[16:18] == b"\x01\x01" and data[19] == 1
    icc_len = data[18]
    rest = rec.get("9F48", b"")
    assert hashlib.sha1(data + rest + rec["9F47"] + _static(app)).digest() \
        == digest
    return _public((data[20:20 + n_i - 42] + rest)[:icc_len].hex(), rec["9F47"].hex())


@pytest.mark.parametrize("name", ["visa-classic", "two-apps", "bank-b-debit", "expired"])
def test_dda_certificates_verify(name):
    for app in profile(name)["apps"]:
        issuer = _issuer_key(app)
        iss_file = json.load(open(os.path.join(CARDS, "issuer-%s.json" % app["issuer"])))
        assert issuer.n == int(iss_file["modulus"], 16) and issuer.n.bit_length() == 1024
        icc = _icc_key(app, issuer)
        assert icc.n == int(app["icc_key"]["modulus"], 16) and icc.n.bit_length() == 768


def test_sda_signed_static_data_verifies():
    app = first_app("mastercard-sda")
    issuer = _issuer_key(app)
    block = _recover(issuer, _records(app)["3.2"]["93"])
    data, digest = block[1:-21], block[-21:-1]
    assert data[:2] == b"\x03\x01" and set(data[4:]) == {0xBB}
    assert hashlib.sha1(data + _static(app)).digest() == digest


def test_bad_cert_does_not_verify():
    app = first_app("bad-cert")
    with pytest.raises(AssertionError):
        _issuer_key(app)


def test_capk_file_checksums(tmp_path):
    from tools.emvcard.__main__ import main
    out = tmp_path / "capk.json"
    assert main(["capk", "--out", str(out)]) == 0
    keys = json.loads(out.read_text())
    assert {(k["rid"], k["index"]) for k in keys} == {
        ("A000000003", "92"), ("A000000003", "94"), ("A000000004", "F1")}
    for k in keys:
        data = bytes.fromhex(k["rid"] + k["index"] + k["modulus"] + k["exponent"])
        assert hashlib.sha1(data).hexdigest().upper() == k["checksum"]
        assert len(k["modulus"]) == 1152 // 4 and k["exponent"] == "03"


def test_every_file_says_test_keys():
    for f in os.listdir(CARDS):
        assert "TEST" in json.load(open(os.path.join(CARDS, f)))["comment"]


# ---- commands --------------------------------------------------------------------------------

def test_pse_directory_and_select():
    c = card("two-apps")
    fci = decode(ok(c, apdu("00A40400", b"1PAY.SYS.DDF01".hex())))
    assert fci["6F"]["A5"]["88"] == b"\x01"
    entries = [decode(ok(c, "00B2%02X0C00" % n))["70"]["61"] for n in (1, 2)]
    assert [(e["4F"].hex().upper(), e["50"], e["87"]) for e in entries] == [
        ("A0000000031010", b"VISA CREDIT", b"\x81"), ("A0000000032010", b"VISA DEBIT", b"\x82")]
    assert run(c, "00B2030C00")[1] == "6A83"
    fci = decode(ok(c, apdu("00A40400", "A000000003")))  # partial AID, then the next one
    assert fci["6F"]["84"].hex().upper() == "A0000000031010"
    fci = decode(ok(c, apdu("00A40402", "A000000003")))
    assert fci["6F"]["84"].hex().upper() == "A0000000032010"
    assert run(c, apdu("00A40402", "A000000003"))[1] == "6A82"
    assert run(c, apdu("00A40400", "A0000000041010"))[1] == "6A82"


def test_ppse_lists_contactless_apps_only():
    c = card("visa-classic")
    raw = ok(c, apdu("00A40400", b"2PAY.SYS.DDF01".hex()))
    assert decode(raw)["6F"]["A5"]["BF0C"]["61"]["4F"].hex().upper() == "A0000000031010"
    assert run(card("mastercard-sda"), apdu("00A40400", b"2PAY.SYS.DDF01".hex()))[1] == "6A82"


def test_gpo_contact_answer_and_errors():
    c = card("visa-classic")
    assert run(c, "80A8000002830000")[1] == "6985"  # nothing selected
    fci = decode(ok(c, apdu("00A40400", "A0000000031010")))
    assert fci["6F"]["A5"]["9F38"].hex().upper() == emvcard.perso.VISA_PDOL
    assert run(c, "80A8000004830211220000"[:18] + "00")[1] == "6700"
    r = decode(gpo(c))["77"]
    assert r["82"].hex() == "3c00" and r["94"].hex().upper() == "080101001001010118010200"
    assert run(c, "80A8000002830000")[1] in ("6985", "6700")


def test_read_record_get_data():
    c = card("visa-classic")
    start(c)
    assert decode(ok(c, "00B2011400"))["70"]["5A"].hex().upper() == "4761739001010010"
    assert run(c, "00B2051400")[1] == "6A83"
    assert run(c, "00B2012400")[1] == "6A83"  # SFI 4: none
    assert run(c, "00B2011F00")[1] == "6A86"  # P2 not SFI<<3 | 4
    assert decode(ok(c, "80CA9F3600"))["9F36"] == b"\x00\x01"
    assert decode(ok(c, "80CA9F1700"))["9F17"] == b"\x03"
    assert decode(ok(c, "80CA9F1300"))["9F13"] == b"\x00\x00"
    assert run(c, "80CA9F4F00")[1] == "6A88"
    assert run(c, "00CA9F3600")[1] == "6E00"
    assert run(c, "80FF000000")[1] == "6D00"


def test_pin_try_counter_decrements_blocks_and_resets():
    c = card("visa-classic")
    start(c)
    wrong, right = "0020008008241111FFFFFFFFFF", "0020008008241234FFFFFFFFFF"
    assert run(c, wrong)[1] == "63C2"
    assert run(c, right)[1] == "9000"
    assert decode(ok(c, "80CA9F1700"))["9F17"] == b"\x03"
    assert [run(c, wrong)[1] for _ in range(4)] == ["63C2", "63C1", "63C0", "6983"]
    assert run(c, right)[1] == "6983"
    assert run(c, "00200080082412FFFFFFFFFFFF")[1] == "6A80"
    assert run(c, "0020008808241234FFFFFFFFFF")[1] == "6A86"


def test_state_survives_power_and_new_applet():
    name = "visa-classic#survive%d" % next(_fresh)
    c = emvcard.card_applet(name)
    start(c)
    run(c, "0020008008241111FFFFFFFFFF")
    c.reset()
    c2 = APPLETS["emv:" + name]()
    start(c2)
    assert decode(ok(c2, "80CA9F3600"))["9F36"] == b"\x00\x02"  # ATC counts per GPO
    assert decode(ok(c2, "80CA9F1700"))["9F17"] == b"\x02"
    assert "emv:no-such-card" not in APPLETS and "emv:visa-classic" in APPLETS


# A rig process's card (kept in the rig's state dir, tools/rig/rig.py): two GPOs and a wrong
# offline PIN, then its ATC and PIN try counter as GET DATA reads them.
_KEPT_CARD = """
import sys
from tests.host import test_emvcard as t
from tools import emvcard
emvcard.keep_in(sys.argv[1])
c = emvcard.card_applet("visa-classic")
for _ in range(int(sys.argv[2])):
    t.start(c)
    t.run(c, "0020008008241111FFFFFFFFFF")
    c.reset()
t.start(c)
print(t.decode(t.ok(c, "80CA9F3600"))["9F36"].hex(), t.decode(t.ok(c, "80CA9F1700"))["9F17"].hex())
"""


def test_a_kept_card_carries_on_in_the_next_rig_process(tmp_path):
    import subprocess
    import sys

    def rig_process(gpos):
        out = subprocess.run([sys.executable, "-c", _KEPT_CARD, str(tmp_path), str(gpos)], check=True,
                             capture_output=True, text=True, cwd=os.path.join(CARDS, "..", "..", ".."))
        return out.stdout.split()

    assert rig_process(2) == ["0003", "01"]          # 2 GPOs and a PIN try each, then one more GPO
    assert rig_process(0) == ["0004", "01"]          # the next process: the same card, ATC 4
    assert json.loads((tmp_path / "visa-classic.json").read_text())["apps"]["A0000000031010"][0] == 4
    (tmp_path / "visa-classic.json").write_text("{")
    with pytest.raises(subprocess.CalledProcessError) as e:
        rig_process(0)
    assert "remove the file to start the card afresh" in e.value.stderr


def _gac(c, p1, amount="000000001000", un="11223344"):
    data = cdol1(amount, un)
    return decode(ok(c, apdu("80AE%02X00" % p1, data)))["77"]


def _check_ac(app, r, amount="000000001000", un="11223344", extra=None):
    """The tags of the card's cryptogram, after checking it as its issuer does (pyemv)."""
    tags = cdol1_tags(amount, un)
    tags.update({0x82: bytes.fromhex(app["aip"]), 0x9F36: r["9F36"], 0x9F10: r["9F10"],
                 0x84: bytes.fromhex(app["aid"]), 0x9F26: r["9F26"]})
    tags.update(extra or {})
    assert r["9F26"] == cryptogram.cryptogram(bytes.fromhex(app["imk_ac"]), app["pan"], app["psn"], tags)
    return tags


def _issuer_auth(app, tags, arc=b"00"):
    return cryptogram.issuer_auth(bytes.fromhex(app["imk_ac"]), app["pan"], app["psn"], tags, arc)


def test_offline_tc_within_limits_and_arqc_above():
    app = first_app("visa-classic")
    c = card("visa-classic")
    start(c, pin="1234")
    r = _gac(c, 0x40)
    assert r["9F27"] == b"\x40" and r["9F10"][:4].hex() == "06010a03"  # Visa CVN 10, 4-byte CVR
    assert r["9F10"][4] == 0x14  # first AC TC, offline PIN performed
    _check_ac(app, r)
    assert run(c, apdu("80AE4000", cdol1()))[1] == "6985"
    start(c)
    r = _gac(c, 0x40, amount="000000005001")  # above the card's offline limit: online
    assert r["9F27"] == b"\x80" and r["9F36"] == b"\x00\x02" and r["9F10"][5] & 0x10
    _check_ac(app, r, amount="000000005001")
    start(c)
    assert _gac(c, 0x80)["9F27"] == b"\x80"  # never more than asked
    start(c)
    assert _gac(c, 0x00)["9F27"] == b"\x00"
    assert run(c, apdu("80AE0000", cdol1()))[1] == "6985"  # transaction over
    assert run(c, apdu("80AEC000", cdol1()))[1] == "6A86"  # RFU AC type


def _online(c, app):
    """A new transaction that asks an ARQC: (the GENERATE AC answer, its cryptogram's tags)."""
    start(c)
    r = _gac(c, 0x80)
    return r, _check_ac(app, r)


def test_online_arqc_arpc_second_gac_tc():
    app = first_app("visa-classic")
    c = card("visa-classic")
    r, tags = _online(c, app)
    data = "3030" + _issuer_auth(app, tags).hex() + "0000000000" + "55667788"
    r2 = decode(ok(c, apdu("80AE4000", data)))["77"]
    assert r2["9F27"] == b"\x40" and r2["9F10"][4] >> 6 == 1
    _check_ac(app, r2, un="55667788",
              extra={0x9F37: bytes.fromhex("55667788")})
    assert decode(ok(c, "80CA9F1300"))["9F13"] == r["9F36"]


def test_wrong_arpc_declines_and_external_authenticate():
    app = first_app("visa-classic")
    c = card("visa-classic")
    _online(c, app)
    bad = bytes(8).hex() + "3030"
    assert run(c, apdu("00820000", bad, le=False))[1] == "6300"
    r2 = decode(ok(c, apdu("80AE4000", "3030" + "00" * 10 + "0000000000" + "11223344")))["77"]
    assert r2["9F27"] == b"\x00" and r2["9F10"][4] & 0x08
    r, tags = _online(c, app)
    good = _issuer_auth(app, tags).hex()
    assert run(c, apdu("00820000", good, le=False))[1] == "9000"
    assert run(c, apdu("00820000", good, le=False))[1] == "6985"


def test_internal_authenticate_sdad():
    app = first_app("visa-classic")
    icc = _icc_key(app, _issuer_key(app))
    c = card("visa-classic")
    start(c)
    sdad = decode(ok(c, apdu("00880000", "CAFEBABE")))["80"]
    block = _recover(icc, sdad)
    data, digest = block[1:-21], block[-21:-1]
    assert data[:3] == b"\x05\x01\x09" and data[3] == 0x08
    assert hashlib.sha1(data + bytes.fromhex("CAFEBABE")).digest() == digest
    assert run(card("mastercard-sda"), "00880000020102")[1] in ("6985", "6D00")


def test_cda_signs_tc_and_arqc_in_generate_ac():
    # EMV Book 2 6.6.1, checked here from the layout: the SDAD (format 05) over the terminal's
    # UN; its ICC dynamic data: number length 08, number, CID, AC, transaction data hash code =
    # SHA-1(PDOL data || CDOL1 data [|| CDOL2 data] || the answer's objects but 9F4B).
    app = first_app("visa-cda")
    assert app["aip"] == "3D00"
    icc = _icc_key(app, _issuer_key(app))
    c = card("visa-cda")
    start(c)
    pdol = "".join(v if t != 0x9F66 else "00000000" for t, v in PDOL_TAGS)
    sent = bytes.fromhex(pdol + cdol1())
    raw = ok(c, apdu("80AE9000", cdol1()))  # ARQC, CDA signature requested
    r = decode(raw)["77"]
    assert "9F26" not in r and set(r) == {"9F27", "9F36", "9F10", "9F4B"}
    block = _recover(icc, r["9F4B"])
    n = len(block)
    assert block[1:3] == b"\x05\x01"
    dyn = block[4:4 + block[3]]
    assert hashlib.sha1(block[1:n - 21] + bytes.fromhex("11223344")).digest() == block[n - 21:n - 1]
    assert dyn[0] == 8 and dyn[9] == r["9F27"][0] == 0x80 and len(dyn) == 38
    body = raw[2:raw.index(bytes.fromhex("9F4B"))]  # the objects before 9F4B, as sent
    assert hashlib.sha1(sent + body).digest() == dyn[18:38]
    _check_ac(app, {"9F26": dyn[10:18], "9F36": r["9F36"], "9F10": r["9F10"]})
    # an AAC comes plain; a CDA request to a card without CDA is answered plainly
    start(c)
    assert "9F26" in decode(ok(c, apdu("80AE1000", cdol1())))["77"]  # P1 10: AAC + CDA
    d = card("visa-classic")
    start(d)
    assert "9F4B" not in decode(ok(d, apdu("80AE9000", cdol1())))["77"]


@pytest.mark.parametrize("name", ["cda-plain-ac", "cda-wrong-hash"])
def test_cda_misbehaving_cards(name):
    app = first_app(name)
    c = card(name)
    start(c)
    pdol = "".join(v if t != 0x9F66 else "00000000" for t, v in PDOL_TAGS)
    raw = ok(c, apdu("80AE9000", cdol1()))
    r = decode(raw)["77"]
    if name == "cda-plain-ac":
        assert "9F4B" not in r and "9F26" in r
        return
    dyn = _recover(_icc_key(app, _issuer_key(app)), r["9F4B"])[4:42]
    body = raw[2:raw.index(bytes.fromhex("9F4B"))]
    assert hashlib.sha1(bytes.fromhex(pdol + cdol1()) + body).digest() != dyn[18:38]


def test_mchip_tapped_gpo_then_generate_ac_with_cda():
    # EMV Book C-2: an M/Chip card on the antenna (the rig's PN532 model tells its applet) has
    # no TTQ to go by; its GPO answers AIP and the contactless AFL only, and GENERATE AC follows
    # with CDA as on contact (no PDOL: the hash starts with the CDOL1 data). In the slot it is a
    # contact card.
    from tools.rig.pn532 import DEFAULT_ATS, Card
    app = first_app("mastercard-cda")
    assert (app["aip"], app["pdol"], app["contactless_kernel"]) == ("3D00", "", "mchip")
    c = Card("iso-dep", bytes(4), DEFAULT_ATS, "emv:mastercard-cda#t%d" % next(_fresh), 0x20, 0).applet
    assert c.contactless
    ok(c, apdu("00A40400", "A0000000041010"))
    r = decode(ok(c, apdu("80A80000", "8300")))["77"]
    assert set(r) == {"82", "94"} and (r["82"].hex(), r["94"].hex()) == ("3d00", "1001010118010200")
    raw = ok(c, apdu("80AE9000", cdol1()))
    r = decode(raw)["77"]
    assert set(r) == {"9F27", "9F36", "9F10", "9F4B"} and r["9F27"] == b"\x80"
    assert r["9F10"][1] == 0x10 and r["9F10"][4] & 0x01  # M/Chip CVN 16, CVR byte 3 "contactless"
    dyn = _recover(_icc_key(app, _issuer_key(app)), r["9F4B"])[4:42]
    body = raw[3:raw.index(bytes.fromhex("9F4B"))]  # 77 81 xx: its 18-byte IAD makes it long
    assert raw[1] == 0x81 and hashlib.sha1(bytes.fromhex(cdol1()) + body).digest() == dyn[18:38]
    _check_ac(app, {"9F26": dyn[10:18], "9F36": r["9F36"], "9F10": r["9F10"]})
    d = card("mastercard-cda")  # in the slot
    ok(d, apdu("00A40400", "A0000000041010"))
    assert decode(ok(d, apdu("80A80000", "8300")))["77"]["94"].hex() == "080101001001010118010200"


def test_contactless_gpo_short_path_and_fdda():
    app = first_app("visa-classic")
    icc = _icc_key(app, _issuer_key(app))
    c = card("visa-classic")
    r = decode(start(c, contactless=True))["77"]
    assert r["94"].hex().upper() == "1001010118010200"
    assert r["5A"].hex().upper() == app["pan"] and r["57"].hex().upper().startswith(app["pan"])
    assert r["9F27"] == b"\x80" and r["9F10"][6] & 0x01
    extra = {0x9F66: bytes.fromhex("20000000")}
    _check_ac(app, r, extra=extra)
    block = _recover(icc, r["9F4B"])
    data, digest = block[1:-21], block[-21:-1]
    assert data[:4] == b"\x05\x01\x09\x08"
    tdd = bytes.fromhex("11223344" "000000001000" "0978") + r["9F69"]
    assert r["9F69"][0] == 1 and len(r["9F69"]) == 7
    assert hashlib.sha1(data + tdd).digest() == digest
    assert run(c, apdu("80AE4000", cdol1()))[1] == "6985"


def test_issuer_scripts_block_unblock_pin():
    app = first_app("visa-classic")
    imk_smi, imk_smc = bytes.fromhex(app["imk_smi"]), bytes.fromhex(app["imk_smc"])
    c = card("visa-classic")
    start(c)
    assert run(c, "841E000008" + "00" * 8)[1] == "6985"  # no ARQC yet
    r = _gac(c, 0x80)

    def script(header, data=b""):
        return cryptogram.script_command(imk_smi, app["pan"], app["psn"], r["9F36"],
                                         r["9F26"], bytes.fromhex(header), data).hex()

    # pyemv's MAC as the card checks it: one bit off is refused
    good = script("841E0000")
    assert run(c, good[:-2] + "%02X" % (int(good[-2:], 16) ^ 1))[1] == "6988"
    for _ in range(3):
        run(c, "0020008008241111FFFFFFFFFF")
    assert run(c, "0020008008241234FFFFFFFFFF")[1] == "6983"
    assert run(c, script("84240000"))[1] == "9000"  # PIN unblock
    assert run(c, "0020008008241234FFFFFFFFFF")[1] == "9000"
    pin = cryptogram.script_pin_block(imk_smc, app["pan"], app["psn"], r["9F26"], "9876")
    assert run(c, script("84240002", pin))[1] == "9000"
    assert run(c, "0020008008249876FFFFFFFFFF")[1] == "9000"
    assert run(c, script("841E0000"))[1] == "9000"  # application block
    fci, sw = run(c, apdu("00A40400", "A0000000031010"))
    assert sw == "6283" and decode(fci)["6F"]["84"].hex().upper() == "A0000000031010"
    assert run(c, "80A8000002830000")[1] in ("6985", "6700")
    c.reset()  # a new session, an ARQC to unblock under (the card is still blocked)
    c.state.apps["A0000000031010"].blocked = False
    start(c)
    r = _gac(c, 0x80)
    c.state.apps["A0000000031010"].blocked = True
    assert run(c, script("84180000"))[1] == "9000"
    assert run(c, apdu("00A40400", "A0000000031010"))[1] == "9000"


def test_scripts_use_pyemv_sm_key():
    # the script session key is the common session key with R = ARQC (pyemv's documented use)
    app = first_app("visa-classic")
    mk = cardcrypto.icc_master_key(bytes.fromhex(app["imk_smi"]), app["pan"], app["psn"])
    arqc = bytes.fromhex("1234567890123456")
    assert cardcrypto.session_key(mk, arqc) == kd.derive_common_sk(mk, arqc)
    cmd = bytes.fromhex("841E000008") + b"\x00\x01" + arqc
    assert cardcrypto.mac3(kd.derive_common_sk(mk, arqc), cmd) == \
        sm.generate_command_mac(kd.derive_common_sk(mk, arqc), cmd)


# ---- misbehaving cards ------------------------------------------------------------------------

def test_decline_card_answers_aac():
    c = card("decline")
    app = first_app("decline")
    start(c, pin="1234")
    r = _gac(c, 0x40, amount="000000000100")
    assert r["9F27"] == b"\x00"
    _check_ac(app, r, amount="000000000100")
    assert decode(start(c, contactless=True))["77"]["9F27"] == b"\x00"


def test_blocked_card():
    c = card("blocked")
    fci, sw = run(c, apdu("00A40400", "A0000000031010"))
    assert sw == "6283" and decode(fci)["6F"]["A5"]["50"] == b"VISA"
    assert run(c, "80A8000002830000")[1] == "6985"


def test_expired_card_expiry_in_the_past():
    c = card("expired")
    start(c)
    assert decode(ok(c, "00B2011400"))["70"]["5F24"] == bytes.fromhex("231231")


def test_malformed_tlv_record():
    c = card("malformed-tlv")
    start(c)
    raw = ok(c, "00B2010C00")
    assert raw[1] == len(raw) - 2 and raw.endswith(b"\x9f\x1f\x81")
    with pytest.raises(pyemv_tlv.DecodeError):
        decode(raw)
    decode(ok(c, "00B2011400"))  # the others are well formed


def test_lying_lengths():
    c = card("lying-lengths")
    ok(c, apdu("00A40400", "A0000000031010"))
    r = gpo(c)
    assert r[0] == 0x77 and r[1] == len(r) - 2 + 5
    rec = ok(c, "00B2010C00")
    assert rec[1] == len(rec) - 2 + 16
    for raw in (r, rec):
        with pytest.raises(pyemv_tlv.DecodeError):
            decode(raw)


def test_bank_finds_issuer_keys_by_bin():
    for name in ("visa-classic", "mastercard-sda", "bank-b-debit", "bad-cert"):
        for app in profile(name)["apps"]:
            assert emvcard.issuer_keys(app["pan"])["imk_ac"] == app["imk_ac"]
    assert emvcard.issuer_keys("4000000000000002") is None


def test_cli_makes_a_working_card(tmp_path):
    from tools.emvcard.__main__ import main
    ca, iss, prof = (str(tmp_path / f) for f in ("ca.json", "iss.json", "mine.json"))
    assert main(["ca", "--rid", "A000000003", "--index", "99", "--out", ca]) == 0
    assert main(["issuer", "--ca", ca, "--name", "my-bank", "--bin", "400000", "--out", iss]) == 0
    pan = "400000123456789" + emvcard.perso.luhn("400000123456789")
    assert main(["card", "--issuer", iss, "--name", "mine", "--pan", pan, "--pin", "2468",
                 "--pin-try-limit", "5", "--out", prof]) == 0
    p = json.load(open(prof))
    app = p["apps"][0]
    assert app["pan"] == pan and p["pin_try_limit"] == 5
    icc = _icc_key(app, _issuer_key(app, ca_file=ca))
    assert icc.n == int(app["icc_key"]["modulus"], 16)
    from tools.emvcard.applet import CardState, EmvCard
    c = EmvCard(p, CardState(p))
    start(c, pin="2468")
    assert decode(ok(c, "80CA9F1700"))["9F17"] == b"\x05"
    _check_ac(app, _gac(c, 0x80))
