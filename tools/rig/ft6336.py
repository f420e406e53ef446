"""FocalTech FT6336U capacitive touch controller (FT6x36 family) on I2C, with its INT and RESET.

What the host sees, as on the chip:
  * I2C at 0x38. A write's first byte sets the register pointer, the bytes after it go to
    consecutive registers (read-only ones ignore them); a read returns registers from the
    pointer on, auto-incrementing (wrapping at 0xFF). So readfrom_mem(0x38, 0x00, 15) is one
    consistent snapshot of DEV_MODE, GEST_ID, TD_STATUS and both point records.
  * Point records, 6 bytes each at 0x03 (P1) and 0x09 (P2): XH = event flag (bits 7:6: 00 press
    down, 01 lift up, 10 contact, 11 no event) | X[11:8]; XL = X[7:0]; YH = touch id (bits 7:4)
    | Y[11:8]; YL = Y[7:0]; WEIGHT; MISC (touch area in bits 7:4). An unused record reads 0xFF.
    TD_STATUS (0x02) holds the number of points in contact. Coordinates are the panel's own:
    portrait, 240 x 320, origin top-left.
  * Identification: CIPHER (0xA3) 0x64, CIPHER_MID (0x9F) 0x26, CIPHER_LOW (0xA0) 0x02
    (FT6336U), FOCALTECH_ID (0xA8) 0x11, FIRMID (0xA6), LIB_VERSION (0xA1/0xA2), RELEASE_CODE
    (0xAF). Registers as FocalTech's FT6x36 register table lists them, cross-checked against
    public drivers (Adafruit FT6206, LilyGO SensorLib FT6X36Constants.h, Trezor ft6x36,
    nanoFramework Ft6xx6x); FIRMID, LIB_VERSION, RELEASE_CODE, TH_GROUP and PERIOD values are
    plausible examples, not datasheet figures.
  * Reports ("frames"): the chip scans at its active rate (about 60 Hz) and, while a finger is
    on the glass, publishes a report each frame: press down on the first frame, contact after,
    one lift-up report after the finger leaves (TD_STATUS 0, the last position in P1); then it
    stops reporting and the lift-up report stays in the registers. The control-API actions
    publish a report at once, and contact reports repeat every frame while a finger stays.
  * INT (GPIO 39, "touch_int"; open drain on the chip with a pull-up on the module, so the rig
    drives it 1 when released). G_MODE (0xA4) chooses, as the register table describes it:
      1 trigger mode (the chip's default here, and what the driver sets): a low pulse
        (INT_PULSE_S) for every report, so every report is a falling edge;
      0 polling mode: INT held low while a finger is in contact, released with the lift-up.
    The table names the two modes; the pulse width is not given in the public material, so
    1 ms is this model's choice.
  * RESET (GPIO 33, "touch_reset", active low; the module pulls it up, so a line the device
    has not configured counts as high). While it is low the chip does not answer (its address
    NACKs), all registers return to their defaults and reports stop. After it goes high the chip
    boots for boot_s (BOOT_S = 300 ms by default: the FT6x36 datasheet's time from reset to
    reporting, which drivers wait before talking to it) and NACKs until then. A test shortens
    it with the `config` action (boot_ms). The rig's attach passes no model parameters.
  * PWR_MODE (0xA5) = 3 is hibernate: the chip stops answering until a reset pulse.

Limits of the rig, not of the chip: the bus's read path cannot NACK, so a read that is not
preceded by a register write (readfrom_mem always writes first) returns 0xFF bytes, as a
floating bus would; `scan` lists 0x38 whatever the chip's state. A reset that the device starts
by configuring the line straight to output-low makes no edge in the rig's pin bank (an
unconfigured line reads 0 there), so the model notices it at the next transfer or line change.
"""

import time

from .models import Model

ADDR = 0x38
WIDTH = 240  # the panel's native resolution (portrait)
HEIGHT = 320

# Registers.
DEV_MODE = 0x00  # bits 6:4: 000 working, 100 factory
GEST_ID = 0x01
TD_STATUS = 0x02  # bits 3:0: number of points in contact
P1_XH = 0x03  # 0x03..0x08: XH, XL, YH, YL, WEIGHT, MISC
P2_XH = 0x09  # 0x09..0x0E
TH_GROUP = 0x80
TH_DIFF = 0x85
CTRL = 0x86  # 0 stay active, 1 enter monitor mode when idle
TIMEENTERMONITOR = 0x87
PERIODACTIVE = 0x88
PERIODMONITOR = 0x89
CIPHER_MID = 0x9F
CIPHER_LOW = 0xA0
LIB_VERSION_H = 0xA1
LIB_VERSION_L = 0xA2
CIPHER = 0xA3
G_MODE = 0xA4  # 0 interrupt polling mode, 1 interrupt trigger mode
PWR_MODE = 0xA5  # 0 active, 1 monitor, 3 hibernate
FIRMID = 0xA6
FOCALTECH_ID = 0xA8
RELEASE_CODE = 0xAF
STATE = 0xBC

