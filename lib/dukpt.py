"""AES DUKPT, ANSI X9.24-3-2017, the transaction-originating (device) side: AES-128 working
keys from an AES-128 initial key, one KSN per message (tools/bank/PROTOCOL.md, "DUKPT").

    d = Dukpt(vault)
    ksn, pin_key, mac_key = d.next_keys()   the next KSN (12 bytes) and its working keys
                                            (bytearrays: wipe them after use)
    d.ksn()                                 the KSN next_keys() will use next

KSN = initial key id (8 bytes: BDK id 4 + derivation id 4) + transaction counter (4 bytes).
Counters run from 1 and skip every value with more than 16 one bits; after FFFF0000 there is
none: next_keys() raises Exhausted and the device needs a new initial key.

Key registers (the standard's intermediate derivation keys, "future keys"): register i holds
the derivation key of a counter whose lowest one bit is bit i. The derivation key of counter c
is AES(derivation key of c without its lowest one bit, derivation data for c), from the
initial key down. At load the initial key fills all 32 registers (counters 1 << i) and is
gone. Using counter c (lowest one bit p) takes register p, fills registers p-1..0 from it
(counters c | 1 << j: the next ones, if they have 16 one bits at most), erases it. So each
key is at most 32 derivations old and a used key can never be derived again on the device.

Persistence: the vault's "dukpt.ik" entry holds the initial key as provisioned (16 bytes),
then, from the first use on, the state: counter (4 bytes, big-endian; 0 once exhausted) and the
32 registers (16 bytes each, register i at 4 + 16 i). "dukpt.ksn" holds the initial key id
(8 bytes, or a 12-byte KSN with counter 0). next_keys() stores the state past the counter it
uses (Vault.replace_dukpt_state, atomic) BEFORE it derives a working key: a power cut can skip
a counter, never reuse one.
"""

import cryptolib
from micropython import const

# Key usage indicators (X9.24-3-2017 table 2).
USAGE_PIN = const(0x1000)  # PIN encryption
USAGE_MAC = const(0x2002)  # message authentication, both ways
_USAGE_DERIVATION = const(0x8000)  # intermediate derivation key
_ALGORITHM_AES128 = const(0x0002)
_BITS_AES128 = const(0x0080)

_REGISTERS = const(32)
_MAX_ONE_BITS = const(16)
_KEY = const(16)
_STATE = const(4 + _REGISTERS * _KEY)
KSN_LENGTH = const(12)


class DukptError(Exception):
    pass


class Exhausted(DukptError):
    """No transaction counter left: the device must be provisioned with a new initial key."""


class BadState(DukptError):
    """The stored DUKPT state is not one this module wrote (its length or its counter)."""


def _ones(x):
    n = 0
    while x:
        x &= x - 1
        n += 1
    return n


def _lowest_bit(c):
    p = 0
    while not c >> p & 1:
        p += 1
    return p


def derive(key, usage, ikid, counter, out):
    """out = AES(key, derivation data): version 01, key block counter 01, key usage, AES-128,
    128 bits, then the derivation id (the initial key id's last 4 bytes) and the counter."""
    dd = bytearray(16)
    dd[0] = dd[1] = 1
    dd[2], dd[3] = usage >> 8, usage & 0xFF
    dd[4], dd[5] = _ALGORITHM_AES128 >> 8, _ALGORITHM_AES128 & 0xFF
    dd[6], dd[7] = _BITS_AES128 >> 8, _BITS_AES128 & 0xFF
    dd[8:12] = ikid[4:8]
    for i in range(4):
        dd[12 + i] = counter >> (24 - 8 * i) & 0xFF
    cryptolib.aes(key, 1).encrypt(dd, out)


def next_counter(c):
    """The counter after c (c itself excluded): c + 1, or, past a counter with more than 16
    one bits, the next one with 16 at most (adding the lowest one bit clears it and its run).
    1 << 32 when there is none."""
    c += 1
    while _ones(c) > _MAX_ONE_BITS:
        c += 1 << _lowest_bit(c)
    return c


class Dukpt:
    def __init__(self, vault):
        self._vault = vault
        self._ikid = b""
        self._state = bytearray()  # empty until read from the vault

    def _load(self):
        if self._state:
            return self._state
        ksn = self._vault.device_secret("dukpt.ksn")
        if len(ksn) not in (8, KSN_LENGTH) or any(ksn[8:]):
            raise BadState("dukpt.ksn: an initial key id (8 bytes) or a KSN with counter 0")
        self._ikid = bytes(ksn[:8])
        st = self._vault.device_secret("dukpt.ik")
        if len(st) == _KEY:
            st = self._first(st)
        elif len(st) != _STATE:
            raise BadState("dukpt.ik: %d bytes" % len(st))
        self._state = st
        return st

    def _first(self, ik):
        # The registers from the initial key, stored in place of it; ik is wiped.
        st = bytearray(_STATE)
        st[3] = 1
        mv = memoryview(st)
        for i in range(_REGISTERS):
            derive(ik, _USAGE_DERIVATION, self._ikid, 1 << i, mv[4 + _KEY * i:4 + _KEY * (i + 1)])
        for i in range(_KEY):
            ik[i] = 0
        self._vault.replace_dukpt_state(st)
        return st

    def _counter(self):
        st = self._load()
        c = st[0] << 24 | st[1] << 16 | st[2] << 8 | st[3]
        if not c:
            raise Exhausted("DUKPT keys exhausted: the device needs a new initial key")
        return c

    def _ksn(self, c):
        return self._ikid + bytes((c >> 24, c >> 16 & 0xFF, c >> 8 & 0xFF, c & 0xFF))

    def ksn(self):
        return self._ksn(self._counter())

    def _advance(self):
        """(counter, its derivation key), the state already stored past the counter."""
        c = self._counter()
        st = self._state
        p = _lowest_bit(c)
        mv = memoryview(st)
        key = bytearray(mv[4 + _KEY * p:4 + _KEY * (p + 1)])
        if _ones(c) < _MAX_ONE_BITS:
            for j in range(p):
                derive(key, _USAGE_DERIVATION, self._ikid, c | 1 << j, mv[4 + _KEY * j:4 + _KEY * (j + 1)])
        n = next_counter(c)
        if n >> 32:
            n = 0
        for i in range(4 + _KEY * p, 4 + _KEY * (p + 1)):
            st[i] = 0
        st[0:4] = bytes((n >> 24, n >> 16 & 0xFF, n >> 8 & 0xFF, n & 0xFF))
        try:
            self._vault.replace_dukpt_state(st)
        except BaseException:
            # Not stored: forget the RAM state (reread from the vault next time), use nothing.
            for i in range(_STATE):
                st[i] = 0
            self._state = bytearray()
            for i in range(_KEY):
                key[i] = 0
            raise
        return c, key

    def next_keys(self):
        """(ksn, pin_key, mac_key) for the next counter; Exhausted when there is none."""
        c, key = self._advance()
        ksn = self._ksn(c)
        pin_key = bytearray(_KEY)
        mac_key = bytearray(_KEY)
        derive(key, USAGE_PIN, ksn, c, pin_key)
        derive(key, USAGE_MAC, ksn, c, mac_key)
        for i in range(_KEY):
            key[i] = 0
        return ksn, pin_key, mac_key
