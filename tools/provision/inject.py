"""`inject`: put one unit's secrets into its vault over the REPL (tools/device.py, mpremote's
transport), check them, test them against the bank host, and make the unit PROVISIONED.

    1. the unit: reachable, its vault BLANK, FACTORY or WIPED (PROVISIONED or BLOCKED only with
       --reprovision, which wipes it once the secrets are ready; PERSONALIZED never: it has an
       owner; TAMPERED never), checked before any secret is drawn;
    2. the secrets, from the bank (its state directory: the HSM key file, the PKI, the ledger):
         dukpt.ik        AES DUKPT initial key = the HSM's derivation for this unit's initial key
                         id (the BDK never leaves the HSM module)
         dukpt.ksn       the initial key id (BDK id 4 bytes + derivation id 4: the injection's
                         generation and the serial's number) + counter 0
         device.key      EC P-256 key (DER) and device.cert, its certificate (DER, CN = serial),
         device.cert     issued by the issuer CA (tools/bank/pki.py) and registered in the ledger
         issuer.ca       the issuer CA certificate (DER)
         issuer.unblock  32 random bytes, kept sealed by the bank's HSM for the issuer's unblock
                         (<bank state>/factory/<serial>.json, with the count of injections)
         issuer.update   the public key of the issuer's update-signing key (RSA-2048: modulus,
                         exponent; tools/bank/updates.py), which the unit's update packages
                         must be signed with. An issuer key, like issuer.ca: the factory's own
                         (the fleet's Secure Boot signing key, `secure`) never enters the vault
       checked on the host before anything is sent: the certificate chains to the CA, names the
       serial, is valid now and matches the device key;
    3. one flash transaction on the unit (Vault.provision_all): all items and PROVISIONED in a
       single commit, so a power cut leaves it FACTORY with none or PROVISIONED with all;
    4. read-back: every item checked against what was sent (SHA-256 fingerprints of the public
       items, 4-byte check values of the secret ones, the KSN itself, the lifecycle state);
    5. a TLS test connection from the unit to the bank host (--bank-host): the unit's uplink signs
       on (mutual TLS: the host verified against the injected CA, the unit's registered
       certificate accepted; the sign-on MAC'd under the injected DUKPT key);
       once it signed on, the unit's bank configuration /config/bank.json ({"host", "port",
       "serial", "merchant", "currency"}: what the terminal's link reads) is written;
    6. --production-lock, the last step: the production eFuse bit (BLOCK3 bit 255) burned by
       the unit itself (lib/production.py, burn(): the ESP32's eFuse programming sequence
       through machine.mem32; in the virtual handheld its virtual eFuses, espefuse's --virt
       file), read back, then the unit reset and checked to give no REPL any more. There is no
       way back: a production unit is never provisioned again through its serial port.
Secrets travel only inside the code sent to the unit's REPL, never printed, logged or audited.
"""

import ast
import binascii
import datetime
import hashlib
import json
import secrets

from tools.device import Device, DeviceError, DeviceExecError
from tools.provision.common import BANK, DEVICE, KEYS, READBACK, REFUSED, fail, progress

PUBLIC = ("device.cert", "issuer.ca", "dukpt.ksn", "issuer.update")
KCV_LABEL = b"PT-KCV\x00"

STATE = """
import sys, binascii, vault
try:
    import machine
    uid = binascii.hexlify(machine.unique_id()).decode()
except (ImportError, AttributeError):
    uid = None
print(repr((sys.platform, uid, vault.describe())))
"""

WIPE = """
import vault
v = vault.Vault().open()
if v.state != 'WIPED':
    v.wipe()
v.reinitialize()
print(repr(v.state))
"""

# What inject writes: everything in one transaction, then (optionally) the production eFuse.
TRANSACTION = """
import vault
from binascii import unhexlify as u
v = vault.Vault().open()
v.provision_all({%s})
"""
PRODUCTION_LOCK = """
import production
print(repr(production.burn()))
"""
RESET = "import board\nboard.reset()"
LOCKED_WITHIN_S = 20  # a production unit's boot, until its port no longer gives a REPL

READ_BACK = """
import vault, hashlib, binascii
v = vault.Vault().open()
def _check(item):
    data = v.device_secret(item)
    try:
        if item in %r:
            return binascii.hexlify(hashlib.sha256(data).digest()).decode()
        return binascii.hexlify(hashlib.sha256(%r + data).digest()[:4]).decode()
    finally:
        for i in range(len(data)):
            data[i] = 0
r = {'state': v.state, 'ksn': binascii.hexlify(v.device_secret('dukpt.ksn')).decode()}
for item in vault.PROVISIONING_ITEMS:
    r[item] = _check(item)
print(repr(r))
""" % (PUBLIC, KCV_LABEL)