EVENT_DOWN = 0
EVENT_UP = 1
EVENT_CONTACT = 2
EVENT_NONE = 3
HIBERNATE = 3

DEFAULTS = {
    DEV_MODE: 0x00, GEST_ID: 0x00, TD_STATUS: 0x00,
    TH_GROUP: 0x16, TH_DIFF: 0xA0, CTRL: 0x01, TIMEENTERMONITOR: 0x0A, PERIODACTIVE: 0x0E,
    PERIODMONITOR: 0x28, CIPHER_MID: 0x26, CIPHER_LOW: 0x02, LIB_VERSION_H: 0x30,
    LIB_VERSION_L: 0x03, CIPHER: 0x64, G_MODE: 0x01, PWR_MODE: 0x00, FIRMID: 0x10,
    FOCALTECH_ID: 0x11, RELEASE_CODE: 0x01, STATE: 0x01,
}
WRITABLE = frozenset((DEV_MODE, TH_GROUP, TH_DIFF, CTRL, TIMEENTERMONITOR, PERIODACTIVE,
                      PERIODMONITOR, G_MODE, PWR_MODE))

BOOT_S = 0.300  # reset released -> answering (realistic default; `config` shortens it)
FRAME_S = 1 / 60  # active-mode report period
INT_PULSE_S = 0.001  # trigger-mode INT pulse width (model's choice)
LIFT_POLL_S, LIFT_WAIT_S = 0.01, 1.0  # a tap's lift waits for the host's read (do_tap): how often, how long at most
WEIGHT = 0x20  # reported touch weight and area: a fingertip
AREA = 0x3


