"""Every screen of the toolkit, drawn on a virtual handheld through the real ST7789 driver into
the rig's ST7789 model, as PNG: the golden screenshots in tests/screens/ and the catalogue the
test, the heap benchmark and the README share.

    python -m tools.screenshots record     # re-record tests/screens/*.png (then look at them)
"""

import contextlib
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "screens"

# On the device: the display and a UI whose touch never comes, so that every screen returns
# TIMEOUT right after it is drawn; a fixed status bar.
SETUP = """
import asyncio, board, gc
from board import handheld as h
from drivers.st7789 import ST7789
from ui.screens import UI
_pin = board.buses.machine.Pin
display = ST7789(board.buses.display_spi(), board.buses.pin(h.PIN_DISPLAY_CS, _pin.OUT, value=1),
                 board.buses.pin(h.PIN_DISPLAY_DC, _pin.OUT, value=0))
asyncio.run(display.init())
class NoTouch:
    async def event(self, ms):
        await asyncio.sleep_ms(min(ms, 2))
ui = UI(display, NoTouch())
ui.status.wifi = 3
ui.status.battery = 76
ui.status.locked = True
def show(screen):
    return asyncio.run(screen) if screen is not None else None
"""

# name -> device expression that draws the screen (and returns at once).
SCREENS = {
    "message": "show(ui.message('Payment approved', 'Coffee Corner was paid €12.50 from your "
               "current account.', timeout_ms=1))",
    "error": "show(ui.message('Card declined', 'The bank declined this payment (insufficient funds).', "
             "remedy='Try another card or another account.', error=True, timeout_ms=1))",
    "menu": "show(ui.menu('Menu', ['Pay a request', 'Card purchase', 'Balance', 'Transfer', 'History', "
            "'Settings'], timeout_ms=1))",
    "pin_pad": "show(ui.pin_pad('Enter PIN', prompt='Coffee Corner  €12.50', timeout_ms=1))",
    "confirm_amount": "show(ui.confirm_amount('Coffee Corner, Hauptstraße 12', 1250, 'EUR', 'DE89 •••• 3000', "
                      "timeout_ms=1))",
    "confirm_from_shop": "show(ui.confirm_amount('Bakery Müller', 349, 'EUR', '', title='Confirm', timeout_ms=1))",
    "progress": "show(ui.progress('Authorising', 'Contacting your bank', 0.4))",
    "fingerprint_enrol": "show(ui.progress('Add fingerprint', 'Place the same finger again (2 of 3)', 1 / 3))",
    "no_network": "ui.status.wifi = None; ui.status.battery = 12; ui.status.locked = False; "
                  "show(ui.message('No network', 'The terminal cannot reach the bank.', "
                  "remedy='Move closer to the Wi-Fi access point, or choose another network in Settings.', "
                  "error=True, timeout_ms=1)); ui.status.wifi = 3; ui.status.battery = 76; ui.status.locked = True",
}


def attach_display(rig):
    return rig.attach("spi1", "st7789", cs="display_cs", dc="display_dc", name="display")


@contextlib.contextmanager
def handheld_with_display():
    """A virtual handheld of its own on this tree's image, with the display attached:
    (device, virtual handheld process, a scratch directory)."""
    from tools import image
    from tools.device import Device
    from tools.vdevice.spawn import VDeviceProcess

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image.build(tmp / "flash.img")
        with VDeviceProcess(tmp / "flash.img", tmp / "state") as vd:
            attach_display(vd.rig)
            dev = Device(vd.repl)
            try:
                yield dev, vd, tmp
            finally:
                dev.close()


def shoot(dev, rig, name, out_dir):
    """Draw screen `name` on the device and screenshot it into out_dir; (path, sha256)."""
    dev.exec(SCREENS[name], timeout=60)
    path = Path(out_dir) / (name + ".png")
    shot = rig.call("do", name="display", action="screenshot", path=str(path))
    return path, shot["sha256"]


def golden_sha256(name):
    path = GOLDEN / (name + ".png")
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def record():
    GOLDEN.mkdir(parents=True, exist_ok=True)
    with handheld_with_display() as (dev, vd, tmp):
        dev.exec(SETUP, timeout=60)
        for name in SCREENS:
            path, sha = shoot(dev, vd.rig, name, tmp)
            changed = sha != golden_sha256(name)
            shutil.copyfile(path, GOLDEN / path.name)
            print("%-18s %s %s" % (name, sha[:16], "changed" if changed else "same"))


if __name__ == "__main__":
    if sys.argv[1:] != ["record"]:
        sys.exit("usage: python -m tools.screenshots record")
    record()
