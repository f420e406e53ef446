"""The cardholder's terminal: what terminal.run() starts.

App.run() follows the vault's lifecycle, one screen at a time:

    no secrets (blank, FACTORY, WIPED) -> "Not set up": the factory or the bank provisions it
    PROVISIONED                        -> the owner chooses a PIN, then may add a fingerprint
    BLOCKED                            -> what to do (the issuer unblocks)
    PERSONALIZED, locked               -> the lock screen: fingerprint or PIN
    PERSONALIZED, unlocked             -> the operation under way, else the home menu

Whatever the owner does is an Operation: a small state machine whose `step` names the method
to run next. The idle timeout and the standby key lock the session; the running step is then
cancelled at its screen (a step marked critical — a bank or card exchange — finishes first, so a
lock never leaves a payment half done), the session keeps the operation, and after the owner
unlocks again it continues at the step where it stopped: the payment confirmation comes back,
not the home menu.

The link (terminal.link) keeps Wi-Fi and the bank session up from the start, locked or not. A
payment request the bank pushes interrupts the home menu and shows itself at once; one that
comes while the terminal is locked is announced on the lock screen and shown after the unlock,
before whatever the lock interrupted resumes. (In another operation, it waits for the home menu.)
"""

import asyncio

from micropython import const

import vault as V
from ui.screens import CANCEL, TIMEOUT
from vault.crypto import wipe

WATCH_MS = const(250)  # how often the idle timeout and the standby key are looked at

# The home menu after "Pay requests (N)": label, then the operation (module, class) imported
# when chosen: the heap holds only the flow in use.
_HOME = (
    ("Purchase", "terminal.purchase", "Purchase"),
    ("Balance", "terminal.accounts", "Balance"),
    ("Transfer", "terminal.accounts", "Transfer"),
    ("Card mode", "terminal.emulate", "CardMode"),
    ("History", "terminal.app", "History"),
    ("Settings", "terminal.app", "Settings"),
    # What a merchant pushes a request to (terminal.identifier), beside Lock on the last page:
    # the pages before keep their places (tests/host/test_terminal_app.py taps Settings on the 2nd).
    ("My identifier", "terminal.identifier", "Identifier"),
    ("Lock", None, None),
)
# The packages of the flows' modules, which the app lets go of when a flow ends (_unload).
_FLOWS = ("terminal", "ui", "emv", "iso7816", "drivers", "nfc", "diag", "qr", "update")


def _modules():
    import sys

    return set(sys.modules)


def _unload(before):
    """Let go of the flows' modules imported since `before` (_modules()) and of the parts made
    with them (parts.unload): an operation that has ended leaves their heap (~20 KB for a card
    purchase's) to the next one. An operation the session keeps to resume keeps only what it is
    made of (Operation.made). Only the flows' packages: a module that the background tasks import
    (the uplink's asyncio.stream) stays."""
    import sys

    import parts

    parts.unload([name for name in sys.modules if name not in before and name.split(".")[0] in _FLOWS])


class Operation:
    """A resumable piece of the owner's work; subclasses define the steps (async methods taking
    the app and returning the next step's name, or None when done)."""

    critical = False  # True while a step must not be interrupted (set and cleared by the step)
    # The modules there were when it began (App.perform): its class's module and what that
    # imports. What its steps import after is theirs: a step interrupted by a lock starts again
    # when the operation resumes, and imports it again.
    made = None

    def __init__(self):
        self.step = "start"

    async def run(self, app):
        while self.step is not None:
            self.step = await getattr(self, self.step)(app)

    async def exchange(self, awaitable):
        """Await a card or bank exchange: critical, so no lock or standby cuts it short."""
        self.critical = True
        try:
            return await awaitable
        finally:
            self.critical = False


class _ActivityTouch:
    """The touch panel as the screens see it: every touch is activity for the idle timeout."""

    def __init__(self, touch, session):
        self.touch = touch
        self.session = session

    async def event(self, timeout_ms=None):
        event = await self.touch.event(timeout_ms)
        if event is not None:
            self.session.activity()
        return event


