"""The device's payment codec and crypto against host oracles: lib/iso8583 against pyiso8583
with the bank's spec (tools/bank/spec.py), both ways."""

import random

import iso8583
import pytest

from tools.bank.spec import SPEC

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
import iso8583 as _I
def _enc(mti, fields):
    return _I.encode(mti, fields)
def _dec(raw):
    return _I.decode(raw)
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
