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
_PIECE = const(64)  # bytes seal_to() encrypts, MACs and writes at a time (a multiple of 16)


class TagMismatch(Exception):
    """An authentication tag did not match: wrong key, or altered data."""


def wipe(buf):
    """Overwrite a bytearray (key, PIN) in place."""
    if buf is not None:
        buf[:] = bytes(len(buf))  # same length: copied into place in C, not a byte at a time in bytecode


def equal(a, b):
    """Compare in time independent of where the first difference is."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0


# HMAC's pads (RFC 2104), 64 x 0x36 and 64 x 0x5C written out: literals, frozen into flash with
# the firmware, copied into each pad in C. `b"\x36" * 64` would be built anew (and a concatenation
# after it) at every HMAC: a seal or an unseal makes several.
_IPAD = b"6666666666666666666666666666666666666666666666666666666666666666"
_OPAD = (b"\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\"
         b"\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\")  # 0x5C is a backslash


def _pads(key, extra=0):
    """HMAC's key XOR ipad and XOR opad, each in a bytearray of 64 + extra bytes (room for the
    message after the pad: see pbkdf2_sha256)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    ipad = bytearray(_BLOCK + extra)
    opad = bytearray(_BLOCK + extra)
    ipad[:_BLOCK] = _IPAD
    opad[:_BLOCK] = _OPAD
    for i in range(len(key)):
        ipad[i] ^= key[i]
        opad[i] ^= key[i]
    return ipad, opad


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
    """PBKDF2-HMAC-SHA256 (RFC 8018), one 32-byte block, returned in a bytearray.

    The loop is the PIN check's time on the ESP32, and its bytecode, not the hashing, is most of
    it: each HMAC is one hash of one buffer, the pad with the message copied in after it
    (hashlib has no copy(), so the pads are hashed anew each time whichever way), so an
    iteration is two constructor calls and two digests, where hashing the pad and then update()
    with the message took three calls a hash and a function call (12.3 -> 8.9 ms for 1600
    iterations on the unix port, of which SHA-256 itself 4.2)."""
    inner, outer = _pads(password, KEY_SIZE)  # pad || U, pad || the inner hash
    sha = hashlib.sha256
    try:
        h = sha(memoryview(inner)[:_BLOCK])
        h.update(salt)
        h.update(b"\x00\x00\x00\x01")
        outer[_BLOCK:] = h.digest()
        u = sha(outer).digest()
        # XOR the chain as one big integer: 32 byte-wise XORs per iteration in bytecode would
        # cost more than the two hashes.
        acc = int.from_bytes(u, "big")
        msg, mid = memoryview(inner)[_BLOCK:], memoryview(outer)[_BLOCK:]
        for _ in range(iterations - 1):
            msg[:] = u
            mid[:] = sha(inner).digest()
            u = sha(outer).digest()
            acc ^= int.from_bytes(u, "big")
        return bytearray(acc.to_bytes(KEY_SIZE, "big"))
    finally:
        wipe(inner)
        wipe(outer)


def subkey(key, label):
    """A key for one purpose from a master key: HMAC(key, label), in a bytearray."""
    return bytearray(hmac_sha256(key, label))


def random_bytes(n):
    return bytearray(os.urandom(n))


def seal_to(write, enc_key, mac_key, plaintext, associated):
    """AES-256-CBC (PKCS#7) then HMAC-SHA256 over associated data, IV and ciphertext.

    Hands iv + ciphertext + tag to write() a piece at a time (a store entry goes straight to its
    file) and returns the tag. Each piece is padded and encrypted in place in one small buffer,
    wiped after (write() must be done with a piece when it returns): the sealed entry is never
    whole in memory. Made whole, the DUKPT state sealed
    at every payment (576 bytes) was the block a long run of payments could no longer find on
    a fragmented heap."""
    n = len(plaintext)
    end = n + 16 - n % 16  # the padded length
    piece = bytearray(_PIECE)
    view = memoryview(piece)
    src = memoryview(plaintext)
    try:
        iv = os.urandom(IV_SIZE)
        aes = cryptolib.aes(enc_key, _AES_CBC, iv)  # CBC chains from one encrypt() to the next
        mac = Hmac(mac_key)
        mac.update(associated)
        mac.update(iv)
        write(iv)
        for at in range(0, end, _PIECE):
            m = min(_PIECE, end - at)
            k = max(0, min(m, n - at))  # plaintext bytes in this piece; the rest is padding
            view[:k] = src[at:at + k]
            for i in range(k, m):
                piece[i] = end - n
            part = view if m == _PIECE else view[:m]
            aes.encrypt(part, part)
            mac.update(part)
            write(part)
    finally:
        wipe(piece)  # the plaintext may be in it, not yet encrypted
    tag = mac.digest()
    write(tag)
    return tag


def seal(enc_key, mac_key, plaintext, associated):
    """seal_to()'s iv + ciphertext + tag, in one bytearray."""
    out = bytearray(IV_SIZE + len(plaintext) + 16 - len(plaintext) % 16 + TAG_SIZE)
    at = 0

    def put(piece):
        nonlocal at
        out[at:at + len(piece)] = piece
        at += len(piece)

    seal_to(put, enc_key, mac_key, plaintext, associated)
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
