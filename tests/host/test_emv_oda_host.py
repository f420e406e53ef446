"""lib/emv/oda.py and capk.py on the device against certificates made here, in CPython, from
EMV Book 2 with RSA keys the `cryptography` package generates (e = 3; CA 1152 bits, issuer 1024,
ICC 768): signing is the raw RSA private operation on the formatted block, as an issuer's HSM
does. Good chains recover the exact keys; each way a certificate can be wrong (tampered, wrong
hash, trailer, header, format, PAN, expiry, remainder, padding, CA key missing or expired, a
corrupted CA key file) fails with OdaFailed (CapkError) naming the check.
"""

import hashlib

import pytest

from tools.emvcard.certs import generate

PAN = "4761739001010119"  # cn: padded with F to 10 bytes in the ICC certificate
RID = "A000000003"
TODAY = "261121"
STATIC = bytes.fromhex("5a0847617390010101195f24032912319f0702ff00") + bytes.fromhex("5c00")
DDOL_DATA = bytes.fromhex("0a1b2c3d")  # 9F37, what the default DDOL asks for
DYNAMIC = bytes.fromhex("08") + bytes.fromhex("1122334455667788")  # ICC dynamic number
CARD_AUTH = bytes.fromhex("01" "cafe0001" "8000")  # 9F69: 01, card UN, CTQ


def key(bits):
    """An RSA key, e = 3, from the test cards' generator (cryptography's keys, and 768-bit ones
    that cryptography checks). Only the keys are shared with tools/emvcard: the certificates
    below are laid out here, from Book 2, as an independent oracle for lib/emv/oda.py."""
    k = generate(bits)
    assert k.n.bit_length() == bits and k.e == 3
    return {"n": k.n, "d": k.d, "modulus": k.modulus}


def sign(k, block):
    """The raw RSA private operation: what the card's verifier opens with pow(x, 3, n)."""
    size = len(k["modulus"])
    assert len(block) == size
    return pow(int.from_bytes(block, "big"), k["d"], k["n"]).to_bytes(size, "big")


def seal(k, body, hashed_extra=b"", digest=None, header=0x6A, trailer=0xBC):
    """6A | body | SHA-1(body + hashed_extra) | BC, signed by k."""
    h = digest if digest is not None else hashlib.sha1(body + hashed_extra).digest()
    return sign(k, bytes([header]) + body + h + bytes([trailer]))


def split_key(pk, room):
    """(leftmost part padded with BB to room, remainder) of a public key modulus."""
    if len(pk) <= room:
        return pk + b"\xbb" * (room - len(pk)), b""
    return pk[:room], pk[room:]


def issuer_cert(ca, issuer, iid="476173FF", expiry="1228", **kw):
    room = len(ca["modulus"]) - 36
    left, rem = split_key(issuer["modulus"], room)
    body = bytes.fromhex("02" + iid + expiry + "000001" + "0101") + bytes([len(issuer["modulus"]), 1]) + left
    return seal(ca, body, rem + b"\x03", **kw), rem


def icc_cert(issuer, icc, pan=PAN, expiry="1228", static=STATIC, **kw):
    room = len(issuer["modulus"]) - 42
    left, rem = split_key(icc["modulus"], room)
    body = (bytes.fromhex("04" + pan.ljust(20, "F") + expiry + "000002" + "0101")
            + bytes([len(icc["modulus"]), 1]) + left)
    return seal(issuer, body, rem + b"\x03" + static, **kw), rem


def sdad(icc, dynamic, terminal_data, **kw):
    pad = len(icc["modulus"]) - 25 - len(dynamic)
    body = bytes([0x05, 0x01, len(dynamic)]) + dynamic + b"\xbb" * pad
    return seal(icc, body, terminal_data, **kw)


def ssad(issuer, dac, static, **kw):
    body = bytes([0x03, 0x01]) + dac + b"\xbb" * (len(issuer["modulus"]) - 26)
    return seal(issuer, body, static, **kw)


def capk_entry(ca, index="92", expiry="291231"):
    h = hashlib.sha1(bytes.fromhex(RID + index) + ca["modulus"] + b"\x03").hexdigest()
    return {"rid": RID, "index": index, "modulus": ca["modulus"].hex(), "exponent": "03",
            "expiry": expiry, "checksum": h}


SETUP = """
from emv import oda, capk
def r(f, *a):
    try:
        return ('ok', f(*a))
    except Exception as e:
        return (type(e).__name__, str(e))
"""


@pytest.fixture(scope="module")
def keys():
    return {"ca": key(1152), "issuer": key(1024), "icc": key(768), "short": key(768)}


