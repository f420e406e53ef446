"""The on-screen keyboard: text typed with a finger on the 240x320 panel.

    ssid = await keyboard.text(ui, "Network name")
    key = await keyboard.text(ui, "Password", secret=True, min_len=8)    # str, CANCEL or TIMEOUT

Four pages of 28 keys (7 a row, 4 rows; 32 x 44 px, the size of a phone's keys on this
panel's 200 ppi), switched by the page key: lower case, upper case, digits with the common
symbols, the other symbols; with the space key every printable ASCII character (all a WPA2
passphrase may hold) is on a page. Below them Cancel, Del and OK, as on the PIN pad.

Each page drawn prints the screen line with its keys (`"keyboard": "abc"`): the keys never move
(no shuffling: the text is no payment secret, and a fixed layout is what a person types fast
on), so listing them tells nothing. A secret entry shows one dot per character on the panel and
nothing of the text or its length on the console; the characters live only in a bytearray
wiped on the way out.
"""

from micropython import const

from ui import theme
from ui.screens import CANCEL, DEFAULT_TIMEOUT_MS, TIMEOUT
from ui.widgets import Box, Button
from vault.crypto import wipe

# (name, keys in reading order): the page key shows the next page's name.
PAGES = (
    ("abc", "abcdefghijklmnopqrstuvwxyz.-"),
    ("ABC", "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-"),
    ("123", "1234567890.,-_!@#$%&*()+=?/:"),
    ("#+=", "\"';<>[\\]^`{|}~"),
)
_COLUMNS = const(7)
_KEY_PITCH = const(34)
_KEY_W = const(32)
_ROW_PITCH = const(46)
_KEY_H = const(44)
_KEYS_TOP = const(92)
_FIELD_TOP = const(60)
_FIELD_H = const(30)
_DOT = const(8)
_DOT_PITCH = const(12)
# The bottom row: (x, width, label, value); the page key's label is the next page's name.
_CONTROLS = ((0, 44, None, "page"), (46, 50, "space", " "), (98, 40, "Del", "del"), (140, 56, "Cancel", CANCEL),
             (198, 42, "OK", "ok"))


def layout(page):
    """The keys of page `page` (an index of PAGES): (x, y, w, h, label, value), the characters
    first, then the bottom row."""
    keys = []
    for i, ch in enumerate(PAGES[page][1]):
        c, r = i % _COLUMNS, i // _COLUMNS
        keys.append((1 + c * _KEY_PITCH, _KEYS_TOP + r * _ROW_PITCH, _KEY_W, _KEY_H, ch, ch))
    y = _KEYS_TOP + 4 * _ROW_PITCH
    for x, w, label, value in _CONTROLS:
        keys.append((x, y, w, _KEY_H, label or PAGES[(page + 1) % len(PAGES)][0], value))
    return keys


class Field:
    """The line being typed: its tail that fits, or one dot per character when secret."""

    def __init__(self, typed, secret):
        self.typed = typed
        self.count = 0
        self.secret = secret
        self.bounds = (theme.MARGIN, _FIELD_TOP, theme.WIDTH - 2 * theme.MARGIN, _FIELD_H)

    def draw(self, fb, ox, oy, canvas):
        x0, y0, w, h = self.bounds
        fb.fill_rect(x0 - ox, y0 + h - 2 - oy, w, 2, theme.ACCENT)
        if self.secret:
            shown = min(self.count, w // _DOT_PITCH)
            for i in range(shown):
                fb.fill_rect(x0 + i * _DOT_PITCH - ox, y0 + (h - _DOT) // 2 - oy, _DOT, _DOT, theme.TEXT)
            return
        font = theme.font(theme.BODY)
        start = 0
        text = self.typed[:self.count].decode()
        while font.width(text[start:]) > w - 4:
            start += 1
        end = font.draw(fb, text[start:], x0 - ox, y0 + (h - font.height) // 2 - oy, theme.TEXT, canvas.palette)
        fb.fill_rect(end + 1, y0 + 3 - oy, 2, h - 8, theme.MUTED)  # the cursor


async def text(ui, title, secret=False, max_len=63, min_len=0, timeout_ms=DEFAULT_TIMEOUT_MS):
    """What the person types: a str (OK, once at least min_len characters), CANCEL or TIMEOUT
    (each wait for a key up to timeout_ms)."""
    typed = bytearray(max_len)
    field = Field(typed, secret)
    page = 0
    try:
        while True:
            keys = []
            for x, y, w, h, label, value in layout(page):
                keys.append(Button(x, y, w, h, label, value, font=None if len(value) == 1 and value != " "
                                   else theme.font(theme.SMALL)))
            ui.canvas.render(ui._frame(title) + [field, Box(0, _KEYS_TOP - 2, theme.WIDTH, 1, theme.BUTTON_EDGE)]
                             + keys)
            ui.shown(title, None, keys, keyboard=PAGES[page][0])
            while True:
                answer = await ui._tap(keys, timeout_ms)
                if answer in (TIMEOUT, CANCEL):
                    return answer
                if answer == "page":
                    page = (page + 1) % len(PAGES)
                    break
                n = field.count
                if answer == "ok":
                    if n >= min_len:
                        return typed[:n].decode()
                    continue
                if answer == "del":
                    if not n:
                        continue
                    n -= 1
                    typed[n] = 0
                elif n < max_len:
                    typed[n] = ord(answer)
                    n += 1
                field.count = n
                ui.canvas.render([field], field.bounds)
    finally:
        wipe(typed)
