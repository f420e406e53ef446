"""The harness itself: `pytest --port` against a board (here the virtual handheld's pty stands in
for one), each device test an item of its own, and the device's traceback on failure."""

import shutil
import subprocess
import sys
from pathlib import Path

from tools.vdevice.spawn import VDeviceProcess
from tools.rig.client import RigClient

import pytest

# Not `from conftest import ROOT`: "conftest" is also tests/attack's, whichever pytest loaded last.
ROOT = Path(__file__).resolve().parents[2]

FAILING = '''\
def test_passes():
    assert 1 + 1 == 2


def helper():
    return {}["no such key"]


def test_fails_on_the_device():
    helper()
'''


def test_port_run_reports_items_and_device_tracebacks(firmware_image, tmp_path):
    tests = tmp_path / "tests"
    (tests / "device").mkdir(parents=True)
    shutil.copyfile(ROOT / "tests" / "conftest.py", tests / "conftest.py")
    shutil.copyfile(ROOT / "tests" / "device" / "expect.py", tests / "device" / "expect.py")
    (tests / "device" / "test_sample.py").write_text(FAILING)
    (tmp_path / "pytest.ini").write_text("[pytest]\npythonpath = %s\n" % ROOT)
    shutil.copyfile(firmware_image, tmp_path / "flash.img")
    with VDeviceProcess(tmp_path / "flash.img", tmp_path / "state") as vd:
        result = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--port", vd.repl,
                                 str(tests)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "test_sample.py::test_passes PASSED" in out, out
    assert "test_sample.py::test_fails_on_the_device FAILED" in out, out
    # The MicroPython traceback, with the device-side file and line numbers.
    assert 'File "tests/device/test_sample.py", line 6, in helper' in out, out
    assert "KeyError: no such key" in out, out


def test_serial_names_only_tests_that_are_there(tmp_path):
    from tests.conftest import SERIAL, serial_missing

    assert serial_missing() == []
    # A module renamed, or a test of one: named, so that it does not go on the workers unseen.
    (tmp_path / "tests" / "host").mkdir(parents=True)
    (tmp_path / "tests" / "device").mkdir()
    (tmp_path / "tests" / "device" / "test_wifi.py").write_text("def test_renamed():\n    pass\n")
    assert "tests/device/test_wifi.py::test_ap_down_reconnects_with_exponential_backoff" in serial_missing(tmp_path)
    assert "tests/host/test_monkey.py" in serial_missing(tmp_path)
    assert len(serial_missing(tmp_path)) == len(SERIAL)


def test_no_tests_is_not_a_pass(tmp_path):
    (tmp_path / "test_nothing.py").write_text("")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 5  # and .ci/run, under `set -e`, fails on it


def test_rig_runs_alone_for_host_software(tmp_path):
    import serial

    proc = subprocess.Popen([sys.executable, "-m", "tools.rig", "--state-dir", str(tmp_path), "--attach",
                             "uart2:loopback"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        assert any("loopback (loopback on uart2) on /dev/pts/" in line for line in lines), lines
        with serial.Serial(str(tmp_path / "rig" / "loopback.tty"), 115200, timeout=2) as port:
            port.write(b"ping")
            assert port.read(4) == b"ping"
        with RigClient.from_state(tmp_path) as rig:
            assert rig.call("status")["buses"]["uart2"]["bytes_to_model"] == 4
    finally:
        proc.terminate()
        proc.wait(10)


def test_no_rig_is_a_clear_error(tmp_path):
    from tools.rig.client import RigClientError

    with pytest.raises(RigClientError, match="no rig state"):
        RigClient.from_state(tmp_path)
