"""Reading the virtual handheld's screen and touching it, as a person would: where the keys
are (the device's own layout), what each key shows (its picture, compared with the standard
layout's), taps at their centres through the touch controller's model."""

import ast
import time

from tools.rig.st7789 import read_png

# On the device, after tools.screenshots.SETUP: the UI with the real touch driver.
TOUCH = """
from drivers.ft6336 import FT6336
from ui.screens import keypad_layout
touch = FT6336(board.buses.i2c(), int_pin=board.buses.pin(h.PIN_TOUCH_INT, _pin.IN),
               reset_pin=board.buses.pin(h.PIN_TOUCH_RESET, _pin.OUT, value=1))
asyncio.run(touch.init())
ui = UI(display, touch, ui.status)
"""


def key_cells(device):
    """[(x, y, w, h)] of the keys, from the device's own layout, with the label they carry in
    the standard order."""
    return [(tuple(k[:4]), k[4]) for k in ast.literal_eval(device.exec("print(keypad_layout())").strip())]


def crop(rows, cell):
    x, y, w, h = cell
    return tuple(bytes(row[3 * (x + 8):3 * (x + w - 8)]) for row in rows[y + 8:y + h - 8])


def read_keys(rows, cells, references):
    """Which label each key shows, by comparing its picture with the standard layout's."""
    out = {}
    for cell, _ in cells:
        found = [label for label, picture in references.items() if picture == crop(rows, cell)]
        assert len(found) == 1, "key at %s shows no single known label" % (cell,)
        out[found[0]] = cell
    return out


def drawn_since(vdevice, commands):
    """Wait until the display has taken commands beyond `commands` and then stays quiet (a
    screen is up); return its count now."""
    deadline = time.monotonic() + 10
    last = commands
    while True:
        time.sleep(0.1)
        now = vdevice.rig.call("model", name="display")["commands"]
        if now == last and now > commands:
            return now
        last = now
        assert time.monotonic() < deadline, "no new screen appeared"


def screen_rows(vdevice, tmp_path, name="screen"):
    path = tmp_path / (name + ".png")
    vdevice.rig.call("do", name="display", action="screenshot", path=str(path))
    return read_png(path)[2]


def show_pad(vdevice, device, tmp_path, randomize):
    """Start the PIN pad on the device (it waits for touches) and return its picture's rows."""
    drawn = vdevice.rig.call("model", name="display")["commands"]
    device.transport.exec_raw_no_follow(
        "print(repr(asyncio.run(ui.pin_pad('Enter PIN', randomize=%s, timeout_ms=20000))))" % randomize)
    drawn_since(vdevice, drawn)
    return screen_rows(vdevice, tmp_path, "pad")


def tap_keys(vdevice, keys, labels):
    # One tap every 200 ms: down, held 80 ms, up (as a finger does), at the key's centre.
    for i, label in enumerate(labels):
        x, y, w, h = keys[label]
        vdevice.rig.call("do", name="touch", action="tap", x=x + w // 2, y=y + h // 2, after_ms=200 * i)
