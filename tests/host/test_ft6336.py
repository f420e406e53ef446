"""FT6336U touch: the driver (drivers/ft6336.py) in the virtual handheld against the rig's register
model (tools/rig/ft6336.py) on i2c0 at 0x38, with its INT (GPIO 39) and RESET (GPIO 33) lines.

The first tests check the model alone in CPython (register pointer, INT modes, reset and boot);
the rest drive the firmware driver on the device through the model's control-API actions.
"""

import asyncio
import time

import pytest

from tools.device import DeviceExecError
from tools.rig.client import RigClientError
from tools.rig.buses import I2cBus, PinBank
from tools.rig.ft6336 import FT6336 as Model

TOUCH = "ft6336"
BOOT_MS = 20  # the model's boot time in these tests (300 ms by default); the driver waits WAKE
WAKE = 30


# ---- the model alone ---------------------------------------------------------------------------

def _model():
    bus, pins = I2cBus("i2c0"), PinBank()
    model = Model(bus)
    model.name = TOUCH
    model.pins = pins  # as the rig wires it: pins first, then on the bus
    bus.devices[0x38] = model
    return bus, pins, model


def _regs(bus, reg, n):
    assert bus.write(0x38, bytes((reg,)), False) == 1
    return bus.read(0x38, n)


def test_model_register_pointer_and_ids():
    async def run():
        bus, pins, model = _model()
        # Chip id, CIPHER_MID/LOW (FT6336U), firmware, vendor; the pointer auto-increments.
        assert _regs(bus, 0xA3, 1) == b"\x64"
        assert _regs(bus, 0x9F, 2) == b"\x26\x02"
        assert bus.read(0x38, 2) == b"\x30\x03"  # 0xA1, 0xA2 follow on
        assert _regs(bus, 0xA8, 1) == b"\x11"
        # Writes go to consecutive registers; read-only ones ignore them; the pointer wraps.
        assert bus.write(0x38, b"\xa3\x00\x00", True) == 3  # CIPHER is read-only, G_MODE writable
        assert _regs(bus, 0xA3, 2) == b"\x64\x00"
        assert _regs(bus, 0xFF, 2)[1:] == b"\x00"  # 0xFF then 0x00 (DEV_MODE)
        # Idle: no points, unused records read 0xFF.
        assert _regs(bus, 0x02, 13) == b"\x00" + b"\xff" * 12
        # A touch: TD_STATUS 1, P1 = press down, id 0, x 0x0AB, y 0x123.
        model.do_touch(0xAB, 0x123)
        assert _regs(bus, 0x02, 7) == bytes((1, 0x00, 0xAB, 0x01, 0x23, 0x20, 0x30))
        model.do_move(0xAC, 0x123)
        assert _regs(bus, 0x03, 2) == bytes((0x80, 0xAC))  # contact
        model.do_touch(5, 6, finger=1)
        regs = _regs(bus, 0x02, 13)
        assert regs[0] == 2 and regs[7:11] == bytes((0x00, 5, 0x10, 6))  # P2: down, id 1
        model.do_release()
        regs = _regs(bus, 0x02, 13)
        # Finger 1 stays in contact (P1), finger 0's lift-up follows it (P2).
        assert regs[0] == 1 and regs[1] >> 6 == 2 and regs[3] >> 4 == 1
        assert regs[7] >> 6 == 1 and regs[9] >> 4 == 0
        model.do_release(finger=1)
        assert _regs(bus, 0x02, 2) == bytes((0, 0x40))
        with pytest.raises(ValueError, match="off the panel"):
            model.do_touch(240, 0)
    asyncio.run(run())


def test_model_int_trigger_pulses_and_polling_level():
    async def run():
        bus, pins, model = _model()
        edges = []
        pins.watchers.append(lambda gpio, level: gpio == 39 and edges.append(level))
        assert pins.level(39) == 1  # released: the module's pull-up
        model.do_touch(10, 10)
        assert pins.level(39) == 0  # trigger mode: low at once for the report
        await asyncio.sleep(0.06)  # about three more frames of contact while the finger stays
        falls = edges.count(0)
        assert falls >= 3 and pins.level(39) == 1
        model.do_release()
        await asyncio.sleep(0.05)
        assert edges.count(0) == falls + 1  # one lift-up report, then the chip stops reporting
        # Polling mode: INT held low for as long as a finger is on the glass.
        bus.write(0x38, b"\xa4\x00", True)
        model.do_touch(10, 10)
        await asyncio.sleep(0.05)
        assert pins.level(39) == 0
        model.do_release()
        assert pins.level(39) == 1
    asyncio.run(run())


