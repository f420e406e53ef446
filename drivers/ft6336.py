"""FocalTech FT6336U capacitive touch controller (FT6x36 family: FT6336U, FT6236, FT6206) on I2C.

    touch = FT6336(board.buses.i2c(), int_pin=board.buses.pin(hw.PIN_TOUCH_INT),
                   reset_pin=board.buses.pin(hw.PIN_TOUCH_RESET, Pin.OUT, value=1), rotation=0)
    await touch.init()                  # reset, wake, chip id check, configure (TouchError)
    await touch.event(5000)             # ("down"|"move"|"up", x, y) in screen pixels, or None
    touch.read_points()                 # [(id, "down"|"contact"|"up", x, y)]: what the chip reports now
    touch.self_test()                   # (ok, detail) for diag

The chip scans the glass about 60 times a second. While a finger is on it, it publishes a report
per scan into its point registers: press down on the first, contact after, one lift up when
the finger leaves (which then stays in the registers). In trigger mode (G_MODE 1, which init()
sets) INT pulses low for every report: the IRQ handler sets an asyncio.ThreadSafeFlag and
event() reads the registers only then. Without an INT pin, or if the INT line never fires
(a broken line: two reports in a row found changed by the watchdog read with no interrupt), it
polls every POLL_MS instead; `mode` says which.

event() turns reports into a pointer for the UI: the first finger down is tracked by its touch
id; "down" when it lands, "move" when it has moved at least move_px, "up" when it lifts. The
chip's repeated contact reports at the same place give nothing, a lift-up report still in the
registers is not reported twice, and a tap that began and ended between two reads still gives
"down" then "up".

Coordinates: the panel is 240 x 320 portrait (its origin top-left). mirror_x / mirror_y say that
the touch panel's axes run the other way to the display's (how the panel is mounted, applied
first, in panel coordinates); rotation (0, 90, 180, 270) is the display's (drivers.st7789: at 90
the screen's top-left is the panel's top-right corner), so for 90 and 270 the screen is 320 x 240.
`width` and `height` are the screen's size in the current rotation.

Timing (FT6x36 datasheet and the drivers that follow it): RESET low for at least 5 ms, then the
chip needs about 300 ms before it reports (WAKE_MS); `wake_ms` shortens that for the virtual
handheld's tests only.
"""

import time

import asyncio
import timeouts
from micropython import const

ADDR = const(0x38)  # 7-bit I2C address of the FT6x36 family
WIDTH = const(240)  # the panel's native size (portrait)
HEIGHT = const(320)

RESET_LOW_MS = const(5)  # RESET pulse width: at least 5 ms (datasheet reset timing)
WAKE_MS = const(300)  # reset released -> chip reports (datasheet: ~300 ms)
ID_TRIES = const(5)  # chip id reads after the wake time, ID_RETRY_MS apart, before giving up
ID_RETRY_MS = const(10)
POLL_MS = const(20)  # polling period without INT: just above the 16.7 ms scan (60 Hz)
IRQ_WATCHDOG_MS = const(250)  # with INT: a read this often anyway, to notice a dead INT line
MOVE_PX = const(2)  # smaller moves are jitter, not "move" events

# Registers (FocalTech FT6x36 register table; cross-checked with Adafruit FT6206, LilyGO
# SensorLib, Trezor and nanoFramework drivers).
_DEV_MODE = const(0x00)  # device mode, bits 6:4: 0 working, 4 factory
_GEST_ID = const(0x01)  # gesture id (0: none)
_TD_STATUS = const(0x02)  # bits 3:0: number of points in contact (0..2)
_P1_XH = const(0x03)  # 7:6 event flag (00 down, 01 up, 10 contact, 11 none), 3:0 X[11:8]
_P1_XL = const(0x04)  # X[7:0]
_P1_YH = const(0x05)  # 7:4 touch id, 3:0 Y[11:8]
_P1_YL = const(0x06)  # Y[7:0]
_P1_WEIGHT = const(0x07)
_P1_MISC = const(0x08)  # 7:4 touch area
_P2_XH = const(0x09)  # the second point: same layout, 0x09..0x0E
_TH_GROUP = const(0x80)  # touch detection threshold
_CTRL = const(0x86)  # 0 stay active, 1 drop to monitor mode when idle
_PERIODACTIVE = const(0x88)  # report rate in active mode
_CIPHER_LOW = const(0xA0)  # with CIPHER 0x64: 0 FT6236G, 1 FT6336G, 2 FT6336U, 3 FT6426
_LIB_VERSION_H = const(0xA1)
_CIPHER = const(0xA3)  # chip id: 0x64 FT6336U/FT6236U, 0x36 FT6236, 0x06 FT6206
_G_MODE = const(0xA4)  # interrupt mode: 0 polling (INT low while touched), 1 trigger (pulse per report)
_PWR_MODE = const(0xA5)  # 0 active, 1 monitor, 3 hibernate (wakes only by reset)
_FIRMID = const(0xA6)  # firmware version
_FOCALTECH_ID = const(0xA8)  # vendor id, 0x11 on FocalTech parts

