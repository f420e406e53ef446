"""The terminal as its owner finds it, for the flow tests: the real bank host (`python -m
tools.bank`) on the demo's state (tools/demo.seed, a temp dir, free ports), a virtual handheld
of its own with the handheld's parts attached, its Wi-Fi routing to the bank, personalised as
`make run` does (tools/demo.personalize: provisioned, owner PIN DEMO_PIN, accounts bound, Wi-Fi
and bank config), and the app running from main.py after a reset, as on the board.

    from terminalfix import terminal      # the module-scoped fixture (import it in the test)

    def test_balance(terminal):
        t = terminal
        t.unlock()                          # Locked -> PIN -> DEMO_PIN -> "Pocket Terminal"
        t.choose("Balance")                 # a menu entry, paging with "More" if needed
        t.screen("Balance")                 # waits for that screen line (20 s), returns it
        t.tap("Back")

The rig's parts have verbs of their own: t.insert(card)/t.remove_card() in the slot,
t.tap_card(card)/t.lift_card() on the NFC antenna, a shop's reader for the handheld in card
mode (t.shop_reader(apdus), t.reader_answers(n), t.reader_leave()), t.wifi(up), t.standby(),
and the owner's finger on the R503: t.place_finger(name, presses=1) (a name is a finger: the
same name is recognised once enrolled, another is not; presses=N images taken, the finger lifted
after each as the prompts ask, None: it stays), t.lift_finger(), t.sensor_library() (the
templates the sensor holds: {template id: finger name}).

What the tests see is what the app prints: each screen's `screen {json}` console line
(lib/ui/screens.py), read from the REPL's pty while the app runs. The app and the REPL share
that pty: `t.device` stops the app (Ctrl-C, as mpremote does) and hands the REPL;
`t.restart()` boots the device again (the app starts at the lock screen).
"""

import json
import shutil
import threading
import time
import urllib.error
from pathlib import Path

import pytest
import serial

from tools import demo
from tools.bank.spawn import HostProcess
from tools.bank.state import State
from tools.screenshots import screen_line
from tools.vdevice.spawn import VDeviceProcess

SIGNED_ON = "0800/001 -> 00"
BANK_CONFIG = "/config/bank.json"
TAP_EVERY_MS = 200  # a finger's pace on the PIN pad: down, held, up, next
ACCOUNTS = [a[0] for a in demo.ACCOUNTS]


class Bank(HostProcess):
    """`python -m tools.bank` on free ports over a state dir seeded with the demo (cards: the
    demo's {card profile: account id}; None: the state is seeded already)."""

    def __init__(self, state_dir, cards=None):
        self.cards = cards or demo.seed(Path(state_dir))
        super().__init__(state_dir)


class Console:
    """The device's console (its REPL pty) read line by line in a thread while the app runs."""

    def __init__(self, path):
        self.port = serial.Serial(path, 115200, timeout=0.1)
        self.lines = []
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        pending = b""
        while self.running:
            try:
                pending += self.port.read(4096)
            except (OSError, serial.SerialException):
                time.sleep(0.1)  # the pty between two boots
                continue
            *done, pending = pending.split(b"\n")
            self.lines += [line.decode(errors="replace").rstrip("\r") for line in done]

    def close(self):
        self.running = False
        self.thread.join(2)
        self.port.close()


