"""Bitmap fonts made by tools/fonts.py ("PTF2"), read glyph by glyph from flash.

What stays in RAM is each glyph's code point and advance (3 bytes a glyph: finding a glyph and
measuring text, which wrapping does word after word, read nothing) and two buffers: the index
entry of the glyph being drawn (the rest of its 9 bytes: 1.2 KB a font left on flash) and one
the size of the font's largest glyph. Drawing reads a glyph's entry and rows straight into
them (readinto) and blits from there, so text allocates nothing per character: a screen is
drawn in strips (ui.canvas), each Text redrawn in every strip it crosses, and a cache of glyph
objects would be refilled, object by object, strip after strip. Only the rows that fall inside
the strip are read, so over a whole screen each glyph is read once.
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
_CHUNK = const(16)  # index entries read at a time when the font is opened


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
        count = header[6] | header[7] << 8
        self.count = count
        # The index read a chunk of entries at a time, keeping code points (u16) and advances.
        self.codes = codes = bytearray(2 * count)
        self.advances = advances = bytearray(count)
        chunk = bytearray(_CHUNK * _ENTRY)
        largest = 0
        for first in range(0, count, _CHUNK):
            n = min(_CHUNK, count - first)
            f.readinto(chunk, n * _ENTRY)
            for g in range(n):
                e = g * _ENTRY
                codes[2 * (first + g)] = chunk[e]
                codes[2 * (first + g) + 1] = chunk[e + 1]
                advances[first + g] = chunk[e + _ADVANCE]
                largest = max(largest, ((chunk[e + _WIDTH] + 7) >> 3) * chunk[e + _ROWS])
        self.file = f
        self.data = _HEADER + count * _ENTRY
        self.entry = bytearray(_ENTRY)  # the entry of the glyph being drawn
        self.bits = bytearray(largest)
        # blit() takes (buffer, width, height, format) for its source: one list, refilled for
        # each glyph, instead of a FrameBuffer object a glyph.
        self.source = [self.bits, 0, 0, framebuf.MONO_HLSB]
        self.missing = self._find(ord("?"))
        if self.missing < 0:
            f.close()
            raise FontError("%s has no '?'" % path)

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
        g = self._find(ord(ch))
        return g if g >= 0 else self.missing

    def width(self, text):
        advances = self.advances
        total = 0
        for ch in text:
            total += advances[self._glyph(ch)]
        return total

    def draw(self, fb, text, x, y, colour, palette, rows=_ALL_ROWS):
        """Draw text with its line's top-left at x, y; return the x after it. palette: a 2x1
        RGB565 framebuf to reuse; rows: fb's height (a strip's), below which nothing is read."""
        # Glyph bit 1 -> colour, bit 0 -> a key colour that blit leaves transparent.
        key = colour ^ 0x0101
        palette.pixel(0, 0, key)
        palette.pixel(1, 0, colour)
        advances = self.advances  # (one by one: a 4-name assignment builds a tuple)
        entry = self.entry
        f = self.file
        bits = self.bits
        source = self.source
        visible = y < rows and y + self.height > 0
        for ch in text:
            g = self._glyph(ch)
            if visible:
                f.seek(_HEADER + g * _ENTRY)
                f.readinto(entry)
                top = y + entry[_TOP]
                first = -top if top < 0 else 0
                end = min(entry[_ROWS], rows - top)
                if first < end:
                    width = entry[_WIDTH]
                    row_bytes = (width + 7) >> 3
                    f.seek(self.data + (entry[_OFFSET] | entry[_OFFSET + 1] << 8) + first * row_bytes)
                    f.readinto(bits, (end - first) * row_bytes)
                    source[1] = width
                    source[2] = end - first
                    left = entry[_LEFT]
                    # The ESP32 stubs type blit's source as a FrameBuffer only; MicroPython's
                    # framebuf documents the (buffer, width, height, format) list used here.
                    fb.blit(source, x + (left - 256 if left > 127 else left), top + first, key, palette)  # type: ignore
            x += advances[g]
        return x