@pytest.fixture(scope="module")
def dev(device, keys):
    device.exec(SETUP)
    device.exec("store = capk.Store(%r)" % [capk_entry(keys["ca"]), capk_entry(keys["ca"], "93", "251231")])
    device.exec("ik = (%r, 3)\nicc = (%r, 3)" % (keys["issuer"]["modulus"], keys["icc"]["modulus"]))
    return device


def call(dev, fn, *args):
    return dev.eval("r(%s, %s)" % (fn, ", ".join(repr(a) for a in args)))


def issuer(dev, cert, rem, pan=PAN, today=TODAY, exp=b"\x03"):
    return call(dev, "oda.recover_issuer_key", _Raw("store.get(bytes.fromhex(%r), 0x92, %r)" % (RID, today)),
                cert, rem or None, exp, bytes.fromhex(pan), today)


def icc(dev, cert, rem, pan=PAN, static=STATIC, today=TODAY):
    return call(dev, "oda.recover_icc_key", _Raw("ik"), cert, rem or None, b"\x03", static,
                bytes.fromhex(pan), today)


class _Raw(str):
    """An expression passed to the device as is."""

    def __repr__(self):
        return str(self)


def test_good_chain_recovers_the_keys(dev, keys):
    cert, rem = issuer_cert(keys["ca"], keys["issuer"])
    assert len(rem) == 128 - (144 - 36)  # the issuer key does not fit: a remainder (tag 92)
    assert issuer(dev, cert, rem) == ("ok", (keys["issuer"]["modulus"], 3))
    cert, rem = icc_cert(keys["issuer"], keys["icc"])
    assert len(rem) == 96 - (128 - 42)
    assert icc(dev, cert, rem) == ("ok", (keys["icc"]["modulus"], 3))
    # DDA: the ICC dynamic data back, over the DDOL's data.
    sig = sdad(keys["icc"], DYNAMIC, DDOL_DATA)
    assert call(dev, "oda.verify_dda", _Raw("icc"), sig, DDOL_DATA) == ("ok", DYNAMIC)
    assert call(dev, "oda.verify_dda", _Raw("icc"), sig, b"\x0a\x1b\x2c\x3e") == ("OdaFailed", "SDAD hash")


def test_static_data_hashed_in_pieces(dev, keys):
    # The kernel gives the static data as views of the card's records (oda.static_pieces: a 70
    # template's value for SFI 1-10, a whole record for SFI 11-30, then the AIP), not one copy.
    records, aip = [(1, b"\x70\x0c" + STATIC[:12]), (11, STATIC[12:-2])], STATIC[-2:]
    pieces = _Raw("oda.static_pieces(%r, %r, b'\\x82')" % (records, aip))
    assert dev.eval("b''.join(bytes(p) for p in %s)" % pieces) == STATIC
    cert, rem = icc_cert(keys["issuer"], keys["icc"])
    assert icc(dev, cert, rem, static=pieces) == ("ok", (keys["icc"]["modulus"], 3))
    sig = ssad(keys["issuer"], b"\xda\xc1", STATIC)
    assert call(dev, "oda.verify_sda", _Raw("ik"), sig, pieces) == ("ok", b"\xda\xc1")
    records[1] = (11, b"\x00" + STATIC[13:-2])  # one byte of a record other than the card signed
    other = _Raw("oda.static_pieces(%r, %r, b'\\x82')" % (records, aip))
    assert icc(dev, cert, rem, static=other) == ("OdaFailed", "ICC certificate hash")
    assert call(dev, "oda.verify_sda", _Raw("ik"), sig, other) == ("OdaFailed", "SSAD hash")


def test_short_keys_are_padded_and_take_no_remainder(dev, keys):
    # A 768-bit issuer key under the 1152-bit CA: 96 bytes in a room of 108, then BB padding.
    cert, rem = issuer_cert(keys["ca"], keys["short"])
    assert rem == b""
    assert issuer(dev, cert, None) == ("ok", (keys["short"]["modulus"], 3))
    assert issuer(dev, cert, b"\x01" * 12)[0] == "OdaFailed"  # hash covers the remainder


