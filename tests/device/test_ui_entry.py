# Amount entry (lib/ui/entry.py) on the device: the real UI drawing through the ST7789 driver, a
# finger that taps keys by their label at the centres of ui.screens.keypad_layout's keys (the
# places the screen line reports), and the screen lines the entry prints.
import asyncio
import board
from board import handheld as h
from drivers.st7789 import ST7789

from ui import entry
from ui.screens import CANCEL, TIMEOUT, UI, keypad_layout

_pin = board.buses.machine.Pin
_KEYS = {k[4]: k[:4] for k in keypad_layout()}
_KEYS["Del"] = _KEYS["Cancel"]


_made = []


def _display():
    if not _made:
        d = ST7789(board.buses.display_spi(), board.buses.pin(h.PIN_DISPLAY_CS, _pin.OUT, value=1),
                   board.buses.pin(h.PIN_DISPLAY_DC, _pin.OUT, value=0))
        asyncio.run(d.init())
        _made.append(d)
    return _made[0]


class Finger:
    """Touch events as the FT6336 driver gives them: a tap is down then up at a key's centre;
    when the taps run out it waits (the entry's own timeout ends it)."""

    def __init__(self, labels):
        self.events = []
        for label in labels:
            x, y, w, hh = _KEYS[label]
            self.events += [("down", x + w // 2, y + hh // 2), ("up", x + w // 2, y + hh // 2)]

    async def event(self, timeout_ms=None):
        if self.events:
            return self.events.pop(0)
        await asyncio.sleep_ms(timeout_ms)
        return None


def typed(labels, timeout_ms=2000, currency="EUR"):
    """(what amount() returned, the texts of the screen lines it printed)."""
    ui = UI(_display(), Finger(labels))
    lines = []
    shown = ui.shown

    def record(title, text=None, buttons=(), **more):
        lines.append((title, text, [b.label.text for b in buttons]))
        shown(title, text, buttons, **more)

    ui.shown = record
    return asyncio.run(entry.amount(ui, currency=currency, timeout_ms=timeout_ms)), lines


DIGITS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"]


def test_digits_fill_from_the_right():
    got, lines = typed(["1", "2", "5", "0", "OK"])
    assert got == 1250
    assert [text for _, text, _ in lines] == ["€0.00", "€0.01", "€0.12", "€1.25", "€12.50"]
    # Every line names the keypad's keys: the ten digits, Cancel (Del once a digit is in), OK.
    assert lines[0] == ("Amount", "€0.00", DIGITS + ["Cancel", "OK"])
    assert lines[-1][2] == DIGITS + ["Del", "OK"]


def test_del_takes_the_last_digit_back_and_cancel_ends():
    got, lines = typed(["7", "5", "Del", "Del", "Cancel"])
    assert got == CANCEL
    assert [text for _, text, _ in lines] == ["€0.00", "€0.07", "€0.75", "€0.07", "€0.00"]


def test_no_leading_zero_and_no_zero_amount():
    # OK at zero does nothing; a zero first is not a digit of the amount.
    got, lines = typed(["OK", "0", "0", "3", "OK"])
    assert got == 3
    assert [text for _, text, _ in lines] == ["€0.00", "€0.00", "€0.00", "€0.00", "€0.03"]


def test_at_most_nine_digits():
    got, lines = typed(["9"] * 11 + ["OK"])
    assert got == 999_999_999 == entry.MAX
    assert lines[-1][1] == "€9,999,999.99"


def test_currency_without_decimals_and_timeout():
    got, lines = typed(["4", "2", "OK"], currency="JPY")
    assert got == 42 and lines[-1][1] == "¥42"
    got, lines = typed(["4"], timeout_ms=300)
    assert got == TIMEOUT and lines[-1][1] == "€0.04"
