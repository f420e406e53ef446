"""The hardware watchdog: resets the device if the application stops feeding it.

The application feeds it from a task of its own (a hung event loop stops the feeding). The
ESP32's watchdog cannot be stopped once started, so when the application hands over to the
REPL (Ctrl-C) a timer keeps feeding it: an engineer at the REPL is not a hang. Where the board
has no watchdog (board.HAS_WATCHDOG false) every call is a no-op.
"""

import board

_wdt = None
_timer = None


def start():
    global _wdt
    if _wdt is None:
        _wdt = board.watchdog()
    return _wdt is not None


def feed():
    if _timer is None and _wdt is not None:
        _wdt.feed()


def release_to_repl():
    global _timer
    if _wdt is not None and _timer is None:
        from machine import Timer

        wdt = _wdt
        _timer = Timer(0)
        _timer.init(period=board.handheld.WATCHDOG_MS // 4, callback=lambda t: wdt.feed())


def resume():
    """The application runs again: it feeds the watchdog itself."""
    global _timer
    if _timer is not None:
        _timer.deinit()
        _timer = None
