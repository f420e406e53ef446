"""ISO 9564-1 format 4 PIN block (AES), enciphered with the PAN field: DE52 of the bank
messages (tools/bank/PROTOCOL.md), under the DUKPT PIN key of the message's KSN.

    encipher(key, pin, pan) -> bytes (16)
        key: AES-128 key (16 bytes); pin: bytearray of 4..12 ASCII digits (the caller owns
        and wipes it); pan: str of 1..19 digits.

The plain PIN field is 4, the PIN length, the digits, fill A up to nibble 16, then 8 random
bytes (os.urandom). The PAN field is the PAN length minus 12 (0 if shorter), the PAN right-
justified in 12 digits (longer PANs continue), then zeros. The block is E(K, E(K, PIN field)
XOR PAN field). The PIN goes nibble by nibble into one bytearray that is wiped before
returning; no str or bytes ever holds a PIN digit.
"""

import os

import cryptolib
from micropython import const

_BLOCK = const(16)
_CONTROL = const(0x40)  # format 4
_FILL = const(0xA)
PIN_MIN = const(4)
PIN_MAX = const(12)
PAN_MAX = const(19)


class PinBlockError(ValueError):
    """A PIN or PAN the format cannot hold (the message never contains the PIN itself)."""


def _put_nibble(b, k, v):
    if k & 1:
        b[k >> 1] ^= v
    else:
        b[k >> 1] ^= v << 4


def encipher(key, pin, pan):
    n = len(pin)
    if not PIN_MIN <= n <= PIN_MAX or any(c < 0x30 or c > 0x39 for c in pin):
        raise PinBlockError("PIN must be %d to %d digits" % (PIN_MIN, PIN_MAX))
    if not 1 <= len(pan) <= PAN_MAX or any(c < "0" or c > "9" for c in pan):
        raise PinBlockError("PAN must be 1 to %d digits" % PAN_MAX)
    block = bytearray(_BLOCK)
    block[8:] = os.urandom(8)  # the random half: nothing of the PIN in it
    block[0] = _CONTROL | n
    for i in range(2, 16):
        _put_nibble(block, i, pin[i - 2] - 0x30 if i - 2 < n else _FILL)
    aes = cryptolib.aes(key, 1)
    try:
        aes.encrypt(block, block)
        # The PAN field, XORed in place.
        m = len(pan)
        _put_nibble(block, 0, m - 12 if m > 12 else 0)
        k = 1 + max(0, 12 - m)
        for c in pan:
            _put_nibble(block, k, ord(c) - 0x30)
            k += 1
        aes.encrypt(block, block)
        return bytes(block)
    finally:
        for i in range(_BLOCK):
            block[i] = 0
