"""The card's own symmetric cryptography, over the `cryptography` package's DES primitives.

Written independently of pyemv on purpose: pyemv (through cryptogram.py) is what the bank's HSM
uses and what the tests compare these functions against, so the two sides are two
implementations of one scheme (EMV Book 2 Annex A):
- ICC master key, Option A (A1.4.1): 3DES(IMK, X || X xor FF..) with X the rightmost 16 digits
  of PAN || PSN, odd parity. Option B (A1.4.2), for a PAN of more than 16 digits: X is 16
  decimal digits of SHA-1(PAN || PSN), the hash's digits first, then its letters a-f as 0-5.
- Common session key (A1.3.1): 3DES(MK, R with byte 2 = F0 || R with byte 2 = 0F), odd parity;
  R is ATC || 00 * 6 for Visa, ATC || 00 00 || UN for M/Chip's session key.
- MAC: ISO/IEC 9797-1 algorithm 3 (DES CBC under the left key, the last block decrypted under
  the right key and encrypted under the left one), padding method 2 (80 00..), or method 1
  (00 up to a whole block, none when whole: Visa's CVN 10).
- ARPC method 1 (8.2.1): 3DES(key, ARQC xor (ARC || 00 * 6)); method 2 (8.2.2): the MAC
  (padding method 2) of ARQC || CSU || proprietary authentication data, 4 bytes.
"""

import hashlib

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes


def _ecb(key, data, decrypt=False):
    key = bytes(key)
    key = key * 3 if len(key) == 8 else key + key[:8] if len(key) == 16 else key  # K1 K2 K3
    cipher = Cipher(TripleDES(key), modes.ECB())
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(bytes(data)) + op.finalize()


def tdes_encrypt(key, data):
    """3DES ECB (a 16-byte key is K1 K2 K1; an 8-byte key is single DES)."""
    return _ecb(key, data)


def tdes_decrypt(key, data):
    return _ecb(key, data, decrypt=True)


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def odd_parity(key):
    """Each byte's low bit set so that the byte has an odd number of one bits."""
    return bytes((b & 0xFE) | ((bin(b >> 1).count("1") + 1) & 1) for b in key)


def icc_master_key(imk, pan, psn, option_b=False):
    """ICC master key from the issuer master key, Option A (or B: the same up to 16 digits of
    PAN). pan, psn: digit strings."""
    digits = pan + psn.rjust(2, "0")[-2:]
    if option_b and len(pan) > 16:
        h = hashlib.sha1(bytes.fromhex(digits.rjust(len(digits) + len(digits) % 2, "0"))).hexdigest()
        x = "".join(c for c in h if c.isdigit()) + "".join(str("abcdef".index(c)) for c in h if not c.isdigit())
        x = bytes.fromhex(x[:16])
    else:
        x = bytes.fromhex(digits[-16:].rjust(16, "0"))
    return odd_parity(tdes_encrypt(imk, x + xor(x, b"\xff" * 8)))


def session_key(mk, r):
    """EMV common session key for the 8-byte diversification value r."""
    if len(mk) != 16 or len(r) != 8:
        raise ValueError("session key derivation takes a 16-byte key and an 8-byte R")
    left = bytearray(r)
    left[2] = 0xF0
    right = bytearray(r)
    right[2] = 0x0F
    return odd_parity(tdes_encrypt(mk, bytes(left) + bytes(right)))


def pad2(data):
    """ISO/IEC 9797-1 padding method 2."""
    data = bytes(data) + b"\x80"
    return data + bytes(-len(data) % 8)


def pad1(data):
    """ISO/IEC 9797-1 padding method 1 (zeros; an empty string is one block)."""
    data = bytes(data)
    return data + bytes(-len(data) % 8 if data else 8)


def mac3(key, data, length=8, pad=pad2):
    """ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 (or `pad`), `length` leftmost
    bytes."""
    kl, kr = bytes(key[:8]), bytes(key[8:16])
    data = pad(data)
    block = bytes(8)
    for i in range(0, len(data), 8):
        block = tdes_encrypt(kl, xor(block, data[i:i + 8]))
    block = tdes_encrypt(kl, tdes_decrypt(kr, block))
    return block[:length]


def arpc1(key, arqc, arc):
    """ARPC method 1 for a 2-byte authorisation response code."""
    return tdes_encrypt(key, xor(arqc, bytes(arc) + bytes(6)))


def arpc2(sk, arqc, csu, proprietary=b""):
    """ARPC method 2 (4 bytes) for a 4-byte card status update and 0-8 bytes of proprietary
    authentication data."""
    if len(csu) != 4 or len(proprietary) > 8:
        raise ValueError("ARPC method 2 takes a 4-byte CSU and 0 to 8 bytes of proprietary data")
    return mac3(sk, bytes(arqc) + bytes(csu) + bytes(proprietary), 4)