class App:
    def __init__(self, ui, session, sensor=None, standby_key=None, link=None):
        self.ui = ui
        self.standby_key = standby_key
        self.session = session
        self.vault = session.vault
        self.sensor = sensor
        self.link = link
        self.standby_pressed = False
        ui.touch = _ActivityTouch(ui.touch, session)
        if standby_key is not None:
            standby_key.irq(handler=self._standby, trigger=standby_key.IRQ_FALLING)
        # [(operation, task, started unlocked)], outermost first, while operations run (owner
        # setup runs locked: a lock has nothing of it to end)
        self._running = []
        # (task, link.arrivals when drawn) while the home menu or the lock screen waits: a
        # request pushed since ends it (the watcher cancels the task), to be shown or announced
        self._alertable = None
        self._modules = _modules()  # what stays imported (see once())

    def _standby(self, _pin):
        # In interrupt context: only note it; the watcher locks when no critical step runs.
        self.standby_pressed = True

    async def _watch(self):
        while True:
            await asyncio.sleep_ms(WATCH_MS)
            running = self._running
            if any(entry[0].critical for entry in running):
                continue
            if self.standby_pressed:
                self.standby_pressed = False
                self.session.lock("standby")
            else:
                self.session.tick()
            if running and running[0][2] and not self.vault.unlocked:
                # A lock ends what the owner was doing (the cancel reaches the innermost step
                # it awaits). Again at every tick until it has ended: a step may catch a cancel
                # to tidy up and await again (asyncio's wait_for, which lost one that came as
                # its timeout expired, is lib/timeouts.py's in the firmware).
                running[0][1].cancel()
            alertable, link = self._alertable, self.link
            if alertable is not None and link is not None and link.arrivals != alertable[1]:
                alertable[0].cancel()  # again at every tick until it has ended, as above

    async def alertable(self, screen):
        """Await a screen (the home menu, the lock screen) that a pushed request's arrival
        ends: its task (not the app's main one) is cancelled then."""
        task = asyncio.current_task()
        if self.link is None or task is None:
            return await screen
        self._alertable = (task, self.link.arrivals)
        try:
            return await screen
        finally:
            self._alertable = None

    async def run(self):
        watcher = asyncio.create_task(self._watch())
        if self.link is not None:
            self.link.start()
        try:
            while True:
                await self.once()
        finally:
            if self.standby_key is not None:
                # The pin outlives the app (the board holds it and its handler, a GC root): a
                # crashed run's handler kept this App, hence its whole heap, through the restart.
                self.standby_key.irq(handler=None)
            watcher.cancel()
            if self.link is not None:
                self.link.stop()

    async def once(self):
        """One screen of the lifecycle (see the module's docstring); then the flows' modules
        imported since the app began are let go, but for what an operation the session keeps
        to resume is made of (Operation.made): a pushed request paid while the home menu or Card
        mode waits to resume leaves no card's ~20 KB behind, nor Card mode its reader's and
        applets' modules (kept, they were beside the card payment's: the heap ran out)."""
        await self._once()
        kept = self.session.interrupted or self.session.operation  # begun by perform(): its made is set
        _unload(self._modules if kept is None else kept.made)

    async def _once(self):
        self.ui.status.locked = not self.vault.unlocked
        state = self.vault.state
        if state == V.PROVISIONED:
            await self.perform(OwnerSetup())
        elif state == V.BLOCKED:
            await self.ui.message("Blocked", "Too many wrong PINs: this terminal is blocked.",
                                  remedy="Call your bank: it can unblock the terminal, and you then choose a new PIN.",
                                  error=True, timeout_ms=600_000)
        elif state != V.PERSONALIZED:
            await self.ui.message("Not set up", "This terminal has no keys yet.",
                                  remedy="It is set up at the factory or by your bank: bring it back to them.",
                                  error=True, timeout_ms=600_000)
        elif not self.vault.unlocked:
            try:
                await asyncio.create_task(self.unlock())  # a task of its own: see alertable()
            except asyncio.CancelledError:
                pass  # a request came: the lock screen again, announcing it
        else:
            request = self.link.fresh() if self.link is not None else None
            if request is not None:
                from terminal.pay import PayRequest

                # Before what a lock interrupted, which resumes after it (perform's parent).
                await self.perform(PayRequest(request))
            else:
                await self.perform(self.session.operation or Home())

    async def perform(self, operation):
        """Run an operation (inside another's step, or on its own) until it ends, or until a
        lock interrupts it: the session then keeps the innermost one to resume."""
        parent = self.session.operation
        operation.made = _modules()
        self.session.begin(operation)
        task = asyncio.create_task(operation.run(self))
        self._running.append((operation, task, self.vault.unlocked))
        try:
            await task
        except asyncio.CancelledError:
            if len(self._running) > 1:
                raise  # the outer operation is cancelled too
            return
        finally:
            self._running.pop()
        if parent is not None and parent is not operation:
            self.session.begin(parent)  # back in the operation that started this one
        else:
            self.session.end()

    # ---- unlocking -------------------------------------------------------------------------

    async def unlock(self):
        vault = self.vault
        choices = ["PIN"]
        if self.sensor is not None and vault.fingers:
            choices.insert(0, "Fingerprint")  # also when the policy wants the PIN first: it says so
        waiting = len(self.link.requests) if self.link is not None else 0
        if waiting:
            title = "Locked: %d request%s" % (waiting, "" if waiting == 1 else "s")
        elif self.session.lock_reason is None:
            title = "Locked"
        else:
            title = "Locked (%s)" % self.session.lock_reason
        answer = await self.alertable(self.ui.menu(title, choices, timeout_ms=600_000, back=False))
        if answer in (CANCEL, TIMEOUT):
            return
        from ui import fingerprint

        if choices[answer] == "Fingerprint":
            if vault.fingerprint_allowed():
                await fingerprint.unlock(self.ui, self.sensor, self.session)
            else:
                await self.ui.message("PIN required", "Your fingerprint unlocks again once you have entered your PIN.",
                                      remedy="After fingers that were not recognised, or a long time without the "
                                      "PIN, the terminal asks for the PIN once.", error=True)
            return
        pin = await self.ui.pin_pad("Unlock", prompt="Enter your PIN")
        if pin not in (CANCEL, TIMEOUT):
            await fingerprint.pin_checked(self.ui, self.session, pin)