def test_model_reset_nacks_then_boots():
    async def run():
        bus, pins, model = _model()
        model.do_config(boot_ms=30)
        bus.write(0x38, b"\xa4\x00", True)
        pins.configure(33, "out", None, 1)
        pins.drive(33, 0)
        assert bus.write(0x38, b"\xa3", False) is None  # held in reset: NACK
        pins.drive(33, 1)
        assert bus.write(0x38, b"\xa3", False) is None  # booting: still NACK
        await asyncio.sleep(0.04)
        assert _regs(bus, 0xA4, 1) == b"\x01"  # answering, registers back to their defaults
        # Hibernate: silent until the next reset pulse.
        bus.write(0x38, b"\xa5\x03", True)
        assert bus.write(0x38, b"\xa3", False) is None
        assert model.status()["state"] == "hibernate"
        # Held low from outside (a fault on the line) counts whatever the ESP32 drives.
        pins.set_external(33, 0)
        assert model.status()["state"] == "reset"
        pins.set_external(33, None)  # the ESP32 drives it high: no edge, the model samples it
        assert model.status()["state"] == "booting"
        await asyncio.sleep(0.04)
        assert _regs(bus, 0xA3, 1) == b"\x64"
        # Detached: the model lets go of INT and stops watching the lines.
        bus.devices.clear()
        model.detach()  # what the rig does when a model is detached
        pins.drive(33, 0)
        assert pins.pin(39).external is None
    asyncio.run(run())


# ---- the driver on the device ------------------------------------------------------------------

SETUP = """
import asyncio, time, board
from board import handheld as hw
from drivers.ft6336 import FT6336, TouchError, TouchNotFound, TouchWrongChip
Pin = board.buses.machine.Pin
i2c = board.buses.i2c()
int_pin = board.buses.pin(hw.PIN_TOUCH_INT)
rst_pin = board.buses.pin(hw.PIN_TOUCH_RESET, Pin.OUT, value=1)
def make(*args, **kw):
    kw.setdefault('wake_ms', %d)
    t = FT6336(i2c, *args, **kw)
    asyncio.run(t.init())
    return t
async def _collect(t, n, timeout):
    out = []
    while len(out) < n:
        e = await t.event(timeout)
        if e is None:
            break
        out.append(e)
        if e[0] == 'up':
            break
    return out
def collect(t, n=50, timeout=1000):
    return asyncio.run(_collect(t, n, timeout))
""" % WAKE


@pytest.fixture
def touch(vdevice, device):
    """The model attached with a short boot time, the driver's helpers defined on the device."""
    rig = vdevice.rig
    rig.attach("i2c0", TOUCH, addr=0x38)
    rig.call("do", name=TOUCH, action="config", boot_ms=BOOT_MS)
    device.exec(SETUP)

    class Touch:
        def do(self, action, **args):
            return rig.call("do", name=TOUCH, action=action, **args)

        def status(self):
            return rig.call("model", name=TOUCH)

        def set_pin(self, pin, level):
            return rig.set_pin(pin, level)

    try:
        yield Touch()
    finally:
        try:
            device.exec("try:\n    t.close()\nexcept NameError:\n    pass")
        finally:
            rig.set_pin("touch_reset", None)
            try:
                rig.detach(TOUCH)
            except RigClientError:
                pass  # the test detached it already


def test_chip_id_and_self_test(device, touch):
    device.exec("t = make(int_pin, rst_pin)")
    assert device.eval("(t.chip, t.chip_id, t.vendor, t.firmware)") == ("FT6336U", 0x64, 0x11, 0x10)
    assert device.eval("t.self_test()") == (True, "FT6336U fw 0x10 at 0x38, INT interrupts")
    state = touch.status()
    assert state["g_mode"] == 1 and state["dev_mode"] == 0 and state["state"] == "running"
    # G_MODE changed behind the driver's back: self_test says the chip is not configured.
    device.exec("i2c.writeto_mem(0x38, 0xA4, b'\\x00')")
    ok, detail = device.eval("t.self_test()")
    assert not ok and "not configured" in detail and "G_MODE 0x00" in detail
    device.exec("asyncio.run(t.init())")
    assert device.eval("t.self_test()")[0] is True


def test_reset_timing_realistic_by_default(device, touch):
    touch.do("config", boot_ms=300)  # the chip's own boot time
    # Waiting the datasheet's 300 ms after the reset pulse finds the chip answering.
    elapsed = device.eval("(lambda s: (make(int_pin, rst_pin, wake_ms=300), time.ticks_diff(time.ticks_ms(), s))[1])"
                          "(time.ticks_ms())")
    assert 305 <= elapsed < 600, elapsed
    # Not waiting (the retries span 40 ms) finds it still booting: a clear error, not garbage.
    with pytest.raises(DeviceExecError, match="TouchNotFound: no answer from the touch controller at 0x38"):
        device.exec("make(int_pin, rst_pin, wake_ms=0)")


