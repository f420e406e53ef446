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
"""

import board
from board import handheld as hw

_made = {}


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
