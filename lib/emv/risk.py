"""TVR and TSI bits, processing restrictions, terminal risk management and terminal action
analysis (EMV Book 3 sections 10.4, 10.6, 10.7; the bits: Annex C5, C6). Pure logic over the
card's data ({tag: value}) and the terminal's configuration, so it is tested on its own
(tests/device/test_emv_kernel_unit.py); the kernel does the card commands around it.

A bit is `byte index << 8 | mask`: mark(tvr, EXPIRED) sets byte 2 bit 7 of the TVR.
"""

from micropython import const

# TVR (95), Book 3 Annex C5
ODA_NOT_PERFORMED = const(0x0080)
SDA_FAILED = const(0x0040)
ICC_DATA_MISSING = const(0x0020)
DDA_FAILED = const(0x0008)
CDA_FAILED = const(0x0004)
VERSION_DIFFERS = const(0x0180)
EXPIRED = const(0x0140)
NOT_EFFECTIVE = const(0x0120)
SERVICE_NOT_ALLOWED = const(0x0110)
NEW_CARD = const(0x0108)
CV_FAILED = const(0x0280)  # cardholder verification was not successful
UNRECOGNISED_CVM = const(0x0240)
PIN_TRY_LIMIT = const(0x0220)
PIN_PAD_MISSING = const(0x0210)  # PIN required, PIN pad not present or not working
PIN_NOT_ENTERED = const(0x0208)  # PIN required, PIN pad present, PIN not entered
ONLINE_PIN_ENTERED = const(0x0204)
FLOOR_LIMIT_EXCEEDED = const(0x0380)
LOWER_OFFLINE_LIMIT = const(0x0340)
UPPER_OFFLINE_LIMIT = const(0x0320)
RANDOM_ONLINE = const(0x0310)
ISSUER_AUTH_FAILED = const(0x0440)
SCRIPT_FAILED_BEFORE = const(0x0420)
SCRIPT_FAILED_AFTER = const(0x0410)

# TSI (9B), Book 3 Annex C6
TSI_ODA = const(0x0080)
TSI_CVM = const(0x0040)
TSI_CARD_RISK = const(0x0020)
TSI_ISSUER_AUTH = const(0x0010)
TSI_TERMINAL_RISK = const(0x0008)
TSI_SCRIPT = const(0x0004)

# Cryptogram types: GENERATE AC's P1 and the CID's (9F27) top two bits
AAC = const(0x00)
TC = const(0x40)
ARQC = const(0x80)

# Transaction types (9C)
PURCHASE = const(0x00)
CASH = const(0x01)
CASHBACK = const(0x09)


def mark(buf, bit):
    buf[bit >> 8] |= bit & 0xFF


def marked(buf, bit):
    return bool(buf[bit >> 8] & bit & 0xFF)


def date_key(bcd):
    """A YYMMDD BCD date (3 bytes) as an int YYYYMMDD; years 50-99 are 19xx (Book 3 10.5.3)."""
    v = (bcd[0] >> 4) * 10 + (bcd[0] & 0xF)
    y = v + (1900 if v >= 50 else 2000)
    return y * 10000 + int("%02x%02x" % (bcd[1], bcd[2]))


def restrictions(tvr, card, cfg, today, txn_type):
    """Book 3 10.4: application version, application usage control, effective and expiry dates."""
    v = card.get(0x9F08)
    if v is not None and v != cfg.app_version:
        mark(tvr, VERSION_DIFFERS)
    auc = card.get(0x9F07)
    country = card.get(0x5F28)
    if auc is not None and len(auc) >= 2:
        domestic = country == cfg.country
        if txn_type == CASH:
            need = 0x80 if domestic else 0x40
        elif cfg.services:
            need = 0x08 if domestic else 0x04
        else:
            need = 0x20 if domestic else 0x10
        ok = auc[0] & need and auc[0] & 0x01  # 0x01: valid at terminals other than ATMs
        if txn_type == CASHBACK:
            ok = ok and auc[1] & (0x80 if domestic else 0x40)
        if not ok:
            mark(tvr, SERVICE_NOT_ALLOWED)
    now = date_key(today)
    d = card.get(0x5F25)
    if d is not None and len(d) == 3 and date_key(d) > now:
        mark(tvr, NOT_EFFECTIVE)
    d = card.get(0x5F24)
    if d is not None and len(d) == 3 and date_key(d) < now:
        mark(tvr, EXPIRED)


def random_selected(amount, cfg, rand):
    """Book 3 10.6.2: is this transaction picked for online? rand: 1..99 (the terminal's draw)."""
    if amount >= cfg.floor_limit:
        return False
    if amount < cfg.random_threshold:
        return rand <= cfg.random_target
    # Between the threshold and the floor limit the target percentage rises towards the maximum.
    span = cfg.floor_limit - cfg.random_threshold
    pct = cfg.random_target + (cfg.random_max - cfg.random_target) * (amount - cfg.random_threshold) // span
    return rand <= pct


def velocity(tvr, card, atc, last_online):
    """Book 3 10.6.3 from the ATC and the last online ATC (2-byte values, None when the card
    did not give them). Only when the card has both consecutive offline limits."""
    lower, upper = card.get(0x9F14), card.get(0x9F23)
    if not lower or not upper:
        return
    if atc is None or last_online is None or len(atc) != 2 or len(last_online) != 2:
        mark(tvr, LOWER_OFFLINE_LIMIT)
        mark(tvr, UPPER_OFFLINE_LIMIT)
        return
    a, b = (atc[0] << 8) | atc[1], (last_online[0] << 8) | last_online[1]
    if b == 0:
        mark(tvr, NEW_CARD)
    n = a - b
    if n > lower[0]:
        mark(tvr, LOWER_OFFLINE_LIMIT)
    if n > upper[0]:
        mark(tvr, UPPER_OFFLINE_LIMIT)


def terminal_risk(tvr, amount, cfg, rand):
    """Book 3 10.6.1 and 10.6.2: floor limit and random selection (velocity: velocity())."""
    if amount >= cfg.floor_limit:
        mark(tvr, FLOOR_LIMIT_EXCEEDED)
    elif random_selected(amount, cfg, rand):
        mark(tvr, RANDOM_ONLINE)


_IAC_ABSENT = (b"\x00" * 5, b"\xff" * 5, b"\xff" * 5)  # denial, online, default (Book 3 10.7)


def _hit(tvr, tac, iac):
    for i in range(5):
        if tvr[i] & (tac[i] | iac[i]):
            return True
    return False


def _codes(card, cfg, which):
    iac = card.get((0x9F0E, 0x9F0F, 0x9F0D)[which])
    if iac is None or len(iac) != 5:
        iac = _IAC_ABSENT[which]
    return (cfg.tac_denial, cfg.tac_online, cfg.tac_default)[which], iac


def action(tvr, card, cfg, online):
    """Book 3 10.7: the cryptogram to ask for in the first GENERATE AC (AAC, TC or ARQC).
    online: the terminal can go online now."""
    if _hit(tvr, *_codes(card, cfg, 0)):
        return AAC
    if online:
        return ARQC if _hit(tvr, *_codes(card, cfg, 1)) else TC
    return default_action(tvr, card, cfg)


def default_action(tvr, card, cfg):
    """The default action codes: what an offline-only terminal, or one that could not go online,
    asks for (AAC or TC)."""
    return AAC if _hit(tvr, *_codes(card, cfg, 2)) else TC
