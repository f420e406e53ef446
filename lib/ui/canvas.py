"""Screens drawn in horizontal strips: no full-frame buffer.

A screen is a list of drawables, each with bounds (x, y, w, h) and draw(fb, ox, oy): draw
yourself into fb, whose top-left pixel is at ox, oy on the screen. render() fills one strip
buffer at a time with every drawable that crosses it and sends it to the display: a 240x320
screen costs one strip (240 x STRIP_ROWS x 2 bytes) of heap, not 150 KB.
"""

import framebuf
from micropython import const

STRIP_ROWS = const(16)


def intersects(a, b):
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


class Canvas:
    def __init__(self, display, background):
        self.display = display
        self.background = background
        self.width = display.width
        self.height = display.height
        self.strip = bytearray(self.width * STRIP_ROWS * 2)
        self.palette = framebuf.FrameBuffer(bytearray(4), 2, 1, framebuf.RGB565)

    def render(self, items, region=None):
        """Draw items over the background, in region (x, y, w, h; default: all the screen)."""
        x0, y0, w, h = region or (0, 0, self.width, self.height)
        for top in range(y0, y0 + h, STRIP_ROWS):
            rows = min(STRIP_ROWS, y0 + h - top)
            fb = framebuf.FrameBuffer(self.strip, w, rows, framebuf.RGB565)
            fb.fill(self.background)
            band = (x0, top, w, rows)
            for item in items:
                if intersects(item.bounds, band):
                    item.draw(fb, x0, top, self)
            self.display.blit(x0, top, w, rows, self.strip)
