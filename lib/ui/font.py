"""Bitmap fonts made by tools/fonts.py ("PTF1"), read glyph by glyph from flash.

Only the index (8 bytes a glyph) stays in RAM, plus a few recently drawn glyphs: the largest
size is 30 KB on flash, too much to hold in the board's heap beside everything else.
"""

import struct

import framebuf
from micropython import const

_HEADER = const(8)
_ENTRY = const(8)
_CACHE = const(24)  # glyphs kept in RAM per font


class FontError(Exception):
    pass


class Font:
    def __init__(self, path):
        self.path = path
        f = open(path, "rb")
        magic, self.height, self.baseline, self.count = struct.unpack("<4sBBH", f.read(_HEADER))
        if magic != b"PTF1":
            f.close()
            raise FontError("%s is not a PTF1 font" % path)
        self.index = f.read(self.count * _ENTRY)
        self.file = f
        self.data = _HEADER + self.count * _ENTRY
        self.cache = {}

    def _entry(self, cp):
        """(advance, width, offset) of a code point, by binary search; None if absent."""
        lo, hi = 0, self.count - 1
        index = self.index
        while lo <= hi:
            mid = (lo + hi) // 2
            code = index[mid * _ENTRY] | index[mid * _ENTRY + 1] << 8
            if code == cp:
                return struct.unpack_from("<BBI", index, mid * _ENTRY + 2)
            if code < cp:
                lo = mid + 1
            else:
                hi = mid - 1
        return None

    def glyph(self, ch):
        """(framebuf of the glyph, its advance). A missing character is drawn as '?'."""
        g = self.cache.get(ch)
        if g is None:
            entry = self._entry(ord(ch)) or self._entry(ord("?"))
            if entry is None:
                raise FontError("%s has no '?'" % self.path)
            advance, width, offset = entry
            self.file.seek(self.data + offset)
            bits = bytearray(self.file.read(((width + 7) >> 3) * self.height))
            if len(self.cache) >= _CACHE:
                self.cache.pop(next(iter(self.cache)))
            g = self.cache[ch] = (framebuf.FrameBuffer(bits, width, self.height, framebuf.MONO_HLSB), advance)
        return g

    def width(self, text):
        total = 0
        for ch in text:
            entry = self._entry(ord(ch)) or self._entry(ord("?"))
            total += entry[0] if entry else 0
        return total

    def draw(self, fb, text, x, y, colour, palette):
        """Draw text with its top-left at x, y; palette: a 2x1 RGB565 framebuf to reuse."""
        # Glyph bit 1 -> colour, bit 0 -> a key colour that blit leaves transparent.
        key = colour ^ 0x0101
        palette.pixel(0, 0, key)
        palette.pixel(1, 0, colour)
        for ch in text:
            g, advance = self.glyph(ch)
            fb.blit(g, x, y, key, palette)
            x += advance
        return x
