"""The UI's fonts against Pillow's own rendering of whole strings: the fonts that
tools/fonts.py makes (frozen into the firmware), drawn glyph by glyph with their metrics
(advance, the bitmap's left and top from the pen), give exactly the pixels Pillow draws for the string (its 1-bit rendering,
basic layout: Roboto has no kern table, so no pair is kerned). Checked twice: by a reader of the
format here, and by lib/ui/font.py itself on the virtual handheld, a line at a time and in the
8-row strips a screen is drawn in (each glyph clipped to the strip).

The first font (PTF1) failed this: anti-aliased glyphs thresholded at half grey, placed with the
unhinted advances, lost "account."'s period at 16 px (it was mostly grey) and put "t"'s hinted
bitmap in an advance two pixels too narrow for it (the "t" of "Current" touched the next word);
a glyph with a negative left bearing ("j") was drawn one pixel to the right.
"""

import pytest

from tools import fonts

SAMPLES = [
    "Current account. Bank reference 261258870324.",
    "Coffee Corner, Hauptstraße 12: jumpy fjord quays",
    "€1,000.00 to Alice Martin • DE89 •••• 3000",
    "“Wrong PIN” – try again… (2 of 3); 100% ¿¡ÀÉÎÕÜ ÿ",
]
# Every character of the font, a line at a time.
CHARSET_LINES = ["".join(fonts.CHARSET[i:i + 16]) for i in range(0, len(fonts.CHARSET), 16)]
PEN = 4  # where the pen starts: room for a glyph that reaches left of it
STRIP_ROWS = 4  # lib/ui/canvas.py


def parse(font):
    """(line height, {character: (advance, left, top, width, rows, bitmap)}) of a font as the
    firmware holds it (tools/fonts.py render())."""
    height, _baseline, codes, advances, boxes, bitmaps = font
    assert len(codes) == 2 * len(advances) == len(boxes) // 2 == 2 * len(bitmaps)
    glyphs = {}
    for i, bitmap in enumerate(bitmaps):
        left, top, width, rows = fonts.BOX.unpack_from(boxes, i * fonts.BOX.size)
        assert len(bitmap) == rows * ((width + 7) // 8)
        glyphs[chr(codes[2 * i] | codes[2 * i + 1] << 8)] = (advances[i], left, top, width, rows, bitmap)
    return height, glyphs


def composed(glyphs, text):
    """The pixels lit by drawing text glyph by glyph from PEN, and the pen's end."""
    lit, x = set(), PEN
    for ch in text:
        advance, left, top, width, rows, bitmap = glyphs[ch]
        row_bytes = (width + 7) // 8
        for r in range(rows):
            for c in range(width):
                if bitmap[r * row_bytes + (c >> 3)] & (0x80 >> (c & 7)):
                    lit.add((x + left + c, top + r))
        x += advance
    return lit, x


def pillows(size, text, width, height):
    """The pixels Pillow lights drawing the whole string, pen at PEN."""
    image = fonts.draw_string(fonts.face(size), text, width, height, PEN)
    pixels = image.load()
    return {(x, y) for y in range(height) for x in range(width) if pixels[x, y]}


def picture(lit, width, height):
    return "\n".join("".join("#" if (x, y) in lit else "." for x in range(width)) for y in range(height))


def assert_same(ours, theirs, width, height, what):
    assert ours == theirs, "%s differs from Pillow's rendering (%d pixels); ours, then Pillow's:\n%s\n\n%s" % (
        what, len(ours ^ theirs), picture(ours, width, height), picture(theirs, width, height))


@pytest.fixture(scope="module")
def made():
    return {size: parse(fonts.render(size)) for size in fonts.SIZES}


@pytest.mark.parametrize("size", fonts.SIZES)
def test_strings_drawn_glyph_by_glyph_are_pillows_own(made, size):
    height, glyphs = made[size]
    for text in SAMPLES + CHARSET_LINES:
        ours, end = composed(glyphs, text)
        assert end - PEN == fonts.face(size).getlength(text, mode="1"), text
        width = end + size
        assert_same(ours, pillows(size, text, width, height), width, height, "%r at %d px" % (text, size))


def test_the_period_survives_at_the_smallest_size(made):
    # The PTF1 font dropped it: at 16 px its anti-aliased dot had one pixel above half grey.
    height, glyphs = made[16]
    advance, left, top, width, rows, bitmap = glyphs["."]
    assert width * rows >= 4 and all(bitmap), (width, rows, bitmap)


DRAW = """
import framebuf
from ui import theme
def _strip(size, text, top, rows, width):
    f = theme.font(size)
    row_bytes = (width + 7) >> 3
    buf = bytearray(row_bytes * rows)
    fb = framebuf.FrameBuffer(buf, width, rows, framebuf.MONO_HLSB)
    palette = framebuf.FrameBuffer(bytearray(4), 2, 1, framebuf.RGB565)
    end = f.draw(fb, text, %d, -top, 1, palette, rows)
    print(end, f.width(text), f.height)
    # A row a line: the whole strip as one repr would be a 20 KB string on the board's heap.
    mv = memoryview(buf)
    for y in range(rows):
        print(bytes(mv[y * row_bytes:(y + 1) * row_bytes]).hex())
""" % PEN


@pytest.fixture(scope="module")
def handheld(vdevice, device):
    device.exec(DRAW)
    return device


def device_pixels(handheld, size, text, top, rows, width):
    head, *lines = handheld.exec("_strip(%d, %r, %d, %d, %d)" % (size, text, top, rows, width)).split("\n")
    end, text_width, height = map(int, head.split())
    row_bytes = (width + 7) // 8
    buf = b"".join(bytes.fromhex(line.strip()) for line in lines)
    lit = {(x, top + y) for y in range(rows) for x in range(width)
           if buf[y * row_bytes + (x >> 3)] & (0x80 >> (x & 7))}
    return end, text_width, height, lit


@pytest.mark.parametrize("size", fonts.SIZES)
def test_the_device_draws_what_pillow_draws(handheld, size):
    face = fonts.face(size)
    height = sum(face.getmetrics())
    for text in SAMPLES + CHARSET_LINES:
        width = int(face.getlength(text, mode="1")) + PEN + size
        theirs = pillows(size, text, width, height)
        end, text_width, device_height, ours = device_pixels(handheld, size, text, 0, height, width)
        assert (end - PEN, text_width, device_height) == (face.getlength(text, mode="1"),) * 2 + (height,), text
        assert_same(ours, theirs, width, height, "%r at %d px on the device" % (text, size))
        # The same line drawn strip by strip, as a screen is, its top at every row of a strip.
        for offset in (0, 5, 11):
            for top in range(-offset, height, STRIP_ROWS):
                strip = {(x, y) for x, y in theirs if top <= y < top + STRIP_ROWS}
                ours = device_pixels(handheld, size, text, top, STRIP_ROWS, width)[3]
                assert_same(ours, strip, width, height, "%r at %d px, rows %d.. of a strip" % (text, size, top))


def test_a_character_the_font_lacks_is_drawn_as_a_question_mark(handheld):
    question = device_pixels(handheld, 24, "?", 0, 28, 40)
    assert device_pixels(handheld, 24, "\u4e2d", 0, 28, 40) == question
