"""Colours, fonts and sizes of the screens."""

from drivers.st7789 import color
from micropython import const

# At import, not at the first screen: the fonts made stay for good, and so must their class
# (terminal.app lets go of the modules a screen or a flow imported). roboto: the fonts
# tools/fonts.py makes, frozen (their data is in the app image, not in the heap).
import roboto
from ui.font import Font

WIDTH = const(240)
HEIGHT = const(320)
STATUS_HEIGHT = const(24)
MARGIN = const(12)
# Touch targets: at least ~9 mm on the 2.0-inch panel (about 48 px), per platform guidelines.
TARGET = const(48)
INSET = const(1)  # a button's border: its label is drawn inside it ("Cancel" fills a PIN pad key)

BACKGROUND = color(16, 24, 32)
TEXT = color(236, 240, 244)
MUTED = color(140, 150, 160)
ACCENT = color(40, 140, 255)
GOOD = color(40, 180, 90)
BAD = color(220, 60, 50)
STATUS = color(0, 0, 0)
BUTTON = color(44, 54, 66)
BUTTON_EDGE = color(70, 82, 96)
BUTTON_TEXT = TEXT

SMALL = const(16)
BODY = const(24)
LARGE = const(40)

_fonts = {}


def font(size):
    """The font of that size, made on first use."""
    if size not in _fonts:
        _fonts[size] = Font(getattr(roboto, "SIZE%d" % size))
    return _fonts[size]
