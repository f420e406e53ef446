import asyncio

import board
import diag


def checks():
    return asyncio.run(diag.checks())


def test_every_check_reports():
    results = checks()
    names = [r[0] for r in results]
    for expected in ("heap", "flash", "i2c0", "display spi", "fingerprint uart1", "card slot uart2",
                     "standby key", "battery"):
        assert expected in names, (expected, names)
    for name, ok, detail, remedy in results:
        assert ok in (True, False), name
        assert isinstance(detail, str) and detail, name
        assert ok or remedy, "a fault needs a remedy: " + name


def test_i2c_line_names_what_answers():
    found = board.buses.i2c().scan()
    detail = {r[0]: r for r in checks()}["i2c0"][2]
    for addr in found:
        assert "0x%02x" % addr in detail, (addr, detail)
    if not found:
        assert detail.endswith("none"), detail


def test_report_prints_every_check():
    diag.report()  # must not raise; the output is checked from the host


def test_checks_run_inside_the_apps_event_loop():
    # Settings > Diagnostics awaits them from the app's running loop: the drivers' self-tests
    # must be awaited there, not run in a loop of their own (that killed the interpreter).
    async def app():
        await asyncio.sleep_ms(0)
        return await diag.checks()

    names = [r[0] for r in asyncio.run(app())]
    assert "NFC PN532" in names and "card slot" in names and "fingerprint R503" in names, names
