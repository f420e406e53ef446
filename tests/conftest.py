"""The test harness: one `pytest` for all three layers (shared/DESIGN.md, "Testing").

- tests/device/test_*.py are MicroPython modules run ON the device: each `test_*` function is a
  pytest item of its own, run through mpremote's transport; a failure shows the device's
  traceback. By default the device is a virtual handheld that this harness builds and starts;
  with `--port /dev/ttyUSB0` it is a real board, to which the firmware is deployed first.
- tests/host/test_*.py are CPython tests: of tools/, and integration tests that drive the
  virtual handheld and its rig (those need the virtual handheld and skip with --port).

`make test` runs the suite in two parts: first every test not marked "serial" on two workers
(pytest-xdist, `-n 2 --dist loadfile`: a module's tests stay together on one worker, with its
module fixtures; each worker has its own temp dirs, virtual handhelds, banks and ports), then
the "serial" ones, alone. A test is serial when it times something that another test's load
would stretch: a wall-clock bound, the device's own timing of its waits, a seeded run whose
path follows the device's pace. SERIAL below names them (a module, or a test of one); a test
that starts timing things goes there, and a name there that no longer exists fails
tests/host/test_harness.py.
"""

import ast
import shutil
from pathlib import Path

import pytest

from tools import image
from tools.device import Device, DeviceExecError
from tools.vdevice.spawn import VDeviceProcess

ROOT = Path(__file__).resolve().parent.parent
DEVICE_TESTS = Path(__file__).resolve().parent / "device"

# The tests that time things (module docstring), and what they time: a module, or one test of
# it ("path::name", all its parameters); the rest of that module runs on the workers.
SERIAL = {
    "tests/device/test_wifi.py::test_ap_down_reconnects_with_exponential_backoff":
        "the device's own clock: each wait of the backoff within 150 ms",
    "tests/attack/test_device_screens.py::test_a_lock_during_the_wrong_pin_delay_neither_skips_it_nor_gives_the_attempt_back":
        "the wrong-PIN delay cut short at once, the next one waited out",
    "tests/attack/test_device_screens.py::test_a_request_pushed_during_the_wrong_pin_delay_neither_ends_nor_shortens_it":
        "the wrong-PIN delay waited out, every second of it drawn",
    "tests/attack/test_device_t1.py::test_waits_without_end_are_cut_at_the_command_limit": "the command limit, to within 3 s",
    "tests/attack/test_device_lock.py::test_repl_keys_at_each_point_of_boot_get_no_repl": "REPL keys at set points of the boot",
    "tests/attack/test_device_lock.py::test_a_crash_during_boot_gets_no_repl":
        "the refusal within its 3 s windows of a boot on a 16 KB heap",
    "tests/attack/test_device_iso8583.py": "frames injected into the session the device has at that moment",
    "tests/host/test_buses.py": "a UART's byte time, to within 3-15 %",
    "tests/host/test_ft6336.py": "the touch controller's timings (305-600 ms, within 2 s)",
    "tests/host/test_iso7816.py": "a removal noticed within 1 s",
    "tests/host/test_pn532.py": "an answer within 2 s",
    "tests/host/test_terminal_card.py::test_card_removed_mid_transaction": "a removed card noticed within 1.5 s",
    "tests/host/test_terminal_card.py::test_card_taken_out_while_the_bank_is_asked": "a removed card told within 1.5 s",
    "tests/host/test_terminal_settings.py::test_the_lock_timeout_chosen_is_the_one_the_terminal_keeps":
        "the lock timeout, 25-50 s",
    "tests/host/test_watchdog.py": "the watchdog's reset, within its timeout + 3 s",
    "tests/host/test_vdevice.py::test_dead_repl_is_an_error_not_a_hang": "a dead REPL said within 15 s",
    "tests/host/test_websim.py": "the page's start within 10 s",
    "tests/host/test_monkey.py": "a seed's path follows the device's pace (REACHED on every run)",
}


def _serial(name):
    path, _, test = name.partition("::")
    return path, test