# The TLS test connection is the unit's own uplink signing on (lib/uplink): its Wi-Fi, mutual
# TLS with the injected key, certificate and CA, then a 0800 sign-on MAC'd under the first DUKPT
# key. So an approval also proves the host accepts the certificate and derives the same keys.
# The session's journal (its STAN) is the factory's, removed after: the unit keeps nothing of
# the test but its DUKPT counter, which the vault advanced (a key is never used twice).
TLS_TEST = """
import asyncio, os, board, vault, wifi, uplink
from uplink.journal import Journal
v = vault.Vault().open()
w = wifi.Wifi(network=%r)
up = uplink.Uplink(v, {'host': %r, 'port': %d, 'serial': %r}, wifi=w, journal=Journal('/factory-test'))
async def _test():
    wt = asyncio.create_task(w.run())
    t = asyncio.create_task(up.run())
    try:
        if await up.wait_ready(%d):
            return 'ok'
        if w.state != wifi.CONNECTED:
            return 'Wi-Fi: %%s' %% w.detail()
        return str(up.error)
    finally:
        t.cancel()
        wt.cancel()
        await asyncio.sleep_ms(0)
        board.wlan().active(False)  # the unit left as it was found
try:
    print(repr(asyncio.run(_test())))
finally:
    for n in os.listdir('/factory-test'):
        os.remove('/factory-test/' + n)
    os.rmdir('/factory-test')
"""
TLS_TEST_MS = 20_000
BANK_CONFIG = "/config/bank.json"
CURRENCY = "978"  # the unit's transaction currency (ISO 4217 numeric): euro
# Written as lib/wifi saves its file: a new file renamed over the old one.
WRITE_CONFIG = """
import os
try:
    os.mkdir('/config')
except OSError:
    pass
with open(%r + '.tmp', 'w') as f:
    f.write(%r)
os.rename(%r + '.tmp', %r)
"""


def check_value(item, data):
    """What READ_BACK reports of an item: SHA-256 of a public one, a 4-byte check value of a secret."""
    if item in PUBLIC:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha256(KCV_LABEL + data).digest()[:4].hex()


def initial_key_id(serial, bdk_id, generation):
    """BDK id (4 bytes) + derivation id (4 bytes): the injection's generation (top byte) and the
    serial's number (low 3 bytes). A new generation at every injection of the serial: a unit
    provisioned again never restarts the DUKPT counters of a key id it has used."""
    digits = "".join(c for c in serial if c.isdigit())
    if not digits or int(digits) >= 1 << 24 or generation > 0xFF:
        fail(KEYS, "no DUKPT derivation id from serial %s (generation %d): give --initial-key-id" % (serial, generation))
    return bytes.fromhex(bdk_id) + bytes((generation,)) + int(digits).to_bytes(3, "big")


# ---- the bank's side --------------------------------------------------------------------------

def _bank(bank_state):
    from tools.bank.state import State

    state = State(bank_state)
    if not state.hsm_path.is_file() or not (state.pki_dir / "ca.pem").is_file():
        fail(KEYS, "no bank HSM or issuer CA in %s: start the bank host once (python -m tools.bank "
             "--state-dir %s) or give --bank-state" % (bank_state, bank_state))
    return state


def _next_injection(state, serial):
    """(generation, unblock key) of this injection of the unit, recorded in the bank's state
    (<state>/factory/<serial>.json: the count of injections, the unblock key sealed by the HSM
    for the issuer's unblock messages) before anything is written to the unit."""
    path = state.dir / "factory" / (serial + ".json")
    generation = json.loads(path.read_text())["generation"] + 1 if path.is_file() else 0
    key = secrets.token_bytes(32)
    sealed = state.hsm.seal(key, b"issuer.unblock " + serial.encode() + bytes((generation,)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"generation": generation, "unblock_sealed": sealed.hex()}))
    tmp.replace(path)
    return generation, key


def pin_initial_key(state, serial, ikid):
    """Once the unit holds its new initial key, the bank (its open State) serves it under that key
    only: a copy of its store from before this injection (an earlier key, whose counter may be
    past all the bank saw of it) is refused (63). Before the TLS test, whose sign-on then proves
    the pin."""
    state.ledger.pin_initial_key(serial, ikid.hex().upper())
    progress("the bank now serves %s under initial key %s only" % (serial, ikid.hex().upper()))


