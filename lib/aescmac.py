"""AES-CMAC (NIST SP 800-38B, RFC 4493) over cryptolib's AES-ECB: the MAC of every bank
message (tools/bank/PROTOCOL.md, "MAC": the DUKPT key of usage 0x2002, truncated to 8 bytes
by lib/iso8583).

    cmac(key, data) -> bytes (16)       key: 16 bytes (AES-128), data: any buffer

The subkeys and the chaining block live in bytearrays that are wiped before returning; the
message is read in place through a memoryview, so a 4 KB message costs no copy.
"""

import cryptolib
from micropython import const

_BLOCK = const(16)
_RB = const(0x87)  # R_128: the reduction constant of the subkey doubling


def _double(b):
    # b <<= 1 in GF(2^128), in place (RFC 4493 2.3).
    carry = b[0] & 0x80
    for i in range(_BLOCK - 1):
        b[i] = (b[i] << 1 | b[i + 1] >> 7) & 0xFF
    b[_BLOCK - 1] = (b[_BLOCK - 1] << 1) & 0xFF
    if carry:
        b[_BLOCK - 1] ^= _RB


def cmac(key, data):
    aes = cryptolib.aes(key, 1)
    sub = bytearray(_BLOCK)  # L = E(K, 0), then K1, then K2 as needed
    aes.encrypt(sub, sub)
    _double(sub)
    x = bytearray(_BLOCK)
    data = memoryview(data)
    n = len(data)
    last = n - _BLOCK if n and n % _BLOCK == 0 else n - n % _BLOCK
    for off in range(0, last, _BLOCK):
        for i in range(_BLOCK):
            x[i] ^= data[off + i]
        aes.encrypt(x, x)
    tail = n - last
    if tail != _BLOCK:  # incomplete (or empty) last block: pad 10..0, XOR K2
        _double(sub)
        for i in range(tail):
            x[i] ^= data[last + i]
        x[tail] ^= 0x80
    else:
        for i in range(_BLOCK):
            x[i] ^= data[last + i]
    for i in range(_BLOCK):
        x[i] ^= sub[i]
    aes.encrypt(x, x)
    out = bytes(x)
    for i in range(_BLOCK):
        sub[i] = x[i] = 0
    return out