def test_touch_maps_to_screen_for_each_rotation_and_mirror(device, touch):
    device.exec("t = make(int_pin, rst_pin)")
    touch.do("touch", x=30, y=50)
    got = device.eval(
        "[(r, mx, my, (t.set_rotation(r), t.width, t.height)[1:], "
        "(setattr(t, 'mirror_x', mx), setattr(t, 'mirror_y', my), t.read_points())[2]) "
        "for r in (0, 90, 180, 270) for mx in (False, True) for my in (False, True)]")
    # Panel (30, 50) on a 240 x 320 portrait panel, in the display's rotations (drivers.st7789:
    # at 90 the screen's top-left is the panel's top-right corner).
    def turned(r, x, y):
        return {0: (x, y), 90: (y, 239 - x), 180: (239 - x, 319 - y), 270: (319 - y, x)}[r]

    assert [turned(r, 30, 50) for r in (0, 90, 180, 270)] == [(30, 50), (50, 209), (209, 269), (269, 30)]
    for r, mx, my, size, points in got:
        assert size == ((240, 320) if r in (0, 180) else (320, 240)), (r, size)
        # Mirroring is how the panel is mounted: applied in panel coordinates, before rotating.
        x, y = turned(r, 239 - 30 if mx else 30, 319 - 50 if my else 50)
        # The chip reports press down, then contact every frame while the finger stays.
        assert [(i, xy) for i, _, *xy in points] == [(0, [x, y])], (r, mx, my, points)
        assert points[0][1] in ("down", "contact"), points
    assert got[4][4][0][2:] == (50, 209)  # 90, no mirror
    assert got[3][4][0][2:] == (209, 269)  # 0, mirrored both ways: as 180
    touch.do("release")
    device.exec("t.set_rotation(0); t.mirror_x = t.mirror_y = False")
    assert device.eval("t.read_points()") == [(0, "up", 30, 50)]
    with pytest.raises(DeviceExecError, match="ValueError: rotation must be"):
        device.exec("t.set_rotation(45)")


def test_drag_gives_down_moves_up(device, touch):
    device.exec("t = make(int_pin, rst_pin)")
    touch.do("drag", from_x=20, from_y=300, to_x=200, to_y=40, steps=5, after_ms=150)
    events = device.eval("collect(t)")
    path = [(20 + 36 * i, 300 - 52 * i) for i in range(1, 6)]
    assert events[0] == ("down", 20, 300), events
    assert events[-1] == ("up", 200, 40), events
    moves = [(x, y) for kind, x, y in events[1:-1]]
    assert all(kind == "move" for kind, _, _ in events[1:-1]), events
    assert len(moves) >= 3 and moves == [p for p in path if p in moves], events  # in order, no repeats
    # Landscape: the same drag arrives turned.
    device.exec("t.set_rotation(90)")
    touch.do("drag", from_x=20, from_y=300, to_x=200, to_y=40, steps=2, after_ms=100)
    events = device.eval("collect(t)")
    assert events[0] == ("down", 300, 239 - 20) and events[-1] == ("up", 40, 239 - 200), events


def test_repeated_contact_reports_are_deduplicated(device, touch):
    device.exec("t = make(int_pin, rst_pin)")
    touch.do("touch", x=100, y=100)
    assert device.eval("collect(t, timeout=300)") == [("down", 100, 100)]
    # The finger stayed: the chip kept reporting (and pulsing INT) every frame; no new events.
    state = touch.status()
    assert state["reports"] >= 10 and state["int_pulses"] >= 10, state
    touch.do("move", x=101, y=100)  # below move_px: jitter
    assert device.eval("asyncio.run(t.event(100))") is None
    touch.do("move", x=110, y=100)
    assert device.eval("asyncio.run(t.event(300))") == ("move", 110, 100)
    touch.do("release")
    assert device.eval("asyncio.run(t.event(300))") == ("up", 110, 100)
    # The lift-up stays in the registers: it is not reported again.
    assert device.eval("asyncio.run(t.event(100))") is None
    # A tap completed between two reads still gives down then up.
    touch.do("tap", x=7, y=8, hold_ms=20)
    time.sleep(0.1)
    device.exec("t.close()")  # no interrupt: only the registers tell
    assert device.eval("collect(t, timeout=100)") == [("down", 7, 8), ("up", 7, 8)]


