"""The screens the cardholder trusts. Each is an async method that draws and returns the user's
answer; CANCEL and TIMEOUT are answers too.

    ui = UI(display, touch)                  # drivers.st7789.ST7789, drivers.ft6336.FT6336
    await ui.message("Declined", "The bank declined the payment.", remedy="Try another card.")
    choice = await ui.menu("Menu", ["Pay", "Balance", "Settings"])
    pin = await ui.pin_pad("Enter PIN", randomize=True)     # bytearray: wipe it after use
    ok = await ui.confirm_amount("Coffee Corner", 1250, "EUR", "DE89 ... 3000")
    ui.progress("Authorising", "Contacting the bank", 0.4)

The PIN pad echoes no digit anywhere: the screen shows one dot per digit, the digits live only
in the bytearray it returns (wiped if the entry is cancelled), and nothing is printed.

Every screen drawn is also printed on the console as one line, for the engineer at the REPL,
the web simulator's device log and the host tests (which find a button by its label there):

    screen {"title": "Pay", "text": "...", "buttons": {"Cancel": [x, y, w, h], ...}}

Only what the screen itself shows openly: the PIN pad's line names no key, its keys' places
being the PIN's to whoever watches the taps (with a shuffled pad, the layout is the secret).
"""

import json
import os

from micropython import const

from ui import theme
from ui.canvas import Canvas
from ui.widgets import Box, Button, Text, paragraph

CANCEL = "cancel"
TIMEOUT = "timeout"
DEFAULT_TIMEOUT_MS = const(60_000)

# Minor units per major unit (ISO 4217 exponents) of the currencies the terminal shows.
CURRENCIES = {"EUR": ("€", 2), "USD": ("$", 2), "GBP": ("£", 2), "CHF": ("CHF ", 2), "JPY": ("¥", 0)}

_KEY_W = const(76)
_KEY_H = const(52)
_KEYPAD_TOP = const(108)


