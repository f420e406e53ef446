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
from ui.widgets import Box, Button, Text, paragraph, wrap

CANCEL = "cancel"
TIMEOUT = "timeout"
DEFAULT_TIMEOUT_MS = const(60_000)

# Minor units per major unit (ISO 4217 exponents) of the currencies the terminal shows. A code
# before the figures is followed by a no-break space: wrapped text keeps "CHF 12.50" on one line.
CURRENCIES = {"EUR": ("€", 2), "USD": ("$", 2), "GBP": ("£", 2), "CHF": ("CHF\u00a0", 2), "JPY": ("¥", 0)}

_KEY_W = const(76)
_KEY_H = const(50)  # a key's pitch: theme.TARGET high, 2 px apart
_KEYPAD_TOP = const(120)
# Above the keypad, a PIN pad that pays something shows the amount (the title's line), to whom
# (two small lines from _PAYEE_Y) and its field (_FIELD_Y: the prompt until a digit is typed,
# then the dots); one that does not shows its title, the prompt at _PROMPT_Y and the field.
_AMOUNT_Y = const(27)
_PAYEE_Y = const(57)
_PROMPT_Y = const(64)
_FIELD_Y = const(98)
_FIELD_H = const(19)  # the small font's line
_AMOUNT_TOP = const(62)  # confirm_amount's first line, under the title


