"""The UI's bitmap fonts, rendered on the host when the image is built.

A real typeface (Roboto, Apache 2.0, from the font-roboto package) is rasterised by Pillow at
each size the screens use into a compact 1-bit font file that lib/ui/font.py reads glyph by
glyph from flash.

The glyphs are FreeType's monochrome rendering (Pillow's fontmode "1": the hinter fits each
stem to whole pixels for a 1-bit screen, and its dropout control keeps a period a period),
each with the advance FreeType hinted along with it (Pillow's basic layout: whole pixels). A
1-bit font made by thresholding the anti-aliased rendering at half grey, placed with the
unhinted advances, lost the period after "account" and left the "t" of "Current" touching the
next word. Drawn pen by pen with these metrics, a string is pixel for pixel what Pillow draws
for the whole string (tests/host/test_font.py; see draw_string() for where Pillow puts a glyph
vertically): Roboto has no kern table, so the basic layout has no kerning to reproduce.

Format "PTF2", little-endian:

    magic "PTF2", line height u8, baseline u8 (pixels from the top), glyph count u16
    index, sorted by code point, ENTRY bytes a glyph: code point u16, advance u8, left i8 (the
        bitmap's first column from the pen), top u8 (its first row from the line's top),
        width u8, rows u8, offset u16 (of its bitmap, from the end of the index)
    bitmaps: rows x ceil(width / 8) bytes, MSB first (MONO_HLSB), cropped to the ink

    python -m tools.fonts out_dir        # writes roboto-<size>.ptf
"""

import os
import struct
import sys
from pathlib import Path

import font_roboto
from PIL import Image, ImageDraw, ImageFont

MAGIC = b"PTF2"
HEADER = struct.Struct("<4sBBH")
ENTRY = struct.Struct("<HBbBBBH")
SIZES = (16, 24, 40)  # status bar and small print; body and keys; amounts
FACE = "Roboto-Regular.ttf"
REFERENCE = "Å"  # the tallest glyph: see draw_string()
# Latin letters, digits and the symbols a payment screen needs.
CHARSET = [chr(c) for c in range(0x20, 0x7F)] + [chr(c) for c in range(0xA0, 0x100)] + list("€•…–‘’“”")


def face_path():
    return os.path.join(os.path.dirname(font_roboto.__file__), "files", FACE)


def face(size):
    """The typeface at size, laid out as the font files are: hinted advances, no shaping."""
    return ImageFont.truetype(face_path(), size, layout_engine=ImageFont.Layout.BASIC)


def draw_string(font, text, width, height, x=0):
    """Pillow's own 1-bit rendering of text, its pen at x on the line's top: an "L" image.

    Pillow places each glyph of a string from the top of the string's tallest glyph, rounded
    glyph by glyph, so one glyph can sit a row higher or lower by the company it keeps ("r" a
    row up alone, on the baseline after a "C"). Every line is therefore drawn after REFERENCE,
    the tallest glyph of the font (outside the image, left of x): each glyph then has one place,
    the one it is rasterised at and the one the tests compare strings with."""
    image = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"
    lead = REFERENCE + "    "  # its ink ends four spaces left of the pen, off the image
    draw.text((x - font.getlength(lead, mode="1"), 0), lead + text, font=font, fill=255)
    return image


def render(size):
    """The PTF2 bytes of one size."""
    font = face(size)
    ascent, descent = font.getmetrics()
    height = ascent + descent
    index, bitmaps = [], bytearray()
    for ch in sorted(CHARSET, key=ord):
        advance = int(font.getlength(ch, mode="1"))
        # Drawn with room on either side, then cropped to its ink (a space keeps one blank
        # pixel) and to the line: the accent of a capital that rises above the ascent is cut
        # rather than drawn over the line above, which the screens' layout gives to others.
        pad = size
        image = draw_string(font, ch, advance + 3 * pad, height, pad)
        x0, y0, x1, y1 = image.getbbox() or (pad, 0, pad + 1, 1)
        pixels = image.load()
        row_bytes = (x1 - x0 + 7) // 8
        offset = len(bitmaps)
        for y in range(y0, y1):
            row = bytearray(row_bytes)
            for x in range(x0, x1):
                if pixels[x, y]:
                    row[(x - x0) >> 3] |= 0x80 >> ((x - x0) & 7)
            bitmaps += row
        if offset > 0xFFFF or advance > 255:
            raise ValueError("roboto-%d does not fit the PTF2 index" % size)
        index.append(ENTRY.pack(ord(ch), advance, x0 - pad, y0, x1 - x0, y1 - y0, offset))
    return HEADER.pack(MAGIC, height, ascent, len(index)) + b"".join(index) + bytes(bitmaps)


def build(out_dir):
    """Write every size into out_dir; return the file names."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for size in SIZES:
        name = "roboto-%d.ptf" % size
        (out_dir / name).write_bytes(render(size))
        names.append(name)
    return names


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else "build/fonts"))
