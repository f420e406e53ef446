"""The vault: the terminal's small secure state machine for its PIN, keys and certificates.

    FACTORY --provision, finish_provisioning--> PROVISIONED --set_pin--> PERSONALIZED
    PERSONALIZED --N wrong PINs--> BLOCKED --issuer-signed unblock--> PROVISIONED
    any (but a locked PERSONALIZED) --wipe--> WIPED --reinitialize--> FACTORY

Within PERSONALIZED the vault is locked or unlocked: unlocked holds the owner's data key in RAM
(PIN, or fingerprint while the policy allows), lock() drops it. Every operation checks the
state first and raises WrongState (or Locked) before it changes anything.

Keys: provisioning secrets are sealed under keys from the device secret ("device" domain); the
owner's entries under a random data key ("owner" domain), which is stored only wrapped: under
a key derived from the PIN and the device secret (PBKDF2-HMAC-SHA256), and, for fingerprint
unlock, under a device key, a wrap the vault destroys as soon as the fingerprint policy
no longer allows it. The PIN itself is never stored.

PINs are passed in bytearrays and never copied into immutable objects; the caller owns the
buffer (vault.session wipes it after use). Nothing secret is printed, logged or put in an
exception message: messages name states, entries and counts, never values.

Files and their atomicity: vault.store. Sessions, idle lock and resuming: vault.session.
"""

import os
import time

from micropython import const

from vault import crypto
from vault.store import DEVICE, OWNER, Store, Tampered

FACTORY = "FACTORY"
PROVISIONED = "PROVISIONED"
PERSONALIZED = "PERSONALIZED"
BLOCKED = "BLOCKED"
WIPED = "WIPED"

# PBKDF2 iterations for the PIN key: ~0.5 s on the ESP32 model (`python -m tools.bench flows
# --flows unlock`, tools/flowbench.py), where an iteration is ~1.6 ms in a PIN check: two SHA-256
# digests (160 us in the accelerator) and the loop's bytecode with the collections its
# allocations cause on the app's heap (~8 us here, x the pystone ratio). 1600, sized on the
# 64-bit port outside the app, were 2.6 s of a 4.4 s unlock. The wrap records its count: a
# store wrapped under another count opens as before, and is wrapped anew under this one at its
# next right PIN (verify_pin).
PIN_ITERATIONS = const(300)
PIN_MIN_LENGTH = const(4)
PIN_MAX_LENGTH = const(12)
# Wrong PINs without delay; after them each attempt waits delay_ms, doubling, up to MAX_DELAY_MS.
FREE_ATTEMPTS = const(3)
MAX_DELAY_MS = const(60_000)

# What the vault keeps for the owner, at most (issue 16: every store has a cap, and the firmware
# is measured with each at it). FINGERPRINTS: one per finger of two hands; the ids live in meta,
# which is in RAM and rewritten whole at every commit. ACCOUNTS: each bound account is a sealed
# entry whose meta index row (~170 bytes) stays in RAM for good, and Balance and Transfer unseal
# every one (terminal.accounts.bound); 8 covers a household's current, savings and card
# accounts with payees besides.
FINGERPRINTS = const(10)
ACCOUNTS = const(8)

# What the issuer sets at provisioning; these are the defaults.
DEFAULT_POLICY = {
    "max_fails": 10,  # wrong PINs in a row that block the vault
    "delay_ms": 1000,  # first delay after FREE_ATTEMPTS wrong PINs
    "fp_window_s": 72 * 3600,  # fingerprint unlock only this long after the last PIN
    "fp_max_fails": 5,  # consecutive fingerprint failures that require the PIN
    "idle_s": 60,  # an unlocked session locks after this long without activity
}
# The idle locks the owner may choose (Settings > Lock timeout), seconds; the rest of the policy
# (fail limits, the fingerprint window) is the issuer's, set in the factory and changed in the
# field by its signed terminal parameters (issuer_policy: within ISSUER_LIMITS).
IDLE_CHOICES_S = (30, 60, 120, 300)

# The issuer's settings and the range each may take in the field: never fewer wrong PINs than
# the free ones, never a delay past MAX_DELAY_MS, a fingerprint window of at most 30 days.
ISSUER_LIMITS = (("max_fails", FREE_ATTEMPTS + 1, 20), ("delay_ms", 0, MAX_DELAY_MS),
                 ("fp_window_s", 0, 30 * 86400), ("fp_max_fails", 1, 10))