def check_identity(ca_der, cert_der, key_der, serial):
    """The certificate chains to the CA, names the serial, is valid now and matches the key;
    returns its serial number and SHA-256 fingerprint."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_private_key
    from cryptography.x509.oid import NameOID

    try:
        ca = x509.load_der_x509_certificate(ca_der)
        cert = x509.load_der_x509_certificate(cert_der)
        key = load_der_private_key(key_der, None)
    except ValueError as e:
        fail(KEYS, "a certificate or the device key does not parse: %s" % e)
    try:
        if cert.issuer != ca.subject:
            raise InvalidSignature()
        ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except (InvalidSignature, TypeError):
        fail(KEYS, "the device certificate of %s is not signed by the issuer CA" % serial)
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [serial]:
        fail(KEYS, "the device certificate names %s, not %s" % (names, serial))
    now = datetime.datetime.now(datetime.timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        fail(KEYS, "the device certificate of %s is not valid now" % serial)
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        fail(KEYS, "the device key of %s does not match its certificate" % serial)
    return "%x" % cert.serial_number, hashlib.sha256(cert_der).hexdigest()


def unit_secrets(bank_state, serial, bdk_id, ikid=None):
    """(items, public facts) for one injection of a unit; registers it with the bank if it is not yet."""
    from tools.bank import admin, pki, updates

    state = _bank(bank_state)
    try:
        files = pki.device_files(state.pki_dir, serial)
        registered = state.ledger.device(serial)
        if registered is None:
            progress("issuing %s's certificate (issuer CA) and registering it with the bank" % serial)
            admin.register_device(state, serial)
            registered = state.ledger.device(serial)
        elif not files["cert_der"].is_file() or pki.fingerprint(files["cert_der"].read_bytes()) != registered["cert_sha256"]:
            fail(KEYS, "%s is registered with a certificate whose key the bank's PKI does not hold" % serial)
        ca_der = (state.pki_dir / "ca.der").read_bytes()
        cert_der, key_der = files["cert_der"].read_bytes(), files["key_der"].read_bytes()
        cert_serial, fingerprint = check_identity(ca_der, cert_der, key_der, serial)
        if fingerprint != registered["cert_sha256"]:
            fail(KEYS, "the bank pins another certificate for %s" % serial)
        generation, unblock = _next_injection(state, serial)
        ikid = ikid or initial_key_id(serial, bdk_id, generation)
        items = {"device.key": key_der, "device.cert": cert_der, "issuer.ca": ca_der,
                 "dukpt.ik": state.hsm.initial_key(ikid), "dukpt.ksn": ikid + bytes(4), "issuer.unblock": unblock,
                 "issuer.update": updates.public_item(updates.private_key(state))}
    finally:
        state.close()
    facts = {"certificate_serial": cert_serial, "certificate_sha256": fingerprint,
             "issuer_ca_sha256": hashlib.sha256(ca_der).hexdigest(),
             "issuer_update_sha256": hashlib.sha256(items["issuer.update"]).hexdigest(), "ksn": (ikid + bytes(4)).hex(), "generation": generation}
    return items, facts


# ---- the unit's side --------------------------------------------------------------------------

def transaction_code(items):
    """The code inject runs on the unit to write everything (tests cut the power inside it)."""
    return TRANSACTION % ", ".join("%r: u(%r)" % (k, binascii.hexlify(v).decode()) for k, v in sorted(items.items()))


def _exec(dev, code, what, timeout=60):
    try:
        return dev.exec(code, timeout=timeout)
    except DeviceExecError as e:
        # The device's traceback names lines and exceptions, never the code's literals.
        fail(DEVICE, "%s failed on the unit:\n%s" % (what, e.traceback.strip()))
    except DeviceError as e:
        fail(DEVICE, str(e))


def _value(dev, code, what):
    return ast.literal_eval(_exec(dev, code, what).strip().splitlines()[-1])


def unit_state(dev):
    """(platform, unique id or None, vault state)."""
    return _value(dev, STATE, "reading the unit's state")


def check_unit(dev, reprovision):
    """Refuse a unit that may not be provisioned (again); (platform, unique id, vault state)."""
    platform, uid, state = unit_state(dev)
    progress("unit: %s, id %s, vault %s" % (platform, uid or "(none: virtual handheld)", state))
    if state == "PERSONALIZED":
        fail(REFUSED, "the unit is PERSONALIZED: it has an owner, who must wipe it first; never re-provisioned here")
    if state == "TAMPERED":
        fail(REFUSED, "the unit's secure store is TAMPERED: set the unit aside for inspection")
    if state in ("PROVISIONED", "BLOCKED") and not reprovision:
        fail(REFUSED, "the unit is already %s: give --reprovision to wipe and provision it again" % state)
    return platform, uid, state


def read_back(dev, items):
    """Check what the unit holds against items; ReadBack error naming the first difference."""
    held = _value(dev, READ_BACK, "reading back")
    if held["state"] != "PROVISIONED":
        fail(READBACK, "the unit is %s after injection, not PROVISIONED" % held["state"])
    if held["ksn"] != items["dukpt.ksn"].hex():
        fail(READBACK, "the unit's dukpt.ksn is %s, not the injected %s" % (held["ksn"], items["dukpt.ksn"].hex()))
    for item, data in sorted(items.items()):
        if held.get(item) != check_value(item, data):
            fail(READBACK, "the unit's %s is not what was injected (%s)" % (
                item, "certificate fingerprint differs" if item == "device.cert" else "check value differs"))
    return held


def tls_test(dev, bank_host, serial, wifi_network):
    host, _, port = bank_host.rpartition(":")
    progress("TLS test connection: the unit signs on to the bank host %s" % bank_host)
    said = _value(dev, TLS_TEST % (wifi_network, host, int(port), serial, TLS_TEST_MS), "the TLS test connection")
    if said != "ok":
        fail(BANK, "the unit could not sign on to the bank host %s: %s" % (bank_host, said))
    return said


def bank_config(host, port, serial, currency=CURRENCY):
    """What /config/bank.json holds: where the unit's uplink finds its bank, and as whom."""
    return {"host": host, "port": int(port), "serial": serial, "merchant": serial, "currency": currency}


