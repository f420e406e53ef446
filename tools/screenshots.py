"""Pictures of the handheld's screen, taken from the rig's ST7789 model (PNG, the panel's real
240x320).

    python -m tools.screenshots record     # re-record tests/screens/*.png (then look at them)
    python -m tools.screenshots readme     # re-record docs/*.png (then look at them)

record: every screen of the toolkit, drawn on a virtual handheld through the real ST7789
driver: the golden screenshots in tests/screens/ and the catalogue the test, the heap benchmark
and the README share.

readme: the application's main screens as its owner meets them, and the web simulator's page:
`python -m tools.websim` (the demo terminal and the bank host) in headless Chromium, driven as a
person drives it, by clicks on the page's screen and its controls (Handheld, which the
end-to-end test of the page uses too).
"""

import ast
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tools.bank.merchant import Client, load_credentials
from tools.bank.state import State
from tools.vdevice.spawn import VDeviceProcess

SCREEN_LINE = "screen {"


def screen_line(line):
    """The screen a console line announces (lib/ui/screens.py prints `screen {json}` for each
    one drawn), or None. Found anywhere in the line: it may follow output that ended without a
    newline, such as the raw REPL's ">" before a reset. A screen line that does not parse raises
    ValueError."""
    at = line.find(SCREEN_LINE)
    return None if at < 0 else json.loads(line[at + len(SCREEN_LINE) - 1:])

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "screens"
DOCS = ROOT / "docs"

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

LONGEST_NAME = "Ünïcødé Bäckerei & Söhne — Großhandel GmbH"
LONGEST_ACCOUNT = "Geschäftskonto Müller & Söhne — Œuvres"
# name -> device expression that draws the screen (and returns at once).
SCREENS = {
    "message": "show(ui.message('Payment approved', 'Coffee Corner was paid €12.50 from your "
               "current account.', timeout_ms=1))",
    "error": "show(ui.message('Card declined', 'The bank declined this payment (insufficient funds).', "
             "remedy='Try another card or another account.', error=True, timeout_ms=1))",
    "menu": "show(ui.menu('Menu', ['Pay a request', 'Card purchase', 'Balance', 'Transfer', 'History', "
            "'Settings'], timeout_ms=1))",
    "pin_pad": "show(ui.pin_pad('Card PIN', prompt=\"Enter the card's PIN\", amount='€12.50', payee='Coffee Corner', "
               "timeout_ms=1))",
    "confirm_amount": "show(ui.confirm_amount('Coffee Corner, Hauptstraße 12', 1250, 'EUR', 'DE89 •••• 3000', "
                      "timeout_ms=1))",
    "confirm_from_shop": "show(ui.confirm_amount('Bakery Müller', 349, 'EUR', '', title='Confirm', timeout_ms=1))",
    "progress": "show(ui.progress('Authorising', 'Contacting your bank', 0.4))",
    # The worst cases of tests/host/test_layout.py: a 40-character non-ASCII payee, the largest amounts.
    "pin_pad_longest": "show(ui.pin_pad('Confirm with PIN', prompt='Your PIN to pay', amount='€99,999,999.99', "
                       "payee=%r, timeout_ms=1))" % LONGEST_NAME,
    "confirm_longest": "show(ui.confirm_amount(%r, 999999999999, 'CHF', %r, title='Transfer', timeout_ms=1))"
                       % (LONGEST_NAME, LONGEST_ACCOUNT),
    "request_longest": "show(ui.confirm_amount(%r, 9999999999, 'EUR', 'Current account', title='Payment request', "
                       "timeout_ms=1, request=True))" % LONGEST_NAME,
    "requests_longest": "show(ui.menu('Pay requests', ['€99,999,999.99 ' + %r, '€12.50 Corner Bakery', "
                        "'¥999,999,999,999 INTERNATIONAL WHOLESALE MARKET BERLIN-WE'], timeout_ms=1))" % LONGEST_NAME,
    "fingerprint_longest": "show(ui.progress('Confirm with fingerprint', '€99,999,999.99\\nto ' + %r + "
                           "'\\nPlace your finger on the sensor'))" % LONGEST_NAME,
    "history_longest": "show(ui.message(%r, __import__('terminal.history').history.Entry(1796486400, 'Request', "
                       "9999999999, 'EUR', %r, 'approved', %r, '261258870324').describe(), timeout_ms=1))"
                       % (LONGEST_NAME, LONGEST_NAME, LONGEST_ACCOUNT),
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


# ---- the web simulator in headless Chromium -------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PANEL_W, PANEL_H = 240, 320
HOME = "Pocket Terminal"  # the home menu's title


def chromium_missing():
    """Why headless Chromium cannot run here (None when it can)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (requirements.txt)"
    if not os.path.exists(CHROMIUM) and not shutil.which("chromium"):
        return "Debian's chromium is not installed (apt-get install chromium)"
    return None


def browser(user_data_dir):
    """(playwright, context): Debian's Chromium, headless, an empty profile."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    context = pw.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
        headless=True, args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 900})
    return pw, context


