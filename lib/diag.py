"""Diagnostics: the state of every bus and peripheral. At the REPL: `import diag; diag.report()`.

`await checks()` returns (name, ok, detail, remedy) for each item, for the diagnostics screen
(inside the app's event loop) as well as for report(), which runs it in a loop of its own at the
REPL. Each check is independent: a bus that cannot even be opened is a fault with its own
remedy, never a crash of the report.
"""

import gc
import os

import board
from board import handheld as hw

# Every part on the handheld's I2C0, by address (anything else answering is worth a look).
I2C_PARTS = {hw.I2C_NFC: "PN532", hw.I2C_TOUCH: "FT6336U"}


def _heap():
    gc.collect()
    free, used = gc.mem_free(), gc.mem_alloc()
    return True, "%d bytes free of %d" % (free, free + used), None


def _flash():
    bsize, _, blocks, bfree = os.statvfs("/")[:4]
    return True, "%d KB free of %d KB" % (bfree * bsize // 1024, blocks * bsize // 1024), None


def _i2c():
    found = board.buses.i2c().scan()
    names = ["0x%02x %s" % (a, I2C_PARTS.get(a, "unknown")) for a in found]
    return True, "%d kHz, answering: %s" % (hw.I2C_FREQ // 1000, ", ".join(names) or "none"), None


def _uart(make, baud):
    def check():
        make()
        return True, "open at %d baud" % baud, None
    return check


def _spi():
    board.buses.display_spi()
    return True, "open at %d MHz" % (hw.SPI_DISPLAY_BAUD // 1_000_000), None


def _touch():
    import parts

    return parts.touch().self_test() + (None,)


async def _nfc():
    import parts

    return await parts.nfc().self_test() + (None,)


async def _fingerprint():
    import parts

    return await parts.sensor().self_test() + (None,)


def _standby_key():
    return True, "pressed" if board.buses.standby_key().value() == 0 else "released", None


async def _card_slot():
    import parts

    return await parts.slot().self_test() + (None,)


def _battery():
    import battery

    mv = battery.millivolts()
    return mv >= battery.LOW_MV, "%d mV (%d%%)" % (mv, battery.percent(mv)), None


def _vault():
    import production  # an eFuse fact, not the store's
    import vault

    state = vault.describe()
    return state != "TAMPERED", "%s%s" % (state, ", production unit" if production.burned() else ""), None


def _crashlog():
    import crashlog

    n = crashlog.count()
    return n == 0, "%d entries" % n, "read them with crashlog.show(); clear with crashlog.clear()"


def _items():
    return [
        ("board", lambda: (True, board.NAME, None), None),
        ("heap", _heap, None),
        ("flash", _flash, None),
        ("i2c0", _i2c, "check SDA/SCL wiring and pull-ups"),
        ("touch FT6336U", _touch, "check the touch flex cable and the I2C pull-ups"),
        ("NFC PN532", _nfc, "reseat the NFC module; check I2C pull-ups and that RSTPDN is high"),
        ("fingerprint R503", _fingerprint, "check the sensor's cable (TX/RX crossed?, 3.3 V) and its password"),
        ("display spi", _spi, "check the display's SPI wiring"),
        ("fingerprint uart1", _uart(board.buses.fingerprint_uart, hw.UART_FINGERPRINT_BAUD),
         "check the fingerprint module's TX/RX wiring"),
        ("card slot uart2", _uart(board.buses.card_uart, 10752), "check the slot's I/O line"),
        ("card slot", _card_slot, "take the card out and put it in again; clean its contacts; check the slot's detect switch"),
        ("standby key", _standby_key, "check the key"),
        ("battery", _battery, "charge the battery; if it stays low, check its connector"),
        ("secure store", _vault, "its files were altered: return the unit to the issuer for service"),
        ("crash log", _crashlog, None),
    ]


async def checks():
    """[(name, ok, detail, remedy or None)] for every bus and peripheral. The drivers' own
    self-tests are coroutines: awaited here, never run in a loop of their own (a second
    asyncio.run() inside the app's running loop brought the interpreter down)."""
    out = []
    for name, check, remedy in _items():
        try:
            result = check()
            ok, detail, own_remedy = result if isinstance(result, tuple) else await result
            out.append((name, ok, detail, own_remedy or (None if ok else remedy)))
        except Exception as e:  # the check itself failed: that is the finding
            out.append((name, False, "%s: %s" % (type(e).__name__, e), remedy))
    return out


def report():
    """At the REPL (no event loop running): every check, printed."""
    import asyncio

    for name, ok, detail, remedy in asyncio.run(checks()):
        print("%-20s %-5s %s" % (name, "ok" if ok else "FAULT", detail))
        if not ok and remedy:
            print("%-26s-> %s" % ("", remedy))