def write_bank_config(dev, bank_host, serial):
    host, _, port = bank_host.rpartition(":")
    text = json.dumps(bank_config(host, port, serial))
    _exec(dev, WRITE_CONFIG % (BANK_CONFIG, text, BANK_CONFIG, BANK_CONFIG), "writing " + BANK_CONFIG)


def inject(port, serial, bank_state, bank_host=None, wifi_network=None, ikid=None, bdk_id="00000001",
           production_lock=False, reprovision=False, audit=None):
    from tools.bank import pki

    try:
        pki.check_serial(serial)
    except pki.PkiError as e:
        fail(KEYS, str(e))
    state = _bank(bank_state)  # before the unit is touched: a bank to take secrets from
    state.close()
    progress("connecting to the unit on %s" % port)
    try:
        dev = Device(port)
    except DeviceError as e:
        fail(DEVICE, str(e))
    try:
        platform, uid, found = check_unit(dev, reprovision)
        if audit is not None:
            # On the ESP32 machine.unique_id() is the base MAC: recorded as `secure` records it.
            mac = ":".join(uid[i:i + 2] for i in range(0, 12, 2)) if uid and len(uid) == 12 else None
            audit.record.update({"platform": platform, "unit_id": uid, "mac": mac, "state_before": found})
        items, facts = unit_secrets(bank_state, serial, bdk_id, ikid)
        if audit is not None:
            audit.record.update(facts)
        if found in ("PROVISIONED", "BLOCKED", "WIPED"):
            progress("wiping the %s unit for re-provisioning" % found)
            _value(dev, WIPE, "wiping the unit")
        progress("writing %d items and PROVISIONED in one transaction" % len(items))
        _exec(dev, transaction_code(items), "the provisioning transaction")
        progress("reading back every item")
        read_back(dev, items)
        state = _bank(bank_state)
        try:
            pin_initial_key(state, serial, items["dukpt.ksn"][:8])
        finally:
            state.close()
        if audit is not None:
            audit["read_back"] = "ok"
        if bank_host:
            result = tls_test(dev, bank_host, serial, wifi_network)
            progress("the unit's bank: %s (%s)" % (bank_host, BANK_CONFIG))
            write_bank_config(dev, bank_host, serial)
            if audit is not None:
                audit["tls_test"] = result
        elif audit is not None:
            audit["tls_test"] = "skipped (no --bank-host)"
        state = _value(dev, STATE, "reading the unit's state")[2]
        if audit is not None:
            audit.record.update({"state": state, "production": False})
        if production_lock:
            lock_production(dev, port)
            if audit is not None:
                audit.record.update({"production": True, "production_efuse": "BLOCK3 bit 255"})
        return state
    finally:
        dev.close()


def lock_production(dev, port):
    """Burn the production eFuse bit, read it back, reset the unit and check that its port no
    longer gives a REPL."""
    import time

    progress("production lock: burning the eFuse bit (BLOCK3 bit 255): from its next boot on the unit has no REPL")
    if _value(dev, PRODUCTION_LOCK, "the production lock") is not True:
        fail(READBACK, "the production eFuse bit does not read back as burned")
    try:
        dev.transport.exec_raw_no_follow(RESET)
    except Exception:  # the unit is resetting: its port may drop at once
        pass
    dev.close()
    deadline = time.monotonic() + LOCKED_WITHIN_S
    time.sleep(1)
    while True:
        try:
            Device(port, timeout=2).close()
        except DeviceError:
            progress("the unit was reset and gives no REPL: production-locked")
            return
        if time.monotonic() > deadline:
            fail(READBACK, "the unit still gives its REPL after the production eFuse bit was burned")
        time.sleep(0.5)
