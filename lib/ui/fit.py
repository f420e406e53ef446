"""Text that does not fit its place on one line: wrapped, in the small font if need be, cut
with "…" only as the last resort (a name longer than the screen can ever hold). Imported only
when something does not fit, by the widget or screen that finds it so: nothing of it stays in
the heap for the usual screens.

    label_lines(x, y, w, h, text, colour)    # a button's label: the Texts to draw
    rows(text, width)                        # how many small-font lines text needs
    lines(text, font, width, most)           # wrapped, at most `most` lines
"""

from ui import theme
from ui.widgets import Text, wrap

ELLIPSIS = "…"


def lines(text, font, width, most):
    """text wrapped to width in font, at most `most` lines; the last ends with "…" when the
    text needed more."""
    out = wrap(text, font, width)
    if len(out) > most:
        del out[most:]
        last = out[-1]
        while last and font.width(last + ELLIPSIS) > width:
            last = last[:-1]
        out[-1] = last.rstrip() + ELLIPSIS
    return out


def rows(text, width):
    """How many lines of the small font text needs at width (a button's: inside its border)."""
    return len(wrap(text, theme.font(theme.SMALL), width - 2 * theme.INSET))


def label_lines(x, y, w, h, text, colour):
    """A button's label too wide for its font: in the small font, on as many lines as the
    button's height holds, centred."""
    small = theme.font(theme.SMALL)
    out = lines(text, small, w - 2 * theme.INSET, max(1, (h - 2 * theme.INSET) // small.height))
    top = y + (h - len(out) * small.height) // 2
    return [Text(x, top + i * small.height, line, small, colour, w, "center") for i, line in enumerate(out)]
