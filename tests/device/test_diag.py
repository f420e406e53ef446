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


def test_i2c_devices_match_the_bus():
    found = board.buses.i2c().scan()
    by_name = {r[0]: r for r in diag.checks()}
    for addr, part, _ in diag.I2C_DEVICES:
        assert by_name[part][1] == (addr in found), (part, found)


def test_report_prints_every_check():
    diag.report()  # must not raise; the output is checked from the host
