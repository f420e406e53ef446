"""Card emulation end to end, with the person in the loop: a shop's reader (the rig's) asks the
handheld, as a contactless card, to confirm an amount; the amount is on the handheld's own
screen; the owner taps Confirm and types the PIN on the handheld's pad (random layout, read off
the screen); only then does the reader get the approval, whose MAC the host checks. Tapping
Cancel instead gets the reader a refusal."""

import hashlib
import hmac
import struct

import pytest

from touchscreen import TOUCH, crop, drawn_since, key_cells, read_keys, screen_rows, tap_keys
from tools.rig.st7789 import read_png
from tools.screenshots import GOLDEN, SETUP, attach_display, golden_sha256

KEY = bytes(range(32))
DEVICE_ID = b"PT\x00\x00\x00\x00\x00\x42"
AID = b"\xf0PT-CONFIRM"
NONCE = bytes.fromhex("0011223344556677")
MERCHANT = "Bakery Müller".encode()

HANDHELD = """
import sys
if '/tests' not in sys.path: sys.path.append('/tests')
import vaultfix
from drivers.pn532 import PN532, I2CLink
from nfc.confirm import ConfirmApplet, owner_confirm
from vault.session import Session
v = vaultfix.personalized('/confirm-store')
v.lock()
session = Session(v)
nfc = PN532(I2CLink(board.buses.i2c(), irq=board.buses.pin(h.PIN_NFC_IRQ, _pin.IN)),
            reset=board.buses.pin(h.PIN_NFC_RESET, _pin.OUT, value=1))
asyncio.run(nfc.begin())
applet = ConfirmApplet(%r, owner_confirm(ui, session), device_id=%r)
""" % (KEY, DEVICE_ID)


def apdu(cla_ins_p1p2, data, le=True):
    return (bytes.fromhex(cla_ins_p1p2) + bytes((len(data),)) + data + (b"\x00" if le else b"")).hex()


SELECT = apdu("00A40400", AID)
PREPARE = apdu("80100000", struct.pack(">I", 349) + b"EUR" + NONCE + bytes((len(MERCHANT),)) + MERCHANT)


@pytest.fixture(scope="module")
def handheld(vdevice, device):
    attach_display(vdevice.rig)
    vdevice.rig.attach("i2c0", "ft6336", addr=0x38, name="touch")
    vdevice.rig.attach("i2c0", "pn532", addr=0x24, name="nfc")
    device.exec(SETUP + TOUCH + HANDHELD, timeout=60)
    # Where things are on the screen, asked before the device gets busy being a card.
    device.layout = {"keys": key_cells(device), "Confirm": button(device, "Confirm"), "Cancel": button(device, "Cancel")}
    yield device
    device.exec("vaultfix.clean('/confirm-store')")
    for name in ("nfc", "touch", "display"):
        vdevice.rig.detach(name)


def shop_asks(vdevice, device):
    """The device waits as a card; the shop's reader comes with SELECT and PREPARE. Returns
    once the amount is on the screen."""
    drawn = vdevice.rig.call("model", name="display")["commands"]
    device.transport.exec_raw_no_follow("print(asyncio.run(nfc.emulate(applet, timeout_ms=20000, idle_ms=20000)))")
    vdevice.rig.call("do", name="nfc", action="reader", apdus=[SELECT, PREPARE])
    return drawn_since(vdevice, drawn)


def answer_to_prepare(vdevice, device):
    """Wait for the handheld's answer to PREPARE; the reader then leaves; return the answer."""
    import time

    deadline = time.monotonic() + 20
    while len(vdevice.rig.call("do", name="nfc", action="reader_log")) < 2 or not vdevice.rig.call(
            "do", name="nfc", action="reader_log")[1][1]:
        assert time.monotonic() < deadline, "no answer to PREPARE"
        time.sleep(0.05)
    log = vdevice.rig.call("do", name="nfc", action="reader_leave")["log"]
    assert [a.lower() for a, _ in log] == [SELECT, PREPARE], log
    out, err = device.transport.follow(timeout=30)
    assert not err, err
    assert out.strip().splitlines()[-1] == b"2", out  # the card answered SELECT and PREPARE, then the reader left
    return bytes.fromhex(log[1][1])


def button(device, which):
    """Centre of the amount screen's Confirm or Cancel button (ui.screens' layout)."""
    x = "theme.WIDTH - theme.MARGIN - 52" if which == "Confirm" else "theme.MARGIN + 52"
    return device.eval("(lambda theme: (%s, theme.HEIGHT - theme.MARGIN - theme.TARGET // 2))(__import__('ui.theme').theme)" % x)


def test_confirmed_with_the_pin_typed_on_the_handheld(vdevice, handheld, tmp_path):
    drawn = shop_asks(vdevice, handheld)
    # The amount the shop asked for is what the handheld shows (the golden picture of it).
    vdevice.rig.call("do", name="display", action="screenshot", path=str(tmp_path / "amount.png"))
    assert hashlib.sha256((tmp_path / "amount.png").read_bytes()).hexdigest() == golden_sha256("confirm_from_shop")
    # Nothing has gone to the reader yet: it waits for the owner.
    assert len(vdevice.rig.call("do", name="nfc", action="reader_log")) == 1
    x, y = handheld.layout["Confirm"]
    vdevice.rig.call("do", name="touch", action="tap", x=x, y=y)
    drawn_since(vdevice, drawn)
    # The PIN pad, its digits shuffled: read them off the screen, type the owner's PIN.
    cells = handheld.layout["keys"]
    references = {label: crop(read_png(GOLDEN / "pin_pad.png")[2], cell) for cell, label in cells}
    keys = read_keys(screen_rows(vdevice, tmp_path), cells, references)
    tap_keys(vdevice, keys, list("246810") + ["OK"])
    response = answer_to_prepare(vdevice, handheld)
    assert response[-2:] == b"\x90\x00", response.hex()
    device_id, counter, mac = response[:8], response[8:12], response[12:28]
    assert device_id == DEVICE_ID
    message = (b"PT-CONFIRM" + device_id + counter + struct.pack(">I", 349) + b"EUR" + bytes((len(MERCHANT),))
               + MERCHANT + NONCE)
    assert mac == hmac.new(KEY, message, "sha256").digest()[:16]
    assert handheld.eval("v.unlocked") is True


def test_cancel_on_the_handheld_refuses(vdevice, handheld):
    handheld.exec("v.lock()")
    shop_asks(vdevice, handheld)
    x, y = handheld.layout["Cancel"]
    vdevice.rig.call("do", name="touch", action="tap", x=x, y=y)
    assert answer_to_prepare(vdevice, handheld) == b"\x69\x85"
    assert handheld.eval("v.unlocked") is False
