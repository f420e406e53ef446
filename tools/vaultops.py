"""MicroPython snippets that drive the vault on a device, shared by the power-cut tests
(tests/host/test_vault_power.py) and the benchmark (python -m tools.bench pin).

Run COMMON after every boot; a state's code then builds that state from a blank store; an
operation is a preamble (opening, unlocking: not part of what is measured or cut) and the
operation itself.
"""

COMMON = """
import vault
from vault import crypto
PIN = bytearray(b'246810')
NEW = bytearray(b'975310')
WRONG = bytearray(b'000000')
UNBLOCK_KEY = b'\\x5a' * 32
def say_checking(ms):
    print('CHECKING')
def open_vault():
    return vault.Vault(sleep_ms=say_checking).open()
def probe_pin(v, pin):
    try:
        v.verify_pin(pin)
        return True
    except vault.WrongPin:
        return False
"""

# States, built from a blank store. The policy keeps the PIN delays short (these are tests of
# what is written, not of waiting) and blocks at 3 wrong PINs.
PROVISIONED = """
v = vault.Vault().open()
v.set_policy(max_fails=3, delay_ms=1)
for item in vault.PROVISIONING_ITEMS:
    v.provision(item, UNBLOCK_KEY if item == 'issuer.unblock' else b'secret for ' + item.encode())
v.finish_provisioning()
"""
PERSONALIZED = PROVISIONED + """
v.set_pin(PIN)
v.put('note', b'version 1')
"""
LAST_ATTEMPT = PERSONALIZED + """
v.lock()
for _ in range(2):
    try:
        v.verify_pin(WRONG)
    except vault.WrongPin:
        pass
"""
BLOCKED = LAST_ATTEMPT + """
try:
    v.verify_pin(WRONG)
except vault.Blocked:
    pass
"""

# name: (state before, preamble, the operation)
OPERATIONS = {
    "set PIN": (PROVISIONED, "v = open_vault()", "v.set_pin(PIN)"),
    "verify wrong PIN": (PERSONALIZED, "v = open_vault()", "try:\n    v.verify_pin(WRONG)\nexcept vault.WrongPin:\n    pass"),
    "verify the last wrong PIN": (LAST_ATTEMPT, "v = open_vault()", "try:\n    v.verify_pin(WRONG)\nexcept vault.Blocked:\n    pass"),
    "verify right PIN": (PERSONALIZED, "v = open_vault()", "v.verify_pin(PIN)"),
    "change PIN": (PERSONALIZED, "v = open_vault()", "v.change_pin(PIN, NEW)"),
    "store entry": (PERSONALIZED, "v = open_vault()\nv.verify_pin(PIN)", "v.put('note', b'version 2')"),
    "bind account": (PERSONALIZED, "v = open_vault()\nv.verify_pin(PIN)",
                     "v.bind_account('DE89370400440532013000', b'record', b'certificate')"),
    "wipe": (PERSONALIZED, "v = open_vault()\nv.verify_pin(PIN)", "v.wipe()"),
    "unblock": (BLOCKED, "v = open_vault()\nsigned = crypto.hmac_sha256(UNBLOCK_KEY, vault.UNBLOCK_LABEL + v.unblock_challenge())",
                "v.unblock(signed)"),
}