class FT6336(Model):
    """FocalTech FT6336U capacitive touch controller (I2C 0x38, INT and RESET lines)."""

    def __init__(self, port=None):
        self.port = port
        self._pins = None
        self.int_gpio = self.reset_gpio = None
        self.boot_s = BOOT_S
        self.regs = bytearray(256)
        self.pointer = 0
        self.in_reset = False
        self.ready_at = 0.0  # monotonic time from which the chip answers
        self.hibernating = False
        self.fingers = {}  # touch id -> (x, y) in contact
        self.pressed = set()  # ids touched since the last report (press-down flag)
        self.lifted = {}  # id -> (x, y) lifted since the last report (lift-up flag)
        self.reports = 0
        self.int_pulses = 0
        self.reads = 0
        self.nacks = 0
        self._frame_timer = None
        self._pulse_timer = None
        self._timers = set()  # scheduled actions (after_ms, drag steps)
        self._defaults()

    # ---- wiring: the rig sets .pins after construction --------------------------------------

    def wire(self, bank):
        self.int_gpio = self.gpio("touch_int")
        self.reset_gpio = self.gpio("touch_reset")
        bank.watchers.append(self._watch)
        self._sync_reset()
        self._set_int(1)

    def _watch(self, gpio, level):
        if not self._attached():
            self._gone()
            return
        if gpio == self.reset_gpio:
            self._sync_reset()

    def _gone(self):
        """Detached: stop everything, release the lines, forget the pin bank."""
        self._cancel_frames()
        for h in list(self._timers):
            h.cancel()
        self._timers.clear()
        if self._pins is not None:
            if self._watch in self._pins.watchers:
                self._pins.watchers.remove(self._watch)
            if self.int_gpio is not None:
                self._pins.set_external(self.int_gpio, None)

    # ---- reset, boot, power ----------------------------------------------------------------

    def _defaults(self):
        self.regs[:] = b"\x00" * 256
        for reg, value in DEFAULTS.items():
            self.regs[reg] = value
        self.regs[P1_XH:P2_XH + 6] = b"\xff" * 12
        self.pointer = 0
        self.pressed.clear()
        self.lifted.clear()

    def _reset_asserted(self):
        p = self._pins.pin(self.reset_gpio)
        if p.external == 0:
            return True  # something on the board holds it low
        return p.mode in ("out", "open_drain") and p.out == 0

    def _sync_reset(self):
        if self._pins is None:
            return
        asserted = self._reset_asserted()
        if asserted and not self.in_reset:
            self.in_reset = True
            self.hibernating = False
            self._cancel_frames()
            self._defaults()
            self._set_int(1)
        elif not asserted and self.in_reset:
            self.in_reset = False
            self.ready_at = time.monotonic() + self.boot_s
            if self.fingers:  # a finger already on the glass is reported once the chip runs
                self.pressed.update(self.fingers)
                self._later(self.boot_s + 0.002, self._report)

    def _running(self):
        self._sync_reset()
        return (not self.in_reset and not self.hibernating and self._attached()
                and time.monotonic() >= self.ready_at)

    # ---- I2C -------------------------------------------------------------------------------

    def i2c_write(self, data, stop):
        if not self._running():
            self.nacks += 1
            return None  # address NACK: no byte acknowledged, even for an empty (probe) write
        if data:
            self.pointer = data[0]
            reg = self.pointer
            for b in data[1:]:
                if reg in WRITABLE:
                    self.regs[reg] = b
                    self._written(reg, b)
                reg = (reg + 1) & 0xFF
        return len(data)

    def _written(self, reg, value):
        if reg == PWR_MODE and value == HIBERNATE:
            self.hibernating = True
            self._cancel_frames()
            self._set_int(1)
        elif reg == G_MODE:
            self._set_int(0 if (value == 0 and self.fingers) else 1)

    def i2c_read(self, n):
        if not self._running():
            self.nacks += 1
            return b"\xff" * n  # the rig cannot NACK a read: the bus floats high
        self.reads += 1
        out = bytes(self.regs[(self.pointer + i) & 0xFF] for i in range(n))
        self.pointer = (self.pointer + n) & 0xFF
        return out

    # ---- reports and INT -------------------------------------------------------------------

    def _cancel_frames(self):
        if self._frame_timer is not None:
            self._frame_timer.cancel()
            self._timers.discard(self._frame_timer)
            self._frame_timer = None

    def _set_int(self, level):
        if self._pins is not None and self.int_gpio is not None:
            self._pins.set_external(self.int_gpio, level)

    @staticmethod
    def _record(event, tid, x, y):
        return bytes(((event << 6) | (x >> 8 & 0x0F), x & 0xFF, (tid << 4) | (y >> 8 & 0x0F), y & 0xFF,
                      WEIGHT, AREA << 4))

    def _report(self):
        """One frame: publish the fingers' state to the registers and signal it on INT."""
        self._cancel_frames()
        if not self._running():
            return
        records = []
        for tid in sorted(self.fingers):
            x, y = self.fingers[tid]
            records.append(self._record(EVENT_DOWN if tid in self.pressed else EVENT_CONTACT, tid, x, y))
        for tid in sorted(self.lifted):
            x, y = self.lifted[tid]
            records.append(self._record(EVENT_UP, tid, x, y))
        if not records:
            return  # nothing happened: an idle chip does not report
        block = b"".join(records[:2]).ljust(12, b"\xff")
        self.regs[GEST_ID] = 0
        self.regs[TD_STATUS] = len(self.fingers)
        self.regs[P1_XH:P2_XH + 6] = block
        self.pressed.clear()
        self.lifted.clear()
        self.reports += 1
        if self.regs[G_MODE] == 0:  # polling mode: low while touched
            self._set_int(0 if self.fingers else 1)
        else:  # trigger mode: a pulse per report
            self._pulse()
        if self.fingers:
            self._frame_timer = self._later(FRAME_S, self._report)

    def _pulse(self):
        if self._pulse_timer is not None:  # the previous pulse ends first: a fresh edge
            self._pulse_timer.cancel()
            self._timers.discard(self._pulse_timer)
            self._set_int(1)
        self.int_pulses += 1
        self._set_int(0)
        self._pulse_timer = self._later(INT_PULSE_S, self._end_pulse)

    def _end_pulse(self):
        self._pulse_timer = None
        self._set_int(1)

    # ---- the finger (control-API actions) -----------------------------------------------------

    @staticmethod
    def _xy(x, y):
        x, y = int(x), int(y)
        if not (0 <= x < WIDTH and 0 <= y < HEIGHT):
            raise ValueError("(%d, %d) is off the panel (%d x %d, portrait)" % (x, y, WIDTH, HEIGHT))
        return x, y

    @staticmethod
    def _finger(finger):
        if finger not in (0, 1):
            raise ValueError("finger must be 0 or 1 (the FT6336U tracks two points)")
        return finger

    def _act(self, after_ms, fn, *args):
        if after_ms:
            self._later(after_ms / 1000, fn, *args)
        else:
            fn(*args)

    def _touch(self, finger, x, y):
        self.fingers[finger] = (x, y)
        self.pressed.add(finger)
        self.lifted.pop(finger, None)
        self._report()

    def _move(self, finger, x, y):
        if finger not in self.fingers:
            self._touch(finger, x, y)
            return
        self.fingers[finger] = (x, y)
        self._report()

    def _release(self, finger):
        if finger in self.fingers:
            self.lifted[finger] = self.fingers.pop(finger)
            self.pressed.discard(finger)
            self._report()

    def do_touch(self, x, y, finger=0, after_ms=0):
        """A finger down at panel coordinates (portrait, 240 x 320), now or after after_ms."""
        self._act(after_ms, self._touch, self._finger(finger), *self._xy(x, y))
        return self.status()

    def do_move(self, x, y, finger=0, after_ms=0):
        """The finger slides to (x, y) (a finger not yet down touches there)."""
        self._act(after_ms, self._move, self._finger(finger), *self._xy(x, y))
        return self.status()

    def do_release(self, finger=0, after_ms=0):
        """The finger leaves the glass: one lift-up report."""
        self._act(after_ms, self._release, self._finger(finger))
        return self.status()

    def do_tap(self, x, y, hold_ms=80, finger=0, after_ms=0):
        """Touch at (x, y), lift hold_ms later, or later still if the host has not read the
        touch by then: a tap is for the device to see. A host starved of CPU (a loaded test
        machine) can miss a whole 80 ms touch, which a person's finger, watching the screen,
        would not let happen; the lift then waits for the host's first read (at most LIFT_WAIT_S)."""
        finger = self._finger(finger)
        xy = self._xy(x, y)
        seen = [None]

        def touch():
            seen[0] = self.reads
            self._touch(finger, *xy)

        def lift(waited=0.0):
            if seen[0] is not None and self.reads == seen[0] and waited < LIFT_WAIT_S and self._running():
                self._later(LIFT_POLL_S, lift, waited + LIFT_POLL_S)
                return
            self._release(finger)

        self._act(after_ms, touch)
        self._later((after_ms + hold_ms) / 1000, lift)
        return {"duration_ms": after_ms + hold_ms}

    def do_drag(self, from_x, from_y, to_x, to_y, steps=5, interval_ms=None, finger=0, after_ms=0):
        """Touch at from, move in `steps` equal steps (one per frame unless interval_ms), lift at to."""
        finger = self._finger(finger)
        x0, y0 = self._xy(from_x, from_y)
        x1, y1 = self._xy(to_x, to_y)
        steps = max(1, int(steps))
        interval = FRAME_S * 1000 if interval_ms is None else float(interval_ms)
        self._act(after_ms, self._touch, finger, x0, y0)
        for i in range(1, steps + 1):
            x = x0 + (x1 - x0) * i // steps
            y = y0 + (y1 - y0) * i // steps
            self._later((after_ms + i * interval) / 1000, self._move, finger, x, y)
        end = after_ms + (steps + 1) * interval
        self._later(end / 1000, self._release, finger)
        return {"duration_ms": round(end)}

    def do_config(self, boot_ms=None):
        """Model settings: boot_ms, the time from reset release to answering (default 300)."""
        if boot_ms is not None:
            self.boot_s = max(0.0, float(boot_ms) / 1000)
        return {"boot_ms": round(self.boot_s * 1000)}

    def status(self):
        self._sync_reset()
        regs = self.regs
        return {
            "state": ("reset" if self.in_reset else "hibernate" if self.hibernating
                      else "booting" if time.monotonic() < self.ready_at else "running"),
            "pointer": self.pointer,
            "g_mode": regs[G_MODE], "dev_mode": regs[DEV_MODE], "pwr_mode": regs[PWR_MODE],
            "th_group": regs[TH_GROUP], "td_status": regs[TD_STATUS],
            "points": regs[P1_XH:P2_XH + 6].hex(),
            "fingers": {str(k): list(v) for k, v in sorted(self.fingers.items())},
            "int": None if self._pins is None else self._pins.level(self.int_gpio),
            "reports": self.reports, "int_pulses": self.int_pulses, "reads": self.reads,
            "nacks": self.nacks, "boot_ms": round(self.boot_s * 1000),
        }
