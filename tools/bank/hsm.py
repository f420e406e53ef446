"""The bank host's HSM: every secret of the bank lives here and nowhere else.

Keys are kept in one JSON file of their own (`<state-dir>/hsm/keys.json`, mode 0600), never in
the ledger database and never in a log line:
- the BDK (AES-128) from which every device's AES DUKPT initial key is derived;
- the PVK (double-length DES) under which Visa PIN verification values are computed;
- the PAN key (HMAC-SHA256), so that the ledger finds a card by a keyed hash of its PAN and
  never holds a full PAN;
- the issuer master keys of the cards (per key id), for ARQC verification and ARPC;
- the storage key (AES-GCM) that seals what the ledger must keep but may not read in clear:
  the first answer of each message for idempotency (a 0210 carries the PAN in DE2).

AES DUKPT (ANSI X9.24-3-2017) is the host side written here over `cryptography`'s AES; the
device has its own MicroPython implementation (lib/dukpt.py) and tests compare both against
the standard's vectors. A clear PIN exists only inside `verify_pin`, as a local str.
"""

import hashlib
import hmac
import json
import os
import secrets
import threading
from pathlib import Path

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psec import pin as psec_pin
from psec import pinblock

from tools.emvcard import cryptogram

# X9.24-3-2017 key usage indicators (table 2) and the AES-128 algorithm/length fields.
KEY_USAGE_PIN = 0x1000
KEY_USAGE_MAC_BOTH = 0x2002
_USAGE_DERIVATION = 0x8000
_USAGE_INITIAL_KEY = 0x8001
_ALGORITHM_AES128 = 0x0002
_LENGTH_AES128 = 0x0080

KSN_LEN = 12
MAC_LEN = 8
PVKI = "1"


class HsmError(Exception):
    """An HSM operation that cannot be done: unknown key, malformed input."""


def _aes_ecb(key, block):
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _derivation_data(usage, data8):
    """X9.24-3 derivation data (16 bytes) for an AES-128 key: version 01, key block counter 01,
    key usage, algorithm, length in bits, then 8 bytes (initial key id, or derivation id +
    transaction counter)."""
    return (bytes((0x01, 0x01)) + usage.to_bytes(2, "big") + _ALGORITHM_AES128.to_bytes(2, "big")
            + _LENGTH_AES128.to_bytes(2, "big") + data8)


def derive_initial_key(bdk, initial_key_id):
    """The initial key a device is loaded with, from the BDK and its 8-byte initial key id."""
    if len(bdk) != 16 or len(initial_key_id) != 8:
        raise HsmError("AES-128 BDK (16 bytes) and an 8-byte initial key id are needed")
    return _aes_ecb(bdk, _derivation_data(_USAGE_INITIAL_KEY, bytes(initial_key_id)))


def split_ksn(ksn):
    """(initial key id 8 bytes, transaction counter int) of a 12-byte KSN."""
    if len(ksn) != KSN_LEN:
        raise HsmError("an AES DUKPT KSN has 12 bytes, not %d" % len(ksn))
    return bytes(ksn[:8]), int.from_bytes(ksn[8:], "big")


def derivation_key(initial_key, initial_key_id, counter):
    """The intermediate derivation key for a transaction counter: one derivation per one bit
    of the counter, from the most significant, starting at the initial key."""
    if counter <= 0 or counter >= 1 << 32:
        raise HsmError("transaction counter out of range")
    key = initial_key
    working = 0
    bit = 1 << 31
    while bit:
        if counter & bit:
            working |= bit
            key = _aes_ecb(key, _derivation_data(_USAGE_DERIVATION,
                                                 initial_key_id[4:] + working.to_bytes(4, "big")))
        bit >>= 1
    return key


def working_key(initial_key, ksn, usage):
    """The working key of a usage (KEY_USAGE_PIN, KEY_USAGE_MAC_BOTH) for a KSN."""
    ikid, counter = split_ksn(ksn)
    dkey = derivation_key(initial_key, ikid, counter)
    return _aes_ecb(dkey, _derivation_data(usage, ikid[4:] + counter.to_bytes(4, "big")))


def aes_cmac(key, data):
    """AES-CMAC (RFC 4493), the full 16 bytes."""
    c = cmac.CMAC(algorithms.AES(key))
    c.update(bytes(data))
    return c.finalize()


