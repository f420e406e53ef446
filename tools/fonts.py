"""The UI's bitmap fonts, rendered on the host when the image is built.

A real typeface (Roboto, Apache 2.0, from the font-roboto package) is rasterised by Pillow at
each size the screens use into a 1-bit font that lib/ui/font.py draws glyph by glyph.

The glyphs are FreeType's monochrome rendering (Pillow's fontmode "1": the hinter fits each
stem to whole pixels for a 1-bit screen, and its dropout control keeps a period a period),
each with the advance FreeType hinted along with it (Pillow's basic layout: whole pixels). A
1-bit font made by thresholding the anti-aliased rendering at half grey, placed with the
unhinted advances, lost the period after "account" and left the "t" of "Current" touching the
next word. Drawn pen by pen with these metrics, a string is pixel for pixel what Pillow draws
for the whole string (tests/host/test_font.py; see draw_string() for where Pillow puts a glyph
vertically): Roboto has no kern table, so the basic layout has no kerning to reproduce.

The fonts are frozen into the firmware as one module, MODULE, written by build(): each size is
one constant, SIZE<n> = (line height, baseline, code points, advances, boxes, bitmaps), a tuple
of ints, bytes and a tuple of bytes. mpy-cross folds a tuple of constants into one constant
object, and a frozen module's constant objects are C data in the app image (mpy-tool.py emits
them as `static const`): on the ESP32 they are read through the flash cache like bytecode, with
no file system call and no byte of GC heap, where the font files they replace cost LittleFS
reads for every glyph drawn (0.2-0.4 s a screen on the ESP32 time model) and their index in RAM.

    code points  u16 little-endian a glyph, sorted (a binary search finds a character)
    advances     u8 a glyph
    boxes        BOX bytes a glyph: left i8 (the bitmap's first column from the pen), top u8
                 (its first row from the line's top), width u8, rows u8
    bitmaps      a glyph's rows x ceil(width / 8) bytes, MSB first (MONO_HLSB), cropped to the ink

    python -m tools.fonts [out_dir]        # writes out_dir/roboto.py (default build/frozen)
"""

import os
import struct
import sys
from pathlib import Path

import font_roboto
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
# Where build() writes by default: firmware/manifest_terminal.py freezes MODULE from there.
OUT_DIR = ROOT / "build" / "frozen"
MODULE = "roboto.py"
BOX = struct.Struct("<bBBB")
SIZES = (16, 24, 40)  # status bar and small print; body and keys; amounts
FACE = "Roboto-Regular.ttf"
REFERENCE = "Å"  # the tallest glyph: see draw_string()
# Latin letters, digits and the symbols a payment screen needs: Latin-1, and what Windows-1252
# adds to it for Western names (the em dash and low quotes of a shop's name, Œ, Š, Ž, Ÿ). A
# character outside is drawn as "?" (lib/ui/font.py), which the charset therefore holds.
CHARSET = [chr(c) for c in range(0x20, 0x7F)] + [chr(c) for c in range(0xA0, 0x100)] + list("€•…–—‘’‚“”„‹›ŒœŠšŽžŸ™")


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
    """The font of one size as the firmware holds it: (line height, baseline, code points,
    advances, boxes, bitmaps), the layout in the module docstring."""
    if "?" not in CHARSET:
        raise ValueError("the charset has no '?', which draws a character it lacks")
    font = face(size)
    ascent, descent = font.getmetrics()
    height = ascent + descent
    codes, advances, boxes, bitmaps = bytearray(), bytearray(), bytearray(), []
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
        bitmap = bytearray(row_bytes * (y1 - y0))
        for y in range(y0, y1):
            for x in range(x0, x1):
                if pixels[x, y]:
                    bitmap[(y - y0) * row_bytes + ((x - x0) >> 3)] |= 0x80 >> ((x - x0) & 7)
        try:  # struct refuses what the fields cannot hold
            codes += struct.pack("<H", ord(ch))
            advances += struct.pack("<B", advance)
            boxes += BOX.pack(x0 - pad, y0, x1 - x0, y1 - y0)
        except struct.error as e:
            raise ValueError("roboto-%d: %r does not fit the font's fields: %s" % (size, ch, e)) from None
        bitmaps.append(bytes(bitmap))
    return height, ascent, bytes(codes), bytes(advances), bytes(boxes), tuple(bitmaps)


def source():
    """The frozen module's text: every size's font, one constant each."""
    lines = ['"""Made by tools/fonts.py (Roboto, Apache 2.0): do not edit."""']
    lines += ["SIZE%d = %r" % (size, render(size)) for size in SIZES]
    return "\n".join(lines) + "\n"


def build(out_dir=OUT_DIR):
    """Write MODULE into out_dir, unless it already holds that text (its time is what makes the
    virtual handheld's build re-freeze); return its path."""
    path = Path(out_dir) / MODULE
    text = source()
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


if __name__ == "__main__":
    print(build(*sys.argv[1:2]))
