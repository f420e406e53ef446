"""Offline data authentication (EMV Book 2 sections 5 and 6): SDA, DDA and fDDA.

    ik = oda.recover_issuer_key(ca_key, cert_90, rem_92, exp_9F32, pan_5A, today)  # (modulus, e)
    dac = oda.verify_sda(ik, ssad_93, static)
    icc = oda.recover_icc_key(ik, cert_9F46, rem_9F48, exp_9F47, static, pan_5A, today)
    dyn = oda.verify_dda(icc, sdad_9F4B, ddol_data)      # the ICC dynamic data
    dyn = oda.verify_dda(icc, sdad_9F4B, oda.fdda_terminal_data(un, amount, currency, data_9F69))

A key is (modulus bytes, exponent int); a CaKey (emv.capk) serves as one too. Certificates and
signatures are opened with the public key (pow(x, e, n)) and checked as Book 2 says, in its
order; each failed check raises OdaFailed naming it. `today` is "YYMMDD". The static data to be
authenticated is given by `static_pieces` from the records the AFL names (Book 3 section 10.3),
as views of the records; `static` may be those pieces or the same bytes whole.

ODA runs at a payment's fullest heap (the card's records read, its data held): what it makes
there is views (memoryview) of what it has rather than copies of it, as on a steady unit's
fragmented heap a fresh block of a few hundred bytes may find no hole (the static data whole,
a certificate's recovered bytes sliced for its hash).
"""

import hashlib

from micropython import const

from emv import OdaFailed, TlvError
from emv.capk import stamp
from emv.tlv import walk

_HEADER = const(0x6A)
_TRAILER = const(0xBC)
_PAD = const(0xBB)
_SHA1 = const(0x01)  # hash algorithm indicator
_RSA = const(0x01)  # public key algorithm indicator
_HASH = const(20)
_FORMAT_ISSUER = const(0x02)
_FORMAT_SSAD = const(0x03)
_FORMAT_ICC = const(0x04)
_FORMAT_SDAD = const(0x05)
_AIP = const(0x82)
_RECORD = const(0x70)


def _key(key):
    """(modulus, exponent) of a key tuple or a capk.CaKey."""
    if isinstance(key, tuple):
        return key
    return key.modulus, key.exponent


def recover(key, data, what):
    """RSA with a public key: data (as long as the modulus, below it) raised to the exponent,
    as many bytes as the modulus. OdaFailed naming `what` otherwise. (Also the issuer's update
    packages' signature check, lib/update/package.py.)"""
    modulus, e = _key(key)
    n = len(modulus)
    if len(data) != n:
        raise OdaFailed("%s length %d, key %d" % (what, len(data), n))
    m = int.from_bytes(modulus, "big")
    c = int.from_bytes(data, "big")
    if c >= m:
        raise OdaFailed("%s not below the modulus" % what)
    return pow(c, e, m).to_bytes(n, "big")


def _open(key, data, fmt, what):
    """The recovered data of a certificate/signature: its length must be the modulus's, and the
    header, format and trailer must be right. Returns (recovered bytes, hash object over its
    bytes from the format to the hash)."""
    x = recover(key, data, what)
    n = len(x)
    if x[-1] != _TRAILER:
        raise OdaFailed("%s trailer" % what)
    if x[0] != _HEADER:
        raise OdaFailed("%s header" % what)
    if x[1] != fmt:
        raise OdaFailed("%s format" % what)
    return x, hashlib.sha1(memoryview(x)[1:n - 1 - _HASH])


def _hashed(h, data):
    """h updated with data: bytes, or a list of them (static_pieces)."""
    if isinstance(data, list):
        for piece in data:
            h.update(piece)
    else:
        h.update(data)


def _padded(x, start, end, what):
    """OdaFailed unless x[start:end] is all BB padding."""
    for i in range(start, end):
        if x[i] != _PAD:
            raise OdaFailed("%s padding" % what)


def _check_hash(x, h, what):
    if h.digest() != x[-1 - _HASH:-1]:
        raise OdaFailed("%s hash" % what)


def _digits(b):
    """The digits of a cn/BCD field, its trailing F padding dropped."""
    return b.hex().rstrip("f")


def _check_expiry(mmyy, today, what):
    """A certificate is valid through the last day of its expiry month (MMYY, BCD)."""
    d = mmyy.hex()
    if not d.isdigit() or not 1 <= int(d[:2]) <= 12:
        raise OdaFailed("%s expiry %s" % (what, d))
    if stamp(today) > stamp(d[2:] + d[:2] + "31"):
        raise OdaFailed("%s expired %s" % (what, d))


def _public_key(x, start, length, remainder, what):
    """The public key modulus: length bytes from x[start:] or, when longer than the room up to
    the hash, those leftmost bytes then the remainder; the unused room is BB padding."""
    end = len(x) - 1 - _HASH
    if length <= end - start:
        if remainder:
            raise OdaFailed("%s remainder with a short key" % what)
        _padded(x, start + length, end, what)
        return x[start:start + length]
    if len(remainder) != length - (end - start):
        raise OdaFailed("%s remainder length" % what)
    return x[start:end] + remainder


def _exponent(exponent, length, what):
    if len(exponent) != length or exponent not in (b"\x03", b"\x01\x00\x01"):
        raise OdaFailed("%s exponent" % what)
    return int.from_bytes(exponent, "big")


