"""What you see is what you pay (issue 18): every screen that asks for an approval or a PIN, and
every screen that lists or tells a payment, drawn by the firmware on the virtual handheld with
the most a screen can be given (40-character and non-ASCII names, the largest amounts in every
currency the firmware knows, 0, empty names), and checked against the toolkit's own account of
what it drew (lib/ui/layout.py: each element's box, each line's ink from the font's advances):

- no text leaves its place: a line inside the screen's margins below the status bar, a label
  inside its button or key, the status bar's words in their own areas;
- nothing overlaps anything else (a bar's fill inside its frame aside);
- the amount is drawn whole on one line, and every name in full (no "…", no glyph missing).

The screens are the application's own: its operations' steps (PayRequests, PayRequest,
History, Transfer, TopUp), the card payment's and the shop confirmation's PIN pads and the owner's
proof (ui.fingerprint.confirm_owner), run on the device with the real vault and screen, a
touch panel that taps where the test says (then the person walks away: the flow ends at the
screen it waits on, drawn) and a fingerprint sensor with no finger on it. Golden pictures of the worst cases
are in tests/screens (tools/screenshots.py SCREENS, test_screens.py)."""

import json

import pytest

from tools.screenshots import LONGEST_ACCOUNT as ACCOUNT
from tools.screenshots import LONGEST_NAME as UNICODE
from tools.screenshots import SETUP, attach_display

WIDTH, HEIGHT, MARGIN, STATUS = 240, 320, 12, 24  # lib/ui/theme.py
LONGEST = "INTERNATIONAL WHOLESALE MARKET BERLIN-WE"  # DE43's 40 characters, the widest a bank sends
NAMES = [UNICODE, LONGEST, "", "A"]
assert len(LONGEST) == 40 and len(UNICODE) >= 40
# The largest amount of each currency the firmware shows (ui.screens.CURRENCIES): DE4's 12 digits.
MOST = 999_999_999_999
CURRENCIES = {"EUR": "€9,999,999,999.99", "USD": "$9,999,999,999.99", "GBP": "£9,999,999,999.99",
              "CHF": "CHF\u00a09,999,999,999.99", "JPY": "¥999,999,999,999"}
NUMERIC = {"EUR": "978", "USD": "840", "GBP": "826", "CHF": "756", "JPY": "392"}  # as the bank sends them
AMOUNTS = [(9_999_999_999, "EUR", "€99,999,999.99"), (0, "EUR", "€0.00")] + [
    (MOST, c, text) for c, text in CURRENCIES.items()]

HARNESS = """
import json, sys
if '/tests' not in sys.path: sys.path.append('/tests')
import vaultfix
from ui import layout
from uplink import Request
from vault.session import Session
from drivers.r503 import NoFinger
v = vaultfix.personalized('/layout-store')
v.bind_account('001', json.dumps({'name': %r, 'role': 'owner', 'currency': '978', 'default': True}).encode(), b'cert')
v.bind_account('002', json.dumps({'name': %r, 'role': 'payee', 'currency': '978'}).encode(), b'cert')
v.enroll_finger(3)
class Gone(BaseException):
    pass
class Taps:
    # The touch panel: a finger up at each (x, y) given, one screen after the other; then the
    # person walks away (Gone ends the flow at the screen it waits on, drawn already).
    def __init__(self):
        self.at = []
    async def event(self, ms):
        if self.at:
            x, y = self.at.pop(0)
            return ('up', x, y)
        raise Gone()
class NoFingerSensor:
    # The R503 with nobody's finger on it: capture gives up at once.
    async def capture(self, buffer=1):
        raise NoFinger('no finger')
class Link:
    requests = []
class App:
    pass
app = App()
app.ui, app.vault, app.session, app.sensor, app.link = ui, v, Session(v), None, Link()
ui.touch = Taps()
def request(n, amount, currency, merchant):
    return Request({37: 'RRN%%09d' %% n, 4: '%%012d' %% amount, 49: currency, 42: 'M', 43: merchant}, 0)
def drawn(code, taps=()):
    # The whole screens drawn by code (each one's elements, layout.describe), as JSON lines.
    # What code imported is let go of after it, as the app lets go of a flow's modules.
    import gc, parts
    del layout.screens[:]
    ui.touch.at = list(taps)
    before = set(sys.modules)
    try:
        exec(code, dict(globals()))
    except Gone:
        pass
    parts.unload([name for name in sys.modules if name not in before])
    gc.collect()
    for screen in layout.screens:
        print('LAYOUT ' + json.dumps(screen))
layout.record()
""" % (ACCOUNT, UNICODE)


@pytest.fixture(scope="module")
def handheld(vdevice, device):
    attach_display(vdevice.rig)
    device.exec(SETUP + HARNESS, timeout=60)
    yield device
    device.exec("layout.stop(); vaultfix.clean('/layout-store')")
    vdevice.rig.detach("display")


def screens(device, code, taps=()):
    out = device.exec("drawn(%r, %r)" % (code, list(taps)), timeout=120)
    return [json.loads(line[len("LAYOUT "):]) for line in out.splitlines() if line.startswith("LAYOUT ")]