def test_fdda(dev, keys):
    un, amount, currency = bytes.fromhex("0a1b2c3d"), bytes.fromhex("000000001234"), bytes.fromhex("0978")
    data = un + amount + currency + CARD_AUTH  # 9F37 || 9F02 || 5F2A || 9F69
    assert call(dev, "oda.fdda_terminal_data", un, amount, currency, CARD_AUTH) == ("ok", data)
    sig = sdad(keys["icc"], DYNAMIC, data)
    assert call(dev, "oda.verify_dda", _Raw("icc"), sig, data) == ("ok", DYNAMIC)
    # Another amount than the card signed fails.
    other = un + bytes.fromhex("000000001235") + currency + CARD_AUTH
    assert call(dev, "oda.verify_dda", _Raw("icc"), sig, other) == ("OdaFailed", "SDAD hash")
    assert call(dev, "oda.fdda_terminal_data", un, amount, currency, CARD_AUTH[:6])[0] == "OdaFailed"


def test_sda(dev, keys):
    sig = ssad(keys["issuer"], b"\xda\xc1", STATIC)
    assert call(dev, "oda.verify_sda", _Raw("ik"), sig, STATIC) == ("ok", b"\xda\xc1")
    assert call(dev, "oda.verify_sda", _Raw("ik"), sig, STATIC[:-1] + b"\x01") == ("OdaFailed", "SSAD hash")
    # An ICC certificate is not an SSAD.
    cert, _ = icc_cert(keys["issuer"], keys["icc"])
    assert call(dev, "oda.verify_sda", _Raw("ik"), cert, STATIC) == ("OdaFailed", "SSAD format")


def test_issuer_certificate_failures(dev, keys):
    ca, ik = keys["ca"], keys["issuer"]
    cert, rem = issuer_cert(ca, ik)
    tampered = bytearray(cert)
    tampered[40] ^= 0x01
    assert issuer(dev, bytes(tampered), rem)[0] == "OdaFailed"
    assert issuer(dev, cert, rem[:-1] + b"\x00") == ("OdaFailed", "issuer certificate hash")
    assert issuer(dev, cert[1:], rem) == ("OdaFailed", "issuer certificate length 143, key 144")
    bad, rem = issuer_cert(ca, ik, digest=b"\x00" * 20)
    assert issuer(dev, bad, rem) == ("OdaFailed", "issuer certificate hash")
    bad, rem = issuer_cert(ca, ik, trailer=0xBD)
    assert issuer(dev, bad, rem) == ("OdaFailed", "issuer certificate trailer")
    bad, rem = issuer_cert(ca, ik, header=0x6B)
    assert issuer(dev, bad, rem) == ("OdaFailed", "issuer certificate header")
    # The issuer identifier is the PAN's leftmost 3 to 8 digits.
    assert issuer(dev, cert, rem, pan="5761739001010119") == ("OdaFailed", "issuer identifier")
    other, rem2 = issuer_cert(ca, ik, iid="47FFFFFF")
    assert issuer(dev, other, rem2) == ("OdaFailed", "issuer identifier")  # 2 digits
    other, rem2 = issuer_cert(ca, ik, iid="47617390")
    assert issuer(dev, other, rem2)[0] == "ok"  # all 8 digits
    # Valid through the last day of its month, not a day more.
    old, rem2 = issuer_cert(ca, ik, expiry="1126")
    assert issuer(dev, old, rem2, today="261130")[0] == "ok"
    assert issuer(dev, old, rem2, today="261201") == ("OdaFailed", "issuer certificate expired 1126")
    bad, rem2 = issuer_cert(ca, ik, expiry="1326")
    assert issuer(dev, bad, rem2) == ("OdaFailed", "issuer certificate expiry 1326")
    # An ICC certificate signed by the CA is not an issuer certificate.
    wrong, _ = icc_cert(ca, ik)
    assert issuer(dev, wrong, None) == ("OdaFailed", "issuer certificate format")
    assert issuer(dev, cert, rem[:-1]) == ("OdaFailed", "issuer certificate hash")


def test_icc_certificate_failures(dev, keys):
    ik, ck = keys["issuer"], keys["icc"]
    cert, rem = icc_cert(ik, ck)
    assert icc(dev, cert, rem, pan="4761739001010127") == ("OdaFailed", "ICC certificate PAN")
    other, rem2 = icc_cert(ik, ck, pan="47617390010101")  # a shorter PAN is another PAN
    assert icc(dev, other, rem2) == ("OdaFailed", "ICC certificate PAN")
    assert icc(dev, cert, rem, static=STATIC + b"\x00") == ("OdaFailed", "ICC certificate hash")
    old, rem2 = icc_cert(ik, ck, expiry="0924")
    assert icc(dev, old, rem2) == ("OdaFailed", "ICC certificate expired 0924")
    bad, rem2 = icc_cert(ik, ck, trailer=0x00)
    assert icc(dev, bad, rem2) == ("OdaFailed", "ICC certificate trailer")
    # The remainder must make up the key's length exactly.
    assert icc(dev, cert, None) == ("OdaFailed", "ICC certificate hash")


