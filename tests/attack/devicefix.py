"""Attacks on the device: a unit of the factory's making, and an attacker's tools.

A production unit here is made as the factory makes one: its vault provisioned and personalized
through the REPL of what is still a development unit, then the production eFuse bit burned, by
espefuse on the host in the unit's virtual eFuse file (the reader and writer that knows the
ESP32's eFuses; the unit's own burn, lib/production.py, is tested with `inject`). The attacker
has the serial port (every key of MicroPython's REPL protocol, at any moment from reset on) and
a flash programmer: the flash image snapshot, edited on the host (littlefs-python, as anyone can
mount a LittleFS image), written back.
"""

import subprocess
import sys
import time
from pathlib import Path

import littlefs
import serial

from tools import image
from tools.device import Device

PIN = "246810"
PERSONALIZE = """
import vault
v = vault.Vault().open()
for item in vault.PROVISIONING_ITEMS:
    v.provision(item, b'secret for ' + item.encode())
v.finish_provisioning()
v.set_pin(bytearray(b'%s'))
print(v.state)
""" % PIN
# Every key of the REPL protocol (shared/runtime/pyexec.c): Ctrl-C interrupt, Ctrl-A raw REPL,
# Ctrl-B friendly REPL, Ctrl-D soft reset, Ctrl-E paste mode, the raw-paste request, and code.
KEYS = b"\r\x03\x03\x01\x05A\x01\x02\x04\x05\x03\x01print('OPEN', open('/store/secret','rb').read())\x04"
# What any REPL would say: a prompt, the raw REPL's greeting, the banner, the code's output.
REPL_SIGNS = (b">>>", b"raw REPL", b"MicroPython v", b"OPEN", b"paste mode", b"soft reboot")
REFUSED = b"REPL refused: this is a production unit"


def personalize(vd):
    """The unit's vault PROVISIONED then PERSONALIZED (PIN above), through its REPL."""
    dev = Device(vd.repl)
    try:
        assert dev.exec(PERSONALIZE, timeout=60).strip().splitlines()[-1] == "PERSONALIZED"
    finally:
        dev.close()


def burn_production(vd):
    """The production eFuse bit (BLOCK3 bit 255) burned by espefuse in the unit's virtual
    eFuses; it counts from the unit's next boot on."""
    subprocess.run([sys.executable, "-m", "espefuse", "--chip", "esp32", "--virt", "--path-efuse-file",
                    str(Path(vd.state_dir) / "vdevice.efuse"), "--do-not-confirm", "burn-bit", "BLOCK3", "255"],
                   check=True, capture_output=True)


def mounted(data):
    fs = littlefs.LittleFS(block_size=image.BLOCK_SIZE, block_count=len(data) // image.BLOCK_SIZE, mount=False,
                           read_size=image.LFS_READ_SIZE, prog_size=image.LFS_PROG_SIZE,
                           lookahead_size=image.LFS_LOOKAHEAD)
    fs.context.buffer = data
    fs.mount()
    return fs


def read_flash(path, name):
    fs = mounted(bytearray(Path(path).read_bytes()))  # held while its file is open
    with fs.open(name, "rb") as f:
        return f.read()


def edit_flash(path, edit):
    """The flash image at path, edited on the host: edit(fs) with the image mounted."""
    data = bytearray(Path(path).read_bytes())
    fs = mounted(data)
    edit(fs)
    fs.unmount()
    Path(path).write_bytes(data)


def meta_name(fs):
    return next(n for n in fs.listdir("/store") if n.startswith("meta."))


def listen(vd, keys=b"", seconds=3.0, every=0.05, first=None):
    """What the unit's serial port says over `seconds` while keys are typed into it every
    `every` seconds (none: only listened to); first(port) is called once the port is open.
    Returns (bytes said, whether the port was hung up)."""
    said = b""
    deadline = time.monotonic() + seconds
    try:
        with serial.Serial(vd.repl, 115200, timeout=0.01) as port:
            if first:
                first(port)
            while time.monotonic() < deadline:
                if keys:
                    port.write(keys)
                end = time.monotonic() + every
                while time.monotonic() < end:
                    said += port.read(4096)
    except (serial.SerialException, OSError):
        return said, True
    return said, False


def wait_phase(vd, phases, after_boots=0, timeout=20):
    """The unit's status once a boot later than after_boots is at one of phases."""
    deadline = time.monotonic() + timeout
    while True:
        status = vd.rig.call("device")
        if status["boots"] > after_boots and status["phase"] in phases:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.005)


def no_repl(said):
    signs = [s for s in REPL_SIGNS if s in said]
    assert not signs, "the unit gave a REPL (%s): %r" % (signs, said[-400:])


def stays_shut(vd, image):
    """Write image to the production unit's flash and power it on: it shows the locked screen
    (its screen lines on the port: ui/screens.py), gives no REPL to any key, and stays in that
    boot, in boot.py: no terminal, no reset loop."""
    restored = {}

    def restore(port):  # the port open first: pyserial drops what came before it opened
        restored.update(vd.rig.call("restore", path=str(image)))

    said, _ = listen(vd, seconds=8, first=restore)  # untouched: what it shows
    boots = restored["boots"]
    no_repl(said)
    assert b"production: the secure store failed its checks: this unit is locked" in said, said[-600:]
    assert b'"title": "Locked"' in said and b"This unit is locked" in said, said[-600:]
    said, hung_up = listen(vd, KEYS, seconds=3, every=0.02)
    no_repl(said)
    assert REFUSED in said and hung_up
    status = vd.rig.call("device")
    assert (status["boots"], status["phase"]) == (boots, "boot.py"), status