def issuer_settings(settings):
    """ValueError unless settings (a dict) are the issuer's (ISSUER_LIMITS), ints within range."""
    if not isinstance(settings, dict):
        raise ValueError("the lock policy is an object")
    for key in settings:
        for name, low, high in ISSUER_LIMITS:
            if name == key:
                value = settings[key]
                if not isinstance(value, int) or not low <= value <= high:
                    raise ValueError("lock policy %s=%r: not %d..%d" % (key, value, low, high))
                break
        else:
            raise ValueError("no issuer lock policy setting %s" % key)


# What provisioning must inject before the vault is PROVISIONED. issuer.update: the public key
# the issuer's update packages are signed with (lib/update/package.py).
PROVISIONING_ITEMS = ("device.key", "device.cert", "issuer.ca", "dukpt.ik", "dukpt.ksn", "issuer.unblock",
                      "issuer.update")
UNBLOCK_LABEL = b"PT-UNBLOCK-1"


class VaultError(Exception):
    pass


class WrongState(VaultError):
    pass


class Locked(VaultError):
    """The operation needs the owner: unlock first."""


class WrongPin(VaultError):
    def __init__(self, attempts_left):
        super().__init__("wrong PIN, %d attempts left" % attempts_left)
        self.attempts_left = attempts_left


class Blocked(VaultError):
    """Too many wrong PINs: the PIN secrets are gone; only the issuer can unblock."""


class PinRequired(VaultError):
    """Fingerprint unlock is not allowed now (policy): the PIN is needed."""


class Refused(VaultError):
    """An unblock message that does not authenticate (forged, or replayed)."""


class Full(VaultError):
    """The owner already has as many fingerprints (FINGERPRINTS) or bound accounts (ACCOUNTS)
    as the vault keeps: remove one first."""


def _check_pin_format(pin):
    if not PIN_MIN_LENGTH <= len(pin) <= PIN_MAX_LENGTH or any(not 0x30 <= c <= 0x39 for c in pin):
        raise ValueError("a PIN is %d to %d digits" % (PIN_MIN_LENGTH, PIN_MAX_LENGTH))


