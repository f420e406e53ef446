# The on-screen keyboard (lib/ui/keyboard.py) on the device: the real ST7789 and FT6336 drivers
# against the rig's models (attached here through the rig's control API), a finger's taps at the
# keys' centres scheduled on the touch model, the text typed read back from text().
import json

import asyncio
import board
from board import handheld as h
from micropython import const

from test_wifi import rig
from ui import keyboard
from ui.screens import CANCEL, UI

TAP_EVERY_MS = const(250)
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))


def _attached(test):
    for name in ("display", "touch"):
        try:
            rig("detach", name=name)  # left by another test
        except RuntimeError:
            pass
    rig("attach", bus="spi1", model="st7789", cs="display_cs", dc="display_dc", name="display")
    rig("attach", bus="i2c0", model="ft6336", addr=0x38, name="touch")
    try:
        from drivers.ft6336 import FT6336
        from drivers.st7789 import ST7789

        pin = board.buses.machine.Pin
        display = ST7789(board.buses.display_spi(), board.buses.pin(h.PIN_DISPLAY_CS, pin.OUT, value=1),
                         board.buses.pin(h.PIN_DISPLAY_DC, pin.OUT, value=0))
        touch = FT6336(board.buses.i2c(), int_pin=board.buses.pin(h.PIN_TOUCH_INT, pin.IN),
                       reset_pin=board.buses.pin(h.PIN_TOUCH_RESET, pin.OUT, value=1))
        asyncio.run(display.init())
        asyncio.run(touch.init())
        ui = UI(display, touch)
        lines = []
        shown = ui.shown

        def record(title, text=None, buttons=(), **more):
            shown(title, text, buttons, **more)
            lines.append(json.loads(json.dumps(dict(more, title=title, text=text,
                                                    buttons={b.label.text: list(b.bounds) for b in buttons}))))

        ui.shown = record
        test(ui, lines)
    finally:
        rig("detach", name="touch")
        rig("detach", name="display")


def _taps(labels, first_ms=400):
    """Schedule a finger on the keys named, each looked up on the page the taps before it lead to."""
    page = 0
    at = first_ms
    for label in labels:
        key = next(k for k in keyboard.layout(page) if k[4] == label)
        x, y, w, hh = key[:4]
        rig("do", name="touch", action="tap", x=x + w // 2, y=y + hh // 2, hold_ms=60, after_ms=at)
        at += TAP_EVERY_MS
        if key[5] == "page":
            page = (page + 1) % len(keyboard.PAGES)


def test_layout_holds_every_printable_character_in_finger_sized_keys():
    chars = "".join(k[5] for p in range(len(keyboard.PAGES)) for k in keyboard.layout(p) if len(k[5]) == 1)
    assert sorted(set(chars)) == sorted(PRINTABLE)
    for p in range(len(keyboard.PAGES)):
        keys = keyboard.layout(p)
        assert len(set(k[4] for k in keys)) == len(keys)  # a label names one key of the page
        for i, (x, y, w, hh, _, _) in enumerate(keys):
            assert 0 <= x and x + w <= 240 and 88 <= y and y + hh <= 320
            assert w >= 32 and hh >= 44
            for (x2, y2, w2, h2, _, _) in keys[i + 1:]:
                assert x + w <= x2 or x2 + w2 <= x or y + hh <= y2 or y2 + h2 <= y  # no overlap
    # The page key names the next page, round the four.
    assert [keyboard.layout(p)[-5][4] for p in range(4)] == ["ABC", "123", "#+=", "abc"]


def test_types_across_pages_deletes_and_says_which_page_is_up():
    def test(ui, lines):
        # "A", "1", "~", space, "b" deleted, "c": each on its page, then OK.
        _taps(["ABC", "A", "123", "1", "#+=", "~", "space", "abc", "b", "Del", "c", "OK"])
        assert asyncio.run(keyboard.text(ui, "Network name")) == "A1~ c"
        assert [line["keyboard"] for line in lines] == ["abc", "ABC", "123", "#+=", "abc"]
        assert all(line["title"] == "Network name" for line in lines)
        # The line lists the page's keys where they are drawn.
        assert lines[2]["buttons"]["1"] == list(keyboard.layout(2)[0][:4])
    _attached(test)


def test_secret_entry_prints_nothing_of_the_text_and_keeps_min_len():
    def test(ui, lines):
        # OK with 3 characters of the 4 asked does nothing; the 4th then OK returns them.
        _taps(["x", "y", "z", "OK", "ABC", "123", "7", "OK"])
        assert asyncio.run(keyboard.text(ui, "Password", secret=True, min_len=4)) == "xyz7"
        # Each line: the title, the page and its keys; no text, no count.
        assert [sorted(line) for line in lines] == [["buttons", "keyboard", "text", "title"]] * 3
        assert all(line["text"] is None for line in lines)
        # Cancel answers CANCEL, whatever was typed.
        lines.clear()
        _taps(["q", "Cancel"])
        assert asyncio.run(keyboard.text(ui, "Password", secret=True)) == CANCEL
    _attached(test)


def test_max_len_stops_typing():
    def test(ui, lines):
        _taps(["a", "b", "c", "OK"])
        assert asyncio.run(keyboard.text(ui, "Name", max_len=2)) == "ab"
    _attached(test)
