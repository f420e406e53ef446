"""The board layer's one entry point: the buses and capabilities of the device we run on.

    import board
    i2c = board.buses.i2c()            # the handheld's I2C0, shared by touch and NFC
    board.buses.standby_key().value()  # 0 while pressed
    if board.HAS_WATCHDOG: ...
    board.wlan().isconnected()         # the Wi-Fi station; its STAT_* values are board.net's

On the ESP32 the buses are machine's; in the virtual handheld they are board.sim's, the same
classes over the rig. Nothing else in the firmware needs to know which.
"""

import sys

from board import handheld

if sys.platform == "esp32":
    import machine as _machine
    import network as net

    NAME = "handheld"
    HAS_WATCHDOG = True
else:
    from board import sim as _machine
    from board import sim as net

    NAME = "handheld (virtual, over the rig)"
    HAS_WATCHDOG = False

buses = handheld.Buses(_machine)


def refuse_repl():
    """A production unit (lib/production.py): Ctrl-C no longer interrupts, and the REPL must
    never come up. On the board the C has already cut the REPL's serial input
    (firmware/pt_lock.c); this is the second lock of the same door."""
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


_wlan = None


def wlan():
    """The Wi-Fi station, network.WLAN(network.STA_IF): one for the board."""
    global _wlan
    if _wlan is None:
        _wlan = net.WLAN(net.STA_IF)
    return _wlan


def route(host, port):
    """The address a socket to (host, port) connects to. On the board, that host itself; in the
    virtual handheld the access point's forwarding address on 127.0.0.1, which the rig's AP
    model forwards to the bank host it was given (tools/rig/wifi.py, action `target`). TLS
    still names and verifies the configured host."""
    if sys.platform == "esp32":
        return host, port
    return wlan().route(host, port)