def inside(r, box):
    return box[0] <= r[0] and r[0] + r[2] <= box[0] + box[2] and box[1] <= r[1] and r[1] + r[3] <= box[1] + box[3]


def overlap(a, b):
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


CONTENT = [MARGIN, STATUS, WIDTH - 2 * MARGIN, HEIGHT - STATUS]


def faults(screen):
    """What is wrong with a screen's layout (layout.describe's elements): [] when nothing is."""
    found, solid = [], []  # solid: (what, rect) that nothing else may touch
    for e in screen:
        kind, box = e["kind"], e["box"]
        places = {"text": [CONTENT], "status": e.get("areas")}.get(kind, [box])
        for t in e.get("texts", ()):
            if not any(inside(t["ink"], p) for p in places):
                found.append("%s %r drawn at %s, outside %s" % (kind, t["text"], t["ink"], places))
            if t["missing"]:
                found.append("%r: no glyph for %r" % (t["text"], t["missing"]))
            if kind == "text":
                solid.append(("text %r" % t["text"], t["ink"]))
        if kind != "text":
            solid.append(("%s %s" % (kind, e.get("label", "")), box))
    for i, (what, r) in enumerate(solid):
        for other, s in solid[i + 1:]:
            if overlap(r, s) and not (what.startswith("box") and other.startswith("box") and inside(s, r)):
                found.append("%s at %s overlaps %s at %s" % (what, r, other, s))
    return found


def lines(screen):
    return [t["text"] for e in screen for t in e.get("texts", ())]


def assert_whole(screen, amount=None, names=()):
    assert faults(screen) == [], "\n".join(faults(screen) + lines(screen))
    drawn = lines(screen)
    if amount is not None:
        assert any(amount in line for line in drawn), "the amount %r is not drawn whole on one line: %s" % (amount, drawn)
    joined = "".join(drawn).replace(" ", "")
    for name in names:
        assert name.replace(" ", "") in joined, "%r is not drawn whole: %s" % (name, drawn)
    assert not any("…" in line for line in drawn), drawn


