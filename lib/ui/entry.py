"""Entering an amount, as on every POS: the digits fill from the right (1, 2, 5, 0 shows 0.01,
0.12, 1.25, 12.50), so the owner never types a decimal point.

    amount = await entry.amount(ui, "Amount", "EUR")   # 1250 (minor units), CANCEL or TIMEOUT

The keypad is the PIN pad's (ui.screens.keypad_layout, in the standard order: an amount is not
a secret): Cancel becomes Del once a digit is typed, OK takes an amount above zero. Each change
reprints the screen line with the amount as its text.
"""

from micropython import const

from ui import theme
from ui.screens import CANCEL, DEFAULT_TIMEOUT_MS, TIMEOUT, format_amount, keypad_layout
from ui.widgets import Button, Text

MAX = const(999_999_999)  # 9,999,999.99 in a 2-decimal currency (ISO 8583 DE4 holds 12 digits)
_AMOUNT_Y = const(58)


async def amount(ui, title="Amount", currency="EUR", timeout_ms=DEFAULT_TIMEOUT_MS):
    """The amount typed, in minor units (int > 0), or CANCEL or TIMEOUT."""
    keys = [Button(x, y, w, h, label, value) for x, y, w, h, label, value in keypad_layout()]
    large, body = theme.font(theme.LARGE), theme.font(theme.BODY)
    width = theme.WIDTH - 2 * theme.MARGIN
    value = 0
    items = ui._frame(title)
    while True:
        text = format_amount(value, currency)
        # Whole, in the large font while it fits the screen's width (€9,999,999.99 does not).
        shown = Text(theme.MARGIN, _AMOUNT_Y, text, large if large.width(text) <= width else body, theme.TEXT,
                     width, "right")
        label = "Del" if value else "Cancel"
        if keys[10].label.text != label:
            x, y, w, h = keys[10].bounds
            keys[10] = Button(x, y, w, h, label, "del")
        if items is not None:
            ui.canvas.render(items + [shown] + keys)
            items = None
        else:
            ui.canvas.render([shown], (0, _AMOUNT_Y, theme.WIDTH, large.height))
            ui.canvas.render([keys[10]], keys[10].bounds)
        ui.shown(title, shown.text, keys)
        answer = await ui._tap(keys, timeout_ms)
        if answer == TIMEOUT:
            return TIMEOUT
        if answer == "ok":
            if value > 0:
                return value
        elif answer == "del":
            if not value:
                return CANCEL
            value //= 10
        elif value * 10 + 9 <= MAX:
            value = value * 10 + int(answer)