class Vault:
    def __init__(self, store=None, clock=time.time, sleep_ms=time.sleep_ms):
        self.store = store or Store()
        self.clock = clock  # seconds, for the fingerprint window
        self.sleep_ms = sleep_ms
        self.data_key = None  # the owner's data key while unlocked (bytearray)
        self._fp_counted = False  # a fingerprint attempt is on flash, its sensor answer not used yet
        self._pin_due = None  # ticks_ms from which the PIN attempt counted may be checked

    def open(self):
        """Open the store (creating it, in FACTORY, on a blank device). Raises Tampered."""
        self.lock()
        status = self.store.open()
        if status == "empty":
            self._create()
        elif status == "ready" and self.meta["state"] == PERSONALIZED and self.meta["fails"] >= self.policy["max_fails"]:
            # The power failed between the last allowed wrong PIN and the block: finish it.
            self._block()
        return self

    def _create(self):
        self.store.create({"state": FACTORY, "fails": 0, "fp_fails": 0, "pin_at": 0, "pin": None, "fp_wrap": None,
                           "fingers": [], "challenge": None, "policy": dict(DEFAULT_POLICY)})

    # ---- state -----------------------------------------------------------------------------

    @property
    def meta(self):
        return self.store.meta

    @property
    def state(self):
        return WIPED if self.store.status == "wiped" else self.meta["state"]

    @property
    def policy(self):
        return self.meta["policy"]

    @property
    def unlocked(self):
        return self.data_key is not None

    @property
    def attempts_left(self):
        return self.policy["max_fails"] - self.meta["fails"]

    def _require(self, operation, *states):
        if self.state not in states:
            raise WrongState("%s needs %s; the vault is %s" % (operation, " or ".join(states), self.state))

    def _require_unlocked(self, operation):
        self._require(operation, PERSONALIZED)
        if not self.unlocked:
            raise Locked("%s needs the owner: the vault is locked" % operation)

    # ---- factory -----------------------------------------------------------------------------

    def set_policy(self, **settings):
        self._require("set_policy", FACTORY)
        unknown = [k for k in settings if k not in DEFAULT_POLICY]
        if unknown:
            raise ValueError("no policy setting %s" % ", ".join(unknown))
        self.policy.update(settings)
        self.store.commit()

    def issuer_policy(self, settings):
        """The issuer's lock policy from its signed terminal parameters (update.config): the
        settings that differ, in one commit; True if any did. A limit lowered below the wrong
        PINs already counted blocks the vault at its next open (as a block a power cut left)."""
        self._require("issuer_policy", PROVISIONED, PERSONALIZED, BLOCKED)
        issuer_settings(settings)
        changed = [k for k in settings if self.policy.get(k) != settings[k]]
        for k in changed:
            self.policy[k] = settings[k]
        if changed:
            self.store.commit()
        return bool(changed)

    def set_idle(self, seconds):
        """The owner's choice of idle lock, one of IDLE_CHOICES_S (needs the owner unlocked)."""
        self._require_unlocked("set_idle")
        if seconds not in IDLE_CHOICES_S:
            raise ValueError("idle lock %r s is not one of %s" % (seconds, IDLE_CHOICES_S))
        self.policy["idle_s"] = seconds
        self.store.commit()

    def provision(self, item, data):
        """Inject one provisioning secret (PROVISIONING_ITEMS) in the factory."""
        self._require("provision", FACTORY)
        if item not in PROVISIONING_ITEMS:
            raise ValueError("no provisioning item %s (%s)" % (item, ", ".join(PROVISIONING_ITEMS)))
        self.store.put(item, DEVICE, data)

    def finish_provisioning(self):
        self._require("finish_provisioning", FACTORY)
        missing = [i for i in PROVISIONING_ITEMS if i not in self.meta["index"]]
        if missing:
            raise WrongState("provisioning is missing %s" % ", ".join(missing))
        self.meta["state"] = PROVISIONED
        self.store.commit()

    def provision_all(self, items):
        """Inject every provisioning secret and become PROVISIONED in ONE commit (the factory
        line's tool, tools/provision): items maps each of PROVISIONING_ITEMS to its bytes.

        Each entry is sealed to its .new file first; a single meta then records them all and
        the PROVISIONED state; then the files are renamed into place. A power cut before that
        meta leaves FACTORY without any secret (open() drops the .new files meta never
        recorded); after it, PROVISIONED with all of them (open() finishes the renames)."""
        self._require("provision_all", FACTORY)
        if sorted(items) != sorted(PROVISIONING_ITEMS) or self.meta["index"]:
            raise WrongState("provision_all takes exactly %s, on a vault holding none" % ", ".join(PROVISIONING_ITEMS))
        store = self.store
        for item in PROVISIONING_ITEMS:
            self.meta["index"][item] = [DEVICE, 1, store.write_new(item, DEVICE, 1, items[item])]
        self.meta["state"] = PROVISIONED
        store.commit()
        for item in PROVISIONING_ITEMS:
            os.rename(store._path("e." + item + ".new"), store._path("e." + item))

    def device_secret(self, item):
        """A provisioning secret (bytearray: wipe it after use)."""
        self._require("device_secret", PROVISIONED, PERSONALIZED, BLOCKED)
        return self.store.get(item)

    def replace_dukpt_state(self, data):
        """Put lib/dukpt's state (key registers and counter) in place of "dukpt.ik", atomically
        like every store put. The one device secret that changes after provisioning: DUKPT
        stores its counter past a key before it uses that key."""
        self._require("replace_dukpt_state", PROVISIONED, PERSONALIZED)
        self.store.put("dukpt.ik", DEVICE, data)

    # ---- PIN -------------------------------------------------------------------------------

    def _pin_key(self, pin, salt, iterations):
        # PBKDF2 over the PIN bound to this device: without the device secret the wrap cannot
        # even be attacked offline. Every copy of the PIN here is a bytearray, wiped after.
        labelled = bytearray(b"pin\x00")
        labelled.extend(pin)
        password = crypto.subkey(self.store._secret, labelled)
        try:
            return crypto.pbkdf2_sha256(password, salt, iterations)
        finally:
            crypto.wipe(labelled)
            crypto.wipe(password)

    @staticmethod
    def _wrap_keys(key):
        return crypto.subkey(key, b"wrap-enc"), crypto.subkey(key, b"wrap-mac")

    def _wrap(self, key, material):
        enc, mac = self._wrap_keys(key)
        try:
            return crypto.seal(enc, mac, material, b"data key").hex()
        finally:
            crypto.wipe(enc)
            crypto.wipe(mac)

    def _unwrap(self, key, wrapped):
        enc, mac = self._wrap_keys(key)
        try:
            return crypto.unseal(enc, mac, bytes.fromhex(wrapped), b"data key")
        finally:
            crypto.wipe(enc)
            crypto.wipe(mac)

    def _wrap_under_pin(self, pin, data_key):
        salt = crypto.random_bytes(16)
        key = self._pin_key(pin, salt, PIN_ITERATIONS)
        try:
            return {"salt": salt.hex(), "iter": PIN_ITERATIONS, "wrap": self._wrap(key, data_key)}
        finally:
            crypto.wipe(key)

    def _fingerprint_key(self):
        return crypto.subkey(self.store._secret, b"fingerprint wrap")

    def _unlocked_with(self, data_key):
        """Record a successful PIN: counters reset, fingerprint wrap renewed; then unlock."""
        self.meta["fails"] = 0
        self.meta["fp_fails"] = 0
        self.meta["pin_at"] = int(self.clock())
        fp_key = self._fingerprint_key()
        try:
            self.meta["fp_wrap"] = self._wrap(fp_key, data_key)
        finally:
            crypto.wipe(fp_key)
        self.store.commit()
        self._unlock(data_key)

    def _unlock(self, data_key):
        self.lock()
        self.data_key = data_key
        self.store.set_domain_key(OWNER, data_key)

    def lock(self):
        """Forget the owner's data key (the session is LOCKED)."""
        self.store.drop_domain_key(OWNER)
        crypto.wipe(self.data_key)
        self.data_key = None

    def set_pin(self, pin):
        """The owner's first PIN: PROVISIONED -> PERSONALIZED, and unlocked."""
        self._require("set_pin", PROVISIONED)
        _check_pin_format(pin)
        data_key = crypto.random_bytes(crypto.KEY_SIZE)
        self.meta["pin"] = self._wrap_under_pin(pin, data_key)
        self.meta["state"] = PERSONALIZED
        self._unlocked_with(data_key)

    def delay_ms(self, fails):
        """How long an attempt waits after `fails` wrong PINs in a row."""
        if fails < FREE_ATTEMPTS:
            return 0
        return min(self.policy["delay_ms"] << min(fails - FREE_ATTEMPTS, 16), MAX_DELAY_MS)

    def verify_pin(self, pin):
        """Check the PIN and unlock. WrongPin (attempts left), or Blocked on the last one. The
        wrong-PIN delay is slept here (sleep_ms): the app spends it in its event loop instead
        (count_pin_attempt, then check_pin)."""
        self.sleep_ms(self.count_pin_attempt(pin))
        self._pin_due = None
        self._check_pin(pin)

    def count_pin_attempt(self, pin):
        """A PIN check's first half: the attempt counted, on flash and read back, BEFORE the
        PIN is checked (cutting the power once the answer is known can no longer undo the
        count). Returns the ms to wait before check_pin: the delay after wrong PINs in a row,
        which the caller spends where the owner sees it. Slept in here it froze the app, and
        from the 7th wrong PIN (8 s and more) outlasted the board's watchdog, which reset the
        unit before the PIN was checked: every later attempt counted, none checked."""
        self._require("verify_pin", PERSONALIZED)
        _check_pin_format(pin)
        fails = self.meta["fails"]
        self.meta["fails"] = fails + 1
        self.store.commit()
        if not self.store.committed():
            raise VaultError("the PIN fail counter did not reach the flash: no PIN check")
        delay = self.delay_ms(fails)
        self._pin_due = time.ticks_add(time.ticks_ms(), delay)
        return delay

    def check_pin(self, pin):
        """A PIN check's second half, once count_pin_attempt's delay is over: unlock, WrongPin
        or Blocked. WrongState before that (the attempt stays counted)."""
        self._require("verify_pin", PERSONALIZED)
        due, self._pin_due = self._pin_due, None
        if due is None or time.ticks_diff(due, time.ticks_ms()) > 0:
            raise WrongState("a PIN is checked once its attempt is counted and its delay is over")
        self._check_pin(pin)

    def _check_pin(self, pin):
        wrapped = self.meta["pin"]
        key = self._pin_key(pin, bytes.fromhex(wrapped["salt"]), wrapped["iter"])
        try:
            data_key = self._unwrap(key, wrapped["wrap"])
        except crypto.TagMismatch:
            if self.meta["fails"] >= self.policy["max_fails"]:
                self._block()
                raise Blocked("too many wrong PINs: the vault is blocked")
            raise WrongPin(self.attempts_left)
        finally:
            crypto.wipe(key)
        if wrapped["iter"] != PIN_ITERATIONS:  # committed with the unlock below
            self.meta["pin"] = self._wrap_under_pin(pin, data_key)
        self._unlocked_with(data_key)

    def change_pin(self, old, new):
        """Verify the old PIN (it counts as an attempt), then wrap the data key under the new."""
        self._require("change_pin", PERSONALIZED)
        _check_pin_format(new)
        self.verify_pin(old)
        self.meta["pin"] = self._wrap_under_pin(new, self.data_key)
        self.store.commit()

    def _block(self):
        """Destroy the PIN secrets: the PIN wrap, the fingerprint wrap, the owner's entries."""
        self.lock()
        self.meta["pin"] = None
        self.meta["fp_wrap"] = None
        self.meta["state"] = BLOCKED
        self.meta["challenge"] = crypto.random_bytes(16).hex()
        self.store.commit()
        self.store.remove(*self.store.entries(OWNER))

    # ---- fingerprint -----------------------------------------------------------------------

    def fingerprint_allowed(self):
        """May a fingerprint unlock now? (PIN entered within the window, few failures.)"""
        return self._fingerprint_open(self.meta["fp_fails"] + 1)

    def _fingerprint_open(self, attempt):
        # Whether fingerprint attempt number `attempt` (failures in a row, itself included) may
        # unlock: the wrap is there, the PIN was entered within the window, the count allows it.
        if self.state != PERSONALIZED or not self.meta["fingers"] or self.meta["fp_wrap"] is None:
            return False
        since = self.clock() - self.meta["pin_at"]
        return 0 <= since < self.policy["fp_window_s"] and attempt <= self.policy["fp_max_fails"]

    def _forbid_fingerprint(self):
        # Not just a refusal: the wrap that fingerprint unlock needs is destroyed, so only a
        # PIN (which writes a new one) can bring it back.
        if self.meta["fp_wrap"] is not None:
            self.meta["fp_wrap"] = None
            self.store.commit()

    def fingerprint_attempt(self):
        """Count a fingerprint attempt, on flash and read back, BEFORE the sensor is asked to
        match (as verify_pin counts a PIN before checking it): cutting the power once the sensor
        has said "no match" can no longer undo the count. A match then resets it
        (unlock_with_fingerprint); a failure leaves it (fingerprint_failed). PinRequired when
        the policy allows no attempt now."""
        self._require("fingerprint_attempt", PERSONALIZED)
        self._fp_counted = False
        if not self.fingerprint_allowed():
            self._forbid_fingerprint()
            raise PinRequired("fingerprint unlock needs a PIN entry first")
        self.meta["fp_fails"] += 1
        self.store.commit()
        if not self.store.committed():
            raise VaultError("the fingerprint fail counter did not reach the flash: no fingerprint check")
        self._fp_counted = True

    def unlock_with_fingerprint(self, template_id):
        """The sensor matched template_id in the attempt fingerprint_attempt() counted: unlock
        if the policy allows, else PinRequired (also without a counted attempt)."""
        self._require("unlock_with_fingerprint", PERSONALIZED)
        counted, self._fp_counted = self._fp_counted, False
        if not counted:
            raise PinRequired("no fingerprint attempt counted")
        if template_id not in self.meta["fingers"]:
            raise PinRequired("template %d is not enrolled here" % template_id)
        if not self._fingerprint_open(self.meta["fp_fails"]):
            self._forbid_fingerprint()
            raise PinRequired("fingerprint unlock needs a PIN entry first")
        key = self._fingerprint_key()
        try:
            data_key = self._unwrap(key, self.meta["fp_wrap"])
        finally:
            crypto.wipe(key)
        if self.meta["fp_fails"]:
            self.meta["fp_fails"] = 0
            self.store.commit()
        self._unlock(data_key)

    def fingerprint_failed(self):
        """The sensor found no match for the counted attempt: it stays counted; at the limit the
        PIN is required (the fingerprint wrap destroyed)."""
        self._require("fingerprint_failed", PERSONALIZED)
        self._fp_counted = False
        if self.meta["fp_fails"] >= self.policy["fp_max_fails"]:
            self._forbid_fingerprint()

    def enroll_finger(self, template_id):
        """Record a template id the sensor stored (the template itself stays in the sensor);
        Full if FINGERPRINTS are enrolled already (ask fingers_full before capturing one)."""
        self._require_unlocked("enroll_finger")
        if template_id not in self.meta["fingers"]:
            if self.fingers_full:
                raise Full("%d fingerprints enrolled, the most the vault keeps" % FINGERPRINTS)
            self.meta["fingers"].append(template_id)
            self.store.commit()

    def remove_finger(self, template_id):
        self._require_unlocked("remove_finger")
        if template_id in self.meta["fingers"]:
            self.meta["fingers"].remove(template_id)
            self.store.commit()

    @property
    def fingers(self):
        return list(self.meta["fingers"])

    @property
    def fingers_full(self):
        return len(self.meta["fingers"]) >= FINGERPRINTS

    # ---- the owner's entries ---------------------------------------------------------------

    def put(self, name, data):
        self._require_unlocked("put")
        self.store.put(name, OWNER, data)

    def get(self, name):
        """An owner entry (bytearray: wipe it after use); KeyError if there is none."""
        self._require_unlocked("get")
        return self.store.get(name)

    def remove(self, name):
        """Drop an owner entry (no error if there is none)."""
        self._require_unlocked("remove")
        if self.store.meta["index"].get(name, (None,))[0] == OWNER:
            self.store.remove(name)

    def bind_account(self, account_id, record, certificate):
        """Bind a bank account to this device: its record and its certificate, as one entry
        (an account bound already is replaced); Full if ACCOUNTS others are bound."""
        self._require_unlocked("bind_account")
        name = "account." + account_id
        if name not in self.meta["index"] and len(self.accounts()) >= ACCOUNTS:
            raise Full("%d accounts bound, the most the vault keeps" % ACCOUNTS)
        self.store.put(name, OWNER,
                       len(record).to_bytes(2, "big") + bytes(record) + bytes(certificate))

    def account(self, account_id):
        """(record, certificate) of a bound account."""
        raw = self.get("account." + account_id)
        n = int.from_bytes(raw[:2], "big")
        return bytes(raw[2:2 + n]), bytes(raw[2 + n:])

    def accounts(self):
        self._require("accounts", PERSONALIZED)
        return [e[len("account."):] for e in self.store.entries(OWNER) if e.startswith("account.")]

    # ---- blocked, wiped --------------------------------------------------------------------

    def unblock_challenge(self):
        """The challenge the issuer must sign to unblock (fresh at each block)."""
        self._require("unblock_challenge", BLOCKED)
        return bytes.fromhex(self.meta["challenge"])

    def unblock(self, response):
        """Issuer's HMAC-SHA256(unblock key, UNBLOCK_LABEL + challenge): back to PROVISIONED,
        so that the owner sets a new PIN. A forged or replayed response is Refused."""
        self._require("unblock", BLOCKED)
        key = self.store.get("issuer.unblock")
        try:
            expected = crypto.hmac_sha256(key, UNBLOCK_LABEL + bytes.fromhex(self.meta["challenge"]))
        finally:
            crypto.wipe(key)
        if not crypto.equal(expected, response):
            raise Refused("the unblock message does not authenticate")
        self.meta["challenge"] = None  # used up: the same message cannot unblock twice
        self.meta["fails"] = 0
        self.meta["fp_fails"] = 0
        self.meta["fingers"] = []
        self.meta["state"] = PROVISIONED
        self.store.commit()

    def wipe(self):
        """Destroy every secret. Refused on a PERSONALIZED vault that is locked: only its owner
        (or the issuer, through a block) may end it."""
        if self.state == PERSONALIZED and not self.unlocked:
            raise Locked("wipe needs the owner: the vault is locked")
        self._require("wipe", FACTORY, PROVISIONED, PERSONALIZED, BLOCKED)
        self.lock()
        self.store.wipe()

    def reinitialize(self):
        """A wiped device back to FACTORY, for the factory to provision again."""
        self._require("reinitialize", WIPED)
        self._create()


def describe():
    """The vault's state for diagnostics, without changing it: its state, "TAMPERED" or
    "BLANK". (Whether the unit is a production one is the eFuse's to say: lib/production.py.)"""
    store = Store()
    try:
        status = store.open()
    except (Tampered, ValueError):
        return "TAMPERED"
    finally:
        store.close()
    if status == "empty":
        return "BLANK"
    if status == "wiped":
        return WIPED
    return store.meta["state"]
