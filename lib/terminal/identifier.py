"""My identifier: the payment identifier the bank maps to this handheld (tools/bank/alias.py),
shown as text to read out and as a QR code for a merchant to scan ("pocket:<alias>"), so that
a merchant can push a payment request without knowing anything of the device; and, on the
owner's word, a new one (the bank retires the old one at once: a merchant who kept it reaches
nobody). The bank is asked each time (PROTOCOL.md, 0200/900000 and 910000): nothing is kept.

The QR code (lib/qr) is made when the screen is drawn and let go with it: ~0.7 KB held, drawn
module by module into each strip that crosses it.
"""

from micropython import const

from terminal import errors
from terminal.app import Operation
from ui import theme
from ui.screens import CANCEL, DEFAULT_TIMEOUT_MS, TIMEOUT
from ui.widgets import Button, Text

URI = "pocket:"  # as tools/bank/alias.py's URI: what the merchant's scanner reads
_QUIET = const(4)  # light modules around the code (ISO/IEC 18004: 4)
_CODE_TOP = const(58)  # under the title
_SCALE = const(5)  # pixels a module: version 2 (25 modules and the quiet zone) is 165 px wide


class Identifier(Operation):
    """Ask the bank for the identifier, show it; "New identifier" asks the owner, then the bank."""

    new = False  # the next ask is for a new one (kept across a lock: the owner said so)

    async def start(self, app):
        app.ui.progress("Bank", "Asking for a new identifier" if self.new else "Asking for your identifier")
        try:
            up = await app.link.ready()
            de48 = errors.answered(await self.exchange(up.alias(self.new))).fields.get(48) or ""
            if not de48.startswith("ALIAS=") or len(de48) != 14:
                raise errors.Failure(errors.FAILED, "The bank sent no identifier.")
        except Exception as e:
            await errors.show(app.ui, errors.failure(e))
            return None
        # Asked: a lock from here on does not ask for another. (One that came before the 0200
        # left, while the link was awaited, resumes at this step and asks for the new one.)
        self.new = False
        self.alias = de48[6:]
        return "show"

    async def show(self, app):
        answer = await _screen(app.ui, self.alias)
        return "replace" if answer == "new" else None

    async def replace(self, app):
        answer = await app.ui.menu("New identifier?", ["Make a new one: the old one stops working",
                                                       "Keep %s" % _spaced(self.alias)])
        if answer in (CANCEL, TIMEOUT) or answer == 1:
            return "show"
        self.new = True
        return "start"


def _spaced(alias):
    """Read out in two groups of four."""
    return "%s %s" % (alias[:4], alias[4:])


class _Code:
    """A QR code over its light quiet zone, drawn into whichever strip crosses it."""

    def __init__(self, x, y, size, modules):
        self.size = size
        self.modules = modules
        side = (size + 2 * _QUIET) * _SCALE
        self.bounds = (x, y, side, side)

    def draw(self, fb, ox, oy, canvas):
        x, y, side, _ = self.bounds
        fb.fill_rect(x - ox, y - oy, side, side, theme.TEXT)  # clipped to the strip by framebuf
        n, m = self.size, self.modules
        # Only the module rows in this strip.
        first = max(0, (oy - y) // _SCALE - _QUIET)
        last = min(n, (oy + canvas.rows - 1 - y) // _SCALE - _QUIET + 1)
        for r in range(first, last):
            top = y + (r + _QUIET) * _SCALE - oy
            for c in range(n):
                if m[r * n + c] & 1:
                    fb.fill_rect(x + (c + _QUIET) * _SCALE - ox, top, _SCALE, _SCALE, theme.STATUS)


async def _screen(ui, alias, timeout_ms=DEFAULT_TIMEOUT_MS):
    """The identifier's screen: "new" (New identifier), CANCEL (Back) or TIMEOUT."""
    import qr

    text = URI + alias
    code = _Code(0, _CODE_TOP, *qr.encode(text.encode()))
    side = code.bounds[2]
    code.bounds = ((theme.WIDTH - side) // 2, _CODE_TOP, side, side)
    body = theme.font(theme.BODY)
    items = ui._frame("My identifier")
    items.append(code)
    items.append(Text(theme.MARGIN, _CODE_TOP + side + 4, _spaced(alias), body, theme.TEXT,
                      theme.WIDTH - 2 * theme.MARGIN, "center"))
    bottom = theme.HEIGHT - theme.TARGET - 8
    buttons = [Button(theme.MARGIN, bottom, 104, theme.TARGET, "Back", CANCEL),
               Button(theme.WIDTH - theme.MARGIN - 104, bottom, 104, theme.TARGET, "New identifier", "new",
                      font=theme.font(theme.SMALL))]
    ui.canvas.render(items + buttons)
    ui.shown("My identifier", _spaced(alias), buttons, qr=text)
    del items, code  # the code's modules go with the screen: the tap waits without them
    return await ui._tap(buttons, timeout_ms)
