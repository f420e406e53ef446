"""The ST7789 model: the command stream on SPI (DC low: command, high: its parameters or pixel
data) interpreted into the panel's 240x320 RGB565 memory, and screenshots of what the panel
shows, as PNG.

Modelled: SWRESET, SLPOUT/SLPIN, DISPON/DISPOFF, INVON/INVOFF, NORON, COLMOD, MADCTL (MY, MX,
MV and BGR: the address mapping of the window onto the panel), CASET, RASET, RAMWR with
writes continuing across transfers. The panel shows black while asleep or off, and RAM
written in another pixel format than 16 bits is refused (counted as an error).

Actions: do_screenshot(path) writes the PNG and returns its SHA-256 and size; do_frame(since,
pixels) is the change counter (every SPI transfer the panel takes bumps it), for viewers that
poll (the web simulator), with the panel memory when it changed.
"""

import base64
import hashlib
import struct
import zlib

from .models import Model

WIDTH, HEIGHT = 240, 320

SWRESET, SLPIN, SLPOUT, NORON = 0x01, 0x10, 0x11, 0x13
INVOFF, INVON, DISPOFF, DISPON = 0x20, 0x21, 0x28, 0x29
CASET, RASET, RAMWR, MADCTL, COLMOD = 0x2A, 0x2B, 0x2C, 0x36, 0x3A
MY, MX, MV, BGR = 0x80, 0x40, 0x20, 0x08
PARAMS = {CASET: 4, RASET: 4, MADCTL: 1, COLMOD: 1}


def png(width, height, rgb_rows):
    """A PNG (RGB, 8 bits, no filter) from rows of RGB bytes; deterministic, so its hash is too."""
    raw = b"".join(b"\x00" + row for row in rgb_rows)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def read_png(path):
    """(width, height, rows of RGB bytes) of a PNG that png() wrote (RGB, 8 bits, no filter)."""
    data = open(path, "rb").read()
    pos, idat, width, height = 8, b"", None, None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = 1 + 3 * width
    return width, height, [raw[y * stride + 1:(y + 1) * stride] for y in range(height)]


class ST7789(Model):
    """Sitronix ST7789 240x320 TFT controller on SPI, with DC."""

    def __init__(self, port=None, dc=None):
        self.dc = dc
        self.ram = bytearray(WIDTH * HEIGHT * 2)  # panel order, RGB565 big-endian as received
        self.reset()
        self.errors = 0
        self.commands = 0
        self.frame = 0  # change counter: bumped by every transfer (do_frame)

    def reset(self):
        self.sleeping = True
        self.on = False
        self.inverted = False
        self.madctl = 0
        self.colmod = 0x66  # 18-bit after reset (datasheet); the driver must set 16
        self.cols = (0, WIDTH - 1)
        self.rows = (0, HEIGHT - 1)
        self.command = None
        self.params = bytearray()
        self.pending = bytearray()  # an odd byte of a pixel split across transfers
        self.cursor = None

    def spi_transfer(self, data):
        self.frame += 1
        if self.pins.level(self.dc) == 0:
            for cmd in data:
                self._command(cmd)
        else:
            self._data(data)
        return None

    def _command(self, cmd):
        self.commands += 1
        self.command, self.params = cmd, bytearray()
        self.pending = bytearray()
        if cmd == SWRESET:
            self.reset()
        elif cmd == SLPOUT:
            self.sleeping = False
        elif cmd == SLPIN:
            self.sleeping = True
        elif cmd in (DISPON, DISPOFF):
            self.on = cmd == DISPON
        elif cmd in (INVON, INVOFF):
            self.inverted = cmd == INVON
        elif cmd == RAMWR:
            self.cursor = (self.cols[0], self.rows[0])

    def _data(self, data):
        cmd = self.command
        if cmd in PARAMS:
            self.params += data
            if len(self.params) >= PARAMS[cmd]:
                p = self.params
                if cmd == CASET:
                    self.cols = (p[0] << 8 | p[1], p[2] << 8 | p[3])
                elif cmd == RASET:
                    self.rows = (p[0] << 8 | p[1], p[2] << 8 | p[3])
                elif cmd == MADCTL:
                    self.madctl = p[0]
                elif cmd == COLMOD:
                    self.colmod = p[0]
                self.command = None
        elif cmd == RAMWR:
            if self.colmod & 0x07 != 0x05:
                self.errors += 1
                return
            data = self.pending + data
            even = len(data) & ~1
            self.pending = bytearray(data[even:])
            for i in range(0, even, 2):
                self._pixel(data[i], data[i + 1])
        else:
            self.errors += 1  # data for no command that takes any

    def _pixel(self, hi, lo):
        x, y = self.cursor
        (c0, c1), (r0, r1) = self.cols, self.rows
        if x > c1 or y > r1:
            return  # beyond the window: the controller drops it
        # Window coordinates to panel memory: MV exchanges them, MX/MY mirror them.
        px, py = (y, x) if self.madctl & MV else (x, y)
        if self.madctl & MX:
            px = WIDTH - 1 - px
        if self.madctl & MY:
            py = HEIGHT - 1 - py
        if 0 <= px < WIDTH and 0 <= py < HEIGHT:
            i = (py * WIDTH + px) * 2
            self.ram[i], self.ram[i + 1] = hi, lo
        x += 1
        if x > c1:
            x, y = c0, y + 1
        self.cursor = (x, y)

    def rgb_rows(self):
        """What the panel shows, as rows of RGB bytes."""
        if self.sleeping or not self.on:
            return [bytes(WIDTH * 3)] * HEIGHT
        rows = []
        bgr = self.madctl & BGR
        for y in range(HEIGHT):
            row = bytearray(WIDTH * 3)
            base = y * WIDTH * 2
            for x in range(WIDTH):
                c = self.ram[base + 2 * x] << 8 | self.ram[base + 2 * x + 1]
                if self.inverted:
                    c ^= 0xFFFF
                r, g, b = (c >> 11) & 0x1F, (c >> 5) & 0x3F, c & 0x1F
                r, g, b = (r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)
                row[3 * x:3 * x + 3] = bytes((b, g, r) if bgr else (r, g, b))
            rows.append(bytes(row))
        return rows

    def do_screenshot(self, path):
        data = png(WIDTH, HEIGHT, self.rgb_rows())
        with open(path, "wb") as f:
            f.write(data)
        return {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

    def do_frame(self, since=None, pixels=False):
        """The change counter and how the panel shows its memory (shown: awake and on; inverted;
        bgr). With pixels, and unless the counter is still `since`, the memory too: "rgb565",
        base64 of WIDTH x HEIGHT big-endian RGB565 pixels in panel order, before inversion."""
        frame = {"frame": self.frame, "width": WIDTH, "height": HEIGHT, "shown": self.on and not self.sleeping,
                 "inverted": self.inverted, "bgr": bool(self.madctl & BGR)}
        if pixels and since != self.frame:
            frame["rgb565"] = base64.b64encode(self.ram).decode()
        return frame

    def status(self):
        return {"on": self.on, "sleeping": self.sleeping, "madctl": self.madctl, "colmod": self.colmod,
                "window": [self.cols, self.rows], "commands": self.commands, "errors": self.errors}
