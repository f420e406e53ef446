import board
import diag


def test_every_check_reports():
    results = diag.checks()
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
    detail = {r[0]: r for r in diag.checks()}["i2c0"][2]
    for addr in found:
        assert "0x%02x" % addr in detail, (addr, detail)
    if not found:
        assert detail.endswith("none"), detail


def test_report_prints_every_check():
    diag.report()  # must not raise; the output is checked from the host
