"""Bitmap fonts made by tools/fonts.py ("PTF2"), read glyph by glyph from flash.

What stays in RAM is the index (9 bytes a glyph) and one buffer the size of the font's largest
glyph. Drawing reads a glyph's rows straight into that buffer (readinto) and blits them from
there, so text allocates nothing per character: a screen is drawn in strips (ui.canvas), each
Text redrawn in every strip it crosses, and a cache of glyph objects would be refilled, object
by object, strip after strip. Only the rows that fall inside the strip are read, so over a
whole screen each glyph is read once.
"""

import framebuf
from micropython import const

_HEADER = const(8)
_ENTRY = const(9)
# Where each field sits in an index entry (tools/fonts.py ENTRY).
_ADVANCE = const(2)
_LEFT = const(3)  # signed: the bitmap's first column from the pen
_TOP = const(4)  # the bitmap's first row from the line's top
_WIDTH = const(5)
_ROWS = const(6)
_OFFSET = const(7)  # u16, from the end of the index
_ALL_ROWS = const(0x7FFF)


class FontError(Exception):
    pass


class Font:
    def __init__(self, path):
        self.path = path
        f = open(path, "rb")
        header = f.read(_HEADER)
        if header[:4] != b"PTF2":
            f.close()
            raise FontError("%s is not a PTF2 font (rebuild the image: tools/fonts.py)" % path)
        self.height = header[4]
        self.baseline = header[5]
        self.count = header[6] | header[7] << 8
        self.index = f.read(self.count * _ENTRY)
        self.file = f
        self.data = _HEADER + self.count * _ENTRY
        index = self.index
        largest = 0
        for e in range(0, len(index), _ENTRY):
            largest = max(largest, ((index[e + _WIDTH] + 7) >> 3) * index[e + _ROWS])
        self.bits = bytearray(largest)
        # blit() takes (buffer, width, height, format) for its source: one list, refilled for
        # each glyph, instead of a FrameBuffer object a glyph.
        self.source = [self.bits, 0, 0, framebuf.MONO_HLSB]
        self.missing = self._find(ord("?"))
        if self.missing < 0:
            f.close()
            raise FontError("%s has no '?'" % path)

    def _find(self, cp):
        """Where the code point's entry starts in the index (binary search); -1 if absent."""
        lo, hi = 0, self.count - 1
        index = self.index
        while lo <= hi:
            mid = (lo + hi) >> 1
            e = mid * _ENTRY
            code = index[e] | index[e + 1] << 8
            if code == cp:
                return e
            if code < cp:
                lo = mid + 1
            else:
                hi = mid - 1
        return -1

    def _entry(self, ch):
        """The index entry that draws ch: its own, or '?' for a character the font lacks."""
        e = self._find(ord(ch))
        return e if e >= 0 else self.missing

    def width(self, text):
        index = self.index
        total = 0
        for ch in text:
            total += index[self._entry(ch) + _ADVANCE]
        return total

    def draw(self, fb, text, x, y, colour, palette, rows=_ALL_ROWS):
        """Draw text with its line's top-left at x, y; return the x after it. palette: a 2x1
        RGB565 framebuf to reuse; rows: fb's height (a strip's), below which nothing is read."""
        # Glyph bit 1 -> colour, bit 0 -> a key colour that blit leaves transparent.
        key = colour ^ 0x0101
        palette.pixel(0, 0, key)
        palette.pixel(1, 0, colour)
        index = self.index  # (one by one: a 4-name assignment builds a tuple)
        f = self.file
        bits = self.bits
        source = self.source
        visible = y < rows and y + self.height > 0
        for ch in text:
            e = self._entry(ch)
            if visible:
                top = y + index[e + _TOP]
                first = -top if top < 0 else 0
                end = min(index[e + _ROWS], rows - top)
                if first < end:
                    width = index[e + _WIDTH]
                    row_bytes = (width + 7) >> 3
                    f.seek(self.data + (index[e + _OFFSET] | index[e + _OFFSET + 1] << 8) + first * row_bytes)
                    f.readinto(bits, (end - first) * row_bytes)
                    source[1] = width
                    source[2] = end - first
                    left = index[e + _LEFT]
                    # The ESP32 stubs type blit's source as a FrameBuffer only; MicroPython's
                    # framebuf documents the (buffer, width, height, format) list used here.
                    fb.blit(source, x + (left - 256 if left > 127 else left), top + first, key, palette)  # type: ignore
            x += index[e + _ADVANCE]
        return x
