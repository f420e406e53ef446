"""The application cryptogram versions of the test cards as the issuer computes them: the bank
host's HSM (tools/bank/hsm.py) checks ARQCs and makes ARPCs here, over pyemv's cryptogram
versions (pyemv.cvn). The cards compute the same with their own implementation
(cardcrypto.py, written apart from pyemv on purpose), and the tests compare both.

A card's profile names its version ("cvn"), each as its network runs it:

| version     | ICC MK | AC key                          | padding | after Table 26       | ARPC         |
|-------------|--------|---------------------------------|---------|----------------------|--------------|
| visa-cvn10  | A      | the ICC MK itself               | 00 (1)  | CVR (IAD bytes 3-6)  | method 1, MK |
| visa-cvn18  | B      | common SK, R = ATC 00 * 6       | 80 (2)  | the whole IAD        | method 2, SK |
| visa-cvn22  | B      | common SK, R = ATC 00 * 6       | 80 (2)  | the whole IAD (fmt 2)| method 2, SK |
| mchip-cvn16 | A      | M/Chip SK, R = ATC 00 00 UN     | 80 (2)  | CVR (6)              | method 1, MK |
| mchip-cvn17 | A      | M/Chip SK, R = ATC 00 00 UN     | 80 (2)  | CVR (6), counters (8)| method 1, MK |

(padding: ISO/IEC 9797-1 method 1 or 2.)

Table 26 (EMV Book 2, the recommended minimum), in this order: 9F02 9F03 9F1A 95 5F2A 9A 9C
9F37 82 9F36. The MAC is ISO/IEC 9797-1 algorithm 3 (8 bytes).

Issuer application data (9F10), by network and format (the first byte tells Visa's):
- Visa format 0/1/3 (VIS 1.5), first byte 06: 06 DKI CVN CVR(4: 03 and 3 bytes) [IDD].
- Visa format 2 (VIS 1.6), first byte 1F, 32 bytes: 1F CVN DKI CVR(5) IDD(24).
- M/Chip 4: DKI CVN CVR(6) DAC/IDN(2) counters(8), 18 bytes (CVN 16 does not MAC the counters).

ARPC method 1 (EMV Book 2 8.2.1): 3DES(key, ARQC xor (ARC || 00 * 6)), tag 91 = ARPC (8) || ARC.
Method 2 (8.2.2): MAC algorithm 3 (80 padding) over ARQC || CSU || proprietary authentication
data (0-8 bytes), 4 bytes; tag 91 = ARPC (4) || CSU (4) || proprietary data. The card status
update (EMV CCD, VIS 1.6) carries the issuer's decision: byte 2 bit 8 "issuer approves".
"""

from pyemv import cvn as pyemv_cvn
from pyemv import kd, sm

VISA_CVN10, VISA_CVN18, VISA_CVN22 = "visa-cvn10", "visa-cvn18", "visa-cvn22"
MCHIP_CVN16, MCHIP_CVN17 = "mchip-cvn16", "mchip-cvn17"
# version -> (the CVN byte in the IAD, Mastercard's IAD layout, ARPC method)
VERSIONS = {VISA_CVN10: (0x0A, False, 1), VISA_CVN18: (0x12, False, 2), VISA_CVN22: (0x22, False, 2),
            MCHIP_CVN16: (0x10, True, 1), MCHIP_CVN17: (0x11, True, 1)}
ARQC_TAGS = (0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x82, 0x9F36)
MASTERCARD_RID = bytes.fromhex("A000000004")
CVR_LENGTH = {VISA_CVN10: 4, VISA_CVN18: 4, VISA_CVN22: 5, MCHIP_CVN16: 6, MCHIP_CVN17: 6}
CSU_APPROVED = 0x80  # card status update byte 2 bit 8: the issuer approves the transaction
_APPROVING_ARCS = (b"00", b"10", b"11")
_PYEMV = {VISA_CVN10: pyemv_cvn.VisaCVN10, VISA_CVN18: pyemv_cvn.VisaCVN18,
          VISA_CVN22: pyemv_cvn.VisaCVN22, MCHIP_CVN16: pyemv_cvn.MasterCardCVN16,
          MCHIP_CVN17: pyemv_cvn.MasterCardCVN17}


