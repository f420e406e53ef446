"""What the web simulator's traces may show: PANs masked to their first 6 and last 4 digits,
PIN data never (VERIFY's data, the ISO 8583 PIN block).

A PAN is found two ways, both over-masking rather than under: the digits of every PAN the
simulator knows (the test cards'), wherever they stand in a hex string (BCD: one digit per
nibble, so tag 5A, track 2 in tag 57, DE2, DE35) or as ASCII hex (track 1); and, for any other
card, the value of tag 5A or 57 in an APDU's hex.
"""

import re

# ISO 7816-4 / EMV commands whose data is a PIN: VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER.
PIN_INS = {0x20: "VERIFY", 0x24: "CHANGE REFERENCE DATA", 0x2C: "RESET RETRY COUNTER"}
# Tag 5A (PAN, 5..10 bytes) or 57 (track 2, up to 19 bytes) then its length, then 12..19 digits.
_TAGGED_PAN = re.compile(r"(?i)(5a0[5-9a]|571[0-3]|570[7-9a-f])(\d{12,19})")
# ISO 8583 fields that carry the PAN in the clear (DE2 PAN, DE35 track 2).
PAN_FIELDS = ("2", "35")
PIN_FIELDS = ("52",)


def mask_pan(digits):
    """The first 6 and last 4 digits, stars between (at least 4: a short number shows less)."""
    keep_head = min(6, max(0, len(digits) - 8))
    return digits[:keep_head] + "*" * (len(digits) - keep_head - 4) + digits[-4:]


def mask_text(text, pans=()):
    """text (hex or ASCII) with every known PAN and every tagged PAN masked."""
    for pan in pans:
        if not pan:
            continue
        text = re.sub(re.escape(pan), mask_pan(pan), text, flags=re.I)
        ascii_hex = pan.encode().hex()
        masked = mask_pan(pan)
        text = re.sub(re.escape(ascii_hex), "".join(c.encode().hex() if c != "*" else "**" for c in masked),
                      text, flags=re.I)
    return _TAGGED_PAN.sub(lambda m: m.group(1) + mask_pan(m.group(2)), text)


def apdu_command(hex_apdu, pans=()):
    """A command APDU for display: PIN-carrying commands keep their header, lose their data."""
    raw = bytes.fromhex(hex_apdu)
    if len(raw) >= 4 and raw[1] in PIN_INS:
        lc = raw[4] if len(raw) > 4 else 0
        return "%s [%s data not shown: %d bytes]" % (raw[:5].hex(), PIN_INS[raw[1]], lc)
    return mask_text(hex_apdu, pans)


def iso8583_fields(fields, pans=()):
    """An ISO 8583 message's fields ({"2": "4761...", ...}) for display: PAN fields masked,
    the PIN block replaced by a note, every other value masked for known PANs."""
    out = {}
    for de, value in fields.items():
        de = str(de)
        if de in PIN_FIELDS:
            out[de] = "[PIN block not shown]"
        elif de in PAN_FIELDS:
            digits = re.match(r"\d*", str(value)).group(0)
            out[de] = mask_pan(digits) + str(value)[len(digits):] if len(digits) >= 12 else mask_text(str(value), pans)
        else:
            out[de] = mask_text(str(value), pans)
    return out