class Hsm:
    """The bank's keys and the operations on them. Thread-safe (the host calls it from a pool)."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ik_cache = {}
        keys = json.loads(self.path.read_text())
        self._bdk = bytes.fromhex(keys["bdk"])
        self._pvk = bytes.fromhex(keys["pvk"])
        self._pan_key = bytes.fromhex(keys["pan_key"])
        self._imks = {k: bytes.fromhex(v) for k, v in keys["imk"].items()}
        self._store = AESGCM(bytes.fromhex(keys["store_key"]))

    @classmethod
    def create(cls, path, bdk=None):
        """A new key file with fresh random keys (or the given BDK); refuses to overwrite one."""
        path = Path(path)
        if path.exists():
            raise HsmError("%s exists: the HSM keys are never overwritten" % path)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = {"bdk": (bdk or secrets.token_bytes(16)).hex(), "pvk": secrets.token_bytes(16).hex(),
                "pan_key": secrets.token_bytes(32).hex(),
                "store_key": secrets.token_bytes(16).hex(), "imk": {}}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(keys, f)
        return cls(path)

    def _save(self):
        keys = json.loads(self.path.read_text())
        keys["imk"] = {k: v.hex() for k, v in self._imks.items()}
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(keys, f)
        os.replace(tmp, self.path)

    # ---- DUKPT, MAC, PIN ---------------------------------------------------------------------

    def initial_key(self, initial_key_id):
        """The DUKPT initial key for a device (the factory injects it)."""
        return derive_initial_key(self._bdk, bytes(initial_key_id))

    def _initial_key_cached(self, ikid):
        ik = self._ik_cache.get(ikid)
        if ik is None:
            ik = self._ik_cache[ikid] = self.initial_key(ikid)
        return ik

    def _key(self, ksn, usage):
        ikid, _ = split_ksn(bytes(ksn))
        return working_key(self._initial_key_cached(ikid), bytes(ksn), usage)

    def mac(self, ksn, data):
        """The 8-byte message MAC: AES-CMAC under the "MAC both ways" key of the KSN."""
        return aes_cmac(self._key(ksn, KEY_USAGE_MAC_BOTH), data)[:MAC_LEN]

    def check_mac(self, ksn, data, mac):
        return hmac.compare_digest(self.mac(ksn, data), bytes(mac))

    def pvv(self, pan, pin):
        """The Visa PVV (4 digits) of a PIN for a card: computed once when the card is issued;
        the PIN itself is not kept."""
        return psec_pin.generate_visa_pvv(self._pvk, PVKI, pin, pan)

    def verify_pin(self, ksn, pin_block, pan, pvv):
        """True if the ISO 9564 format 4 PIN block (under the DUKPT PIN key of the KSN) holds the
        PIN whose PVV is pvv. A malformed block (wrong key, bad format) is a wrong PIN."""
        key = self._key(ksn, KEY_USAGE_PIN)
        try:
            clear = pinblock.decipher_pinblock_iso_4(key, bytes(pin_block), pan)
        except ValueError:
            return False
        try:
            ok = len(clear) == 4 and hmac.compare_digest(self.pvv(pan, clear), pvv)
        finally:
            del clear
        return ok

    def pan_hash(self, pan):
        """The ledger's handle for a PAN: HMAC-SHA256 under the HSM's PAN key, hex."""
        return hmac.new(self._pan_key, pan.encode(), hashlib.sha256).hexdigest()

    def seal(self, data, context):
        """data encrypted and authenticated under the storage key, bound to context (bytes)."""
        nonce = secrets.token_bytes(12)
        return nonce + self._store.encrypt(nonce, bytes(data), context)

    def unseal(self, sealed, context):
        return self._store.decrypt(sealed[:12], sealed[12:], context)

    # ---- EMV ---------------------------------------------------------------------------------

    def add_issuer_key(self, key_id, imk):
        """Store an issuer master key (16 bytes) under key_id; the ledger keeps only the id."""
        if len(imk) != 16:
            raise HsmError("an issuer master key has 16 bytes")
        with self._lock:
            if key_id in self._imks and self._imks[key_id] != bytes(imk):
                raise HsmError("issuer key %s exists with another value" % key_id)
            self._imks[key_id] = bytes(imk)
            self._save()

    def _imk(self, key_id):
        imk = self._imks.get(key_id)
        if imk is None:
            raise HsmError("unknown issuer key id %s" % key_id)
        return imk

    def verify_arqc(self, key_id, pan, psn, tags):
        """True if tag 9F26 of tags {tag: value} is the card's ARQC over the other tags, by the
        cryptogram version its issuer application data (9F10) names (Visa CVN 10, 18, 22; M/Chip
        CVN 16, 17: tools/emvcard/cryptogram.py); an IAD of another version does not verify."""
        imk = self._imk(key_id)
        try:
            expected = cryptogram.cryptogram(imk, pan, psn, tags)
        except (KeyError, ValueError, TypeError):  # a tag missing, of a length pyemv refuses,
            return False                           # an unknown version
        return hmac.compare_digest(expected, bytes(tags.get(0x9F26, b"")))

    def arpc(self, key_id, pan, psn, tags, arc):
        """The issuer authentication data (tag 91) for the ARQC in tags, by the card's ARPC
        method: 1, ARPC (8) || ARC (2 ASCII bytes); 2, ARPC (4) || card status update (4), the
        CSU approving when arc does."""
        return cryptogram.issuer_auth(self._imk(key_id), pan, psn, tags, bytes(arc))
