"""Driving the vault on a virtual handheld, shared by the power-cut tests
(tests/host/test_vault_power.py) and the benchmark (python -m tools.bench pin).

COMMON runs on the device after every boot; a state's code builds that state from a blank
store; an operation is a preamble (opening, unlocking: not part of what is measured or cut) and
the operation itself. VaultBench runs them: from flash snapshots, counting flash writes,
cutting the power at one of them.
"""

import ast
import shutil
import time
from pathlib import Path

from tools.device import Device, DeviceError
from tools.vdevice.spawn import VDeviceProcess

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
# The note put a second time: its two copies exist, the next put writes over the empty one.
NOTE_TWICE = PERSONALIZED + """
v.put('note', b'version 2')
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
    "store entry again": (NOTE_TWICE, "v = open_vault()\nv.verify_pin(PIN)", "v.put('note', b'version 3')"),
    "bind account": (PERSONALIZED, "v = open_vault()\nv.verify_pin(PIN)",
                     "v.bind_account('DE89370400440532013000', b'record', b'certificate')"),
    "wipe": (PERSONALIZED, "v = open_vault()\nv.verify_pin(PIN)", "v.wipe()"),
    "unblock": (BLOCKED, "v = open_vault()\nsigned = crypto.hmac_sha256(UNBLOCK_KEY, vault.UNBLOCK_LABEL + v.unblock_challenge())",
                "v.unblock(signed)"),
}


class VaultBench:
    """A virtual handheld of its own, with a blank flash image to start every state from."""

    def __init__(self, image, workdir):
        self.tmp = Path(workdir)
        shutil.copyfile(image, self.tmp / "flash.img")
        shutil.copyfile(image, self.tmp / "blank.img")
        self.vd = VDeviceProcess(self.tmp / "flash.img", self.tmp / "state")
        # The standby key held: every boot is in safe mode, the REPL only. What is measured is
        # the vault under power cuts; the terminal application starting (and talking to its
        # peripherals) at each of the hundreds of boots is not part of it.
        self.vd.rig.set_pin("standby_key", 0)
        self.dev = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.dev:
            self.dev.close()
        self.vd.stop()

    def boot_from(self, snapshot):
        """Power off, flash a snapshot, power on, and take the REPL."""
        boots = self.vd.rig.call("restore", path=str(snapshot))["boots"]
        self.vd.wait_booted(after_boots=boots - 1)
        self.connect()

    def connect(self):
        try:
            if self.dev is None:
                self.dev = Device(self.vd.repl)
            else:
                self.dev.reconnect()
        except DeviceError as e:
            raise DeviceError("%s\nvirtual handheld's log:\n%s" % (e, self.vd.log_tail())) from None
        self.dev.exec(COMMON)

    def prepare(self, name):
        """The flash snapshot of the state operation `name` starts from."""
        snapshot = self.tmp / ("before %s.img" % name)
        self.boot_from(self.tmp / "blank.img")
        self.dev.exec(OPERATIONS[name][0], timeout=60)
        self.vd.rig.call("snapshot", path=str(snapshot))
        return snapshot

    def flash_writes(self, name, snapshot):
        """Flash operations (erases and programs) that operation `name` makes."""
        _, preamble, operation = OPERATIONS[name]
        self.boot_from(snapshot)
        self.dev.exec(preamble)
        start = self.vd.rig.call("flash_writes")
        self.dev.exec(operation)
        return self.vd.rig.call("flash_writes") - start

    def report(self, code):
        """Run code that prints a repr; the value."""
        return ast.literal_eval(self.dev.exec(code, timeout=30).strip().splitlines()[-1])

    def cut(self, k, code):
        """Run code with the power failing at its k-th flash operation; what it printed."""
        boots = self.vd.rig.call("device")["boots"]
        self.vd.rig.call("power_cut", after=k)
        self.dev.transport.exec_raw_no_follow(code)
        said = b""
        deadline = time.monotonic() + 20
        serial = self.dev.transport.serial
        while self.vd.rig.call("device")["boots"] == boots:
            if serial.in_waiting:
                said += serial.read(serial.in_waiting)
            else:
                time.sleep(0.002)
            if time.monotonic() > deadline:
                raise AssertionError("no power cut at operation %d of %r: %r" % (k, code, said))
        if serial.in_waiting:
            said += serial.read(serial.in_waiting)
        self.vd.wait_booted(after_boots=boots)
        self.connect()
        return said
