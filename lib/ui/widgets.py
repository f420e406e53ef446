"""What screens are made of. Every widget has bounds (x, y, w, h) and draw(fb, ox, oy, canvas)."""

from ui import theme


class Box:
    """A filled rectangle, optionally with a border."""

    def __init__(self, x, y, w, h, fill, border=None):
        self.bounds = (x, y, w, h)
        self.fill = fill
        self.border = border

    def draw(self, fb, ox, oy, canvas):
        x, y, w, h = self.bounds
        fb.fill_rect(x - ox, y - oy, w, h, self.fill)
        if self.border is not None:
            fb.rect(x - ox, y - oy, w, h, self.border)


class Text:
    """A line of text; align "left", "center" or "right" inside width (default: the screen)."""

    def __init__(self, x, y, text, font, colour, width=None, align="left"):
        self.font = font
        self.text = text
        self.colour = colour
        width = width if width is not None else theme.WIDTH - x
        tw = font.width(text)
        self.tx = x + (width - tw) // 2 if align == "center" else x + width - tw if align == "right" else x
        self.bounds = (min(x, self.tx), y, max(width, tw), font.height)

    def draw(self, fb, ox, oy, canvas):
        self.font.draw(fb, self.text, self.tx - ox, self.bounds[1] - oy, self.colour, canvas.palette, canvas.rows)


def wrap(text, font, width):
    """Split text into lines no wider than width (at spaces, or inside a too-long word)."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = word if not line else line + " " + word
            if font.width(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while font.width(word) > width:
                cut = len(word)
                while cut > 1 and font.width(word[:cut]) > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def paragraph(x, y, text, font, colour, width, align="left"):
    """Wrapped text as Text lines; returns (widgets, the y below them)."""
    out = []
    for line in wrap(text, font, width):
        out.append(Text(x, y, line, font, colour, width, align))
        y += font.height
    return out, y


class Button:
    """A touch target: a filled rectangle with a centred label. hit(x, y) says whether a tap
    at x, y is on it (with a margin: fingers are wider than pixels).

    A label wider than the button is wrapped in the small font over the lines its height holds
    (ui.fit, imported only then): `lines` are what is drawn, `label` keeps the whole label."""

    lines = None  # the label's Texts when it is wrapped (a class default: no slot a button)

    def __init__(self, x, y, w, h, label, value, font=None, fill=None, colour=None):
        self.bounds = (x, y, w, h)
        self.value = value
        # Its box is drawn here as a Box draws one: no Box object (a PIN pad has twelve buttons).
        self.fill = fill if fill is not None else theme.BUTTON
        font = font or theme.font(theme.BODY)
        colour = colour if colour is not None else theme.BUTTON_TEXT
        self.label = Text(x, y + (h - font.height) // 2, label, font, colour, w, "center")
        if font.width(label) > w - 2 * theme.INSET:
            from ui.fit import label_lines

            self.lines = label_lines(x, y, w, h, label, colour)

    def draw(self, fb, ox, oy, canvas):
        x, y, w, h = self.bounds
        fb.fill_rect(x - ox, y - oy, w, h, self.fill)
        fb.rect(x - ox, y - oy, w, h, theme.BUTTON_EDGE)
        if self.lines is None:
            self.label.draw(fb, ox, oy, canvas)
        else:
            for line in self.lines:
                line.draw(fb, ox, oy, canvas)

    def hit(self, x, y, margin=4):
        bx, by, w, h = self.bounds
        return bx - margin <= x < bx + w + margin and by - margin <= y < by + h + margin
