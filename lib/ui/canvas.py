"""Screens drawn in horizontal strips: no full-frame buffer.

A screen is a list of drawables, each with bounds (x, y, w, h) and draw(fb, ox, oy, canvas):
draw yourself into fb, whose top-left pixel is at ox, oy on the screen and which is
canvas.rows high. render() fills one strip buffer at a time with every drawable that crosses
it and sends it to the display: a 240x320 screen costs one strip (240 x STRIP_ROWS x 2 bytes)
of heap, not 150 KB, and its framebuf object is made once, not once a strip.
"""

import framebuf
from micropython import const

# 4 rows: 1.9 KB of heap for the strip, held for good (8 rows took 3.8 KB, a card payment's
# ODA short of it on a steady unit's heap); twice the strips to send costs a window command
# each, not heap.
STRIP_ROWS = const(4)


class Canvas:
    # A test's or a tool's look at what is drawn: trace(items) before each render, of a whole
    # screen or of a part drawn again (ui.layout.record sets it). A class attribute, None on the
    # device: no slot, no call.
    trace = None

    def __init__(self, display, background):
        self.display = display
        self.background = background
        self.width = display.width
        self.height = display.height
        self.strip = bytearray(self.width * STRIP_ROWS * 2)
        self.full = framebuf.FrameBuffer(self.strip, self.width, STRIP_ROWS, framebuf.RGB565)
        self.palette = framebuf.FrameBuffer(bytearray(4), 2, 1, framebuf.RGB565)
        self.rows = STRIP_ROWS

    def render(self, items, region=None):
        """Draw items over the background, in region (x, y, w, h; default: all the screen)."""
        if Canvas.trace is not None:
            Canvas.trace(items)
        if region is None:  # (no tuple made for it: a render allocates nothing at all)
            x0 = y0 = 0
            w = self.width
            h = self.height
        else:
            x0, y0, w, h = region
        if h <= 0:
            return
        # The region is one window of the display, its strips sent into it in turn (the
        # controller fills it row by row): one window command a render, not one a strip.
        display = self.display
        display.begin(x0, y0, w, h)
        try:
            top = y0
            while top < y0 + h:
                rows = min(STRIP_ROWS, y0 + h - top)
                if w == self.width and rows == STRIP_ROWS:
                    fb = self.full
                else:  # a narrower region or the last rows: the strip buffer in that shape
                    fb = framebuf.FrameBuffer(self.strip, w, rows, framebuf.RGB565)
                self.rows = rows
                fb.fill(self.background)
                for item in items:
                    x, y, iw, ih = item.bounds
                    if x < x0 + w and x0 < x + iw and y < top + rows and top < y + ih:
                        item.draw(fb, x0, top, self)
                n = w * rows * 2
                # A slice only for a shorter strip: a memoryview a strip is heap used for nothing.
                display.write(self.strip if n == len(self.strip) else memoryview(self.strip)[:n])
                top += rows
        finally:
            display.end()