_G_MODE_TRIGGER = const(1)
_HIBERNATE = const(3)
_BLOCK = const(15)  # DEV_MODE .. P2_MISC: one consistent snapshot per read

_EV_DOWN = const(0)
_EV_UP = const(1)
_EV_CONTACT = const(2)
_EV_NONE = const(3)
_EVENT_NAMES = ("down", "up", "contact", None)

_CHIP_IDS = (0x64, 0x36, 0x06)
_U_NAMES = ("FT6236G", "FT6336G", "FT6336U", "FT6426")  # CIPHER 0x64 by CIPHER_LOW

DOWN = "down"
MOVE = "move"
UP = "up"


class TouchError(Exception):
    """The touch controller failed; the subclasses say how."""


class TouchNotFound(TouchError):
    """Nothing answers at the controller's address: absent, unpowered, held in reset, asleep."""


class TouchWrongChip(TouchError):
    """Something answers at the address but it is not an FT6x36."""


def chip_name(chip_id, cipher_low=None):
    """The part for a CIPHER (and CIPHER_LOW) value, or None if it is not an FT6x36."""
    if chip_id == 0x64:
        if cipher_low is not None and cipher_low < len(_U_NAMES):
            return _U_NAMES[cipher_low]
        return "FT6x36U"
    if chip_id == 0x36:
        return "FT6236"
    if chip_id == 0x06:
        return "FT6206"
    return None


