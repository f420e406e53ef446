"""The virtual handheld as its users meet it: stock mpremote on its pty, soft reset, Ctrl-C, errors."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from tools.device import Device, DeviceError, DeviceExecError
from tools.vdevice import VDeviceError
from tools.vdevice.spawn import VDeviceProcess

MPREMOTE = [sys.executable, "-m", "mpremote"]


def mpremote(vd, *args):
    # Through the symlink, exactly as the README tells a person to.
    link = str(vd.state_dir / "vdevice.tty")
    result = subprocess.run(MPREMOTE + ["connect", link] + list(args), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def vd(firmware_image, tmp_path_factory):
    """A virtual handheld of this module's own (these tests reset and cut it)."""
    state = tmp_path_factory.mktemp("vd")
    shutil.copyfile(firmware_image, state / "flash.img")
    with VDeviceProcess(state / "flash.img", state) as vd:
        yield vd


def test_repl_path_is_printed_and_linked(vd):
    assert vd.repl.startswith("/dev/pts/"), vd.lines
    assert os.path.realpath(vd.state_dir / "vdevice.tty") == vd.repl


def test_mpremote_exec_prints_platform(vd):
    assert mpremote(vd, "exec", "import sys; print(sys.platform)").strip() == "linux"


def test_mpremote_fs_ls_lists_the_flash(vd):
    # The firmware (and the fonts) are frozen into the interpreter: a new image holds nothing.
    mpremote(vd, "exec", "f = open('/note.txt', 'w'); f.write('x'); f.close()")
    out = mpremote(vd, "fs", "ls", ":/")
    assert "note.txt" in out and "boot.py" not in out, out


