"""The UI's bitmap fonts, rendered on the host when the image is built.

A real typeface (Roboto, Apache 2.0, from the font-roboto package) is rasterised by Pillow at
each size the screens use into a compact 1-bit font file that lib/ui/font.py reads glyph by
glyph from flash. Format "PTF1", little-endian:

    magic "PTF1", line height u8, baseline u8 (pixels from the top), glyph count u16
    index, sorted by code point: code point u16, advance u8, bitmap width u8, offset u32
    bitmaps: each glyph line height rows of ceil(width / 8) bytes, MSB first (MONO_HLSB)

    python -m tools.fonts out_dir        # writes roboto-<size>.ptf
"""

import os
import struct
import sys
from pathlib import Path

import font_roboto
from PIL import Image, ImageDraw, ImageFont

SIZES = (16, 24, 40)  # status bar and small print; body and keys; amounts
FACE = "Roboto-Regular.ttf"
# Latin letters, digits and the symbols a payment screen needs.
CHARSET = [chr(c) for c in range(0x20, 0x7F)] + [chr(c) for c in range(0xA0, 0x100)] + list("€•…–‘’“”")


def face_path():
    return os.path.join(os.path.dirname(font_roboto.__file__), "files", FACE)


def render(size):
    """The PTF1 bytes of one size."""
    font = ImageFont.truetype(face_path(), size)
    ascent, descent = font.getmetrics()
    height = ascent + descent
    index, bitmaps = [], bytearray()
    for ch in sorted(CHARSET, key=ord):
        advance = int(round(font.getlength(ch)))
        left = min(0, font.getbbox(ch)[0])
        width = max(1, advance, font.getbbox(ch)[2] - left)
        image = Image.new("L", (width, height), 0)
        ImageDraw.Draw(image).text((-left, 0), ch, font=font, fill=255)
        pixels = image.load()
        row_bytes = (width + 7) // 8
        offset = len(bitmaps)
        for y in range(height):
            row = bytearray(row_bytes)
            for x in range(width):
                if pixels[x, y] >= 128:
                    row[x >> 3] |= 0x80 >> (x & 7)
            bitmaps += row
        index.append(struct.pack("<HBBI", ord(ch), min(advance, 255), width, offset))
    return struct.pack("<4sBBH", b"PTF1", height, ascent, len(index)) + b"".join(index) + bytes(bitmaps)


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