def test_capk_store(dev, keys):
    assert dev.eval("len(store)") == 2
    assert dev.eval("store.get(bytes.fromhex('A0000000031010'), 0x92, '291231').modulus") == keys["ca"]["modulus"]
    assert call(dev, "store.get", bytes.fromhex(RID), 0x99, TODAY) == ("OdaFailed", "no CA key A000000003/99")
    assert call(dev, "store.get", bytes.fromhex("A000000004"), 0x92, TODAY)[0] == "OdaFailed"
    assert dev.eval("store.get(bytes.fromhex(%r), 0x93, '251231').expiry" % RID) == "251231"
    assert call(dev, "store.get", bytes.fromhex(RID), 0x93, TODAY) == (
        "OdaFailed", "CA key A000000003/93 expired 251231")
    # A corrupted entry (one modulus bit) refuses the file.
    e = capk_entry(keys["ca"])
    m = bytearray(keys["ca"]["modulus"])
    m[10] ^= 0x10
    e["modulus"] = m.hex()
    assert call(dev, "capk.Store", [e]) == ("CapkError", "CA key A000000003/92: checksum does not match")
    del e["checksum"]
    assert call(dev, "capk.Store", [e])[0] == "CapkError"
    assert call(dev, "capk.Store", {"rid": RID})[0] == "CapkError"


# ---- CDA (Book 2 6.6.2): lib/emv/cda.py against signatures laid out here -----------------------

AC = bytes.fromhex("0123456789abcdef")
UN = bytes.fromhex("cafef00d")
SENT = bytes.fromhex("00000000" "000000001000" "0276") + bytes.fromhex("000000001000" "0978" "261121")
ANSWER = bytes.fromhex("9f270180" "9f36020007" "9f100706010a03a00000")  # the objects before 9F4B


def cda_answer(keys, cid=0x80, sent=SENT, answer=ANSWER, un=UN, dn=bytes.fromhex("1122334455667788"),
               between=b""):
    """(template value, its objects) of a GENERATE AC answer with CDA: the SDAD's ICC dynamic
    data = number length, number, CID, AC, SHA-1(sent || the answer's objects but 9F4B)."""
    tdhc = hashlib.sha1(sent + answer).digest()
    sig = sdad(keys["icc"], bytes([len(dn)]) + dn + bytes([cid]) + AC + tdhc, un)
    template = answer + between + bytes.fromhex("9f4b81%02x" % len(sig)) + sig
    return template, {0x9F27: b"\x80", 0x9F36: b"\x00\x07", 0x9F10: ANSWER[-7:], 0x9F4B: sig}


def cda(dev, template, got, sent=SENT, un=UN):
    dev.exec("from emv import cda")
    return call(dev, "cda.verify", _Raw("icc"), sent, template, got, un)


def test_cda_verifies_and_gives_the_ac(dev, keys):
    assert cda(dev, *cda_answer(keys)) == ("ok", AC)
    # padding between the objects is no object: the hash does not cover it
    assert cda(dev, *cda_answer(keys, between=b"\x00\x00")) == ("ok", AC)
    # the second GENERATE AC's: the CDOL2's data after the PDOL's and the CDOL1's
    more = SENT + bytes.fromhex("3030" + "00" * 10 + "0000000000" + "cafef00d")
    assert cda(dev, *cda_answer(keys, sent=more), sent=more) == ("ok", AC)


@pytest.mark.parametrize("case, why", [
    ("plain", "a plain AC to a request for CDA"),
    ("hash", "transaction data hash code"),  # the hash over other data than was sent
    ("iad", "transaction data hash code"),  # an object of the answer not the one signed
    ("cid", "SDAD cryptogram information data"),  # signed TC, answered ARQC
    ("un", "SDAD hash"),  # signed over another unpredictable number
    ("dn", "SDAD ICC dynamic data of 31 bytes"),  # a 1-byte ICC dynamic number (2 to 8)
])
def test_cda_failures(dev, keys, case, why):
    template, got = cda_answer(keys, cid=0x40 if case == "cid" else 0x80,
                               sent=SENT[:-1] if case == "hash" else SENT,
                               un=b"\x00" * 4 if case == "un" else UN,
                               dn=b"\x11" if case == "dn" else bytes.fromhex("1122334455667788"))
    if case == "plain":
        del got[0x9F4B]
    if case == "iad":
        template = template.replace(ANSWER[-7:], bytes.fromhex("06010a03a00001"))
    assert cda(dev, template, got) == ("OdaFailed", why)
