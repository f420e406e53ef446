"""The terminal application (lib/terminal/app.py) on the virtual handheld, driven as its owner
drives it: taps on the FT6336U model where the screen shows the keys, the standby key through
the rig, the screen read back from the ST7789 model. A provisioned terminal meets its owner
(PIN chosen twice), the standby key locks it in the middle of Settings, and after the PIN the
owner is back on the Settings screen, not the home menu."""

import time

import pytest

from touchscreen import TOUCH, drawn_since, key_cells, screen_rows, tap_keys
from tools.screenshots import SETUP, attach_display

APP = """
import sys
if '/tests' not in sys.path: sys.path.append('/tests')
import vaultfix
from ui import theme
from vault.session import Session
from terminal.app import App
v = vaultfix.provisioned('/app-store')
session = Session(v)
app = App(ui, session, None, board.buses.standby_key())
"""
PIN = ["2", "4", "6", "8", "OK"]


@pytest.fixture(scope="module")
def terminal(vdevice, device):
    attach_display(vdevice.rig)
    vdevice.rig.attach("i2c0", "ft6336", addr=0x38, name="touch")
    device.exec(SETUP + TOUCH + APP, timeout=60)
    yield device
    device.exec("vaultfix.clean('/app-store')")
    vdevice.rig.detach("touch")
    vdevice.rig.detach("display")


def commands(vdevice):
    return vdevice.rig.call("model", name="display")["commands"]


def tap_and_wait(vdevice, x, y):
    drawn = commands(vdevice)
    vdevice.rig.call("do", name="touch", action="tap", x=x, y=y)
    drawn_since(vdevice, drawn)


def menu_entries(device):
    """The centres of a menu's entries, from the device's own theme (asked before the app runs)."""
    status, target = device.eval("(theme.STATUS_HEIGHT, theme.TARGET)")
    return [(120, status + 44 + i * (target + 10) + target // 2) for i in range(3)]


def more_button(device):
    """The centre of a menu's "More" (its next page), from the device's theme (asked before the app runs)."""
    width, height, margin, target = device.eval("(theme.WIDTH, theme.HEIGHT, theme.MARGIN, theme.TARGET)")
    return width - margin - 52, height - target - 8 + target // 2


def type_pin(vdevice, keys):
    drawn = commands(vdevice)
    tap_keys(vdevice, keys, PIN)
    time.sleep(0.2 * len(PIN))
    drawn_since(vdevice, drawn)


def test_owner_setup_then_a_lock_resumes_where_it_stopped(vdevice, terminal, tmp_path):
    device = terminal
    keys = {label: cell for cell, label in key_cells(device)}
    entries = menu_entries(device)
    more = more_button(device)
    drawn = commands(vdevice)
    device.transport.exec_raw_no_follow("asyncio.run(app.run())")
    drawn_since(vdevice, drawn)  # "Choose a PIN"
    type_pin(vdevice, keys)  # the PIN, then the same again
    type_pin(vdevice, keys)  # -> the home menu
    tap_and_wait(vdevice, *more)  # Purchase, Balance, Transfer | Card mode, History, Settings
    tap_and_wait(vdevice, *entries[2])  # Settings
    settings = screen_rows(vdevice, tmp_path, "settings")

    drawn = commands(vdevice)
    vdevice.rig.set_pin("standby_key", 0)  # pressed ...
    time.sleep(0.1)
    vdevice.rig.set_pin("standby_key", None)  # ... and released
    drawn_since(vdevice, drawn)  # the lock screen
    assert screen_rows(vdevice, tmp_path, "locked") != settings
    tap_and_wait(vdevice, *entries[0])  # "PIN"
    type_pin(vdevice, keys)
    assert screen_rows(vdevice, tmp_path, "resumed") == settings

    device.transport.serial.write(b"\x03")  # Ctrl-C: the app stops, the REPL is back
    device.transport.follow(timeout=10)
    assert device.eval("(v.state, v.unlocked, type(session.operation).__name__, session.lock_reason)") == (
        "PERSONALIZED", True, "Settings", None)
