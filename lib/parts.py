"""The handheld's peripherals as driver objects, each built once on first use, for the terminal
application (and anything at the REPL that wants the same objects):

    import parts
    display = parts.display()       # drivers.st7789.ST7789 (call `await display.init()` once)
    touch = parts.touch()           # drivers.ft6336.FT6336
    sensor = parts.sensor()         # drivers.r503.R503
    nfc = parts.nfc()               # drivers.pn532.PN532
    slot = parts.slot()             # drivers.iso7816_slot.Slot

board/ builds the buses and owns the pin map; this module puts the drivers on them, with the
driver imported only when its part is first asked for.

A driver is heap on the board (its module's functions and classes, ~6 KB for the R503's or the
PN532's, beside its object), so the app lets go of what a flow used when the flow ends:

    sensor = parts.lazy("sensor")   # stands for parts.sensor(), made at its first use
    parts.unload(names)             # those modules gone, and the parts made with their drivers
"""

import sys

from micropython import const

import board
from board import handheld as hw

_made = {}
_SCHEDULER_DEPTH = const(8)  # the ESP32 port's MICROPY_SCHEDULER_DEPTH (4 on the unix port)
# Each part's driver module: unload() lets go of a part with its driver.
_DRIVERS = {"display": "drivers.st7789", "touch": "drivers.ft6336", "sensor": "drivers.r503",
            "nfc": "drivers.pn532", "slot": "drivers.iso7816_slot"}


def _once(name, make):
    part = _made.get(name)
    if part is None:
        part = _made[name] = make()
    return part


def _pin(gpio, mode, value=None):
    m = board.buses.machine
    return board.buses.pin(gpio, getattr(m.Pin, mode), value=value)


def display():
    def make():
        from drivers.st7789 import ST7789

        return ST7789(board.buses.display_spi(), _pin(hw.PIN_DISPLAY_CS, "OUT", 1), _pin(hw.PIN_DISPLAY_DC, "OUT", 0))
    return _once("display", make)


def touch():
    def make():
        from drivers.ft6336 import FT6336

        return FT6336(board.buses.i2c(), int_pin=_pin(hw.PIN_TOUCH_INT, "IN"),
                      reset_pin=_pin(hw.PIN_TOUCH_RESET, "OUT", 1))
    return _once("touch", make)


def sensor():
    def make():
        from drivers.r503 import R503

        return R503(board.buses.fingerprint_uart())
    return _once("sensor", make)


def nfc():
    def make():
        from drivers.pn532 import PN532, I2CLink

        return PN532(I2CLink(board.buses.i2c(), irq=_pin(hw.PIN_NFC_IRQ, "IN")),
                     reset=_pin(hw.PIN_NFC_RESET, "OUT", 1))
    return _once("nfc", make)


def slot():
    def make():
        from drivers.iso7816_slot import Slot

        return Slot.from_board(board)
    return _once("slot", make)


def standby_key():
    return board.buses.standby_key()


class _Lazy:
    def __init__(self, name):
        self.name = name

    def __getattr__(self, attr):
        return getattr(globals()[self.name](), attr)


def lazy(name):
    """An object that stands for the part `name` ("sensor"...): its driver is made (imported)
    when one of its attributes is first used, and made again after an unload() let it go."""
    return _Lazy(name)


def unload(names):
    """Let go of the modules `names` (imported by a flow that has ended), and of the parts made
    with their drivers: nothing then holds their functions and classes, and the heap they took
    is free again. The next import makes them anew; no object made from the old ones may be
    kept (an exception class of the old module would not match the new one's)."""
    closed = False
    for part, driver in _DRIVERS.items():
        made = _made.pop(part, None) if driver in names else None
        close = getattr(made, "close", None)
        if close is not None:
            close()  # its interrupt handlers
            closed = True
    if closed:
        # The scheduler's queue (a GC root) keeps each handler it ran in its slot until a new
        # one takes it (py/scheduler.c): the driver's last IRQ kept it, and its module through
        # its class, in the heap after it was let go (the PN532's, ~6 KB, through a contact
        # card's reading and after Card mode). A no-op into each slot in turn: the VM runs
        # each at the loop's jump back, so one waits at most and no real edge finds the queue
        # full (if it is full already, its handlers take the slots).
        import micropython

        def nothing(_):
            pass

        try:
            for _ in range(_SCHEDULER_DEPTH):
                micropython.schedule(nothing, None)
        except RuntimeError:
            pass
    for name in names:
        sys.modules.pop(name, None)
        package, _, attr = name.rpartition(".")
        outer = sys.modules.get(package)
        if outer is not None and attr in outer.__dict__:
            delattr(outer, attr)