# Centres of what the tests tap (ui.screens' layout): Confirm of the amount screen, a menu's
# first row.
CONFIRM = (WIDTH - MARGIN - 52, HEIGHT - MARGIN - 24)
FIRST_ROW = (WIDTH // 2, 92)


@pytest.mark.parametrize("name,amount,currency,text", [(name,) + AMOUNTS[0] for name in NAMES]
                         + [(UNICODE,) + a for a in AMOUNTS[1:]])
def test_a_request_its_list_its_screen_and_its_pin_pad(handheld, name, amount, currency, text):
    code = "r = request(1, %d, %r, %r); app.link.requests = [r, request(2, 1250, '978', 'Corner Bakery')]\n" % (
        amount, NUMERIC[currency], name)
    listed, = screens(handheld, code + "from terminal.pay import PayRequests\nasyncio.run(PayRequests().start(app))")
    shown, = screens(handheld, code + "from terminal.pay import PayRequest\nasyncio.run(PayRequest(r).start(app))")
    assert_whole(listed, text, [name])
    assert_whole(shown, text, [name, "from " + ACCOUNT])
    # Paid from the account: the owner's PIN pad, then (a finger enrolled) the fingerprint's screen.
    pad, = screens(handheld, code + "from terminal.pay import PayRequest\nasyncio.run(PayRequest(r).confirm(app))")
    assert_whole(pad, text, [name])
    finger = screens(handheld, code + "from terminal.pay import PayRequest\napp.sensor = NoFingerSensor()\n"
                     "try:\n    asyncio.run(PayRequest(r).confirm(app))\nfinally:\n    app.sensor = None")
    assert_whole(finger[0], text, [name, "Confirm with fingerprint"])
    # Paid by card: the card's PIN pad (contact and contactless ask it the same way).
    pad, = screens(handheld, "from terminal import card\nfrom ui.screens import format_amount\n"
                   "asyncio.run(card._card_pin(ui, None, \"Enter the card's PIN\", (format_amount(%d, %r), %r)))"
                   % (amount, currency, name))
    assert_whole(pad, text, [name, "Enter the card's PIN"])


@pytest.mark.parametrize("amount,currency,text", AMOUNTS)
@pytest.mark.parametrize("way", ["shop", "transfer"])
def test_the_shop_confirmation_in_card_mode_and_a_transfer(handheld, way, amount, currency, text):
    """Confirm on the amount screen, then the owner's PIN pad: a shop's reader asking over NFC
    (nfc.confirm), or a transfer to a saved payee."""
    code = {"shop": "from nfc.confirm import owner_confirm\n"
                    "asyncio.run(owner_confirm(ui, app.session, randomize=False)(%r, %d, %r))" % (UNICODE, amount, currency),
            "transfer": "from terminal.accounts import Transfer, bound\nt = Transfer(); t.value = %d\n"
                        "t.source = bound(v, 'owner')[0]; t.target = bound(v, 'payee')[0]\n"
                        "t.source[1]['currency'] = %r\nasyncio.run(t.confirm(app))" % (amount, NUMERIC[currency])}[way]
    shown, pad = screens(handheld, code, [CONFIRM])
    assert_whole(shown, text, [UNICODE] + (["from " + ACCOUNT] if way == "transfer" else []))
    assert_whole(pad, text, [UNICODE])


@pytest.mark.parametrize("amount,text", [(15000, "€150.00"), (1, "€0.01")])
def test_a_transit_top_up_s_approval_and_pin_pad(handheld, amount, text):
    """Card mode's top-up (terminal.topup) from the longest account name, of the most a transit
    card holds and of the least: the approval screen shows the amount, the card and the account
    whole, then the owner's PIN pad the amount and the card."""
    code = ("from terminal.topup import TopUp\nfrom terminal.accounts import bound\n"
            "t = TopUp(); t.value = %d; t.currency = '978'; t.source = bound(v, 'owner')[0]\n"
            "asyncio.run(t.confirm(app))" % amount)
    shown, pad = screens(handheld, code, [CONFIRM])
    assert_whole(shown, text, ["Top-up", "to Transit card", "from " + ACCOUNT])
    assert_whole(pad, text, ["Transit card"])


@pytest.mark.parametrize("amount,currency,text", AMOUNTS)
def test_history_rows_and_the_entry_s_sentence(handheld, amount, currency, text):
    code = ("from terminal.history import History as Store\nfrom terminal.app import History\n"
            "s = Store(v); s.clear()\n"
            "s.add('Request', %d, %r, %r, 'approved', account=%r, reference='261258870324')\n"
            "s.add('Purchase', 1250, 'EUR', %r, 'declined (51)', card='4761739001010010')\n"
            "s.add('Request', %d, %r, %r, 'approved', account=%r, reference='261258870324')\n"
            "asyncio.run(History().start(app))" % (amount, currency, LONGEST, ACCOUNT, "", amount, currency, UNICODE,
                                                  ACCOUNT))
    rows, entry = screens(handheld, code, [FIRST_ROW])
    assert_whole(rows, text, [UNICODE, LONGEST])
    assert_whole(entry, text, [UNICODE, ACCOUNT, "261258870324"])
    sentence = "".join(lines(entry)).replace(" ", "")
    assert ("Requestof%s:approved.With%s.Reference261258870324." % (text, ACCOUNT)).replace(" ", "") in sentence


def test_the_amount_typed_at_its_largest(handheld):
    """A purchase's amount typed to the most it takes (9,999,999.99): drawn whole each time it
    is drawn again, in a smaller font once the large one is wider than the screen."""
    nine = (6 + 2 * 78 + 38, 120 + 2 * 50 + 24)  # the "9" key's centre (ui.screens.keypad_layout)
    drawn = screens(handheld, "from ui import entry\nasyncio.run(entry.amount(ui, 'Amount', 'EUR'))", [nine] * 9)
    amounts = [screen for screen in drawn if any("€" in line for line in lines(screen))]  # (not the Del key's)
    assert_whole(amounts[0], "€0.00", ["Amount"])
    assert_whole(amounts[-1], "€9,999,999.99")
    assert amounts[-1][0]["texts"][0]["ink"][3] < amounts[0][-13]["texts"][0]["ink"][3]  # the body font, not the large


def test_toolkit_screens_at_their_extremes(handheld):
    long_text = "The bank declined the payment of €99,999,999.99 to %s from %s. " % (UNICODE, ACCOUNT)
    for code, names in [
        ("asyncio.run(ui.message(%r, %r, remedy='Try another card or another account.', error=True, timeout_ms=1))"
         % (UNICODE, long_text), [UNICODE]),
        ("asyncio.run(ui.menu('Locked (locked by you)', [%r, %r, %r], timeout_ms=1, back=False))"
         % (UNICODE, LONGEST, "€99,999,999.99 " + UNICODE), [UNICODE, LONGEST, "Locked (locked by you)"]),
        ("ui.progress('Confirm with fingerprint', 'Paying %s from %s')" % (UNICODE, ACCOUNT), [UNICODE, ACCOUNT]),
        ("asyncio.run(ui.pin_pad('Unlock', prompt='Enter your PIN', timeout_ms=1))", ["Unlock", "Enter your PIN"]),
        ("asyncio.run(ui.confirm_amount('', 0, 'EUR', '', timeout_ms=1))", []),
    ]:
        shown, = screens(handheld, code)
        assert_whole(shown, None, names)


def test_a_name_beyond_any_screen_is_cut_and_says_so(handheld):
    """A shop's name of 120 characters (a confirmation over NFC is not bound by DE43) cannot be
    shown whole: the amount still is, and the name ends with "…" where it is cut, nothing
    drawn over anything."""
    name = "W" * 120
    shown, = screens(handheld, "asyncio.run(ui.confirm_amount(%r, 9999999999, 'EUR', %r, timeout_ms=1, request=True))"
                     % (name, ACCOUNT))
    assert faults(shown) == [], faults(shown)
    assert any("€99,999,999.99" in line for line in lines(shown))
    drawn = lines(shown)
    assert "toWWWW" in "".join(drawn).replace(" ", "") and any(line.endswith("W…") for line in drawn), drawn