def test_interrupt_delivers_without_polling(device, touch):
    device.exec("t = make(int_pin, rst_pin)")
    assert device.eval("t.mode") == "interrupt"
    touch.do("tap", x=120, y=160, hold_ms=60, after_ms=400)
    out = device.eval(
        "(lambda r0, s: (asyncio.run(t.event(2000)), t.reads - r0, time.ticks_diff(time.ticks_ms(), s), t.irqs))"
        "(t.reads, time.ticks_ms())")
    event, reads, waited_ms, irqs = out
    assert event == ("down", 120, 160)
    # Waiting ~400 ms cost one read at the start, at most one watchdog read (every 250 ms) and
    # the read the interrupt asked for; polling would have made about 20.
    assert reads <= 3, out
    assert irqs >= 1 and 250 <= waited_ms < 1000, out
    assert device.eval("asyncio.run(t.event(1000))") == ("up", 120, 160)


def test_polling_without_int_pin(device, touch):
    device.exec("t = make(None, rst_pin)")
    assert device.eval("t.mode") == "poll"
    assert device.eval("t.self_test()") == (True, "FT6336U fw 0x10 at 0x38, polling")
    touch.do("tap", x=200, y=10, hold_ms=100, after_ms=300)
    events, reads = device.eval("(lambda r0: (collect(t), t.reads - r0))(t.reads)")
    assert events == [("down", 200, 10), ("up", 200, 10)]
    assert reads >= 10, reads  # every POLL_MS (20 ms) for ~400 ms


def test_dead_int_line_falls_back_to_polling(device, touch):
    # INT given on a line nothing drives (a broken trace): the watchdog reads see reports that no
    # interrupt announced, and the driver polls from then on.
    device.exec("t = make(Pin(12, Pin.IN, Pin.PULL_UP), rst_pin, watchdog_ms=40)")
    touch.do("drag", from_x=10, from_y=10, to_x=100, to_y=10, steps=8, interval_ms=40, after_ms=100)
    events = device.eval("collect(t)")
    assert events[0][0] == "down" and events[-1] == ("up", 100, 10), events
    assert device.eval("(t.mode, t.irq_ok, t.irqs)") == ("poll", False, 0)


def test_reset_held_low_is_a_clear_error(device, touch):
    touch.do("touch", x=1, y=1)  # a finger on the glass all along
    # Something on the board holds RESET low: the chip never answers, and init() says so quickly.
    touch.set_pin("touch_reset", 0)
    started = time.monotonic()
    with pytest.raises(DeviceExecError, match="TouchNotFound: .*RESET held low"):
        device.exec("t = make(int_pin, rst_pin)")
    assert time.monotonic() - started < 2
    touch.set_pin("touch_reset", None)
    device.exec("t = make(int_pin, rst_pin)")
    assert device.eval("collect(t, timeout=200)") == [("down", 1, 1)]  # reported again after boot
    # The driver's own RESET line low after a good start: reads fail with the typed error.
    device.exec("rst_pin(0)")
    with pytest.raises(DeviceExecError, match="TouchNotFound: the touch controller at 0x38 does not answer"):
        device.exec("t.read_points()")
    ok, detail = device.eval("t.self_test()")
    assert not ok and "does not answer" in detail
    device.exec("asyncio.run(t.init())")  # pulses RESET itself: back
    assert device.eval("t.self_test()")[0] is True
    touch.do("release")


def test_hibernate_until_reset(device, touch):
    device.exec("t = make(int_pin, rst_pin)")
    device.exec("t.hibernate()")
    assert touch.status()["state"] == "hibernate"
    with pytest.raises(DeviceExecError, match="TouchNotFound"):
        device.exec("t.read_points()")
    device.exec("asyncio.run(t.init())")
    assert device.eval("t.read_points()") == []


def test_absent_chip_is_a_typed_error_not_a_hang(vdevice, device, touch):
    device.exec("t = make(int_pin, rst_pin)")
    vdevice.rig.detach(TOUCH)
    started = time.monotonic()
    with pytest.raises(DeviceExecError, match="TouchNotFound: the touch controller at 0x38 does not answer"):
        device.exec("asyncio.run(t.event(5000))")
    ok, detail = device.eval("t.self_test()")
    assert not ok and detail.startswith("0x38 does not answer")
    with pytest.raises(DeviceExecError, match="TouchNotFound: no answer"):
        device.exec("make()")
    assert time.monotonic() - started < 2


def test_wrong_chip_at_the_address(vdevice, device):
    vdevice.rig.attach("i2c0", "at24c02", addr=0x38)  # an EEPROM answers there: id reads 0xFF
    try:
        device.exec(SETUP)
        with pytest.raises(DeviceExecError, match="TouchWrongChip: the chip at 0x38 has id 0xff"):
            device.exec("make()")
    finally:
        vdevice.rig.detach("at24c02")