class Terminal:
    def __init__(self, tmp, firmware_image, policy=None):
        """policy: the issuer's vault policy (lib/vault DEFAULT_POLICY's keys) set in the factory
        before provisioning, as an issuer sets its own; None: the defaults."""
        self.tmp = tmp = Path(tmp)
        self.bank = Bank(tmp / "bank")
        self.console = self._device = self.vdevice = None
        self.seen = 0  # screens consumed by screen()
        try:
            shutil.copyfile(firmware_image, tmp / "flash.img")
            self._start_handheld()
            if policy:
                dev = demo.fresh(self.vdevice.repl)
                try:
                    dev.exec("import vault\nvault.Vault().open().set_policy(**%r)" % (policy,))
                finally:
                    dev.close()
            self.vault_state, self.accounts = demo.personalize(self.vdevice.repl, self.bank.dir)
            self._device = demo.fresh(self.vdevice.repl)
            self.keypad = {k[4]: k[:4] for k in self._device.eval("__import__('ui.screens').screens.keypad_layout()")}
            self.restart()
        except BaseException:
            self.close()  # no bank host or handheld left running when the set-up fails
            raise

    def _start_handheld(self):
        # Not bare: the handheld's parts attached as `make run` attaches them.
        self.vdevice = VDeviceProcess(self.tmp / "flash.img", self.tmp / "vdevice", bare=False)
        self.rig = self.vdevice.rig
        self.rig.call("do", name="wifi", action="target", host=self.bank.address[0], port=self.bank.address[1])

    def run_again(self):
        """`make run` stopped and started again: the bank host and the virtual handheld (its rig
        with it) stopped, then started on what they kept (the ledger, the flash image, the rig's
        cards); the app at its first screen."""
        self.close()
        self.console = self._device = None
        self.bank = Bank(self.bank.dir, self.bank.cards)
        self._start_handheld()
        self.restart()

    # ---- the device ---------------------------------------------------------------------------

    @property
    def device(self):
        """The REPL (tools.device.Device) in a fresh interpreter, the app stopped; t.restart()
        starts it again."""
        if self._device is None:
            self.console.close()
            self.console = None
            self._device = demo.fresh(self.vdevice.repl)
        return self._device

    def restart(self):
        """Boot afresh (the EN button): boot.py, main.py, the app at its first screen."""
        if self._device is not None:
            self._device.close()
            self._device = None
        if self.console is None:
            self.console = Console(self.vdevice.repl)
        boots = self.rig.call("device")["boots"]
        self.rig.call("reset")
        self.vdevice.wait_booted(after_boots=boots, timeout=20)
        self.seen = len(self.screens)

    def link_waits(self, **waits):
        """The link's waits in the bank's configuration (/config/bank.json: "ready_ms",
        "retry_max_ms", lib/terminal/link.py), then a boot that reads them: for tests that
        make the bank unreachable on purpose, so that a failure is told and the bank found
        again without the minutes a real network is given."""
        config = json.loads(self.device.read_file(BANK_CONFIG))
        config.update(waits)
        self.device.write_file(BANK_CONFIG, json.dumps(config).encode())
        self.restart()

    # ---- what the screen shows ------------------------------------------------------------------

    @property
    def screens(self):
        """Every screen line seen so far, parsed."""
        lines = self.console.lines if self.console else []
        return [screen for screen in map(screen_line, lines) if screen is not None]

    def screen(self, title, timeout=20):
        """The next screen (after the last one this returned) whose title is `title` (or for
        which title(screen) is true), once printed."""
        match = title if callable(title) else (lambda s: s["title"] == title)
        deadline = time.monotonic() + timeout
        while True:
            screens = self.screens
            for i in range(self.seen, len(screens)):
                if match(screens[i]):
                    self.seen = i + 1
                    return screens[i]
            if time.monotonic() > deadline:
                raise AssertionError("no screen %r within %d s; screens since the last one: %s\nconsole tail:\n%s" % (
                    title, timeout, [s["title"] for s in screens[self.seen:]], "\n".join(self.console.lines[-15:])))
            time.sleep(0.05)

    def log(self):
        """The device's console so far."""
        return "\n".join(self.console.lines)

    # ---- touching it ---------------------------------------------------------------------------

    def tap_at(self, x, y, after_ms=0):
        self.rig.call("do", name="touch", action="tap", x=int(x), y=int(y), after_ms=after_ms)

    def tap(self, label):
        """Tap the centre of the button `label` of the screen shown last."""
        last = self.screens[-1]
        buttons = last.get("buttons", {})
        if label not in buttons:
            raise AssertionError("no button %r on the screen %r: %s" % (label, last["title"], sorted(buttons)))
        x, y, w, h = buttons[label]
        self.tap_at(x + w // 2, y + h // 2)

    def choose(self, label, timeout=10):
        """Tap a menu entry, turning the menu's pages ("More"), then History's ("Older"), until
        it shows."""
        for _ in range(20):
            buttons = self.screens[-1].get("buttons", {})
            if label in buttons:
                return self.tap(label)
            turn = next((b for b in ("More", "Older") if b in buttons), None)
            if turn is None:
                break
            count = len(self.screens)
            self.tap(turn)
            self._wait_new(count, timeout)
        raise AssertionError("no entry %r in the menu %r" % (label, self.screens[-1]["title"]))

    def _wait_new(self, count, timeout):
        deadline = time.monotonic() + timeout
        while len(self.screens) <= count:
            assert time.monotonic() < deadline, "no new screen within %d s" % timeout
            time.sleep(0.05)

    def type_pin(self, pin, ok=True):
        """Type on the PIN pad shown last (the app's pad is unshuffled: keypad_layout()), then OK."""
        assert self.screens[-1].get("pin_pad"), "the screen shown last is not a PIN pad: %r" % self.screens[-1]
        keys = list(pin) + (["OK"] if ok else [])
        for i, key in enumerate(keys):
            x, y, w, h = self.keypad[key]
            self.tap_at(x + w // 2, y + h // 2, after_ms=TAP_EVERY_MS * i)
        time.sleep(TAP_EVERY_MS * len(keys) / 1000)

    def purchase(self, digits):
        """From the home menu: Purchase, the amount typed on its keys, OK."""
        self.choose("Purchase")
        self._amount(digits)

    def transfer(self, source, target, digits):
        """From the home menu: Transfer, its From and To entries, the amount typed, OK; the
        Transfer confirmation screen."""
        self.choose("Transfer")
        self.screen("From")
        self.choose(source)
        self.screen("To")
        self.choose(target)
        self._amount(digits)
        return self.screen("Transfer")

    def _amount(self, digits):
        keys = self.screen("Amount")["buttons"]
        for i, key in enumerate(list(digits) + ["OK"]):
            x, y, w, h = keys[key]
            self.tap_at(x + w // 2, y + h // 2, after_ms=TAP_EVERY_MS * i)

    def unlock(self, pin=demo.DEMO_PIN):
        """From the lock screen (shown, or the next one) to the home menu (returns its screen)."""
        if not (self.screens and self.screens[-1]["title"].startswith("Locked")):
            self.screen(lambda s: s["title"].startswith("Locked"))
        self.tap("PIN")
        self.screen("Unlock")
        self.type_pin(pin)
        return self.screen("Pocket Terminal")

    # ---- the rig's parts ------------------------------------------------------------------------

    def insert(self, card):
        """A card in the contact slot, e.g. "emv:visa-classic"."""
        return self.rig.call("do", name="card", action="insert", applet=card)

    def remove_card(self):
        return self.rig.call("do", name="card", action="remove")

    def tap_card(self, card):
        """A card in the NFC field (it stays until lift_card)."""
        return self.rig.call("do", name="nfc", action="place", applet=card)

    def lift_card(self):
        return self.rig.call("do", name="nfc", action="remove")

    def shop_reader(self, apdus):
        """A shop's (or a gate's) reader comes into the NFC field and runs its script of APDUs
        (bytes) against the handheld in card mode; it stays until reader_leave()."""
        return self.rig.call("do", name="nfc", action="reader", apdus=[a.hex() for a in apdus])

    def reader_answers(self, n, timeout=20):
        """[(APDU, the handheld's answer)] (bytes) once the reader has n answers."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.rig.call("do", name="nfc", action="reader_log")
            if len(log) >= n and all(answer for _, answer in log[:n]):
                return [(bytes.fromhex(a), bytes.fromhex(r)) for a, r in log]
            assert time.monotonic() < deadline, "the reader got %d answers of %d" % (len(log), n)
            time.sleep(0.05)

    def reader_leave(self):
        return self.rig.call("do", name="nfc", action="reader_leave")

    def wifi(self, up):
        return self.rig.call("do", name="wifi", action="up" if up else "down")

    def place_finger(self, finger, presses=1, quality="good"):
        """A finger on the fingerprint sensor (see the module's docstring; quality: "good", "wet",
        "partial", "faulty" as tools/rig/r503.py has them)."""
        return self.rig.call("do", name="r503", action="place", finger=finger, quality=quality, presses=presses)

    def lift_finger(self):
        return self.rig.call("do", name="r503", action="lift")

    def sensor_library(self):
        """{template id: finger name} of the templates stored in the sensor (its model's flash)."""
        return {int(slot): finger for slot, finger in self.rig.call("model", name="r503")["library"].items()}

    def standby(self):
        """A short press of the standby key."""
        self.rig.set_pin("standby_key", 0)
        time.sleep(0.15)
        self.rig.set_pin("standby_key", None)

    # ---- the bank -------------------------------------------------------------------------------

    def signed_on(self, timeout=30):
        """Wait until the device's uplink has signed on to the bank (since the host started)."""
        deadline = time.monotonic() + timeout
        while SIGNED_ON not in self.bank.log():
            assert time.monotonic() < deadline, "the device did not sign on within %d s" % timeout
            time.sleep(0.1)

    def push(self, merchant, order, amount, currency=demo.CURRENCY):
        """A merchant's payment request for the device, once it has signed on: the merchant
        API's answer. A push that met no live session (409) is tried again, under a new
        order number (order-2, ...): the bank expires the order the first one named."""
        self.signed_on()
        for attempt in range(1, 20):
            body = {"device": demo.SERIAL, "amount": amount, "currency": currency,
                    "order": order if attempt == 1 else "%s-%d" % (order, attempt)}
            try:
                return self.bank.post("/payment-requests", body, merchant)
            except urllib.error.HTTPError as e:
                if e.code != 409:
                    raise
                time.sleep(0.5)
        raise AssertionError("the bank found no session of the device for a push")

    def ledger(self):
        """{account id: available balance} of the demo's accounts and cards."""
        state = State(self.bank.dir)
        try:
            ids = ACCOUNTS + sorted(self.bank.cards.values())
            return {a: state.ledger.account(a)["available"] for a in ids}
        finally:
            state.close()

    def close(self):
        if self.console is not None:
            self.console.close()
        if self._device is not None:
            self._device.close()
        if self.vdevice is not None:  # None: its start failed
            self.vdevice.stop()
        self.bank.stop()


@pytest.fixture(scope="module")
def terminal(request, firmware_image, tmp_path_factory):
    """The demo terminal at its lock screen (see the module's docstring); a test module's
    VAULT_POLICY, if it has one, is the issuer's policy its terminal is provisioned with."""
    if request.config.getoption("--port"):
        pytest.skip("the demo terminal is a virtual handheld; this run is on a real board")
    t = Terminal(tmp_path_factory.mktemp("terminal"), firmware_image, getattr(request.module, "VAULT_POLICY", None))
    yield t
    t.close()
