"""The toolkit's own account of a screen: where each element is and what each text drew, for
the layout test (tests/host/test_layout.py) and whoever checks a screen at the REPL. Never
imported by the application: it costs nothing there.

    from ui import layout
    layout.record()          # from now on, every render is described in layout.screens
    ...                      # draw screens
    layout.screens[-1]       # the last: a list of elements, in drawing order (a part drawn
                             # again, as a PIN pad's dots, is a render of its own)

An element is a dict: "kind" (status, box, text, button, key, field), "box" [x, y, w, h] (what
it occupies: a text's is the place it was given), and for what draws text, "texts": one dict a
line drawn, with "text", "ink" [x, y, w, h] (where the font's advances put it: the pixels it may
touch) and "missing" (its characters the font has no glyph for, drawn as "?"). The numbers are
the widgets' own (Text.tx, Font.width, the keypad's layout): what render() draws from.
"""

from ui import theme
from ui.screens import Dots, Keypad, StatusBar
from ui.widgets import Box, Button, Text

screens = []


def _missing(font, text):
    return "".join(ch for ch in text if font._find(ord(ch)) < 0)


def _text(t, x=None):
    """A line of text as drawn: Text t (x: a pen position that replaces its own)."""
    tx = t.tx if x is None else x
    return {"text": t.text, "ink": [tx, t.bounds[1], t.font.width(t.text), t.font.height],
            "missing": _missing(t.font, t.text)}


def _line(font, text, x, y):
    return {"text": text, "ink": [x, y, font.width(text), font.height], "missing": _missing(font, text)}


def describe(items):
    """The elements of a screen made of items (what UI screens pass to Canvas.render)."""
    out = []
    for item in items:
        box = list(item.bounds)
        if isinstance(item, Text):
            out.append({"kind": "text", "box": box, "texts": [_text(item)]})
        elif isinstance(item, Button):
            lines = item.lines if item.lines is not None else [item.label]
            out.append({"kind": "button", "box": box, "label": item.label.text, "texts": [_text(t) for t in lines]})
        elif isinstance(item, Keypad):
            font = theme.font(theme.BODY)
            for x, y, w, h, label, _ in item.keys:
                at = (x + (w - font.width(label)) // 2, y + (h - font.height) // 2)  # as Keypad.draw puts it
                out.append({"kind": "key", "box": [x, y, w, h], "label": label, "texts": [_line(font, label, *at)]})
        elif isinstance(item, Dots):
            small = theme.font(theme.SMALL)
            texts = []
            if item.prompt and not item.count:
                texts.append(_line(small, item.prompt, (theme.WIDTH - small.width(item.prompt)) // 2, box[1]))
            out.append({"kind": "field", "box": box, "texts": texts})
        elif isinstance(item, StatusBar):
            # What it writes, where StatusBar.draw writes it: beside the Wi-Fi bars, up to the
            # lock at x 132; the charge left of the battery at 196.
            small, s = theme.font(theme.SMALL), item.status
            lacks = "no network" if s.wifi is None else s.bank
            texts = [_line(small, lacks, 36, 4)] if lacks else []
            if s.battery is not None:
                texts.append(_line(small, "%d%%" % s.battery, 162, 4))
            out.append({"kind": "status", "box": box, "texts": texts,
                        "areas": [[36, 0, 96, box[3]], [162, 0, 34, box[3]]]})
        elif isinstance(item, Box):
            out.append({"kind": "box", "box": box})
        else:
            out.append({"kind": type(item).__name__, "box": box})
    return out


def record():
    """Describe every render from now on into `screens`."""
    from ui.canvas import Canvas

    # (Canvas declares trace None, as the device has it; the stubs' checker types it so.)
    Canvas.trace = lambda items: screens.append(describe(items))  # type: ignore


def stop():
    from ui.canvas import Canvas

    Canvas.trace = None
