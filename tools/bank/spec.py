"""The pyiso8583 (4.x) spec of the handheld <-> bank protocol: exactly the fields of
tools/bank/PROTOCOL.md, nothing more (a message with any other field fails to encode or decode).

    from tools.bank.spec import SPEC
    raw, _ = iso8583.encode(doc, SPEC); doc, _ = iso8583.decode(raw, SPEC)

MTI and numerics are ASCII, lengths are ASCII digits, the bitmaps are binary (8 bytes each).
Binary fields (52, 53, 55, 64, 72, 128) travel as raw bytes; pyiso8583 shows them as hex strings
(upper case on decode) and max_len counts bytes. The device's codec (lib/iso8583) has the same
table; tests/host/test_uplink_codec.py checks the two against each other.

What pyiso8583 does not do for a host: a bitmap bit (or a dict key) of a field not in this spec
raises KeyError, not DecodeError/EncodeError; and an "ascii" field is not checked to be digits
where PROTOCOL.md says n: a host checks those itself (answer 30, format error).
"""

# DE: (description, data encoding, length prefix digits (0 = fixed), max length)
_FIELDS = {
    2: ("PAN", "ascii", 2, 19),
    3: ("Processing code", "ascii", 0, 6),
    4: ("Amount, transaction", "ascii", 0, 12),
    7: ("Transmission date and time", "ascii", 0, 10),
    11: ("STAN", "ascii", 0, 6),
    12: ("Local time", "ascii", 0, 6),
    13: ("Local date", "ascii", 0, 4),
    14: ("Expiration date", "ascii", 0, 4),
    22: ("POS entry mode", "ascii", 0, 3),
    23: ("Card sequence number", "ascii", 0, 3),
    35: ("Track 2 equivalent data", "ascii", 2, 37),
    37: ("Retrieval reference number", "ascii", 0, 12),
    38: ("Authorization code", "ascii", 0, 6),
    39: ("Response code", "ascii", 0, 2),
    41: ("Terminal id", "ascii", 0, 8),
    42: ("Card acceptor id", "ascii", 0, 15),
    43: ("Card acceptor name", "ascii", 0, 40),
    48: ("Additional data", "ascii", 3, 999),
    49: ("Currency code", "ascii", 0, 3),
    52: ("PIN data", "b", 0, 16),
    53: ("Security control information (KSN)", "b", 2, 48),
    54: ("Additional amounts", "ascii", 3, 120),
    55: ("ICC data", "b", 3, 255),
    64: ("MAC", "b", 0, 8),
    70: ("Network management code", "ascii", 0, 3),
    72: ("Data record", "b", 3, 999),
    90: ("Original data elements", "ascii", 0, 42),
    102: ("Account 1", "ascii", 2, 28),
    103: ("Account 2", "ascii", 2, 28),
    128: ("MAC", "b", 0, 8),
}


def _field(desc, data_enc, len_type, max_len):
    return {"data_enc": data_enc, "len_enc": "ascii", "len_type": len_type, "max_len": max_len,
            "desc": desc}


SPEC = {
    "h": _field("Message header", "ascii", 0, 0),
    "t": _field("Message type", "ascii", 0, 4),
    "p": _field("Bitmap, primary", "b", 0, 8),
    "1": _field("Bitmap, secondary", "b", 0, 8),
}
SPEC.update((str(de), _field(*f)) for de, f in _FIELDS.items())