class FT6336:
    def __init__(self, i2c, int_pin=None, reset_pin=None, rotation=0, mirror_x=False, mirror_y=False,
                 addr=ADDR, wake_ms=WAKE_MS, poll_ms=POLL_MS, watchdog_ms=IRQ_WATCHDOG_MS,
                 move_px=MOVE_PX, threshold=None):
        self._i2c = i2c
        self._int = int_pin
        self._rst = reset_pin
        self.addr = addr
        self.wake_ms = wake_ms
        self.poll_ms = poll_ms
        self.watchdog_ms = watchdog_ms
        self.move_px = move_px
        self.threshold = threshold
        self.mirror_x = mirror_x
        self.mirror_y = mirror_y
        self.rotation = 0
        self.width = WIDTH
        self.height = HEIGHT
        self.set_rotation(rotation)
        self.chip = None  # after init(): part name, chip id, firmware version, vendor id
        self.chip_id = self.firmware = self.vendor = None
        self.irqs = 0  # INT interrupts seen
        self.reads = 0  # register snapshots read
        self.irq_ok = int_pin is not None
        self._strikes = 0
        self._flag = asyncio.ThreadSafeFlag()
        self._buf = bytearray(_BLOCK)
        self._last = bytearray(_BLOCK)  # the last snapshot that was acted on
        self._one = bytearray(1)
        self._down = False
        self._id = 0  # touch id of the tracked finger
        self._x = 0  # its last reported position, panel coordinates
        self._y = 0
        self._pending = []
        if reset_pin is not None:
            reset_pin.init(mode=reset_pin.OUT, value=1)

    # ---- set-up ------------------------------------------------------------------------------

    def set_rotation(self, rotation):
        """The screen's rotation, as the display's: 0, 90, 180 or 270."""
        if rotation not in (0, 90, 180, 270):
            raise ValueError("rotation must be 0, 90, 180 or 270")
        self.rotation = rotation
        portrait = rotation in (0, 180)
        self.width = WIDTH if portrait else HEIGHT
        self.height = HEIGHT if portrait else WIDTH

    @property
    def mode(self):
        """What drives the reads: "interrupt" (INT) or "poll"."""
        return "interrupt" if self._int is not None and self.irq_ok else "poll"

    async def init(self):
        """Reset the chip (if RESET is wired), wait until it wakes, check that it is an FT6x36 and
        put it in working and interrupt trigger mode. Raises TouchNotFound or TouchWrongChip."""
        self.close()
        rst = self._rst
        if rst is not None:
            rst(0)
            await asyncio.sleep_ms(RESET_LOW_MS)
            rst(1)
            await asyncio.sleep_ms(self.wake_ms)
        ident = None
        for attempt in range(ID_TRIES):
            try:
                ident = self._ident()
                break
            except OSError:
                if attempt + 1 < ID_TRIES:
                    await asyncio.sleep_ms(ID_RETRY_MS)
        if ident is None:
            raise TouchNotFound("no answer from the touch controller at 0x%02x: absent, unpowered, "
                                "or RESET held low" % self.addr)
        chip_id, cipher_low, firmware, vendor = ident
        name = chip_name(chip_id, cipher_low)
        if name is None:
            raise TouchWrongChip("the chip at 0x%02x has id 0x%02x: not an FT6x36 (FT6336U 0x64, "
                                 "FT6236 0x36, FT6206 0x06)" % (self.addr, chip_id))
        self.chip, self.chip_id, self.firmware, self.vendor = name, chip_id, firmware, vendor
        try:
            self._write(_DEV_MODE, 0)
            self._write(_G_MODE, _G_MODE_TRIGGER)
            if self.threshold is not None:
                self._write(_TH_GROUP, self.threshold)
            self._read()
        except OSError:
            raise TouchNotFound("the touch controller at 0x%02x stopped answering during set-up" % self.addr)
        # A lift-up still in the registers from before is old news; a finger already on the
        # glass is not: the first event() reports it as "down".
        self._down = False
        self._last[:] = self._buf
        for rec in self._records():
            if rec[0] != _EV_UP:
                self._last[_TD_STATUS] = 0xFF  # differs from any snapshot: acted on at once
                break
        self._pending = []
        self._strikes = 0
        self.irq_ok = self._int is not None
        if self._int is not None:
            self._flag.clear()
            self._int.irq(self._on_int, self._int.IRQ_FALLING)

    def close(self):
        """Stop taking interrupts (init() takes them again)."""
        if self._int is not None:
            self._int.irq(None)

    def hibernate(self):
        """Put the chip in hibernate (lowest power); only a reset wakes it: init() with RESET wired."""
        self.close()
        self._guard(self._write, _PWR_MODE, _HIBERNATE)

    # ---- bus ---------------------------------------------------------------------------------

    def _reg(self, reg):
        self._i2c.readfrom_mem_into(self.addr, reg, self._one)
        return self._one[0]

    def _write(self, reg, value):
        self._one[0] = value
        self._i2c.writeto_mem(self.addr, reg, self._one)

    def _ident(self):
        return self._reg(_CIPHER), self._reg(_CIPHER_LOW), self._reg(_FIRMID), self._reg(_FOCALTECH_ID)

    def _read(self):
        self._i2c.readfrom_mem_into(self.addr, _DEV_MODE, self._buf)
        self.reads += 1

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except OSError as e:
            raise TouchNotFound("the touch controller at 0x%02x does not answer (%s)" % (self.addr, e))

    def _on_int(self, pin):
        # Soft IRQ (scheduled by machine.Pin, as on the ESP32): note it and wake event().
        self.irqs += 1
        self._flag.set()

    # ---- coordinates -------------------------------------------------------------------------

    def _map(self, x, y):
        """Panel coordinates -> screen coordinates for the mounting and the rotation."""
        x = 0 if x < 0 else WIDTH - 1 if x >= WIDTH else x
        y = 0 if y < 0 else HEIGHT - 1 if y >= HEIGHT else y
        if self.mirror_x:
            x = WIDTH - 1 - x
        if self.mirror_y:
            y = HEIGHT - 1 - y
        # The same rotation as drivers.st7789's (its MADCTL): at 90 the screen's top-left is
        # the panel's top-right corner, at 270 its bottom-left (tests/host/test_display.py
        # checks that a touch and a pixel agree).
        r = self.rotation
        if r == 90:
            return y, WIDTH - 1 - x
        if r == 180:
            return WIDTH - 1 - x, HEIGHT - 1 - y
        if r == 270:
            return HEIGHT - 1 - y, x
        return x, y

    def _records(self):
        """The valid point records of the last snapshot: [(event, id, x, y)], panel coordinates.
        Contact records only as many as TD_STATUS counts (it reads 0x0F on some parts before the
        first touch: no points then)."""
        buf = self._buf
        count = buf[_TD_STATUS] & 0x0F
        if count > 2:
            count = 0
        out = []
        in_contact = 0
        for base in (_P1_XH, _P2_XH):
            xh = buf[base]
            event = xh >> 6
            tid = buf[base + 2] >> 4
            if event == _EV_NONE or tid == 0x0F:
                continue
            if event != _EV_UP:
                if in_contact >= count:
                    continue
                in_contact += 1
            out.append((event, tid, (xh & 0x0F) << 8 | buf[base + 1], (buf[base + 2] & 0x0F) << 8 | buf[base + 3]))
        return out

    def read_points(self):
        """What the chip reports now: up to two (id, event, x, y), event "down", "contact" or
        "up" (a lift-up stays in the registers until the next touch), in screen coordinates."""
        self._guard(self._read)
        out = []
        for event, tid, x, y in self._records():
            sx, sy = self._map(x, y)
            out.append((tid, _EVENT_NAMES[event], sx, sy))
        return out

    # ---- events ------------------------------------------------------------------------------

    def _emit(self, kind, x, y):
        sx, sy = self._map(x, y)
        self._pending.append((kind, sx, sy))

    def _update(self):
        """Read a snapshot and turn what changed into events. True if the snapshot changed."""
        self._guard(self._read)
        buf, last = self._buf, self._last
        for i in range(_TD_STATUS, _BLOCK):
            if buf[i] != last[i]:
                break
        else:
            return False  # the same report again (the chip repeats contact every scan)
        last[:] = buf
        pressed = lifted = other = None
        for rec in self._records():
            event, tid = rec[0], rec[1]
            if event == _EV_UP:
                if lifted is None and (not self._down or tid == self._id):
                    lifted = rec
            elif self._down and tid != self._id:
                other = other or rec
            elif pressed is None:
                pressed = rec
        if self._down:
            if pressed is not None:
                x, y = pressed[2], pressed[3]
                if abs(x - self._x) >= self.move_px or abs(y - self._y) >= self.move_px:
                    self._x, self._y = x, y
                    self._emit(MOVE, x, y)
                return True
            if lifted is not None:
                self._x, self._y = lifted[2], lifted[3]
            self._down = False
            self._emit(UP, self._x, self._y)
            pressed, lifted = other, None  # a second finger still down takes over
        if pressed is not None:
            self._down = True
            self._id, self._x, self._y = pressed[1], pressed[2], pressed[3]
            self._emit(DOWN, self._x, self._y)
        elif lifted is not None:  # touched and lifted between two reads: a tap
            self._emit(DOWN, lifted[2], lifted[3])
            self._emit(UP, lifted[2], lifted[3])
        return True

    async def _wait_int(self, ms):
        try:
            await timeouts.wait_for_ms(self._flag.wait(), ms)
            return True
        except asyncio.TimeoutError:
            return False

    async def event(self, timeout_ms=None):
        """The next touch event, (kind, x, y) with kind "down", "move" or "up" in screen
        coordinates, or None if none came within timeout_ms (None: no limit). Raises
        TouchNotFound if the chip stops answering."""
        pending = self._pending
        start = time.ticks_ms()
        watchdog_read = False
        irqs_before = self.irqs
        while True:
            if not pending:
                changed = self._update()
                if watchdog_read and changed and self.irqs == irqs_before:
                    # The chip reported and INT said nothing: twice in a row and INT is dead.
                    self._strikes += 1
                    if self._strikes >= 2:
                        self.irq_ok = False
            if pending:
                return pending.pop(0)
            left = self.watchdog_ms
            if timeout_ms is not None:
                left = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
                if left <= 0:
                    return None
            if self._int is not None and self.irq_ok:
                irqs_before = self.irqs
                watchdog_read = not await self._wait_int(min(left, self.watchdog_ms))
                if not watchdog_read:
                    self._strikes = 0
            else:
                watchdog_read = False
                if self._int is not None and self.irqs != irqs_before:
                    self.irq_ok = True  # INT came back
                    self._strikes = 0
                await asyncio.sleep_ms(min(left, self.poll_ms))

    # ---- diagnosis ---------------------------------------------------------------------------

    def self_test(self):
        """(ok, detail) for diag: the chip answers, is an FT6x36, and is in working and
        interrupt trigger mode (as init() leaves it; a chip reset behind the driver's back
        fails here)."""
        try:
            chip_id, cipher_low, firmware, _ = self._ident()
            dev_mode = self._reg(_DEV_MODE)
            g_mode = self._reg(_G_MODE)
            power = self._reg(_PWR_MODE)
        except OSError as e:
            return False, "0x%02x does not answer (%s): absent, unpowered, held in reset or hibernating" % (
                self.addr, e)
        name = chip_name(chip_id, cipher_low)
        if name is None:
            return False, "0x%02x answers with chip id 0x%02x: not an FT6x36" % (self.addr, chip_id)
        if dev_mode & 0x70 or g_mode != _G_MODE_TRIGGER or power == _HIBERNATE:
            return False, "%s fw 0x%02x not configured (DEV_MODE 0x%02x, G_MODE 0x%02x, PWR_MODE 0x%02x): init() it" % (
                name, firmware, dev_mode, g_mode, power)
        return True, "%s fw 0x%02x at 0x%02x, %s" % (
            name, firmware, self.addr, "INT interrupts" if self.mode == "interrupt" else "polling")
