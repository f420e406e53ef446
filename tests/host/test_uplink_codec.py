"""The device's payment codec and crypto against host oracles: lib/iso8583 against pyiso8583
with the bank's spec (tools/bank/spec.py), both ways; lib/aescmac against `cryptography`'s
CMAC; lib/pinblock against psec; lib/dukpt against the bank HSM's own AES DUKPT
(tools/bank/hsm.py), which also derives the standard's initial key from its BDK; and a MAC'd
message made on either side checked on the other."""

import random

import iso8583
import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms
from psec import pinblock

from tools.bank import hsm
from tools.bank.spec import SPEC

BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
IKID = bytes.fromhex("1234567890123456")
IK = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")

PURCHASE = {
    2: "4761739001010119", 3: "000000", 4: "000000012345", 7: "1121083015", 11: "000123",
    12: "093015", 13: "1121", 14: "2712", 22: "051", 23: "001",
    35: "4761739001010119D27122011143804400000", 41: "PT000001", 42: "MERCHANT0000001",
    49: "978", 52: bytes.fromhex("1f2e3d4c5b6a79880123456789abcdef"),
    53: bytes.fromhex("123456789012345600000001"),
    55: bytes.fromhex("9f2608c2c12b098f3da6e39f2701809f10120110a0000f040000000000000000000000ff"),
}
TRANSFER = {3: "400000", 4: "000000005000", 7: "1121083015", 11: "000124", 41: "PT000001",
            49: "978", 53: bytes(12), 102: "ACC-0001", 103: "ACC-0002"}
ANSWER = {3: "310000", 7: "1121083016", 11: "000125", 37: "000000000777", 39: "00",
          41: "PT000001", 43: "Corner Shop" + " " * 29, 48: "ORD=A-17",
          54: "1002978C000000123456", 90: "0200" + "000123" + "1121083015" + "0" * 22}

ON_DEVICE = """
import sys
if '/tests' not in sys.path: sys.path.append('/tests')
import iso8583 as _I
import dukpt as _D
import pinblock as _P
import test_dukpt
from aescmac import cmac
def _enc(mti, fields):
    return _I.encode(mti, fields)
def _dec(raw):
    return _I.decode(raw)
def _cmac(key, data):
    return cmac(key, data)
def _keys(n):
    # The first n (ksn, pin key, mac key) of a device provisioned with the standard's IK, kept
    # in _K for the host to read a few at a time: the repr of all 40 at once is one string of
    # 7 KB, more than a free block of the board's heap holds.
    global _K
    d = _D.Dukpt(test_dukpt.provisioned())
    _K = [tuple(bytes(x) for x in d.next_keys()) for _ in range(n)]
    return len(_K)
def _catch(f):
    try:
        f()
    except Exception as e:
        return type(e).__name__
def _err(raw):
    try:
        _I.decode(raw)
    except _I.Iso8583Error as e:
        return e.field
"""


@pytest.fixture(scope="module")
def codec(device):
    device.exec(ON_DEVICE)
    return device


def to_pyiso(mti, fields):
    doc = {"t": mti}
    for de, v in fields.items():
        doc[str(de)] = v.hex().upper() if isinstance(v, bytes) else v
    return doc


def from_pyiso(doc):
    fields = {}
    for k, v in doc.items():
        if k in ("t", "p", "1", "h"):
            continue
        fields[int(k)] = bytes.fromhex(v) if SPEC[k]["data_enc"] == "b" else v
    return doc["t"], fields


def test_tables_agree(codec):
    """The device's field table and the bank's spec list the same fields, kinds and lengths."""
    table = codec.eval("_I.FIELDS")
    kinds = {0: "ascii", 1: "ascii", 2: "b"}
    assert {str(de): (kinds[k], n, p) for de, k, n, p in table} == {
        k: (s["data_enc"], s["max_len"], s["len_type"]) for k, s in SPEC.items() if k not in "htp1"}


@pytest.mark.parametrize("mti,fields", [("0200", PURCHASE), ("0200", TRANSFER), ("0610", ANSWER)],
                         ids=["purchase", "transfer", "answer"])
def test_device_and_pyiso8583_encode_alike(codec, mti, fields):
    raw = codec.eval("_enc(%r, %r)" % (mti, fields))
    host, _ = iso8583.encode(to_pyiso(mti, fields), SPEC)
    assert raw == bytes(host)
    doc, _ = iso8583.decode(raw, SPEC)
    assert from_pyiso(doc) == (mti, fields)
    assert tuple(codec.eval("_dec(%r)" % bytes(host))) == (mti, fields)


