"""The vault's primitives: HMAC-SHA256, PBKDF2-HMAC-SHA256, AES-256-CBC, and wiping.

Built on hashlib.sha256 and cryptolib.aes, which the ESP32 port runs in hardware. Secrets are
kept in bytearrays so that they can be overwritten; the bytes objects hashlib returns cannot,
and are left to the garbage collector: they never leave these functions.
"""

import hashlib
import os

import cryptolib
from micropython import const

_BLOCK = const(64)  # SHA-256 block size
_AES_CBC = const(2)  # cryptolib.aes mode
KEY_SIZE = const(32)
TAG_SIZE = const(32)
IV_SIZE = const(16)


class TagMismatch(Exception):
    """An authentication tag did not match: wrong key, or altered data."""


def wipe(buf):
    """Overwrite a bytearray (key, PIN) in place."""
    if buf is not None:
        for i in range(len(buf)):
            buf[i] = 0


def equal(a, b):
    """Compare in time independent of where the first difference is."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0


def _pads(key):
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    ipad = bytearray(_BLOCK)
    opad = bytearray(_BLOCK)
    for i in range(len(key)):
        ipad[i] = key[i]
        opad[i] = key[i]
    for i in range(_BLOCK):
        ipad[i] ^= 0x36
        opad[i] ^= 0x5C
    return ipad, opad


def _hmac(ipad, opad, msg):
    inner = hashlib.sha256(ipad)
    inner.update(msg)
    outer = hashlib.sha256(opad)
    outer.update(inner.digest())
    return outer.digest()


class Hmac:
    """HMAC-SHA256 fed in pieces, for a message that is never whole in memory (the store's
    meta: written to flash as it is serialized)."""

    def __init__(self, key):
        ipad, opad = _pads(key)
        try:
            self._inner = hashlib.sha256(ipad)
            self._outer = hashlib.sha256(opad)
        finally:
            wipe(ipad)
            wipe(opad)

    def update(self, data):
        self._inner.update(data)

    def digest(self):
        self._outer.update(self._inner.digest())
        return self._outer.digest()


def hmac_sha256(key, msg):
    mac = Hmac(key)
    mac.update(msg)
    return mac.digest()


def pbkdf2_sha256(password, salt, iterations):
    """PBKDF2-HMAC-SHA256 (RFC 8018), one 32-byte block, returned in a bytearray."""
    ipad, opad = _pads(password)
    try:
        u = _hmac(ipad, opad, salt + b"\x00\x00\x00\x01")
        # XOR the chain as one big integer: 32 byte-wise XORs per iteration in bytecode would
        # cost more than the two hashes.
        acc = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            u = _hmac(ipad, opad, u)
            acc ^= int.from_bytes(u, "big")
        return bytearray(acc.to_bytes(KEY_SIZE, "big"))
    finally:
        wipe(ipad)
        wipe(opad)


def subkey(key, label):
    """A key for one purpose from a master key: HMAC(key, label), in a bytearray."""
    return bytearray(hmac_sha256(key, label))


def random_bytes(n):
    return bytearray(os.urandom(n))


def seal(enc_key, mac_key, plaintext, associated):
    """AES-256-CBC (PKCS#7) then HMAC-SHA256 over associated data, IV and ciphertext.

    Returns iv + ciphertext + tag, a bytearray made in one piece: padded and encrypted in place,
    MAC'd a piece at a time. Made by concatenation it cost five copies of the entry (the DUKPT
    state, 0.5 KB, is sealed at every payment) on a heap that a payment has fragmented."""
    n = len(plaintext)
    pad = 16 - n % 16
    out = bytearray(IV_SIZE + n + pad + TAG_SIZE)
    mv = memoryview(out)
    body = mv[:IV_SIZE + n + pad]
    text = mv[IV_SIZE:IV_SIZE + n + pad]
    try:
        out[:IV_SIZE] = os.urandom(IV_SIZE)
        text[:n] = plaintext
        for i in range(n, n + pad):
            text[i] = pad
        cryptolib.aes(enc_key, _AES_CBC, bytes(body[:IV_SIZE])).encrypt(text, text)
    except BaseException:
        wipe(out)  # the plaintext may be in it, not yet encrypted
        raise
    mac = Hmac(mac_key)
    mac.update(associated)
    mac.update(body)
    mv[IV_SIZE + n + pad:] = mac.digest()
    return out


def tag_of(sealed):
    return sealed[-TAG_SIZE:]


def unseal(enc_key, mac_key, sealed, associated):
    """The plaintext of seal()'s output, in a bytearray; TagMismatch if anything differs."""
    if len(sealed) < IV_SIZE + 16 + TAG_SIZE or (len(sealed) - IV_SIZE - TAG_SIZE) % 16:
        raise TagMismatch("sealed data has a wrong length")
    mv = memoryview(sealed)
    mac = Hmac(mac_key)
    mac.update(associated)
    mac.update(mv[:-TAG_SIZE])  # no copy of the body, nor of associated + body
    if not equal(mac.digest(), mv[-TAG_SIZE:]):
        raise TagMismatch("tag does not match")
    plain = bytearray(len(sealed) - IV_SIZE - TAG_SIZE)
    cryptolib.aes(enc_key, _AES_CBC, bytes(mv[:IV_SIZE])).decrypt(mv[IV_SIZE:-TAG_SIZE], plain)
    pad = plain[-1]
    out = bytearray(memoryview(plain)[:-pad]) if 1 <= pad <= 16 else None
    wipe(plain)
    if out is None:
        raise TagMismatch("bad padding under a valid tag")
    return out