class WebsimProcess(VDeviceProcess):
    """As VDeviceProcess (stop, wait_booted, rig, log_tail), the device started by
    `python -m tools.websim` as a child process on its own image and state dir; url is its page."""

    def __init__(self, image, state_dir, bank=True, start_timeout=120):
        from tools.rig.client import RigClient

        self.state_dir = Path(state_dir)
        self.log_path = self.state_dir / "websim.log"
        args = [sys.executable, "-m", "tools.websim", "--port", "0", "--image", str(image),
                "--state-dir", str(state_dir)] + ([] if bank else ["--no-bank"])
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.url = self.repl = None
        self.lines = []
        deadline = time.monotonic() + start_timeout
        while self.url is None:
            line = self.proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the web simulator did not start:\n" + self.log_path.read_text())
            self.lines.append(line.rstrip())
            if line.startswith("REPL on "):
                self.repl = line.split(None, 2)[2].strip()
            elif line.startswith("web simulator on "):
                self.url = line.split()[-1]
        threading.Thread(target=self._drain, daemon=True).start()
        self.rig = RigClient.from_state(self.state_dir)
        self.wait_booted()


def keypad_layout():
    """The PIN pad's keys {label: (x, y, w, h)} from the firmware's own ui.screens.keypad_layout
    (unshuffled, as the application uses it), run by the board-faithful interpreter (the
    firmware frozen in it)."""
    from tools.vdevice import micropython_exe

    code = "from ui.screens import keypad_layout; print([k[:5] for k in keypad_layout()])"
    out = subprocess.run([micropython_exe(), "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {k[4]: tuple(k[:4]) for k in ast.literal_eval(out.strip())}


def locked(screen):
    """the lock screen"""
    return screen["title"].startswith("Locked")


class Handheld:
    """The handheld on the web simulator's page, used as its owner uses it.

    Taps are mouse presses on the page's screen at panel coordinates (the page scales them back
    from its zoom); what is on the screen is read from the device log the page receives: the
    `screen {json}` line every screen prints once drawn (lib/ui/screens.py), so buttons are
    tapped by their label and flows wait on titles. Waits are generous (a loaded 2-core CI
    machine); a failure screen met while waiting for another title fails at once with its text.
    """

    def __init__(self, page, sim, timeout=60):
        self.page, self.sim, self.timeout = page, sim, timeout
        self.screens = []  # every screen line the page received, parsed, oldest first
        self.seen = 0  # screens before this index are past: waits look at the later ones
        self._partial = ""
        self._keys = None
        page.on("websocket", self._socket)

    def open(self):
        self.page.goto(self.sim.url)
        self.page.wait_for_function("window.websim && window.websim.state !== null", timeout=self.timeout * 1000)
        return self

    def _socket(self, ws):
        if ws.url.endswith("/ws"):
            ws.on("framereceived", self._received)

    def _received(self, payload):
        if not isinstance(payload, str):
            return  # a screen frame
        message = json.loads(payload)
        if message.get("type") != "log":
            return
        lines = (self._partial + message["text"]).split("\n")
        self._partial = lines.pop()
        for line in lines:
            try:
                screen = screen_line(line)
            except ValueError:
                continue  # a line the device's other output broke up: not a screen
            if screen is not None:
                self.screens.append(screen)

    @property
    def last(self):
        return self.screens[-1] if self.screens else None

    def screen(self, title, timeout=None):
        """The first screen after the past ones whose title is `title` (or for which the
        predicate `title` is true); the screens up to it become past."""
        match = title if callable(title) else (lambda s: s["title"] == title)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            while self.seen < len(self.screens):
                s = self.screens[self.seen]
                self.seen += 1
                if match(s):
                    return s
                if s.get("error"):
                    raise AssertionError("waiting for %s, the handheld showed the failure %r: %s"
                                         % (self._what(title), s["title"], s.get("text")))
            if time.monotonic() > deadline:
                raise AssertionError("no screen %s within %d s; the last screens: %s\n%s"
                                     % (self._what(title), timeout or self.timeout,
                                        [s["title"] for s in self.screens[-8:]], self.sim.log_tail()))
            self.page.wait_for_timeout(50)  # Playwright delivers the page's messages meanwhile

    @staticmethod
    def _what(title):
        return (title.__doc__ or title.__name__) if callable(title) else repr(title)

    def tap_at(self, x, y, redraw=False, hold_ms=80):
        """A press on the page's screen at panel coordinates (x, y), held hold_ms as a finger is;
        what the device shows from now on is what the tap did. redraw: return once the page has
        painted what the device drew after it (a key that shows no new screen: a PIN dot)."""
        canvas = self.page.locator("#screen")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        frame = self.page.evaluate("window.websim.lastFrame")
        self.seen = len(self.screens)
        self.page.mouse.click(box["x"] + (x + 0.5) * box["width"] / PANEL_W,
                              box["y"] + (y + 0.5) * box["height"] / PANEL_H, delay=hold_ms)
        if redraw:
            self.page.wait_for_function("window.websim.lastFrame > %d" % frame, timeout=self.timeout * 1000)

    def tap(self, label, redraw=False):
        """Tap the centre of the button labelled `label` on the screen shown last."""
        buttons = (self.last or {}).get("buttons", {})
        if label not in buttons:
            raise AssertionError("no button %r on the screen %r (buttons: %s)"
                                 % (label, (self.last or {}).get("title"), sorted(buttons)))
        x, y, w, h = buttons[label]
        self.tap_at(x + w // 2, y + h // 2, redraw)

    def choose(self, label, pages=6):
        """Tap the menu entry `label`, paging with More until it is shown."""
        for _ in range(pages):
            if label in self.last.get("buttons", {}):
                return self.tap(label)
            title = self.last["title"]
            self.tap("More")
            self.screen(title)
        raise AssertionError("no entry %r in the menu %r" % (label, self.last["title"]))

    def type_pin(self, pin):
        """Type `pin` on the PIN pad shown (each key once the previous one's dot is drawn), then OK."""
        assert self.last and self.last.get("pin_pad"), "no PIN pad on the screen: %r" % self.last
        if self._keys is None:
            self._keys = keypad_layout()
        for key in list(pin) + ["OK"]:
            x, y, w, h = self._keys[key]
            self.tap_at(x + w // 2, y + h // 2, redraw=key != "OK")

    def unlock(self, pin):
        """From the lock screen shown: PIN, then `pin` on the PIN pad."""
        self.tap("PIN")
        self.screen("Unlock")
        self.type_pin(pin)

    def home(self, pin=None, limit=8):
        """Back to the home menu, the way its owner goes: Back, OK or Cancel on each screen
        (and unlocking with `pin` if the idle timeout locked the terminal meanwhile)."""
        for _ in range(limit):
            if self.last["title"] == HOME:
                return self.last
            if pin is not None and locked(self.last):
                self.unlock(pin)
            else:
                buttons = self.last.get("buttons", {})
                way = next((b for b in ("Back", "OK", "Cancel") if b in buttons), None)
                assert way, "no way back from the screen %r (buttons: %s)" % (self.last["title"], sorted(buttons))
                self.tap(way)
            self.screen(lambda s: True)
        raise AssertionError("no home menu after %d screens: %s" % (limit, [s["title"] for s in self.screens[-limit:]]))

    def control(self, button, card=None):
        """Click one of the page's controls (its element id: tap_card, insert_card, wifi_off,
        ...), the test card chosen first if given ("emv:visa-classic")."""
        if card is not None:
            self.page.select_option("#card", card)
        self.page.click("#" + button)
        self.page.wait_for_function("!document.getElementById('status').textContent.endsWith('…')",
                                    timeout=self.timeout * 1000)
        status = self.page.locator("#status")
        assert "error" not in (status.get_attribute("class") or ""), status.inner_text()

    def push(self, merchant, order, amount, currency="978"):
        """A payment request from the page's merchant panel: (HTTP status, the bank's answer).
        Pushed again while the bank says the device has not signed on yet (it signs on in the
        background after a boot; a person would try again too)."""
        page = self.page
        for name, value in (("merchant", merchant), ("order", order), ("amount", str(amount)),
                            ("currency", currency)):
            page.fill("#merchant input[name=%s]" % name, value)
        deadline = time.monotonic() + self.timeout
        while True:
            page.evaluate("document.getElementById('status').textContent = ''")
            page.click("#push_request")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('bank answered')"
                                   " || document.getElementById('status').className.includes('error')",
                                   timeout=self.timeout * 1000)
            status = page.inner_text("#status")
            if not status.startswith("bank answered HTTP "):
                raise AssertionError("the merchant panel says: " + status)
            code, answer = status[len("bank answered HTTP "):].split(": ", 1)
            code, answer = int(code), json.loads(answer)
            if code != 409 or "not signed on" not in answer.get("error", "") or time.monotonic() > deadline:
                return code, answer
            page.wait_for_timeout(1000)

    def bank(self, path, merchant):
        """GET <the bank's merchant API><path> signed as merchant (name or id: its credentials
        in the bank's state dir), as JSON (the API the page's merchant panel uses)."""
        base = self.page.evaluate("window.websim.state.bank && window.websim.state.bank.merchant_api")
        assert base, "the page has no bank host: %r" % self.page.evaluate("window.websim.state.bank")
        status, answer = Client(base, load_credentials(self.sim.state_dir / "bank", merchant)).call("GET", path)
        assert status == 200, (status, answer)
        return answer

    def balance(self, account):
        """An account's balance in the bank's ledger (a merchant reads only its own account)."""
        state = State(self.sim.state_dir / "bank")
        try:
            return state.ledger.account(account)["balance"]
        finally:
            state.close()

    def shoot(self, path, quiet_s=0.3):
        """The panel as the ST7789 model holds it, once the device has stopped drawing, as PNG."""
        rig = self.sim.rig
        deadline = time.monotonic() + self.timeout
        last, since = None, time.monotonic()
        while True:
            frame = rig.call("do", name="display", action="frame")["frame"]
            if frame != last:
                last, since = frame, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return rig.call("do", name="display", action="screenshot", path=str(path))
            if time.monotonic() > deadline:
                raise AssertionError("the display never settled")
            time.sleep(0.05)


@contextlib.contextmanager
def websim_page(tmp):
    """The web simulator on this tree's image (state in tmp) with the page open in headless
    Chromium: a Handheld."""
    from tools import image

    tmp = Path(tmp)
    image.build(tmp / "flash.img")
    with WebsimProcess(tmp / "flash.img", tmp) as sim:
        pw, context = browser(tmp / "chromium-profile")
        try:
            yield Handheld(context.new_page(), sim).open()
        finally:
            context.close()
            pw.stop()


CARD = "emv:visa-classic"  # the card the README's purchase uses, and its PIN (tools/emvcard/cards)
CARD_PIN = "1234"


def readme(out=DOCS):
    """The README's pictures: the web simulator on this tree's image, main_screens()."""
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, websim_page(tmp) as h:
        main_screens(h, out)


def main_screens(h, out):
    """Drive the demo terminal on the web simulator's page (Handheld h, at its lock screen)
    through its main screens and record each one from the ST7789 model as
    <out>/screen-<name>.png, and the page as <out>/websim.png."""
    from tools.demo import DEMO_PIN

    started = time.monotonic()

    def picture(name, title=None):
        if title is not None:
            h.screen(title)
        shot = h.shoot(out / ("screen-%s.png" % name))
        print("%5.1f s  %-16s %s  %s" % (time.monotonic() - started, name, shot["sha256"][:16], h.last["title"]),
              flush=True)

    picture("lock", locked)
    h.tap("PIN")
    picture("pin_pad", "Unlock")
    h.type_pin("0" * len(DEMO_PIN))
    picture("wrong_pin", "Wrong PIN")
    h.tap("OK")
    h.screen(locked)
    h.unlock(DEMO_PIN)
    picture("home", HOME)

    status, answer = h.push("Coffee Corner", "README-%d" % time.time(), 1250)
    assert status == 201, "the bank did not push the request: %d %s" % (status, answer)
    picture("payment_request", "Payment request")
    h.tap("Pay")
    h.screen("Confirm with PIN")
    h.type_pin(DEMO_PIN)
    picture("approved", "Approved")
    h.home(DEMO_PIN)

    h.choose("Settings")
    picture("settings", "Settings")
    h.choose("Diagnostics")
    picture("diagnostics", lambda s: "buttons" in s)  # the result, after the progress screen
    h.home(DEMO_PIN)
    h.choose("Card mode")
    picture("card_mode", "Card mode")
    h.home(DEMO_PIN)

    h.choose("Balance")
    h.screen("Balance")
    h.choose("Current account")
    picture("balance", lambda s: s["title"] == "Balance" and "text" in s)
    h.home(DEMO_PIN)
    h.control("wifi_off")
    h.choose("Balance")
    h.screen("Balance")
    h.choose("Current account")
    picture("no_network", lambda s: s.get("error"))
    h.control("wifi_on")
    h.home(DEMO_PIN)

    h.choose("Purchase")
    h.screen("Amount")
    for key in "1250":
        h.tap(key, redraw=True)
    h.tap("OK")
    picture("insert_card", "Insert or tap card")
    h.control("insert_card", card=CARD)
    h.screen("Card PIN")
    h.type_pin(CARD_PIN)
    h.screen("Approved")
    h.page.click("[data-zoom='1.5']")
    h.page.screenshot(path=str(out / "websim.png"))  # the traces full: APDUs, ISO 8583, the log
    print("%-16s the page, at the card purchase's end" % "websim", flush=True)
    h.control("eject_card")


if __name__ == "__main__":
    commands = {"record": record, "readme": readme}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit("usage: python -m tools.screenshots record|readme")
    commands[sys.argv[1]]()