def test_mpremote_run_runs_a_host_script(vd, tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import board\nprint('hello from', board.NAME)\n")
    assert mpremote(vd, "run", str(script)).strip() == "hello from handheld (virtual, over the rig)"


def test_files_survive_soft_reset(vd, tmp_path):
    src = tmp_path / "note.txt"
    src.write_text("written before the reset\n")
    mpremote(vd, "fs", "cp", str(src), ":note.txt")
    boots = vd.rig.call("device")["boots"]
    out = mpremote(vd, "soft-reset", "+", "fs", "cat", ":note.txt")
    assert "written before the reset" in out
    assert vd.rig.call("device")["boots"] == boots + 1, "soft reset must restart the interpreter"


def test_the_flash_is_mounted_as_the_board_mounts_it(vd):
    # lib/flashfs.py, through which the launcher mounts the image as the board's _boot.py does:
    # a read size of 64, so LittleFS's caches are 256 bytes and a file up to that size is kept
    # inline in its folder's metadata (no block of its own to erase); with VfsLfs2's default
    # read size, 32, a file of 200 bytes takes a block.
    dev = Device(vd.repl)
    try:
        dev.exec("import heapstat, os\nos.mkdir('/mount-test')\nopen('/mount-test/a', 'w').write('x')\n"
                 "def erases(size, name):\n    n = heapstat.native()[8][0]\n"
                 "    open('/mount-test/' + name, 'w').write('x' * size)\n    return heapstat.native()[8][0] - n")
        assert dev.eval("[erases(200, 'b'), erases(256, 'c'), erases(300, 'd')]") == [0, 0, 1]
    finally:
        dev.close()


def test_soft_reset_gives_a_fresh_heap(vd):
    dev = Device(vd.repl)
    try:
        dev.exec("hoard = bytearray(40_000)")
        dev.soft_reset()
        assert dev.eval("'hoard' in globals()") is False
    finally:
        dev.close()


def test_soft_reset_closes_open_files_as_the_board_does(vd):
    # On the ESP32 a soft reset runs every finaliser before the interpreter restarts: a file
    # written and never closed is closed then, its data on flash. Only a power cut loses it.
    dev = Device(vd.repl)
    try:
        dev.exec("f = open('/unclosed.txt', 'w'); f.write('kept by the finaliser')")
        dev.soft_reset()
        assert dev.eval("open('/unclosed.txt').read()") == "kept by the finaliser"
        dev.exec("import os; os.remove('/unclosed.txt')")
    finally:
        dev.close()


def test_traceback_from_the_device(vd):
    dev = Device(vd.repl)
    try:
        with pytest.raises(DeviceExecError) as e:
            dev.exec("def f():\n    return 1 // 0\nf()")
        assert 'File "<stdin>", line 2, in f' in e.value.traceback
        assert "ZeroDivisionError" in e.value.traceback
        assert "launcher" not in e.value.traceback
    finally:
        dev.close()


def test_ctrl_c_interrupts_running_code(vd):
    dev = Device(vd.repl)
    try:
        dev.transport.exec_raw_no_follow("import time\nwhile True:\n    time.sleep_ms(10)")
        time.sleep(0.3)
        dev.transport.serial.write(b"\x03")
        out, err = dev.transport.follow(timeout=5)
        assert b"KeyboardInterrupt" in err, (out, err)
        assert dev.eval("6 * 7") == 42
    finally:
        dev.close()


def test_friendly_repl_evaluates_and_continues_blocks(vd):
    dev = Device(vd.repl)
    try:
        t = dev.transport
        t.exit_raw_repl()
        t.read_until(1, b">>> ", timeout=5)
        t.serial.write(b"for i in range(2):\r")
        assert t.read_until(1, b"...     ", timeout=5).endswith(b"...     ")
        t.serial.write(b"print('row', i)\r\r")
        out = t.read_until(1, b">>> ", timeout=5)
        assert b"row 0\r\nrow 1\r\n" in out, out
        t.serial.write(b"21 * 2\r")
        assert b"42\r\n" in t.read_until(1, b">>> ", timeout=5)
    finally:
        dev.close()


def test_dead_repl_is_an_error_not_a_hang(tmp_path):
    master, slave = os.openpty()  # a serial port with nothing behind it
    try:
        started = time.monotonic()
        with pytest.raises(DeviceError, match="no MicroPython REPL answered"):
            Device(os.ttyname(slave), timeout=2)
        assert time.monotonic() - started < 15
    finally:
        os.close(master)
        os.close(slave)


def test_missing_port_is_an_error(tmp_path):
    with pytest.raises(DeviceError, match="no serial port"):
        Device(tmp_path / "nothing.tty")


@pytest.mark.parametrize("content, message", [
    (None, "no flash image"),
    (b"\xff" * 1000, "not a whole number"),
    (b"\xff" * 8192, "no LittleFS superblock"),
])
def test_bad_image_is_refused_clearly(tmp_path, content, message):
    img = tmp_path / "flash.img"
    if content is not None:
        img.write_bytes(content)
    with pytest.raises(VDeviceError, match=message):
        VDeviceProcess(img, tmp_path / "state", start_timeout=10)


def test_corrupt_file_system_is_refused_clearly(firmware_image, tmp_path):
    img = tmp_path / "flash.img"
    data = bytearray(firmware_image.read_bytes())
    # Keep the "littlefs" magic but wreck both superblock copies' metadata around it.
    for block in (0, 1):
        for i in range(block * 4096 + 24, block * 4096 + 4096):
            data[i] ^= 0x5A
    img.write_bytes(bytes(data))
    with pytest.raises(VDeviceError, match="could not mount its flash"):
        VDeviceProcess(img, tmp_path / "state", start_timeout=20)


def test_rig_missing_is_a_clear_error(vd):
    dev = Device(vd.repl)
    try:
        with pytest.raises(DeviceExecError) as e:
            dev.exec("import os\nos.putenv('PT_RIG', '127.0.0.1:1')\nfrom board import sim\nsim.I2C(0)")
        assert "no rig at 127.0.0.1:1" in e.value.traceback, e.value.traceback
    finally:
        dev.close()
