"""Sitronix ST7789 TFT controller, 240x320, RGB565 over SPI (write-only wiring: no MISO).

The controller takes RGB565 big-endian on the wire, while framebuf keeps RGB565 little-endian;
rather than swapping every strip before it is sent, colours are made with color(), which
returns the value with its bytes already swapped: a framebuf drawn with them is wire order.

Nothing here holds a full frame (150 KB would not fit the board's heap): the caller draws into
a strip-sized framebuf and sends it with blit(), or fills rectangles directly.
"""

import asyncio

from micropython import const

# Commands (ST7789V datasheet, section 9).
_SWRESET = const(0x01)  # software reset; wait 120 ms before the next command
_SLPOUT = const(0x11)  # out of sleep; wait 120 ms before the next command
_NORON = const(0x13)  # normal display mode (no partial area)
_INVOFF = const(0x20)
_INVON = const(0x21)
_DISPON = const(0x29)
_CASET = const(0x2A)  # column address window
_RASET = const(0x2B)  # row address window
_RAMWR = const(0x2C)  # memory write into the window
_MADCTL = const(0x36)  # memory data access control: scan direction, RGB/BGR
_COLMOD = const(0x3A)  # interface pixel format
_COLMOD_16BIT = const(0x55)  # 65k colours, 16 bits a pixel

# MADCTL bits
_MY = const(0x80)  # rows bottom to top
_MX = const(0x40)  # columns right to left
_MV = const(0x20)  # rows and columns exchanged
_BGR = const(0x08)

_RESET_WAIT_MS = const(120)
# Scan direction for each rotation of the portrait panel (clockwise degrees).
_ROTATIONS = {0: 0, 90: _MX | _MV, 180: _MX | _MY, 270: _MY | _MV}

PANEL_WIDTH = const(240)
PANEL_HEIGHT = const(320)


def color(r, g, b):
    """An RGB565 colour from 8-bit components, bytes swapped for framebuf (see above)."""
    c = ((r & 0xF8) << 8) | ((g & 0xFC) << 3) | (b >> 3)
    return ((c & 0xFF) << 8) | (c >> 8)


class DisplayError(Exception):
    pass


class ST7789:
    def __init__(self, spi, cs, dc, backlight=None, rotation=0, bgr=False):
        """spi: the display's bus; cs, dc, backlight: machine.Pin outputs."""
        if rotation not in _ROTATIONS:
            raise ValueError("rotation is 0, 90, 180 or 270")
        self.spi = spi
        self.cs = cs
        self.dc = dc
        self.backlight = backlight
        self.rotation = rotation
        self.madctl = _ROTATIONS[rotation] | (_BGR if bgr else 0)
        self.width, self.height = (PANEL_HEIGHT, PANEL_WIDTH) if rotation in (90, 270) else (PANEL_WIDTH, PANEL_HEIGHT)
        self._one = bytearray(1)
        self._four = bytearray(4)
        self.ready = False

    def _command(self, cmd, data=None):
        self.cs(0)
        self.dc(0)
        self._one[0] = cmd
        self.spi.write(self._one)
        if data:
            self.dc(1)
            self.spi.write(data)
        self.cs(1)

    async def init(self):
        """Reset and configure: 16-bit colour, the rotation, normal mode, display on."""
        self.cs(1)
        self._command(_SWRESET)
        await asyncio.sleep_ms(_RESET_WAIT_MS)
        self._command(_SLPOUT)
        await asyncio.sleep_ms(_RESET_WAIT_MS)
        self._command(_COLMOD, bytes((_COLMOD_16BIT,)))
        self._command(_MADCTL, bytes((self.madctl,)))
        self._command(_INVOFF)
        self._command(_NORON)
        self._command(_DISPON)
        if self.backlight is not None:
            self.backlight(1)
        self.ready = True

    def _window(self, x, y, w, h):
        four = self._four
        four[0], four[1], four[2], four[3] = x >> 8, x & 0xFF, (x + w - 1) >> 8, (x + w - 1) & 0xFF
        self._command(_CASET, four)
        four[0], four[1], four[2], four[3] = y >> 8, y & 0xFF, (y + h - 1) >> 8, (y + h - 1) & 0xFF
        self._command(_RASET, four)

    def _start_write(self, x, y, w, h):
        """Window, RAMWR, and the bus left selected in data mode for the pixels."""
        self._window(x, y, w, h)
        self.cs(0)
        self.dc(0)
        self._one[0] = _RAMWR
        self.spi.write(self._one)
        self.dc(1)

    def begin(self, x, y, w, h):
        """Open the w x h window at x, y for pixels sent in pieces (write(), then end()): the
        controller fills the window row by row across transfers, so a screen drawn in strips
        sets its window once. A window and a RAMWR a strip were 12 pin changes, 5 bus calls and
        4 method calls each: ~1 ms of bytecode a screen here, ~0.2 s on the ESP32 model
        (tools/flowbench.py), for 80 strips that are one window."""
        if not self.ready:
            raise DisplayError("display not initialised")
        if x < 0 or y < 0 or x + w > self.width or y + h > self.height:
            raise ValueError("window %d,%d %dx%d is outside the %dx%d screen" % (x, y, w, h, self.width, self.height))
        self._start_write(x, y, w, h)

    def write(self, pixels):
        """The next pixels of the window begin() opened (RGB565, wire order: see color())."""
        self.spi.write(pixels)

    def end(self):
        """The window's writing done: the bus released."""
        self.cs(1)

    def blit(self, x, y, w, h, pixels):
        """Write w x h pixels (RGB565, wire order: see color()) at x, y."""
        if len(pixels) < w * h * 2:
            raise ValueError("window %d,%d %dx%d: %d bytes of pixels" % (x, y, w, h, len(pixels)))
        self.begin(x, y, w, h)
        n = w * h * 2
        # A slice only for a longer buffer: a memoryview a strip is heap used for nothing.
        self.write(pixels if len(pixels) == n else memoryview(pixels)[:n])
        self.end()

    def fill_rect(self, x, y, w, h, colour, chunk=None):
        """A rectangle of one colour, sent in pieces of at most len(chunk) bytes."""
        chunk = chunk or bytearray(2 * PANEL_WIDTH)
        for i in range(0, len(chunk), 2):
            chunk[i], chunk[i + 1] = colour & 0xFF, colour >> 8
        self._start_write(x, y, w, h)
        left = w * h * 2
        while left > 0:
            n = min(left, len(chunk))
            self.spi.write(memoryview(chunk)[:n])
            left -= n
        self.cs(1)

    def self_test(self):
        """(ok, detail) for diag. The wiring has no MISO, so the controller cannot be read
        back: what can be checked is that it was configured without a bus error."""
        if not self.ready:
            return False, "not initialised"
        return True, "%dx%d, rotation %d, configured (write-only: no read-back wired)" % (self.width, self.height, self.rotation)
