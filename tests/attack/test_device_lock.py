"""The production lock under attack: no byte from the serial port reaches a REPL on a
production unit, at any moment from reset on, whatever the store holds.

The doors tried, each on a production unit (devicefix: the vault personalized, the eFuse bit
burned): every REPL key (Ctrl-C, Ctrl-A raw REPL and raw-paste, Ctrl-B, Ctrl-D, Ctrl-E) typed
from the instant of reset, while boot.py imports its first modules, and while the terminal runs;
the standby key held at reset (safe mode); boot.py crashing; a store file with a flipped bit or
gone (Tampered: the unit stays shut behind its locked screen). Before the lock was an eFuse fact,
a Ctrl-C during `import board` opened the REPL with every secret readable, and a flipped bit made
is_production() answer False.
"""

import shutil
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from devicefix import (KEYS, REFUSED, burn_production, edit_flash, listen, meta_name, no_repl, personalize,
                       stays_shut, wait_phase)
from tools.rig.client import RigClient
from tools.vdevice.spawn import VDeviceProcess


def production_unit(firmware_image, tmp_path, **kw):
    shutil.copyfile(firmware_image, tmp_path / "flash.img")
    vd = VDeviceProcess(tmp_path / "flash.img", tmp_path, **kw)
    try:
        personalize(vd)
        burn_production(vd)
    except BaseException:
        vd.stop()
        raise
    return vd


@pytest.fixture
def unit(firmware_image, tmp_path):
    vd = production_unit(firmware_image, tmp_path)
    yield vd
    vd.stop()


@pytest.mark.parametrize("delay_ms", [0, 20, 60, 150, 1000])
def test_repl_keys_at_each_point_of_boot_get_no_repl(unit, delay_ms):
    """Reset, wait delay_ms, then every REPL key typed every 2 ms for 4 s; the boot's phases
    seen meanwhile (as often as the rig answers) say where the keys fell, should it fail."""
    seen, done = [], threading.Event()

    def watch():
        rig = RigClient.from_state(unit.state_dir)  # a connection of its own: one per thread
        try:
            while not done.is_set():
                status = rig.call("device")
                if status["boots"] > 1 and (not seen or seen[-1] != status["phase"]):
                    seen.append(status["phase"])
        finally:
            rig.close()

    def reset(port):
        threading.Thread(target=watch, daemon=True).start()
        unit.rig.call("reset")
        time.sleep(delay_ms / 1000)

    try:
        said, hung_up = listen(unit, KEYS, seconds=4, every=0.002, first=reset)
    finally:
        done.set()
    no_repl(said)  # with delay 0 the keys come from before the process starts: through
    assert REFUSED in said and hung_up, (said, seen)  # mounting, boot.py (on the old lock, the REPL)
    # The keys neither stopped nor reset the unit: the same boot runs the terminal.
    time.sleep(1)
    status = unit.rig.call("device")
    assert (status["boots"], status["phase"]) == (2, "main.py"), (status, seen)


def test_safe_mode_key_held_at_reset_gets_no_repl(unit):
    unit.rig.set_pin("standby_key", 0)  # held: on a development unit, safe mode and the REPL
    said, hung_up = listen(unit, KEYS, seconds=4, every=0.02, first=lambda port: unit.rig.call("reset"))
    no_repl(said)
    assert REFUSED in said and hung_up
    assert wait_phase(unit, ("main.py",))["phase"] == "main.py"  # main.py ran: no safe mode


def test_a_crash_during_boot_gets_no_repl(firmware_image, tmp_path):
    """A heap too small for boot.py's store check: boot.py dies of MemoryError, main.py never
    runs, and where a development unit would give its REPL, a production unit's port stays
    deaf (the board's C never connected its RX line: firmware/pt_lock.c). 22 KB: the launcher
    (the board's C: its bootloader's OTA choice, the mount) needs ~20 KB of it to reach boot.py,
    boot.py's store check more than 24 KB."""
    production_unit(firmware_image, tmp_path).stop()
    process = subprocess.Popen([sys.executable, "-m", "tools.vdevice", "--image", str(tmp_path / "flash.img"),
                                "--state-dir", str(tmp_path), "--heap", "22K", "--bare"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout.readline().startswith("REPL on ")
        vd = SimpleNamespace(repl=str(tmp_path / "vdevice.tty"))
        rig = RigClient.from_state(tmp_path)
        said, _ = listen(vd, seconds=3)
        no_repl(said)
        said, hung_up = listen(vd, KEYS, seconds=3, every=0.02)
        no_repl(said)
        assert REFUSED in said and hung_up
        status = rig.call("device")
        rig.close()
        assert (status["boots"], status["phase"]) == (1, "boot.py"), status  # stopped there, deaf
    finally:
        process.terminate()
        process.wait()


@pytest.mark.parametrize("tamper", ["flipped bit in an entry", "flipped bit in meta", "secret deleted"])
def test_tampered_store_keeps_a_production_unit_shut(firmware_image, tmp_path, tamper):
    vd = production_unit(firmware_image, tmp_path, bare=False)
    try:
        snapshot = tmp_path / "tampered.img"
        vd.rig.call("snapshot", path=str(snapshot))

        def edit(fs):
            if tamper == "secret deleted":
                fs.remove("/store/secret")
                return
            name = "/store/e.device.key" if "entry" in tamper else "/store/" + meta_name(fs)
            with fs.open(name, "rb") as f:
                data = bytearray(f.read())
            data[len(data) // 2] ^= 0x01
            with fs.open(name, "wb") as f:
                f.write(data)

        edit_flash(snapshot, edit)
        stays_shut(vd, snapshot)
    finally:
        vd.stop()
