"""Power: cuts at a chosen flash operation, hard reset, and safe mode at reset."""

import shutil
import time

import littlefs
import serial
import pytest

from tools import image
from tools.device import Device, DeviceError
from tools.vdevice.spawn import VDeviceProcess

def write_16k(tag):
    return "with open('/big.bin', 'wb') as f:\n    for i in range(16):\n        f.write(bytes([%d + i]) * 1024)" % tag


WRITE_16K = write_16k(0)
# What /big.bin holds, as (length, the tag its first kilobyte says, whether all 16 agree).
READ_BACK = ("d = open('/big.bin', 'rb').read()\n"
             "print(len(d), d[0] if d else None, all(d[j * 1024:(j + 1) * 1024] == bytes([d[0] + j]) * 1024"
             " for j in range(len(d) // 1024)))")


@pytest.fixture
def vd(firmware_image, tmp_path):
    shutil.copyfile(firmware_image, tmp_path / "flash.img")
    with VDeviceProcess(tmp_path / "flash.img", tmp_path) as vd:
        yield vd


def test_power_cut_at_each_stage_of_a_write_leaves_a_bootable_image(vd):
    dev = Device(vd.repl)
    dev.exec("with open('/keep.txt', 'w') as f:\n    f.write('kept')")
    dev.exec(WRITE_16K)
    before = vd.rig.call("flash_writes")
    dev.exec(write_16k(0))  # the same rewrite as below: how many flash operations it takes
    ops = vd.rig.call("flash_writes") - before
    assert ops > 16, ops  # at least a program per kilobyte, and erases
    old = 0
    for n, k in enumerate(sorted({1, 2, 3} | set(range(4, ops + 1, max(1, ops // 12))) | {ops}), 1):
        boots = vd.rig.call("device")["boots"]
        assert vd.rig.call("power_cut", after=k)["cut_at"] == vd.rig.call("flash_writes") + k
        dev.transport.exec_raw_no_follow(write_16k(n % 200))
        status = vd.wait_booted(after_boots=boots)
        assert status["power_cuts"] == n, status
        dev.reconnect()
        # The image mounted and booted; what was there before the cut is intact, and the file
        # written during it is the old one or the new one, whole: LittleFS commits at close.
        assert dev.exec("print(open('/keep.txt').read())").strip() == "kept"
        length, tag, whole = dev.exec(READ_BACK).split()
        assert (int(length), whole) == (16384, "True"), (k, length, tag, whole)
        assert int(tag) in (old, n % 200), (k, tag)
        old = int(tag)
    dev.close()


def test_image_after_a_cut_mounts_on_the_host(vd, tmp_path):
    dev = Device(vd.repl)
    dev.exec("with open('/keep.txt', 'w') as f:\n    f.write('kept')")
    vd.rig.call("power_cut", after=5)
    with pytest.raises(DeviceError):
        dev.exec(WRITE_16K, timeout=2)
    dev.close()
    vd.wait_booted(after_boots=1)
    vd.stop()
    fs = littlefs.LittleFS(block_size=4096, block_count=image.VFS_BLOCKS, mount=False)
    fs.context.buffer = bytearray((tmp_path / "flash.img").read_bytes())
    fs.mount()
    assert "keep.txt" in fs.listdir("/")  # what was there before the cut is intact


def test_power_cut_ordered_on_the_command_line(firmware_image, tmp_path):
    shutil.copyfile(firmware_image, tmp_path / "flash.img")
    with VDeviceProcess(tmp_path / "flash.img", tmp_path, extra_args=["--power-cut-at", "3"]) as vd:
        dev = Device(vd.repl)
        with pytest.raises(DeviceError):
            dev.exec(WRITE_16K, timeout=2)
        status = vd.wait_booted(after_boots=1)
        assert status["power_cuts"] == 1 and status["flash_ops"] == 3
        dev.reconnect()
        assert dev.eval("1 + 1") == 2
        dev.close()


def test_standby_key_held_at_reset_is_safe_mode(vd):
    dev = Device(vd.repl)
    try:
        # Held at reset: boot.py notices, main.py (the terminal) does not run.
        vd.rig.set_pin("standby_key", 0)
        boots = vd.rig.call("reset")["boots"]
        vd.wait_booted(after_boots=boots - 1)
        dev.reconnect()
        assert dev.eval("__import__('safemode').active") is True
        assert dev.eval("'terminal' in __import__('sys').modules") is False
        # Released: a normal start runs the terminal.
        vd.rig.set_pin("standby_key", None)
        boots = vd.rig.call("reset")["boots"]
        assert vd.wait_booted(after_boots=boots - 1)["phase"] == "main.py"
        dev.reconnect()
        assert dev.eval("__import__('safemode').active") is False
        assert dev.eval("'terminal' in __import__('sys').modules") is True
    finally:
        dev.close()


def test_heap_option_sets_the_budget(firmware_image, tmp_path):
    shutil.copyfile(firmware_image, tmp_path / "flash.img")
    with VDeviceProcess(tmp_path / "flash.img", tmp_path, heap="128K") as vd:
        dev = Device(vd.repl)
        total = dev.eval("__import__('gc').mem_free() + __import__('gc').mem_alloc()")
        assert 120 * 1024 < total <= 128 * 1024, total
        with pytest.raises(Exception, match="MemoryError"):
            dev.exec("x = bytearray(130 * 1024)")
        dev.close()


PROVISION_PRODUCTION = """
import vault
v = vault.Vault().open()
for item in vault.PROVISIONING_ITEMS:
    v.provision(item, b'secret for ' + item.encode())
v.finish_provisioning()
import production
assert production.burn()  # the production eFuse bit: the REPL is refused from the next boot on
"""


def test_production_unit_refuses_the_repl(vd):
    dev = Device(vd.repl)
    dev.exec(PROVISION_PRODUCTION)
    dev.close()
    for key in (None, 0):  # and safe mode (the standby key held) does not open it either
        vd.rig.set_pin("standby_key", key)
        boots = vd.rig.call("reset")["boots"]
        assert vd.wait_booted(after_boots=boots - 1)["phase"] == "main.py"
    said = b""
    with serial.Serial(vd.repl, 115200, timeout=2) as port:
        port.write(b"\r\x03\x03\r\x01")
        deadline = time.monotonic() + 5
        with pytest.raises(serial.SerialException):  # it says so, then hangs up
            while time.monotonic() < deadline:
                said += port.read(1)
    assert b"REPL refused: this is a production unit" in said, said
    with pytest.raises(DeviceError):
        Device(vd.repl, timeout=2)
    # The terminal itself runs on: Ctrl-C did not stop it.
    assert vd.rig.call("device")["phase"] == "main.py"
