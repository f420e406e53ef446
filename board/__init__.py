"""The board layer's one entry point: the buses and capabilities of the device we run on.

    import board
    i2c = board.buses.i2c()            # the handheld's I2C0, shared by touch and NFC
    board.buses.standby_key().value()  # 0 while pressed
    if board.HAS_WATCHDOG: ...

On the ESP32 the buses are machine's; in the virtual handheld they are board.sim's, the same
classes over the rig. Nothing else in the firmware needs to know which.
"""

import sys

from board import handheld

if sys.platform == "esp32":
    import machine as _machine

    NAME = "handheld"
    HAS_WATCHDOG = True
else:
    from board import sim as _machine

    NAME = "handheld (virtual, over the rig)"
    HAS_WATCHDOG = False

buses = handheld.Buses(_machine)


def refuse_repl():
    """A production unit: Ctrl-C no longer interrupts, and the REPL must never come up."""
    if sys.platform == "esp32":
        import micropython

        micropython.kbd_intr(-1)
    else:
        _machine.refuse_repl()


def reset():
    """A hard reset, as the EN button."""
    _machine.reset()


def watchdog(timeout_ms=handheld.WATCHDOG_MS):
    """Start the hardware watchdog (it cannot be stopped again); None where there is none."""
    if not HAS_WATCHDOG:
        return None
    from machine import WDT

    return WDT(timeout=timeout_ms)
