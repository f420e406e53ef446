"""Card mode: the handheld as a contactless card (the PN532 in card emulation, lib/nfc's applets).

    await app.perform(CardMode())      # menu "Card mode": "Transit card", "Top up transit card",
                                       # "Shop confirmation"

Transit card: nfc.transit's applet behind nfc.Router; the screen shows the balance and each
debit as a gate makes it (and History records it). Shop confirmation: nfc.confirm's applet; a
shop's PREPARE puts the amount and the merchant on the screen, the owner approves with a
fingerprint or the PIN on this keypad (owner_confirm), the shop gets the MAC'd approval or 6985.
Top up transit card: terminal.topup, from a bound account through the bank.
Back (or a lock: the watcher cancels the step) ends the mode; the PN532 is then reset out of
target mode before anything else uses it, under op.critical so that a lock cannot cut that
short. An approval under way is critical too: a lock waits for the owner's answer.

The applets' keys. Each is HMAC-SHA256(the vault's "issuer.unblock" item, a label of its own):
- per device: issuer.unblock is 32 random bytes drawn for this unit at provisioning;
- the issuer derives the same: its HSM keeps every unit's issuer.unblock sealed (tools/provision
  inject), so it can hand a transit operator or a shop scheme the key of a given device, by its
  serial (the confirmation's device id), without a new item in the vault or the factory's flow;
- separate: HMAC is a PRF, so the transit key, the confirmation key and the unblock MACs
  (label "PT-UNBLOCK-1" + challenge: another message) tell nothing of each other; a gate that
  holds the transit key cannot unblock the terminal or approve a shop's payment.
A new provisioning draws a new issuer.unblock, hence new keys: the old transit state no longer
verifies and is refused (its screen says so), as a card re-issued would be.
"""

import asyncio

from micropython import const

from terminal.app import Operation
from ui.screens import CANCEL, TIMEOUT, format_amount

TRANSIT_LABEL = b"PT-NFC-TRANSIT-1"
CONFIRM_LABEL = b"PT-NFC-CONFIRM-1"
POLL_MS = const(200)  # how often the card screen looks for Back and for what a reader did
IDLE_MS = const(3000)  # a reader silent this long without leaving is given up


def applet_key(vault, label):
    """The applet key for `label` (a bytearray: wipe it when the mode ends)."""
    from vault.crypto import hmac_sha256, wipe

    secret = vault.device_secret("issuer.unblock")
    try:
        return bytearray(hmac_sha256(secret, label))
    finally:
        wipe(secret)


def device_id():
    """The confirmation applet's device id: the terminal's serial (8 characters, "PT000001"), as
    the issuer knows it; None without a bank configuration (the applet's default)."""
    from terminal import link

    config = link.load()
    return (config["serial"].encode() + bytes(8))[:8] if config else None


class NfcUnavailable(Exception):
    """The NFC controller failed while the mode ran (its error as the message)."""


