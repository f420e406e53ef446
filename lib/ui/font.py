"""Bitmap fonts made by tools/fonts.py, frozen into the firmware (the module `roboto`).

A font is one constant of that module: its code points, advances, boxes and bitmaps are bytes
objects that the frozen module keeps in the app image, read through the flash cache like
bytecode on the ESP32. So a font costs no GC heap beyond this object, and drawing a glyph makes
no file system call and allocates nothing: the glyph's own bitmap is blitted, through one list
refilled for each glyph, and framebuf's blit clips it to the strip (ui.canvas draws a screen in
strips, each Text redrawn in every strip it crosses).
"""

import framebuf
from micropython import const

# Where each field sits in a glyph's box (tools/fonts.py BOX).
_BOX = const(4)
_TOP = const(1)  # the bitmap's first row from the line's top; column 0: left, signed
_WIDTH = const(2)
_ROWS = const(3)
_ALL_ROWS = const(0x7FFF)


class Font:
    def __init__(self, data):
        """data: one of the frozen module's fonts (tools/fonts.py render())."""
        self.height, self.baseline, self.codes, self.advances, self.boxes, self.bitmaps = data
        self.count = len(self.advances)
        # blit() takes (buffer, width, height, format) for its source: one list, refilled for
        # each glyph, instead of a FrameBuffer object a glyph.
        self.source = [self.bitmaps[0], 0, 0, framebuf.MONO_HLSB]
        self.missing = self._find(ord("?"))  # tools/fonts.py makes sure there is one
        # Printable ASCII, where tools/fonts.py's charset starts, in order: glyph cp - 32, no
        # search (a screen's text is drawn again in every strip it crosses: ~7 steps of the
        # binary search a character were a third of a progress screen's bytecode). The codes
        # are sorted and unique, so its two ends make the run whole.
        self.direct = 127 if self.count > 94 and self._code(0) == 32 and self._code(94) == 126 else 32

    def _code(self, g):
        return self.codes[2 * g] | self.codes[2 * g + 1] << 8

    def _find(self, cp):
        """The code point's glyph number (binary search); -1 if absent."""
        lo, hi = 0, self.count - 1
        codes = self.codes
        while lo <= hi:
            mid = (lo + hi) >> 1
            code = codes[2 * mid] | codes[2 * mid + 1] << 8
            if code == cp:
                return mid
            if code < cp:
                lo = mid + 1
            else:
                hi = mid - 1
        return -1

    def _glyph(self, ch):
        """The glyph that draws ch: its own, or '?' for a character the font lacks."""
        cp = ord(ch)
        if 32 <= cp < self.direct:
            return cp - 32
        g = self._find(cp)
        return g if g >= 0 else self.missing

    def width(self, text):
        advances = self.advances
        direct = self.direct
        total = 0
        for ch in text:
            cp = ord(ch)  # _glyph's direct case in line: no call for most characters
            total += advances[cp - 32 if 32 <= cp < direct else self._glyph(ch)]
        return total

    def draw(self, fb, text, x, y, colour, palette, rows=_ALL_ROWS):
        """Draw text with its line's top-left at x, y; return the x after it. palette: a 2x1
        RGB565 framebuf to reuse; rows: fb's height (a strip's), below which nothing is drawn."""
        # Glyph bit 1 -> colour, bit 0 -> a key colour that blit leaves transparent.
        key = colour ^ 0x0101
        palette.pixel(0, 0, key)
        palette.pixel(1, 0, colour)
        advances = self.advances  # (one by one: a 4-name assignment builds a tuple)
        boxes = self.boxes
        bitmaps = self.bitmaps
        source = self.source
        direct = self.direct
        visible = y < rows and y + self.height > 0
        for ch in text:
            cp = ord(ch)  # _glyph's direct case in line, as in width()
            g = cp - 32 if 32 <= cp < direct else self._glyph(ch)
            if visible:
                box = g * _BOX
                top = y + boxes[box + _TOP]
                height = boxes[box + _ROWS]
                if top < rows and top + height > 0:
                    source[0] = bitmaps[g]
                    source[1] = boxes[box + _WIDTH]
                    source[2] = height
                    left = boxes[box]
                    # The ESP32 stubs type blit's source as a FrameBuffer only; MicroPython's
                    # framebuf documents the (buffer, width, height, format) list used here.
                    fb.blit(source, x + (left - 256 if left > 127 else left), top, key, palette)  # type: ignore
            x += advances[g]
        return x