def format_amount(minor, currency):
    symbol, exponent = CURRENCIES.get(currency, (currency + " ", 2))
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    unit = 10 ** exponent
    whole = str(minor // unit)
    # Thousands grouped as people read them: 1,000.00 (an amount is checked by eye before paying).
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    whole = ",".join([whole] + groups)
    if exponent == 0:
        return "%s%s%s" % (sign, symbol, whole)
    return "%s%s%s.%0*d" % (sign, symbol, whole, exponent, minor % unit)


def keypad_layout(digits="1234567890"):
    """The PIN pad's keys: (x, y, w, h, label, value) for the ten digits in the order given
    (laid out as on a phone: three rows of three, then the tenth below the middle), the
    delete/cancel key and OK."""
    keys = []
    slots = [(c, r) for r in range(3) for c in range(3)] + [(1, 3)]
    for digit, (c, r) in zip(digits, slots):
        keys.append((6 + c * (_KEY_W + 2), _KEYPAD_TOP + r * _KEY_H, _KEY_W, _KEY_H - 4, digit, digit))
    keys.append((6, _KEYPAD_TOP + 3 * _KEY_H, _KEY_W, _KEY_H - 4, "Cancel", "del"))
    keys.append((6 + 2 * (_KEY_W + 2), _KEYPAD_TOP + 3 * _KEY_H, _KEY_W, _KEY_H - 4, "OK", "ok"))
    return keys


def shuffled_digits():
    """The ten digits in an order from the hardware random generator (Fisher-Yates)."""
    digits = list("0123456789")
    noise = os.urandom(10)
    for i in range(9, 0, -1):
        j = noise[i] % (i + 1)
        digits[i], digits[j] = digits[j], digits[i]
    return "".join(digits)


class Status:
    """What the status bar shows; the app updates it, every screen draws it."""

    def __init__(self):
        self.wifi = None  # None: no network; else signal bars 0..4
        self.bank = None  # what the way to the bank lacks ("no bank", "offline"), None if nothing
        self.battery = None  # percent, or None if unknown
        self.locked = True


class StatusBar:
    def __init__(self, status):
        self.status = status
        self.bounds = (0, 0, theme.WIDTH, theme.STATUS_HEIGHT)

    def draw(self, fb, ox, oy, canvas):
        s = self.status
        fb.fill_rect(-ox, -oy, theme.WIDTH, theme.STATUS_HEIGHT, theme.STATUS)
        small = theme.font(theme.SMALL)
        # Wi-Fi: four rising bars, lit up to the signal; a cross when there is no network.
        for i in range(4):
            h = 4 + 3 * i
            x, y = 8 + 6 * i - ox, 18 - h - oy
            lit = s.wifi is not None and i < s.wifi
            fb.fill_rect(x, y, 4, h, theme.TEXT if lit else theme.MUTED)
        # Beside the bars, what a payment needs next: a network, a bank set up, its session.
        lacks = "no network" if s.wifi is None else s.bank
        if lacks:
            small.draw(fb, lacks, 36 - ox, 4 - oy, theme.MUTED, canvas.palette)
        # The lock: a shackle over a body; unlocked, the shackle swings open to the right.
        lx = 132 - ox
        fb.rect(lx + (2 if s.locked else 8), 3 - oy, 8, 8, theme.TEXT)
        fb.fill_rect(lx, 9 - oy, 12, 9, theme.TEXT)
        # Battery: an outline filled to the charge, with its percentage.
        bx = 196 - ox
        fb.rect(bx, 6 - oy, 32, 13, theme.TEXT)
        fb.fill_rect(bx + 32, 10 - oy, 2, 5, theme.TEXT)
        if s.battery is not None:
            fill = theme.GOOD if s.battery > 20 else theme.BAD
            fb.fill_rect(bx + 2, 8 - oy, 28 * max(0, min(100, s.battery)) // 100, 9, fill)
            small.draw(fb, "%d%%" % s.battery, 162 - ox, 4 - oy, theme.TEXT, canvas.palette)


class Dots:
    """The masked PIN entry: one dot per digit typed, never the digit."""

    def __init__(self, y, max_len):
        self.count = 0
        self.max_len = max_len
        self.bounds = (0, y, theme.WIDTH, 40)

    def draw(self, fb, ox, oy, canvas):
        x0, y0 = (theme.WIDTH - self.max_len * 18) // 2, self.bounds[1] + 14
        for i in range(self.max_len):
            x = x0 + i * 18 - ox
            if i < self.count:
                fb.fill_rect(x + 2, y0 - oy, 12, 12, theme.TEXT)
            else:
                fb.fill_rect(x + 2, y0 + 10 - oy, 12, 2, theme.MUTED)


class Keypad:
    """The PIN pad's twelve keys (keypad_layout) as one widget, each drawn as a Button draws
    itself: twelve Buttons and their labels' Texts held 2.2 KB of heap for as long as a PIN
    was typed, which on a card-paid purchase is the flow's peak; their layout is 0.4 KB.
    hit() records the key tapped in `value`, for UI._tap."""

    def __init__(self, digits):
        self.keys = keypad_layout(digits)
        x, y = self.keys[0][0], self.keys[0][1]
        self.bounds = (x, y, theme.WIDTH - 2 * x, 4 * _KEY_H)
        self.value = None

    def draw(self, fb, ox, oy, canvas):
        font = theme.font(theme.BODY)
        for x, y, w, h, label, _ in self.keys:
            if y - oy < canvas.rows and y + h > oy:  # the keys in this strip
                fb.fill_rect(x - ox, y - oy, w, h, theme.BUTTON)
                fb.rect(x - ox, y - oy, w, h, theme.BUTTON_EDGE)
                font.draw(fb, label, x + (w - font.width(label)) // 2 - ox, y + (h - font.height) // 2 - oy,
                          theme.BUTTON_TEXT, canvas.palette, canvas.rows)

    def hit(self, x, y, margin=4):
        # In the keys' order, with a Button's margin: the first key a tap is on, as with Buttons.
        for bx, by, w, h, _, value in self.keys:
            if bx - margin <= x < bx + w + margin and by - margin <= y < by + h + margin:
                self.value = value
                return True
        return False

    def relabel(self, i, label):
        """Key i shows label now (the caller renders it: bounds_of(i))."""
        x, y, w, h, _, value = self.keys[i]
        self.keys[i] = (x, y, w, h, label, value)

    def bounds_of(self, i):
        return self.keys[i][:4]


class UI:
    def __init__(self, display, touch, status=None):
        self.canvas = Canvas(display, theme.BACKGROUND)
        self.touch = touch
        self.status = status or Status()
        self.title = None  # the last screen's title

    def shown(self, title, text=None, buttons=(), **more):
        """Print the screen line (see the module's docstring); every screen calls it once drawn."""
        line = {"title": title}
        if text:
            line["text"] = text
        if buttons:
            line["buttons"] = {b.label.text: list(b.bounds) for b in buttons}
        line.update(more)
        self.title = title
        print("screen", json.dumps(line))

    def redraw_status(self):
        """The status bar alone, drawn again over the screen shown (its state changed)."""
        bar = StatusBar(self.status)
        self.canvas.render([bar], bar.bounds)

    def _frame(self, title):
        items = []  # every screen: the status bar, then its title if it has one
        items.append(StatusBar(self.status))
        if title:
            items.append(Text(theme.MARGIN, theme.STATUS_HEIGHT + 6, title, theme.font(theme.BODY), theme.TEXT))
        return items

    async def _tap(self, targets, timeout_ms):
        """The value of the target tapped (finger lifted on it), or TIMEOUT."""
        import time

        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while True:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return TIMEOUT
            event = await self.touch.event(left)
            if event is None:
                continue
            kind, x, y = event
            if kind == "up":
                for target in targets:
                    if target.hit(x, y):
                        return target.value

    # ---- screens -----------------------------------------------------------------------------

    async def message(self, title, text, remedy=None, error=False, button="OK", timeout_ms=DEFAULT_TIMEOUT_MS):
        """A message, or an error with what to do about it. Returns "ok" or TIMEOUT."""
        body, width = theme.font(theme.BODY), theme.WIDTH - 2 * theme.MARGIN
        items = self._frame(None)
        y = theme.STATUS_HEIGHT + 10
        items.append(Box(0, y, theme.WIDTH, 4, theme.BAD if error else theme.ACCENT))
        items.append(Text(theme.MARGIN, y + 12, title, body, theme.BAD if error else theme.TEXT))
        lines, y = paragraph(theme.MARGIN, y + 12 + body.height + 6, text, theme.font(theme.SMALL), theme.TEXT, width)
        items += lines
        if remedy:
            lines, y = paragraph(theme.MARGIN, y + 10, remedy, theme.font(theme.SMALL), theme.MUTED, width)
            items += lines
        ok = Button(theme.MARGIN, theme.HEIGHT - theme.TARGET - theme.MARGIN, width, theme.TARGET, button, "ok")
        items.append(ok)
        self.canvas.render(items)
        self.shown(title, text + (" " + remedy if remedy else ""), [ok], error=error)
        return await self._tap([ok], timeout_ms)

    async def menu(self, title, entries, timeout_ms=DEFAULT_TIMEOUT_MS, back=True):
        """A list to choose from: the index chosen, CANCEL (Back) or TIMEOUT. Three rows a page.
        back=False: a menu nothing is behind (the home menu, the lock screen) has no Back, rather
        than one that does nothing."""
        per_page = 3
        page = 0
        width = theme.WIDTH - 2 * theme.MARGIN
        while True:
            items = self._frame(title)
            targets = []
            y = theme.STATUS_HEIGHT + 44
            for i, label in enumerate(entries[page * per_page:(page + 1) * per_page]):
                targets.append(Button(theme.MARGIN, y, width, theme.TARGET, label, page * per_page + i))
                y += theme.TARGET + 10
            bottom = theme.HEIGHT - theme.TARGET - 8
            if back:
                targets.append(Button(theme.MARGIN, bottom, 104, theme.TARGET, "Back", CANCEL))
            if (page + 1) * per_page < len(entries) or page:
                targets.append(Button(theme.WIDTH - theme.MARGIN - 104, bottom, 104, theme.TARGET,
                                      "More" if (page + 1) * per_page < len(entries) else "First", "more"))
            self.canvas.render(items + targets)
            self.shown(title, None, targets)
            answer = await self._tap(targets, timeout_ms)
            if answer != "more":
                return answer
            page = page + 1 if (page + 1) * per_page < len(entries) else 0

    async def pin_pad(self, title="Enter PIN", prompt=None, min_len=4, max_len=12, randomize=False,
                      timeout_ms=DEFAULT_TIMEOUT_MS):
        """The owner types a PIN. Returns a bytearray of digits (the caller wipes it), or CANCEL
        (the Cancel key, which becomes Del once a digit is typed) or TIMEOUT, after wiping what
        was typed."""
        digits = shuffled_digits() if randomize else "1234567890"
        pad = Keypad(digits)
        dots = Dots(62 if prompt is None else 72, max_len)
        items = self._frame(title)
        if prompt:
            items.append(Text(theme.MARGIN, 56, prompt, theme.font(theme.SMALL), theme.MUTED))
        pin = bytearray(max_len)
        n = 0
        self.canvas.render(items + [dots, pad])
        del items  # the title and prompt are drawn: not kept while the PIN is typed
        self.shown(title, prompt, pin_pad=True)
        try:
            while True:
                answer = await self._tap((pad,), timeout_ms)
                if answer == TIMEOUT:
                    return TIMEOUT
                if answer == "del":
                    if n == 0:
                        return CANCEL
                    n -= 1
                    pin[n] = 0
                elif answer == "ok":
                    if n >= min_len:
                        result = bytearray(pin[:n])
                        return result
                    continue
                elif n < max_len:
                    pin[n] = ord(answer)
                    n += 1
                dots.count = n
                self.canvas.render([dots], dots.bounds)
                label = "Del" if n else "Cancel"
                if pad.keys[10][4] != label:
                    pad.relabel(10, label)
                    self.canvas.render((pad,), pad.bounds_of(10))
        finally:
            for i in range(max_len):
                pin[i] = 0

    async def confirm_amount(self, merchant, amount_minor, currency, account, title="Pay", timeout_ms=DEFAULT_TIMEOUT_MS):
        """What is paid, to whom, from which account: True (Confirm), CANCEL or TIMEOUT."""
        items = self._frame(title)
        width = theme.WIDTH - 2 * theme.MARGIN
        small, large = theme.font(theme.SMALL), theme.font(theme.LARGE)
        items.append(Text(theme.MARGIN, 64, "to", small, theme.MUTED))
        lines, y = paragraph(theme.MARGIN, 82, merchant, theme.font(theme.BODY), theme.TEXT, width)
        items += lines
        items.append(Text(theme.MARGIN, y + 18, format_amount(amount_minor, currency), large, theme.TEXT, width, "center"))
        if account:
            items.append(Text(theme.MARGIN, y + 18 + large.height + 12, "from " + account, small, theme.MUTED, width, "center"))
        bottom = theme.HEIGHT - theme.TARGET - theme.MARGIN
        cancel = Button(theme.MARGIN, bottom, 104, theme.TARGET, "Cancel", CANCEL, fill=theme.BAD)
        confirm = Button(theme.WIDTH - theme.MARGIN - 104, bottom, 104, theme.TARGET, "Confirm", True, fill=theme.GOOD)
        self.canvas.render(items + [cancel, confirm])
        self.shown(title, "%s to %s%s" % (format_amount(amount_minor, currency), merchant,
                                          " from " + account if account else ""), [cancel, confirm])
        return await self._tap([cancel, confirm], timeout_ms)

    def progress(self, title, text, fraction=None):
        """Something is under way: a caption and a bar (fraction 0..1) or an indefinite one.
        Draws and returns at once; call again to update."""
        items = self._frame(title)
        width = theme.WIDTH - 2 * theme.MARGIN
        lines, y = paragraph(theme.MARGIN, 120, text, theme.font(theme.BODY), theme.TEXT, width, "center")
        items += lines
        items.append(Box(theme.MARGIN, y + 24, width, 12, theme.BUTTON, theme.BUTTON_EDGE))
        if fraction is None:
            items.append(Box(theme.MARGIN + width // 3, y + 26, width // 3, 8, theme.ACCENT))
        else:
            items.append(Box(theme.MARGIN + 2, y + 26, (width - 4) * max(0, min(1000, int(fraction * 1000))) // 1000, 8, theme.ACCENT))
        self.canvas.render(items)
        self.shown(title, text)