class CardMode(Operation):
    def __init__(self):
        super().__init__()
        self.note = None  # what the last reader did, for the screen
        self.drawn = None  # the text on the screen, None: to be drawn
        self.fault = None
        self._screen = asyncio.Lock()  # the screen: the mode's, or the owner's dialog's

    async def start(self, app):
        from terminal.topup import settle

        settle(app)  # a top-up a power cut left unfinished, decided at the boot: into History
        answer = await app.ui.menu("Card mode", ["Transit card", "Top up transit card", "Shop confirmation"])
        if answer in (CANCEL, TIMEOUT):
            return None
        return ("transit", "topup", "shop")[answer]

    async def topup(self, app):
        from terminal.topup import TopUp

        await app.perform(TopUp())
        return "start"

    # ---- transit -------------------------------------------------------------------------------

    async def transit(self, app):
        from nfc import Router
        from nfc.transit import EUR, TransitApplet
        from vault.crypto import wipe

        key = applet_key(app.vault, TRANSIT_LABEL)
        try:
            applet = TransitApplet(key)
            if applet.broken:
                await app.ui.message("Transit card unreadable", "Its stored balance does not verify: %s." % applet.broken,
                                     remedy="Ask the transit operator to issue the card again.", error=True)
                return "start"
            seen = applet.counter
            currency = "EUR" if applet.currency == EUR else str(applet.currency)

            def describe():
                nonlocal seen
                # Each debit a gate made since the last look, oldest first, into History.
                for counter, amount, balance, terminal in reversed(applet.log):
                    if counter > seen:
                        from terminal.history import History

                        History(app.vault).add("Transit", amount, currency, "Gate %08X" % terminal, "approved",
                                               reference="#%d" % counter)
                        self.note = "Paid %s at gate %08X." % (format_amount(amount, currency), terminal)
                seen = applet.counter
                text = "Balance %s." % format_amount(applet.balance, currency)
                return "%s %s" % (self.note, text) if self.note else text + " Hold the terminal to the gate's reader."

            await self._be_card(app, Router(applet), "Transit card", describe)
        finally:
            wipe(key)
        return "start"

    # ---- shop confirmation -------------------------------------------------------------------

    async def shop(self, app):
        from nfc import Router
        from nfc.confirm import ConfirmApplet, OwnerNotAuthenticated, owner_confirm
        from terminal.history import History
        from vault.crypto import wipe

        owner = owner_confirm(app.ui, app.session, app.sensor, randomize=False)

        async def confirm(merchant, amount, currency):
            result = "refused"
            self.critical = True  # the owner's answer is awaited: no lock in between
            try:
                async with self._screen:
                    approved = await owner(merchant, amount, currency)
                if approved is True:
                    result = "approved"
                return approved
            except OwnerNotAuthenticated:
                result = "refused (PIN)"
                raise
            finally:
                self.critical = False
                # The screen first: should History fail, the owner still sees what the shop got.
                # (MicroPython's str has no capitalize().)
                self.note = "%s%s: %s to %s." % (result[0].upper(), result[1:], format_amount(amount, currency),
                                                 merchant)
                self.drawn = None  # the dialog covered the card screen
                History(app.vault).add("Shop", amount, currency, merchant, result)

        key = applet_key(app.vault, CONFIRM_LABEL)
        try:
            serial = device_id()
            applet = ConfirmApplet(key, confirm, serial) if serial else ConfirmApplet(key, confirm)

            def describe():
                return self.note or "Hold the terminal to the shop's reader: you approve each amount here."

            await self._be_card(app, Router(applet), "Shop confirmation", describe)
        finally:
            wipe(key)
        return "start"

    # ---- the card screen and the PN532 ---------------------------------------------------------

    async def _be_card(self, app, card, title, describe):
        """Be `card` until Back (or a lock cancels the step), the screen kept up to date."""
        import parts
        from ui import theme
        from ui.widgets import Button, paragraph

        ui = app.ui
        nfc = parts.nfc()
        self.note, self.drawn, self.fault = None, None, None
        back = Button(theme.MARGIN, theme.HEIGHT - theme.TARGET - theme.MARGIN, theme.WIDTH - 2 * theme.MARGIN,
                      theme.TARGET, "Back", CANCEL)
        task = asyncio.create_task(self._emulate(nfc, card))
        try:
            while self.fault is None:
                async with self._screen:
                    text = describe()
                    if text != self.drawn:
                        lines, _ = paragraph(theme.MARGIN, 110, text, theme.font(theme.BODY), theme.TEXT,
                                             theme.WIDTH - 2 * theme.MARGIN, "center")
                        ui.canvas.render(ui._frame(title) + lines + [back])
                        ui.shown(title, text, [back])
                        self.drawn = text
                    if await ui._tap([back], POLL_MS) == CANCEL:
                        return
        finally:
            task.cancel()
            await self._leave(nfc)
        await ui.message("NFC not working", "The NFC controller failed (%s)." % self.fault,
                         remedy="Restart the terminal; if it persists, reseat the NFC module (Settings > Diagnostics).",
                         error=True)

    async def _emulate(self, nfc, card):
        from drivers.pn532 import NfcError, NfcTimeout

        try:
            await nfc.begin()
            while True:
                try:
                    await nfc.emulate(card, idle_ms=IDLE_MS)  # a reader came and went: wait for the next
                except NfcTimeout:
                    pass  # a reader that went quiet without leaving: be a card again for the next
        except NfcError as e:
            self.fault = e

    async def _leave(self, nfc):
        """Out of target mode: the PN532 reset and started again (its RSTPDN line), the one way
        that ends every target state, a pending TgInitAsTarget's as an activated one's. Critical:
        the watcher's next cancel must not cut it short."""
        from drivers.pn532 import NfcError

        self.critical = True
        try:
            await nfc.begin()
        except NfcError:
            pass  # not answering: nothing of it is in target mode either; Diagnostics says why
        finally:
            self.critical = False
