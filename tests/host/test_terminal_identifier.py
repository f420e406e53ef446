"""My identifier end to end on the demo terminal (tests/host/terminalfix.py): the handheld asks the
bank for its payment identifier and shows it as text and as a QR code (its pixels, read back
from the rig's ST7789 screenshot, are python-qrcode's symbol of "pocket:<alias>" module for
module); a merchant pushes a request to that alias and it is paid on the handheld; "New
identifier", confirmed, rotates it at the bank, and the old one reaches nobody.

The tests share one terminal and run in order; each leaves it unlocked at the home menu.
"""

import urllib.error

import pytest
from PIL import Image

from terminalfix import terminal  # noqa: F401 (the fixture)
from test_qr import reference, standard_mask
from test_terminal_flows import confirmed, home
from tools import demo
from tools.bank import alias as aliases
from tools.bank.state import State

WHITE = 200  # a light module's channels are all above this, a dark one's all below 60


def device_by_alias(t, alias):
    state = State(t.bank.dir)
    try:
        return state.ledger.device_by_alias(alias)
    finally:
        state.close()


def opened(t):
    """From the home menu: My identifier; the alias it shows (the screen stays)."""
    t.choose("My identifier")
    return shown_identifier(t)


def back_home(t):
    t.tap("Back")
    t.screen("Pocket Terminal")


def push(t, alias, order, amount):
    """Corner Bakery's request to the alias: the merchant API's answer (HTTPError if refused)."""
    return t.bank.post("/payment-requests", {"alias": alias, "order": order, "amount": amount,
                                             "currency": demo.CURRENCY}, "Corner Bakery")


def shown_identifier(t):
    """The identifier screen's alias (its text, checked against the QR code's URI)."""
    screen = t.screen("My identifier", timeout=30)
    alias = screen["text"].replace(" ", "")
    assert aliases.parse(alias) == alias and screen["qr"] == "pocket:" + alias
    assert set(screen["buttons"]) == {"Back", "New identifier"}
    return alias


def code_on_screen(t, tmp_path):
    """The QR code read back from the display's pixels: rows of 0/1 (1 dark), sampled at each
    module's centre; its light quiet zone checked."""
    path = tmp_path / "identifier.png"
    t.rig.call("do", name="display", action="screenshot", path=str(path))
    img = Image.open(path).convert("RGB")
    light = [(x, y) for y in range(58, 226) for x in range(img.width) if min(img.getpixel((x, y))) > WHITE]
    left, top = min(x for x, _ in light), min(y for _, y in light)
    side = max(x for x, _ in light) - left + 1
    modules = 25 + 8  # version 2 ("pocket:" + 8 characters: 15 bytes) and 4 light modules a side
    assert side % modules == 0, side
    scale = side // modules

    def dark(r, c):  # module (r, c) of the symbol, its quiet zone at -4..-1 and 25..28
        px = img.getpixel((left + (c + 4) * scale + scale // 2, top + (r + 4) * scale + scale // 2))
        assert max(px) < 60 or min(px) > WHITE, px
        return int(max(px) < 60)

    assert not any(dark(r, c) for r in range(-4, 29) for c in (-4, -1, 25, 28))
    return [[dark(r, c) for c in range(25)] for r in range(25)]


def test_the_identifier_is_shown_as_text_and_as_the_qr_code_of_its_uri(terminal, tmp_path):
    t = terminal
    t.unlock()
    alias = opened(t)
    assert device_by_alias(t, alias) == demo.SERIAL and demo.SERIAL not in alias
    data = ("pocket:" + alias).encode()
    assert code_on_screen(t, tmp_path) == reference(data, 2, standard_mask(data, 2))
    back_home(t)
    assert opened(t) == alias  # kept until the owner asks for a new one
    back_home(t)


def test_a_merchant_pushes_to_the_alias_and_the_handheld_pays_it(terminal):
    t = terminal
    alias = opened(t)
    back_home(t)
    t.signed_on()
    pushed = push(t, alias, "ORD-ALIAS", 321)
    assert pushed["alias"] == alias and "device" not in pushed
    assert t.screen("Payment request", timeout=30)["text"] == "€3.21 to Corner Bakery from Current account"
    assert confirmed(t)["title"] == "Approved"
    assert t.bank.get("/payment-requests/" + pushed["id"], "Corner Bakery")["status"] == "paid"
    home(t)


def test_a_new_identifier_retires_the_old_one_at_once(terminal):
    t = terminal
    old = opened(t)
    t.tap("New identifier")
    t.screen("New identifier?")
    t.choose("Keep %s %s" % (old[:4], old[4:]))  # changing one's mind changes nothing
    assert shown_identifier(t) == old
    t.tap("New identifier")
    t.screen("New identifier?")
    t.choose("Make a new one: the old one stops working")
    new = shown_identifier(t)
    assert new != old and device_by_alias(t, new) == demo.SERIAL and device_by_alias(t, old) is None
    back_home(t)
    with pytest.raises(urllib.error.HTTPError) as refused:
        push(t, old, "ORD-OLD", 100)
    assert refused.value.code == 404
    pushed = push(t, new, "ORD-NEW", 100)
    assert t.screen("Payment request", timeout=30)["text"] == "€1.00 to Corner Bakery from Current account"
    t.tap("Refuse")
    t.screen("Refused", timeout=30)
    assert t.bank.get("/payment-requests/" + pushed["id"], "Corner Bakery")["status"] == "refused"
    home(t)


def test_a_new_identifier_asked_without_the_bank_changes_nothing(terminal):
    t = terminal
    alias = opened(t)
    t.wifi(False)
    try:
        t.tap("New identifier")
        t.screen("New identifier?")
        t.choose("Make a new one: the old one stops working")
        assert t.screen("No network", timeout=30)["error"] is True
        t.tap("OK")
    finally:
        t.wifi(True)
    t.screen("Pocket Terminal")
    assert device_by_alias(t, alias) == demo.SERIAL  # still the live one: nothing reached the bank
    t.signed_on()
    assert opened(t) == alias
    back_home(t)
