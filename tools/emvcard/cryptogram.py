"""The application cryptogram scheme of the test cards, shared by the card applets and the
bank host's HSM (tools/bank/hsm.py), so both sides compute the same thing from one place.

The scheme is EMV Book 2's common one (the "CVN 18" family):
- ICC master key: EMV Option A from the issuer master key, the PAN and the PAN sequence number.
- AC session key: EMV common session key derivation, R = ATC || 00 00 00 00 00 00.
- ARQC, TC, AAC: ISO/IEC 9797-1 MAC algorithm 3 (retail MAC) with padding method 2 over the
  data below, 8 bytes.
- ARPC: method 1, 3DES(session key, ARQC XOR (ARC || 00 * 6)); the card answers ARPC || ARC as
  the issuer authentication data (tag 91, 10 bytes).

Data covered by the cryptogram (EMV Book 2 Table 26, the recommended minimum), in this order:
9F02 amount (6) · 9F03 other amount (6) · 9F1A terminal country (2) · 95 TVR (5) ·
5F2A currency (2) · 9A date (3) · 9C type (1) · 9F37 unpredictable number (4) · 82 AIP (2) ·
9F36 ATC (2) · the card verification results from the IAD (9F10 bytes 3..6: 03 + CVR 3 bytes).
The IAD of the test cards is 06 01 12 03 <CVR 3 bytes>: length, key index 01, CVN 0x12, CVR.
"""

from pyemv import ac, kd, sm

CVN = 0x12
ARQC_TAGS = (0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x82, 0x9F36)


def icc_master_key(imk: bytes, pan: str, psn: str) -> bytes:
    """The card's AC master key (16 bytes) from the issuer master key (Option A)."""
    return kd.derive_icc_mk_a(imk, pan, psn.rjust(2, "0")[-2:])


def session_key(icc_mk: bytes, atc: bytes) -> bytes:
    """The AC session key for an ATC (2 bytes)."""
    return kd.derive_common_sk(icc_mk, bytes(atc) + bytes(6))


def iad(cvr: bytes) -> bytes:
    """The issuer application data (tag 9F10) for 3 bytes of card verification results."""
    return bytes((0x06, 0x01, CVN, 0x03)) + bytes(cvr)


def cryptogram_input(tags: dict) -> bytes:
    """The data the cryptogram covers, from tags {tag (int): value (bytes)} that include
    every tag of ARQC_TAGS and 9F10."""
    missing = [("%X" % t) for t in ARQC_TAGS + (0x9F10,) if t not in tags]
    if missing:
        raise KeyError("cryptogram data lacks tag(s) " + ", ".join(missing))
    data = b"".join(bytes(tags[t]) for t in ARQC_TAGS)
    return data + bytes(tags[0x9F10])[3:7]


def cryptogram(sk: bytes, tags: dict) -> bytes:
    """ARQC, TC or AAC (8 bytes): the same computation, the card's decision tells which."""
    return ac.generate_ac(sk, cryptogram_input(tags), padding_type=ac.PaddingType.EMV)


def arpc(sk: bytes, arqc: bytes, arc: bytes) -> bytes:
    """The issuer's answer cryptogram (8 bytes) for an ARQC and a 2-byte response code."""
    return ac.generate_arpc_1(sk, arqc, arc)


def script_command(imk_smi: bytes, pan: str, psn: str, atc: bytes, arqc: bytes,
                   header: bytes, data: bytes = b"", mac_len: int = 8) -> bytes:
    """An issuer script command (CLA 84) with its secure messaging MAC (EMV Book 2 9.2): the
    MAC key is the common session key of the card's SMI master key with R = ARQC; the MAC
    covers CLA INS P1 P2 Lc || ATC || ARQC || data, and is sent after the data."""
    sk = kd.derive_common_sk(icc_master_key(imk_smi, pan, psn), arqc)
    head = bytes(header) + bytes((len(data) + mac_len,))
    mac = sm.generate_command_mac(sk, head + bytes(atc) + bytes(arqc) + bytes(data), mac_len)
    return head + bytes(data) + mac


def script_pin_block(imk_smc: bytes, pan: str, psn: str, arqc: bytes, pin: str) -> bytes:
    """The enciphered PIN block of a PIN CHANGE script (84 24 00 02): format 2, 3DES under the
    common session key of the card's SMC master key with R = ARQC (one block, no padding)."""
    sk = kd.derive_common_sk(icc_master_key(imk_smc, pan, psn), arqc)
    return sm.encrypt_command_data(sk, sm.format_iso9564_2_pin_block(pin),
                                   sm.EncryptionType.MASTERCARD)
