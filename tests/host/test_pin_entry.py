"""Typing a PIN by touching the keys where the screen shows them: the ST7789 model's picture
tells where each digit is (the randomised layout too), the FT6336U model takes the taps, and
the PIN pad on the device returns the digits."""

import pytest

from touchscreen import TOUCH, crop, key_cells, read_keys, show_pad, tap_keys
from tools.screenshots import SETUP, attach_display



@pytest.fixture(scope="module")
def keypad(vdevice, device):
    attach_display(vdevice.rig)
    vdevice.rig.attach("i2c0", "ft6336", addr=0x38, name="touch")
    device.exec(SETUP + TOUCH, timeout=60)
    yield device
    vdevice.rig.detach("touch")
    vdevice.rig.detach("display")


def test_typing_a_pin_on_the_standard_and_the_random_layout(vdevice, keypad, tmp_path):
    device = keypad
    cells = key_cells(device)
    rows = show_pad(vdevice, device, tmp_path, randomize=False)
    references = {label: crop(rows, cell) for cell, label in cells}
    tap_keys(vdevice, {label: cell for cell, label in cells}, ["2", "4", "6", "8", "OK"])
    out, err = device.transport.follow(timeout=20)
    assert not err, err
    assert out.strip().splitlines()[-1] == b"bytearray(b'2468')", out

    # The randomised layout: the digits are elsewhere; find them on the picture, as a person would.
    rows = show_pad(vdevice, device, tmp_path, randomize=True)
    keys = read_keys(rows, cells, references)
    tap_keys(vdevice, keys, ["9", "7", "5", "3", "1", "OK"])
    out, err = device.transport.follow(timeout=20)
    assert not err, err
    assert out.strip().splitlines()[-1] == b"bytearray(b'97531')", out


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
        assert out.strip().splitlines()[-1] == b"'cancel'", out
    # Two random layouts in a row are the same with probability 1/10! only.
    assert len(layouts) == 2