async def _two_pins(ui, title, first, second):
    """Two PINs typed one after the other: (a, b), bytearrays the caller wipes, or None when
    either entry was cancelled (what was typed is wiped)."""
    a = await ui.pin_pad(title, prompt=first)
    if a in (CANCEL, TIMEOUT):
        return None
    b = await ui.pin_pad(title, prompt=second)
    if b in (CANCEL, TIMEOUT):
        wipe(a)
        return None
    return a, b


class OwnerSetup(Operation):
    """A provisioned terminal meets its owner: a PIN (typed twice), then a fingerprint if wanted."""

    async def start(self, app):
        pins = await _two_pins(app.ui, "Choose a PIN", "4 to 12 digits", "The same PIN again")
        if pins is None:
            return "start"
        try:
            if pins[0] != pins[1]:
                await app.ui.message("PINs differ", "The two PINs were not the same.", remedy="Choose your PIN again.",
                                     error=True)
                return "start"
            app.vault.set_pin(pins[0])
        finally:
            wipe(pins[0])
            wipe(pins[1])
        return "fingerprint" if app.sensor is not None else None

    async def fingerprint(self, app):
        answer = await app.ui.menu("Fingerprint", ["Add a fingerprint", "Not now"])
        if answer == 0:
            from ui import fingerprint

            await fingerprint.enroll(app.ui, app.sensor, app.vault, activity=app.session.activity)
        return None


