"""The card's own symmetric cryptography, over the `cryptography` package's DES primitives.

Written independently of pyemv on purpose: pyemv (through cryptogram.py) is what the bank's HSM
uses and what the tests compare these functions against, so the two sides are two
implementations of one scheme (EMV Book 2 Annex A):
- ICC master key, Option A (A1.4.1): 3DES(IMK, X || X xor FF..) with X the rightmost 16 digits
  of PAN || PSN, odd parity.
- Common session key (A1.3.1): 3DES(MK, R with byte 2 = F0 || R with byte 2 = 0F), odd parity.
- MAC: ISO/IEC 9797-1 algorithm 3 (DES CBC under the left key, the last block decrypted under
  the right key and encrypted under the left one), padding method 2 (80 00..).
- ARPC method 1 (8.2.1): 3DES(SK, ARQC xor (ARC || 00 * 6)).
"""

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


def icc_master_key(imk, pan, psn):
    """ICC master key from the issuer master key, Option A. pan, psn: digit strings."""
    x = bytes.fromhex((pan + psn.rjust(2, "0")[-2:])[-16:].rjust(16, "0"))
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


def mac3(key, data, length=8):
    """ISO/IEC 9797-1 MAC algorithm 3 with padding method 2, `length` leftmost bytes."""
    kl, kr = bytes(key[:8]), bytes(key[8:16])
    data = pad2(data)
    block = bytes(8)
    for i in range(0, len(data), 8):
        block = tdes_encrypt(kl, xor(block, data[i:i + 8]))
    block = tdes_encrypt(kl, tdes_decrypt(kr, block))
    return block[:length]


def arpc1(sk, arqc, arc):
    """ARPC method 1 for a 2-byte authorisation response code."""
    return tdes_encrypt(sk, xor(arqc, bytes(arc) + bytes(6)))