def serial_missing(root=ROOT):
    """The names in SERIAL that name no module or test of the tree at root (tests/host/
    test_harness.py checks there are none: a renamed test would silently run on the workers)."""
    missing = []
    for name in SERIAL:
        path, test = _serial(name)
        if not (root / path).is_file() or test and ("def %s(" % test) not in (root / path).read_text():
            missing.append(name)
    return sorted(missing)


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: times something another test's load would stretch; make test "
                            "runs these alone (tests/conftest.py SERIAL)")


def pytest_collection_modifyitems(config, items):
    serial = {}
    for name in SERIAL:
        path, test = _serial(name)
        serial.setdefault(path, set()).add(test)
    for item in items:
        tests = serial.get(Path(item.path).relative_to(ROOT).as_posix(), ())
        if "" in tests or getattr(item, "originalname", item.name) in tests:
            item.add_marker(pytest.mark.serial)


def pytest_addoption(parser):
    parser.addoption("--port", default=None,
                     help="run the on-device tests on a real board at this serial port (e.g. /dev/ttyUSB0)")


@pytest.fixture(scope="session")
def firmware_image(tmp_path_factory):
    """The flash image built from this tree, as `make image` builds it."""
    out = tmp_path_factory.mktemp("image") / "flash.img"
    image.build(out)
    return out


@pytest.fixture(scope="session")
def vdevice(request, firmware_image, tmp_path_factory):
    """The session's virtual handheld (and its rig): its own copy of the image, its own state dir."""
    if request.config.getoption("--port"):
        pytest.skip("drives the virtual handheld's rig; this run is on a real board")
    state = tmp_path_factory.mktemp("vdevice")
    img = state / "flash.img"
    shutil.copyfile(firmware_image, img)
    vd = VDeviceProcess(img, state)
    yield vd
    vd.stop()


@pytest.fixture(scope="session")
def session_device(request, tmp_path_factory):
    """The device under test, its REPL taken in raw mode and the device tests on its flash."""
    port = request.config.getoption("--port")
    if port:
        dev = Device(port)
        dev.deploy_firmware()
    else:
        dev = Device(request.getfixturevalue("vdevice").repl)
    dev.deploy(_compile_device_tests(tmp_path_factory.mktemp("device-tests")))
    yield dev
    dev.close()


@pytest.fixture(scope="module")
def device(session_device):
    """The device under test in a fresh interpreter (a soft reset) for each test module: the
    globals, drivers and heap fragments one module leaves are never the next one's to carry
    (on the board's heap, a module that starts where another left off can run out of it)."""
    session_device.soft_reset()
    return session_device


def _compile_device_tests(out):
    """tests/device/*.py compiled to .mpy under out/tests/ (the device imports them from /tests)."""
    target = Path(out) / "tests"
    target.mkdir(parents=True)
    for src in sorted(DEVICE_TESTS.glob("*.py")):
        image.compile_mpy(src, target / (src.stem + ".mpy"), src.relative_to(ROOT).as_posix())
    return out


# ---- on-device tests as pytest items ---------------------------------------------------------

def pytest_pycollect_makemodule(module_path, parent):
    # A device test module is MicroPython code: never import it into CPython.
    if Path(module_path).parent == DEVICE_TESTS and module_path.name.startswith("test_"):
        return DeviceModule.from_parent(parent, path=module_path)
    return None


class DeviceModule(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text(), str(self.path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                item = DeviceTest.from_parent(self, name=node.name, callobj=_runner(self.path.stem, node.name))
                item.device_lineno = node.lineno
                yield item


def _runner(module, name):
    def run_on_device(session_device):
        __tracebackhide__ = True
        session_device.run_test(module, name)  # a fresh interpreter for each module, as `device`'s
    return run_on_device


class DeviceTest(pytest.Function):
    """One test function of a device test module, run inside MicroPython."""

    def reportinfo(self):
        return self.path, self.device_lineno - 1, "%s (on the device)" % self.name

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, DeviceExecError):
            e = excinfo.value
            return "on the device:\n" + e.traceback + ("\noutput before it:\n" + e.output if e.output.strip() else "")
        return super().repr_failure(excinfo)