async def _perform(app, module, name):
    """Run the operation module.name, imported now; a firmware without it says so."""
    before = _modules()
    try:
        operation = getattr(__import__(module, None, None, (name,)), name)
    except ImportError:
        await app.ui.message("Not available", "This terminal's firmware has no %s." % name,
                             remedy="Have the firmware updated.", error=True)
        return
    await app.perform(operation())
    _unload(before)  # ended (a lock's cancel goes past this: the session keeps the operation)


class Home(Operation):
    """The home menu: each entry is an operation of its own."""

    async def start(self, app):
        link = app.link
        if link is not None and link.waiting:
            return None  # App.once() shows it, then the home menu again
        # The home menu, unlocked: the firmware works, so a new image stops being on trial
        # (update.ota; a no-op once done).
        from update import ota

        ota.confirm()
        entries = list(_HOME)
        if link is not None and link.uplink is not None and link.uplink.offered:
            # A firmware update the bank offers (terminal.update): opened only from here, where
            # no operation runs.
            entries.insert(0, ("Update available", "terminal.update", "Update"))
        if link is not None and link.requests:
            entries.insert(0, ("Pay requests (%d)" % len(link.requests), "terminal.pay", "PayRequests"))
        answer = await app.alertable(app.ui.menu("Pocket Terminal", [e[0] for e in entries], timeout_ms=600_000,
                                                 back=False))
        if answer in (CANCEL, TIMEOUT):
            return "start"
        _, module, name = entries[answer]
        if module is None:
            app.session.lock("locked by you")
            return None
        await _perform(app, module, name)
        return "start"


class History(Operation):
    """The owner's transactions, a page at a time, newest first: a page is what the menu shows
    on one screen, and only its entries are read from flash; "Older" and "Newer" (on the
    menu's next screen) turn the pages. An entry opened shows its details, then, for an approved
    purchase or paid request, offers to give it back (terminal.refund)."""

    PAGE = 3  # ui.menu's rows on one screen

    def __init__(self):
        super().__init__()
        self.first = 0  # the page's newest entry: 0 is the newest of all (kept across a lock)

    async def start(self, app):
        from terminal.history import History as Store
        from ui.screens import format_amount

        store = Store(app.vault)
        total = store.count()
        if self.first >= total:
            self.first = 0  # the history was cleared, or shrank, since this page was shown
        entries = store.page(self.first, self.PAGE)
        if not entries:
            answer = await app.ui.menu("History", ["(no transactions)"])
            return None if answer in (CANCEL, TIMEOUT) else "start"
        # The page's offline approvals whose advice has not reached the bank yet, or that the
        # bank refused (never paid): marked.
        unsent = refused = ()
        from terminal.receipt import OFFLINE

        if any(e.result == OFFLINE for e in entries):
            from terminal import offline

            unsent = [key[:key.find("_")] for key in offline.waiting()]
            refused = offline.refused()
        labels = ["%s %s%s" % (format_amount(e.amount, e.currency) if e.amount is not None else e.kind, e.counterparty,
                               " (to send)" if e.reference in unsent else " (refused)" if e.reference in refused else "")
                  for e in entries]
        turns = []
        if self.first + len(entries) < total:
            turns.append(("Older", self.PAGE))
        if self.first:
            turns.append(("Newer", -self.PAGE))
        answer = await app.ui.menu("History", labels + [label for label, _ in turns] + ["Clear history"])
        if answer in (CANCEL, TIMEOUT):
            return None
        if answer < len(entries):
            e = entries[answer]
            # A payment the bank approved can be given back from its details (terminal.refund:
            # the bank decides between a void and a refund), and one approved offline once its
            # advice has left the batch and the bank did not refuse it; OK returns to the page.
            waits, lost = e.reference in unsent, e.reference in refused
            givable = e.result in ("approved", OFFLINE) and not waits and not lost \
                and e.kind in ("Purchase", "Request") and e.reference
            text = e.describe() + (" Not yet sent to the bank: it can be given back once it is there." if waits else
                                   " The bank refused it when the terminal sent it: it was never paid." if lost else "")
            if await app.ui.message(e.counterparty, text, other="Refund" if givable else None) == "other":
                from terminal.refund import GiveBack

                await app.perform(GiveBack(e))
        elif answer < len(entries) + len(turns):
            self.first += turns[answer - len(entries)][1]
        else:
            return "clear"
        return "start"

    async def clear(self, app):
        from terminal.history import History as Store

        answer = await app.ui.menu("Clear history?", ["Clear", "Keep"])
        if answer == 0:
            Store(app.vault).clear()
            self.first = 0
        return "start"


