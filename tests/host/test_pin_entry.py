"""Typing a PIN by touching the keys where the screen shows them: the ST7789 model's picture
tells where each digit is (the randomised layout too), the FT6336U model takes the taps, and
the PIN pad on the device returns the digits."""

import ast

import pytest

from tools.rig.st7789 import read_png
from tools.screenshots import SETUP, attach_display

TOUCH = """
from drivers.ft6336 import FT6336
from ui.screens import keypad_layout
touch = FT6336(board.buses.i2c(), int_pin=board.buses.pin(h.PIN_TOUCH_INT, _pin.IN),
               reset_pin=board.buses.pin(h.PIN_TOUCH_RESET, _pin.OUT, value=1))
asyncio.run(touch.init())
ui = UI(display, touch, ui.status)
"""


@pytest.fixture(scope="module")
def keypad(vdevice, device):
    device.soft_reset()  # a fresh heap: a screen needs its strip buffer in one piece
    attach_display(vdevice.rig)
    vdevice.rig.attach("i2c0", "ft6336", addr=0x38, name="touch")
    device.exec(SETUP + TOUCH, timeout=60)
    yield device
    vdevice.rig.detach("touch")
    vdevice.rig.detach("display")


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


def show_pad(vdevice, device, tmp_path, randomize):
    """Start the PIN pad on the device (it waits for touches) and return its picture's rows."""
    import time

    drawn = vdevice.rig.call("model", name="display")["commands"]
    device.transport.exec_raw_no_follow(
        "print(repr(asyncio.run(ui.pin_pad('Enter PIN', randomize=%s, timeout_ms=20000))))" % randomize)
    # The pad is on the screen once the display has taken new commands and then stays quiet.
    deadline = time.monotonic() + 10
    last = drawn
    while True:
        time.sleep(0.1)
        now = vdevice.rig.call("model", name="display")["commands"]
        if now == last and now > drawn:
            break
        last = now
        assert time.monotonic() < deadline, "the PIN pad never appeared"
    vdevice.rig.call("do", name="display", action="screenshot", path=str(tmp_path / "pad.png"))
    return read_png(tmp_path / "pad.png")[2]


def tap_keys(vdevice, keys, labels):
    # One tap every 200 ms: down, held 80 ms, up (as a finger does), at the key's centre.
    for i, label in enumerate(labels):
        x, y, w, h = keys[label]
        vdevice.rig.call("do", name="touch", action="tap", x=x + w // 2, y=y + h // 2, after_ms=200 * i)


def test_typing_a_pin_on_the_standard_and_the_random_layout(vdevice, keypad, tmp_path):
    device = keypad
    cells = key_cells(device)
    rows = show_pad(vdevice, device, tmp_path, randomize=False)
    references = {label: crop(rows, cell) for cell, label in cells}
    tap_keys(vdevice, {label: cell for cell, label in cells}, ["2", "4", "6", "8", "OK"])
    out, err = device.transport.follow(timeout=20)
    assert not err, err
    assert out.strip() == b"bytearray(b'2468')", out

    # The randomised layout: the digits are elsewhere; find them on the picture, as a person would.
    rows = show_pad(vdevice, device, tmp_path, randomize=True)
    keys = read_keys(rows, cells, references)
    tap_keys(vdevice, keys, ["9", "7", "5", "3", "1", "OK"])
    out, err = device.transport.follow(timeout=20)
    assert not err, err
    assert out.strip() == b"bytearray(b'97531')", out


def test_a_random_layout_moves_the_digits(vdevice, keypad, tmp_path):
    device = keypad
    cells = key_cells(device)
    references = None
    layouts = set()
    for _ in range(3):
        rows = show_pad(vdevice, device, tmp_path, randomize=references is not None)
        if references is None:
            references = {label: crop(rows, cell) for cell, label in cells}
        else:
            keys = read_keys(rows, cells, references)
            layouts.add(tuple(keys[d] for d in "0123456789"))
        tap_keys(vdevice, {label: cell for cell, label in cells}, ["Cancel"])
        out, _ = device.transport.follow(timeout=20)
        assert out.strip() == b"'cancel'", out
    # Two random layouts in a row are the same with probability 1/10! only.
    assert len(layouts) == 2