def test_random_messages_both_ways(codec):
    rnd = random.Random(8583)
    pool = {**PURCHASE, **TRANSFER, **ANSWER}
    for _ in range(12):
        fields = {de: pool[de] for de in rnd.sample(sorted(pool), rnd.randint(1, len(pool)))}
        raw, _ = iso8583.encode(to_pyiso("0200", fields), SPEC)
        assert tuple(codec.eval("_dec(%r)" % bytes(raw))) == ("0200", fields)
        assert codec.eval("_enc('0200', %r)" % fields) == bytes(raw)


def test_both_refuse_a_lying_length(codec):
    raw, _ = iso8583.encode(to_pyiso("0200", TRANSFER), SPEC)
    lie = bytes(raw).replace(b"08ACC-0002", b"09ACC-0002")
    with pytest.raises(iso8583.DecodeError):
        iso8583.decode(lie, SPEC)
    assert codec.eval("_err(%r)" % lie) == 103


def host_cmac(key, data):
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def test_cmac_agrees_with_cryptography(codec):
    rnd = random.Random(4493)
    for n in (0, 1, 15, 16, 17, 31, 32, 33, 64, 300, 4096):
        key, data = rnd.randbytes(16), rnd.randbytes(n)
        # The data sent in pieces: as one literal, 4,096 bytes are ~16 KB of source for the
        # device's compiler, more than a heap that earlier modules have used can always give.
        codec.exec("_B = bytearray()")
        for i in range(0, n, 512):
            codec.exec("_B.extend(%r)" % data[i:i + 512])
        assert codec.eval("_cmac(%r, bytes(_B))" % key) == host_cmac(key, data), n
    codec.exec("del _B")


def test_initial_key_of_the_standard():
    """X9.24-3-2017: BDK FEDCBA98... and initial key id 1234567890123456 give 1273671E...
    (the HSM's derivation; the device never holds a BDK)."""
    assert hsm.derive_initial_key(BDK, IKID) == IK


@pytest.fixture(scope="module")
def device_keys(codec):
    n = codec.eval("_keys(40)", timeout=120)
    return [k for i in range(0, n, 8) for k in codec.eval("_K[%d:%d]" % (i, i + 8))]


def test_dukpt_working_keys_agree_with_the_hsm(device_keys):
    assert [k[0] for k in device_keys] == [IKID + c.to_bytes(4, "big") for c in range(1, 41)]
    for ksn, pin_key, mac_key in device_keys:
        assert pin_key == hsm.working_key(IK, ksn, hsm.KEY_USAGE_PIN)
        assert mac_key == hsm.working_key(IK, ksn, hsm.KEY_USAGE_MAC_BOTH)


def test_pin_block_both_ways(codec, device_keys):
    _, pin_key, _ = device_keys[0]
    for pin, pan in (("1234", "4761739001010119"), ("987654321098", "1234567890"),
                     ("0000", "1234567890123456789")):
        block = codec.eval("_P.encipher(%r, bytearray(%r), %r)" % (pin_key, pin.encode(), pan))
        assert pinblock.decipher_pinblock_iso_4(pin_key, block, pan) == pin
        theirs = pinblock.encipher_pinblock_iso_4(pin_key, pin, pan)
        assert codec.eval("test_dukpt.decipher(%r, %r, %r)[0]" % (pin_key, theirs, pan)) == pin


def test_mac_both_ways(codec, device_keys):
    """A device message MAC'd under its DUKPT MAC key verifies at the HSM, pyiso8583 decodes it;
    the host's answer MAC'd by the HSM verifies on the device; a flipped bit does not."""
    ksn, _, mac_key = device_keys[1]
    fields = {**TRANSFER, 53: ksn}
    raw = codec.eval("_I.with_mac('0200', %r, lambda d: cmac(%r, d))" % (fields, mac_key))
    assert hsm.aes_cmac(hsm.working_key(IK, ksn, hsm.KEY_USAGE_MAC_BOTH), raw[:-8])[:8] == raw[-8:]
    doc, _ = iso8583.decode(raw, SPEC)
    assert doc["128"] == raw[-8:].hex().upper()
    answer = {"t": "0210", "3": "400000", "11": "000124", "37": "000000000778", "39": "00",
              "41": "PT000001", "53": ksn.hex(), "128": "00" * 8}
    host, _ = iso8583.encode(answer, SPEC)
    host = bytes(host[:-8]) + hsm.aes_cmac(hsm.working_key(IK, ksn, hsm.KEY_USAGE_MAC_BOTH), host[:-8])[:8]
    check = "_I.verify(%r, lambda d: cmac(%r, d))"
    assert codec.eval(check % (host, mac_key))[1][39] == "00"
    bad = bytearray(host)
    bad[-12] ^= 0x01
    assert codec.eval("_catch(lambda: %s)" % (check % (bytes(bad), mac_key))) == "BadMac"
