"""The ST7789 driver against the rig's model: colours and byte order, every rotation, and the
touch driver agreeing with the display on where a point of the screen is."""

import pytest

from tools.rig.st7789 import read_png

DISPLAY = """
import asyncio, board
from board import handheld as h
from drivers.st7789 import ST7789, color
from drivers.ft6336 import FT6336
_pin = board.buses.machine.Pin
cs = board.buses.pin(h.PIN_DISPLAY_CS, _pin.OUT, value=1)
dc = board.buses.pin(h.PIN_DISPLAY_DC, _pin.OUT, value=0)
spi = board.buses.display_spi()
RED, GREEN, BLUE = color(255, 0, 0), color(0, 255, 0), color(0, 0, 255)
def draw(rotation):
    d = ST7789(spi, cs, dc, rotation=rotation)
    asyncio.run(d.init())
    d.fill_rect(0, 0, d.width, d.height, 0)
    d.fill_rect(0, 0, 10, 10, RED)              # the screen's top-left corner
    d.fill_rect(d.width - 10, 0, 10, 10, GREEN)  # its top-right corner
    d.fill_rect(0, d.height - 10, 10, 10, BLUE)  # its bottom-left corner
    return d.width, d.height
"""

# Where the screen's corners land on the portrait panel for each clockwise rotation.
CORNERS = {
    0: {"red": (0, 0), "green": (239, 0), "blue": (0, 319)},
    90: {"red": (239, 0), "green": (239, 319), "blue": (0, 0)},
    180: {"red": (239, 319), "green": (0, 319), "blue": (239, 0)},
    270: {"red": (0, 319), "green": (0, 0), "blue": (239, 319)},
}
RGB = {"red": b"\xff\x00\x00", "green": b"\x00\xff\x00", "blue": b"\x00\x00\xff"}


@pytest.fixture(scope="module")
def display(vdevice, device):
    vdevice.rig.attach("spi1", "st7789", cs="display_cs", dc="display_dc", name="display")
    vdevice.rig.attach("i2c0", "ft6336", addr=0x38, name="touch")
    vdevice.rig.call("do", name="touch", action="config", boot_ms=1)
    device.exec(DISPLAY)
    yield device
    vdevice.rig.detach("touch")
    vdevice.rig.detach("display")


def pixel(rows, x, y):
    return rows[y][3 * x:3 * x + 3]


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotation_puts_the_corners_where_they_belong(vdevice, display, rotation, tmp_path):
    size = display.eval("draw(%d)" % rotation)
    assert size == ((240, 320) if rotation in (0, 180) else (320, 240))
    vdevice.rig.call("do", name="display", action="screenshot", path=str(tmp_path / "r.png"))
    rows = read_png(tmp_path / "r.png")[2]
    for colour, (x, y) in CORNERS[rotation].items():
        assert pixel(rows, x, y) == RGB[colour], (rotation, colour, pixel(rows, x, y))
    assert pixel(rows, 120, 160) == b"\x00\x00\x00"
    assert vdevice.rig.call("model", name="display")["errors"] == 0


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_touch_and_display_agree_on_screen_coordinates(vdevice, display, rotation):
    # A finger on the panel where the display put the screen's red corner is reported by the
    # touch driver, in the same rotation, at that corner of the screen.
    x, y = CORNERS[rotation]["red"]
    display.exec("t = FT6336(board.buses.i2c(), rotation=%d, wake_ms=1)\nasyncio.run(t.init())" % rotation)
    vdevice.rig.call("do", name="touch", action="tap", x=x, y=y)
    event = display.eval("asyncio.run(t.event(1000))")
    assert event[0] == "down" and event[1] <= 2 and event[2] <= 2, (rotation, event)
    display.eval("asyncio.run(t.event(1000))")  # the lift