def iad(version, cvr, dki=1, counters=bytes(8)):
    """The issuer application data (tag 9F10) a card of `version` sends with its CVR (the
    version's CVR length; Visa format 0/1/3's 4 bytes start with their length, 03)."""
    cvn, mastercard, _ = VERSIONS[version]
    cvr = bytes(cvr)
    if len(cvr) != CVR_LENGTH[version]:
        raise ValueError("%s has a %d-byte CVR" % (version, CVR_LENGTH[version]))
    if mastercard:
        return bytes((dki, cvn)) + cvr + bytes(2) + bytes(counters)
    if version == VISA_CVN22:
        return bytes((0x1F, cvn, dki)) + cvr + bytes(24)
    return bytes((0x06, dki, cvn)) + cvr


def parse_iad(data, mastercard):
    """(version, CVR, counters or b"") of an IAD, by the network's layout. ValueError names
    what does not fit: an unknown CVN, a short IAD."""
    data = bytes(data)
    if mastercard:
        if len(data) < 18:
            raise ValueError("M/Chip IAD of %d bytes" % len(data))
        cvn, cvr, counters = data[1], data[2:8], data[10:18]
    elif data[:1] == b"\x1f":
        if len(data) != 32:
            raise ValueError("Visa IAD format 2 of %d bytes" % len(data))
        cvn, cvr, counters = data[1], data[3:8], b""
    elif data[:1] == b"\x06" and len(data) >= 7:
        cvn, cvr, counters = data[2], data[3:7], b""
    else:
        raise ValueError("Visa IAD %s: neither format 0/1/3 nor 2" % data[:2].hex())
    for version, (c, mc, _) in VERSIONS.items():
        if c == cvn and mc == mastercard:
            return version, cvr, counters
    raise ValueError("CVN %02X is not one this issuer runs" % cvn)


def is_mastercard(tags, pan):
    """Whose IAD layout: the application's RID (tag 84, in DE55), else the PAN's brand."""
    aid = tags.get(0x84)
    if aid:
        return bytes(aid[:5]) == MASTERCARD_RID
    return pan[:1] == "5" or "2221" <= pan[:4] <= "2720"


def version_of(tags, pan):
    """(version, CVR, counters) of the cryptogram in tags {tag: value} (9F10 and 84)."""
    if 0x9F10 not in tags:
        raise KeyError("cryptogram data lacks tag 9F10")
    return parse_iad(tags[0x9F10], is_mastercard(tags, pan))


def _pyemv(version, imk, pan, psn):
    # The HSM holds only the AC master key: the SM keys pyemv also derives are not used here.
    return _PYEMV[version](imk, imk, imk, pan, psn.rjust(2, "0")[-2:])


def cryptogram(imk, pan, psn, tags):
    """The ARQC, TC or AAC (8 bytes) the issuer expects for tags {tag: value}: every tag of
    ARQC_TAGS and 9F10 (and 84, or the PAN, for the network). KeyError for a missing tag,
    ValueError for an IAD this issuer cannot read."""
    version, cvr, counters = version_of(tags, pan)
    missing = ["%X" % t for t in ARQC_TAGS if t not in tags]
    if missing:
        raise KeyError("cryptogram data lacks tag(s) " + ", ".join(missing))
    args = {"tag_%x" % t: bytes(tags[t]) for t in ARQC_TAGS}
    if version in (VISA_CVN18, VISA_CVN22):
        args["tag_9f10"] = bytes(tags[0x9F10])
    else:
        args["cvr"] = cvr
    if version == MCHIP_CVN17:
        args["counters"] = counters
    return _pyemv(version, imk, pan, psn).generate_ac(**args)


def card_status_update(arc):
    """The CSU of ARPC method 2 for a response code: approve or not, nothing else updated."""
    return bytes((0, CSU_APPROVED if bytes(arc) in _APPROVING_ARCS else 0, 0, 0))


def issuer_auth(imk, pan, psn, tags, arc, proprietary=b""):
    """The issuer authentication data (tag 91) answering the ARQC (9F26) in tags for the
    response code arc (2 ASCII bytes), by the card's ARPC method."""
    version, _, _ = version_of(tags, pan)
    scheme = _pyemv(version, imk, pan, psn)
    arqc = bytes(tags[0x9F26])
    if VERSIONS[version][2] == 1:
        return scheme.generate_arpc(arqc, bytes(arc)) + bytes(arc)
    csu = card_status_update(arc)
    return scheme.generate_arpc(arqc, bytes(tags[0x9F36]), csu, proprietary or None) + csu + proprietary


def icc_master_key(imk: bytes, pan: str, psn: str) -> bytes:
    """A card's master key (16 bytes) from an issuer master key, option A: the secure
    messaging keys of every test card (their scripts)."""
    return kd.derive_icc_mk_a(imk, pan, psn.rjust(2, "0")[-2:])


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