class Settings(Operation):
    async def start(self, app):
        entries = [("Wi-Fi", "wifi"), ("Change PIN", "change_pin"), ("Lock timeout", "lock_timeout"),
                   ("Diagnostics", "diagnostics")]
        if app.sensor is not None:
            entries.insert(2, ("Fingerprints", "fingerprints"))
        answer = await app.ui.menu("Settings", [label for label, _ in entries])
        if answer in (CANCEL, TIMEOUT):
            return None
        return entries[answer][1]

    async def wifi(self, app):
        await _perform(app, "terminal.wifi_settings", "WifiSettings")
        return "start"

    async def change_pin(self, app):
        pins = await _two_pins(app.ui, "Change PIN", "Your current PIN", "The new PIN")
        if pins is None:
            return "start"
        # The new PIN typed twice, as at setup: once, a stray touch on its pad set a PIN the
        # owner did not know, and their next attempts blocked the terminal (found by the monkey).
        # Compared before the vault is asked: a slip costs no attempt.
        again = await app.ui.pin_pad("Change PIN", prompt="The new PIN again")
        try:
            if again in (CANCEL, TIMEOUT):
                return "start"
            if again != pins[1]:
                await app.ui.message("PINs differ", "The new PIN and its repeat were not the same; nothing changed.",
                                     remedy="Change your PIN again.", error=True)
                return "start"
            app.vault.change_pin(*pins)
        except V.WrongPin as e:
            await app.ui.message("Wrong PIN", "The current PIN was not right; nothing changed.",
                                 remedy="%d attempts left." % e.attempts_left, error=True)
            return "start"
        except V.Blocked:
            return None  # the next screen is the blocked one
        finally:
            wipe(pins[0])
            wipe(pins[1])
            if isinstance(again, bytearray):
                wipe(again)
        await app.ui.message("PIN changed", "Use the new PIN from now on.", timeout_ms=5000)
        return "start"

    async def fingerprints(self, app):
        from ui import fingerprint

        fingers = app.vault.fingers
        answer = await app.ui.menu("Fingerprints", ["Add a fingerprint"] + ["Delete fingerprint %d" % f for f in fingers])
        if answer in (CANCEL, TIMEOUT):
            return "start"
        if answer == 0:
            await fingerprint.enroll(app.ui, app.sensor, app.vault, activity=app.session.activity)
        else:
            await fingerprint.delete(app.ui, app.sensor, app.vault, fingers[answer - 1])
        return "fingerprints"

    async def lock_timeout(self, app):
        answer = await app.ui.menu("Lock after", ["%d s" % s if s < 60 else "%d min" % (s // 60) for s in V.IDLE_CHOICES_S])
        if answer not in (CANCEL, TIMEOUT):
            app.vault.set_idle(V.IDLE_CHOICES_S[answer])
        return "start"

    async def diagnostics(self, app):
        import diag

        app.ui.progress("Diagnostics", "Testing every part")
        faults = [(name, detail, remedy) for name, ok, detail, remedy in await diag.checks() if not ok]
        if not faults:
            await app.ui.message("Diagnostics", "Every part answers as it should.")
        for name, detail, remedy in faults:
            await app.ui.message(name, detail, remedy=remedy, error=True)
        return "start"