def _recover_key(key, cert, fmt, id_len, remainder, exponent, static, pan, today, what):
    """Book 2 sections 5.3 and 6.4 share the certificate layout after the subject's identifier
    (id_len bytes: the issuer identifier, or the PAN): expiry MMYY, serial (3), hash and public
    key algorithms, key length, exponent length, then the key. Checked in Book 2's order."""
    remainder = remainder or b""
    x, h = _open(key, cert, fmt, what)
    h.update(remainder)
    h.update(exponent)
    _hashed(h, static)
    _check_hash(x, h, what)
    o = 2 + id_len
    ident, digits = _digits(x[2:o]), _digits(pan)
    if fmt == _FORMAT_ISSUER:  # the PAN's leftmost 3 to 8 digits
        if not 3 <= len(ident) <= 8 or not ident.isdigit() or not digits.startswith(ident):
            raise OdaFailed("issuer identifier")
    elif ident != digits:
        raise OdaFailed("%s PAN" % what)
    _check_expiry(x[o:o + 2], today, what)
    if x[o + 5] != _SHA1 or x[o + 6] != _RSA:
        raise OdaFailed("%s algorithm" % what)
    modulus = _public_key(x, o + 9, x[o + 7], remainder, what)
    return modulus, _exponent(exponent, x[o + 8], what)


def recover_issuer_key(ca_key, cert, remainder, exponent, pan, today):
    """The issuer public key (modulus, exponent) from its certificate (tag 90, format 02), the
    remainder (92, or None), the exponent (9F32), the PAN (5A); Book 2 section 5.3."""
    return _recover_key(ca_key, cert, _FORMAT_ISSUER, 4, remainder, exponent, b"", pan, today,
                        "issuer certificate")


def verify_sda(issuer_key, ssad, static):
    """The data authentication code (2 bytes) of verified signed static application data
    (tag 93, format 03) over the static data to be authenticated; Book 2 section 5.4."""
    what = "SSAD"
    x, h = _open(issuer_key, ssad, _FORMAT_SSAD, what)
    if x[2] != _SHA1:
        raise OdaFailed("%s algorithm" % what)
    _padded(x, 5, len(x) - 1 - _HASH, what)
    _hashed(h, static)
    _check_hash(x, h, what)
    return x[3:5]


def recover_icc_key(issuer_key, cert, remainder, exponent, static, pan, today):
    """The ICC public key (modulus, exponent) from its certificate (tag 9F46, format 04), the
    remainder (9F48, or None), the exponent (9F47), the static data to be authenticated and the
    PAN (5A); Book 2 section 6.4."""
    return _recover_key(issuer_key, cert, _FORMAT_ICC, 10, remainder, exponent, static, pan, today,
                        "ICC certificate")


def verify_dda(icc_key, sdad, terminal_data):
    """The ICC dynamic data of verified signed dynamic application data (tag 9F4B, format 05)
    over the terminal dynamic data (the DDOL's data for DDA; fdda_terminal_data for fDDA);
    Book 2 section 6.5. For DDA and fDDA its first byte is the length of the ICC dynamic
    number that follows."""
    what = "SDAD"
    x, h = _open(icc_key, sdad, _FORMAT_SDAD, what)
    if x[2] != _SHA1:
        raise OdaFailed("%s algorithm" % what)
    ldd = x[3]
    end = len(x) - 1 - _HASH
    if 4 + ldd > end:
        raise OdaFailed("%s dynamic data length" % what)
    _padded(x, 4 + ldd, end, what)
    h.update(terminal_data)
    _check_hash(x, h, what)
    return x[4:4 + ldd]


def fdda_terminal_data(un, amount, currency, card_auth_data):
    """The terminal dynamic data fDDA signs in this project: 9F37 (4) || 9F02 (6) || 5F2A (2)
    || 9F69 (7: version 01, the card's unpredictable number (4), card transaction qualifiers
    (2)), the last from the card's GPO answer."""
    if len(card_auth_data) != 7 or card_auth_data[0] != 0x01:
        raise OdaFailed("card authentication related data")
    if len(un) != 4 or len(amount) != 6 or len(currency) != 2:
        raise OdaFailed("fDDA terminal data lengths")
    return bytes(un) + bytes(amount) + bytes(currency) + bytes(card_auth_data)


def static_pieces(records, aip, sda_tag_list):
    """The static data to be authenticated (Book 3 section 10.3) from the records the AFL
    marks for ODA, [(sfi, record), ...] in AFL order: for SFI 1 to 10 the value of the record's
    70 template (another record fails ODA), for SFI 11 to 30 the whole record; then the AIP if
    the SDA tag list (9F4A, or None) names 82, the only tag it may name. As a list of views of
    the records (and the AIP), in order: what verify_sda and recover_icc_key hash, with no copy
    of them made (see the module's docstring)."""
    out = []
    for sfi, rec in records:
        if sfi <= 10:
            try:
                objs = list(walk(rec))
            except TlvError:
                objs = ()
            if len(objs) != 1 or objs[0][0] != _RECORD:
                raise OdaFailed("record of SFI %d is not a 70 template" % sfi)
            out.append(memoryview(rec)[objs[0][1]:objs[0][2]])
        else:
            out.append(rec)
    if sda_tag_list:
        if bytes(sda_tag_list) != bytes((_AIP,)):
            raise OdaFailed("SDA tag list names %s" % bytes(sda_tag_list).hex())
        out.append(aip)
    return out
