"""`python -m tools.websim.bench`: what a screen frame costs the web simulator, PNG (the ST7789
model's rgb_rows() + png(), as screenshots are made) against raw RGB565 + deflate (what it
sends), over the golden screens (tests/screens), per frame: CPU ms and bytes."""

import time
import zlib
from pathlib import Path

from tools.rig.st7789 import HEIGHT, WIDTH, ST7789, png, read_png

GOLDEN = Path(__file__).resolve().parent.parent.parent / "tests" / "screens"


def panel_from_png(path):
    """An ST7789 model showing a golden screen (its memory back in RGB565)."""
    _, _, rows = read_png(path)
    panel = ST7789()
    panel.on, panel.sleeping, panel.colmod = True, False, 0x55
    for y, row in enumerate(rows):
        for x in range(WIDTH):
            r, g, b = row[3 * x:3 * x + 3]
            c = (r >> 3) << 11 | (g >> 2) << 5 | b >> 3
            panel.ram[2 * (y * WIDTH + x):2 * (y * WIDTH + x) + 2] = bytes((c >> 8, c & 0xFF))
    return panel


def timed(fn, n):
    started = time.perf_counter()
    for _ in range(n):
        out = fn()
    return (time.perf_counter() - started) * 1000 / n, len(out)


def main():
    print("per frame (%dx%d, %d bytes of RGB565):  PNG ms  PNG bytes   RGB565+deflate ms  bytes"
          % (WIDTH, HEIGHT, WIDTH * HEIGHT * 2))
    for path in sorted(GOLDEN.glob("*.png")):
        panel = panel_from_png(path)
        png_ms, png_bytes = timed(lambda: png(WIDTH, HEIGHT, panel.rgb_rows()), 3)
        raw_ms, raw_bytes = timed(lambda: zlib.compress(bytes(panel.ram), 6), 50)
        print("  %-20s %14.1f %10d %20.2f %6d" % (path.stem, png_ms, png_bytes, raw_ms, raw_bytes))


if __name__ == "__main__":
    main()
