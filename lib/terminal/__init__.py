"""The terminal application's entry point and its supervisor (main.py calls run()).

The supervisor runs the application under asyncio, feeds the watchdog from a task of its own,
logs an uncaught error to the crash log and starts the application again after a pause that
doubles with each crash in a row (up to MAX_BACKOFF_MS). Ctrl-C stops it and leaves the REPL.
"""

import gc

from micropython import const

BACKOFF_MS = const(1000)
MAX_BACKOFF_MS = const(30_000)
# A run that lasted this long was healthy: the next crash starts the backoff from the beginning.
HEALTHY_MS = const(60_000)
FEED_MS = const(1000)


async def _idle():
    # Without a screen there is no terminal to show: the device only stays alive, the REPL
    # one Ctrl-C away (a bench board, or a handheld whose display or touch panel is faulty:
    # diag.report() says which).
    import asyncio

    while True:
        await asyncio.sleep_ms(60_000)


async def _terminal():
    import board
    from board import handheld as hw

    if hw.I2C_TOUCH not in board.buses.i2c().scan():
        # Asked before any driver is imported: a bench board without the handheld's parts keeps
        # its heap for the REPL.
        print("terminal: no touch panel on I2C; diag.report() for details")
        return await _idle()
    import parts
    import vault
    from terminal.app import App
    from terminal.link import Link
    from ui.screens import UI
    from vault.session import Session

    display, touch = parts.display(), parts.touch()
    try:
        await display.init()
        await touch.init()
    except Exception as e:  # no screen, no terminal; see _idle
        print("terminal: no display or touch panel (%s: %s); diag.report() for details" % (type(e).__name__, e))
        return await _idle()
    # The R503's driver (~7 KB of heap) is let go after its self-test: the fingerprint steps
    # have it made again when they use it (parts.lazy), and the app lets go of it after them.
    # No sensor (None): unlock by PIN only; Settings > Diagnostics says why.
    sensor = parts.lazy("sensor") if (await parts.sensor().self_test())[0] else None
    parts.unload(("drivers.r503",))
    ui, store = UI(display, touch), vault.Vault().open()
    # The bank link runs from here, locked or not: reversals and pushed requests do not wait for the owner.
    app = App(ui, Session(store), sensor, parts.standby_key(), Link(store, ui))
    await app.run()


async def _feeder():
    import asyncio
    import watchdog

    while True:
        watchdog.feed()
        await asyncio.sleep_ms(FEED_MS)


async def _with_feeder(main):
    import asyncio

    feeder = asyncio.create_task(_feeder())
    try:
        await main()
    finally:
        feeder.cancel()


def _release(kept):
    """Let go of what a crashed run imported (every module not in `kept` but asyncio's, which
    the supervisor runs on) and of the parts made with them (parts.unload): the next run gets
    the heap back whole. A MemoryError leaves a flow's modules and a fragmented heap behind;
    restarted on top of them, the app could not make its screen strip and crashed again."""
    import sys

    names = [name for name in sys.modules if name not in kept and not name.startswith("asyncio")]
    if names:
        import parts

        parts.unload(names)


def supervise(main, backoff_ms=BACKOFF_MS, max_runs=None):
    """Run main() (a coroutine function) until it returns, restarting it after each crash with
    the modules the crashed run imported let go of (_release).

    Returns the number of crashes; max_runs bounds the runs (for tests)."""
    import asyncio
    import sys
    import time

    import crashlog
    import watchdog

    watchdog.start()
    kept = set(sys.modules)  # boot's, and the supervisor's own
    crashes = 0
    delay = backoff_ms
    runs = 0
    try:
        while max_runs is None or runs < max_runs:
            runs += 1
            started = time.ticks_ms()
            asyncio.new_event_loop()  # a clean loop: nothing left from the crashed run
            watchdog.resume()
            try:
                asyncio.run(_with_feeder(main))
                return crashes
            except Exception as e:
                crashes += 1
                crashlog.record(e, "terminal crash %d" % crashes)
                if time.ticks_diff(time.ticks_ms(), started) > HEALTHY_MS:
                    delay = backoff_ms
                print("terminal: crashed (%s); logged, restarting in %d ms" % (type(e).__name__, delay))
                _release(kept)
            gc.collect()
            # Fed through the backoff: from the 4th crash in a row it (8 s, then 16 s, 30 s)
            # outlasts the board's 8 s watchdog, which reset the unit in the middle of it.
            for slept in range(0, delay, FEED_MS):
                watchdog.feed()
                time.sleep_ms(min(FEED_MS, delay - slept))
            delay = min(delay * 2, MAX_BACKOFF_MS)
    except KeyboardInterrupt:
        watchdog.release_to_repl()
        print("terminal: stopped by Ctrl-C")
    return crashes


def run():
    supervise(_terminal)