def format_amount(minor, currency):
    symbol, exponent = CURRENCIES.get(currency, (currency + "\u00a0", 2))
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
        keys.append((6 + c * (_KEY_W + 2), _KEYPAD_TOP + r * _KEY_H, _KEY_W, _KEY_H - 2, digit, digit))
    keys.append((6, _KEYPAD_TOP + 3 * _KEY_H, _KEY_W, _KEY_H - 2, "Cancel", "del"))
    keys.append((6 + 2 * (_KEY_W + 2), _KEYPAD_TOP + 3 * _KEY_H, _KEY_W, _KEY_H - 2, "OK", "ok"))
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
    """The masked PIN entry: one dot per digit typed, never the digit; before the first digit,
    the prompt if it is given one (a PIN pad that shows a payment has no other line for it)."""

    def __init__(self, y, max_len, prompt=None):
        self.count = 0
        self.max_len = max_len
        self.prompt = prompt
        self.bounds = (0, y, theme.WIDTH, _FIELD_H)

    def draw(self, fb, ox, oy, canvas):
        if self.prompt and not self.count:
            small = theme.font(theme.SMALL)
            small.draw(fb, self.prompt, (theme.WIDTH - small.width(self.prompt)) // 2 - ox, self.bounds[1] - oy,
                       theme.MUTED, canvas.palette, canvas.rows)
            return
        x0, y0 = (theme.WIDTH - self.max_len * 18) // 2, self.bounds[1] + 3
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
            body, width = theme.font(theme.BODY), theme.WIDTH - 2 * theme.MARGIN
            if body.width(title) <= width:
                items.append(Text(theme.MARGIN, theme.STATUS_HEIGHT + 6, title, body, theme.TEXT, width))
            else:  # "Confirm with fingerprint", a network's name: the small font, cut only past its line
                from ui.fit import lines

                small = theme.font(theme.SMALL)
                items.append(Text(theme.MARGIN, theme.STATUS_HEIGHT + 6 + (body.height - small.height) // 2,
                                  lines(title, small, width, 1)[0], small, theme.TEXT, width))
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

    async def message(self, title, text, remedy=None, error=False, button="OK", timeout_ms=DEFAULT_TIMEOUT_MS,
                      other=None):
        """A message, or an error with what to do about it. Returns "ok" or TIMEOUT; other: the
        label of a second button beside the first (what can be done with what is shown, e.g. a
        History entry's "Refund"), which returns "other"."""
        small, width = theme.font(theme.SMALL), theme.WIDTH - 2 * theme.MARGIN
        items = self._frame(None)
        y = theme.STATUS_HEIGHT + 10
        items.append(Box(0, y, theme.WIDTH, 4, theme.BAD if error else theme.ACCENT))
        # A title may be a payee's name (a History entry's): wrapped, and in the small font when
        # the screen has no room for it in the body one (a failure that names a 40-character
        # shop and what to do): everything above the button. Past that, the text is cut ("…");
        # the console's line has it whole.
        font = theme.font(theme.BODY)
        texts = wrap(text, small, width)
        remedies = wrap(remedy, small, width) if remedy else ()
        room = theme.HEIGHT - theme.TARGET - theme.MARGIN - 6 - (y + 12) - 6 - (10 if remedy else 0)  # pixels
        titles = wrap(title, font, width)
        if len(titles) * font.height + (len(texts) + len(remedies)) * small.height > room:
            font = small
            titles = wrap(title, small, width)
        room = (room - len(titles) * font.height) // small.height - len(remedies)  # the text's lines
        if len(texts) > room:
            from ui.fit import lines as cut

            texts = cut(text, small, width, max(1, room))
        y += 12
        for rows, face, colour, gap in ((titles, font, theme.BAD if error else theme.TEXT, 6),
                                        (texts, small, theme.TEXT, 10), (remedies, small, theme.MUTED, 0)):
            for row in rows:
                items.append(Text(theme.MARGIN, y, row, face, colour, width))
                y += face.height
            y += gap
        bottom = theme.HEIGHT - theme.TARGET - theme.MARGIN
        if other is None:
            buttons = [Button(theme.MARGIN, bottom, width, theme.TARGET, button, "ok")]
        else:
            half = (width - theme.MARGIN) // 2
            buttons = [Button(theme.MARGIN, bottom, half, theme.TARGET, button, "ok"),
                       Button(theme.WIDTH - theme.MARGIN - half, bottom, half, theme.TARGET, other, "other")]
        items += buttons
        self.canvas.render(items)
        self.shown(title, text + (" " + remedy if remedy else ""), buttons, error=error)
        # Drawn: only the buttons are needed while it waits. "Insert or tap card" waits while the
        # kernel is made and the card is found: its lines and widgets (~1.5 KB) were live at
        # the contactless flows' peak.
        del items, titles, texts, remedies, rows
        return await self._tap(buttons, timeout_ms)

    async def menu(self, title, entries, timeout_ms=DEFAULT_TIMEOUT_MS, back=True):
        """A list to choose from: the index chosen, CANCEL (Back) or TIMEOUT. Three rows a page.
        back=False: a menu nothing is behind (the home menu, the lock screen) has no Back, rather
        than one that does nothing."""
        per_page = 3
        page = 0
        width = theme.WIDTH - 2 * theme.MARGIN
        body = theme.font(theme.BODY)
        while True:
            items = self._frame(title)
            targets = []
            shown = entries[page * per_page:(page + 1) * per_page]
            # A row is a target's height, its label on two small lines if need be (ui.fit); a
            # label that needs three ("€99,999,999.99 <a 40-character shop>") gets a taller row,
            # the rows then closer together.
            heights = [theme.TARGET] * len(shown)
            for i, label in enumerate(shown):
                if body.width(label) > width - 2 * theme.INSET:
                    from ui.fit import rows

                    if rows(label, width) > 2:
                        heights[i] = 3 * theme.font(theme.SMALL).height + 2 * theme.INSET
            tall = max(heights) > theme.TARGET
            y = theme.STATUS_HEIGHT + (40 if tall else 44)
            for i, label in enumerate(shown):
                targets.append(Button(theme.MARGIN, y, width, heights[i], label, page * per_page + i))
                y += heights[i] + (6 if tall else 10)
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
                      timeout_ms=DEFAULT_TIMEOUT_MS, amount=None, payee=None):
        """The owner types a PIN. Returns a bytearray of digits (the caller wipes it), or CANCEL
        (the Cancel key, which becomes Del once a digit is typed) or TIMEOUT, after wiping what
        was typed. amount (format_amount's text) and payee: what the PIN pays, and to whom,
        shown in the title's place (whoever types a PIN sees what it is for)."""
        digits = shuffled_digits() if randomize else "1234567890"
        pad = Keypad(digits)
        small, width = theme.font(theme.SMALL), theme.WIDTH - 2 * theme.MARGIN
        if amount is None:
            items = self._frame(title)
            dots = Dots(_FIELD_Y, max_len)
            if prompt:
                items.append(Text(theme.MARGIN, _PROMPT_Y, prompt, small, theme.MUTED, width))
        else:
            items = self._frame(None)
            dots = Dots(_FIELD_Y, max_len, prompt)
            body = theme.font(theme.BODY)
            if payee:
                amount += " to"  # the payee on its two lines below
            items.append(Text(theme.MARGIN, _AMOUNT_Y, amount, body if body.width(amount) <= width else small,
                              theme.TEXT, width))
            if payee:
                lines = wrap(payee, small, width)
                if len(lines) > 2:
                    from ui.fit import lines as cut

                    lines = cut(payee, small, width, 2)
                for i, line in enumerate(lines):
                    items.append(Text(theme.MARGIN, _PAYEE_Y + i * small.height, line, small, theme.TEXT, width))
        pin = bytearray(max_len)
        n = 0
        self.canvas.render(items + [dots, pad])
        del items  # the title and prompt are drawn: not kept while the PIN is typed
        self.shown(title, prompt if amount is None else "%s%s. %s" % (amount, " " + payee if payee else "", prompt or ""),
                   pin_pad=True)
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

    async def confirm_amount(self, merchant, amount_minor, currency, account, title="Pay", timeout_ms=DEFAULT_TIMEOUT_MS,
                             request=False):
        """What is paid, to whom, from which account: True (Confirm), CANCEL or TIMEOUT.
        request: a merchant's request, answered here: True (Pay), "refuse" (Refuse), "other"
        (Other way: another account or a card), CANCEL (Back: it waits) or TIMEOUT."""
        items = self._frame(title)
        width = theme.WIDTH - 2 * theme.MARGIN
        small, body, large = theme.font(theme.SMALL), theme.font(theme.BODY), theme.font(theme.LARGE)
        bottom = theme.HEIGHT - theme.TARGET - theme.MARGIN
        top = bottom - theme.TARGET - 8 if request else bottom  # the buttons' top row
        amount = format_amount(amount_minor, currency)
        # Everything above the buttons, whatever the names: "to <payee>" in the body font on two
        # lines at most, else in the small one; the amount in the large font if the screen's
        # width and height allow it, else in the body one; "from <account>" wrapped below it.
        font = body
        names = wrap("to " + merchant, body, width)
        if len(names) > 2:
            font = small
            names = wrap("to " + merchant, small, width)
        froms = wrap("from " + account, small, width) if account else ()
        if large.width(amount) > width or _AMOUNT_TOP + len(names) * font.height + 8 + large.height + 6 + \
                len(froms) * small.height > top - 4:
            large = body  # (€99,999,999.99 is wider than the screen in the large font)
        if body.width(amount) > width:
            large = small  # (CHF 9,999,999,999.99, DE4's largest, is wider in the body one too)
        room = (top - 4 - _AMOUNT_TOP - 8 - large.height - 6 - len(froms) * small.height) // font.height
        if len(names) > room:  # longer than any name a bank sends (DE43: 40): cut, and said so
            from ui.fit import lines

            names = lines("to " + merchant, font, width, max(1, room))
        y = _AMOUNT_TOP
        for line in names:
            items.append(Text(theme.MARGIN, y, line, font, theme.TEXT, width))
            y += font.height
        items.append(Text(theme.MARGIN, y + 8, amount, large, theme.TEXT, width, "center"))
        y += 8 + large.height + 6
        for line in froms:
            items.append(Text(theme.MARGIN, y, line, small, theme.MUTED, width, "center"))
            y += small.height
        right = theme.WIDTH - theme.MARGIN - 104
        buttons = [Button(theme.MARGIN, bottom, 104, theme.TARGET, "Refuse" if request else "Cancel",
                          "refuse" if request else CANCEL, fill=theme.BAD),
                   Button(right, bottom, 104, theme.TARGET, "Pay" if request else "Confirm", True, fill=theme.GOOD)]
        if request:
            # Refusing and paying are the answers, side by side; above them what leaves it
            # waiting (Back) and the other ways to pay it.
            buttons.append(Button(theme.MARGIN, top, 104, theme.TARGET, "Back", CANCEL, font=small))
            buttons.append(Button(right, top, 104, theme.TARGET, "Other way", "other", font=small))
        self.canvas.render(items + buttons)
        self.shown(title, "%s to %s%s" % (format_amount(amount_minor, currency), merchant,
                                          " from " + account if account else ""), buttons)
        return await self._tap(buttons, timeout_ms)

    def progress(self, title, text, fraction=None):
        """Something is under way: a caption and a bar (fraction 0..1) or an indefinite one.
        Draws and returns at once; call again to update."""
        items = self._frame(title)
        width = theme.WIDTH - 2 * theme.MARGIN
        font = theme.font(theme.BODY)
        if len(wrap(text, font, width)) > 4:  # what a finger confirms (amount, payee): small, not off the screen
            font = theme.font(theme.SMALL)
        lines, y = paragraph(theme.MARGIN, 120, text, font, theme.TEXT, width, "center")
        items += lines
        items.append(Box(theme.MARGIN, y + 24, width, 12, theme.BUTTON, theme.BUTTON_EDGE))
        if fraction is None:
            items.append(Box(theme.MARGIN + width // 3, y + 26, width // 3, 8, theme.ACCENT))
        else:
            items.append(Box(theme.MARGIN + 2, y + 26, (width - 4) * max(0, min(1000, int(fraction * 1000))) // 1000, 8, theme.ACCENT))
        self.canvas.render(items)
        self.shown(title, text)
