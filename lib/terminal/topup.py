"""Top up the transit card (Card mode's own, lib/nfc/transit.py) from a bound account.

    await app.perform(TopUp())        # Card mode > "Top up transit card"
    recover(vault, uplink.journal)    # at every start, before the uplink's first drain (terminal.link)
    settle(app)                       # History for what recover() decided (the owner unlocked)

The owner chooses the account and the amount (the card holds at most transit.MAX_BALANCE),
sees both with the card on the approval screen, confirms with a fingerprint or the PIN, the
bank debits the account (0200, processing code 920000: tools/bank/PROTOCOL.md, "Top-up"), and
the card is credited.

Money is neither lost nor doubled across a power cut or a lost answer. The top-up is a record on
flash (uplink.journal.Journal under TOPUPS: one small file per top-up, never the whole journal
in RAM) written before the 0200 is sent; with it the uplink's own reversal of that 0200 (queued
before it is sent, rewritten "armed" by an approval, as a card purchase's), and the card's state
names the last top-up it took (TransitApplet.credit(amount, name): balance and name in one
atomic write). The flow, each step on flash before the next:

    record  ->  reversal queued (68)  ->  0200 ... 0210 00  ->  reversal armed (06)
            ->  card credited (+ its name)  ->  reversal dropped  ->  record removed  ->  History

What recover() makes of a record a cut (or a crash) left, before any 0400 can leave:
- the card names this top-up: it was credited; its reversal, if still there, is dropped (sent,
  it would give the money back a second time);
- its reversal is armed: the bank approved, the card was not credited yet: COMPLETED, the card
  is credited now. Not reversed: the approval is the owner's own decision carried out by the
  bank, the card is on this device (no network is needed to finish it) and the owner finds it
  loaded; a 0400 would need the bank, perhaps long after. If the card cannot take it (its state
  broken), the armed reversal (06) is left to go;
- its reversal is queued unarmed (68): no answer was on flash, the device cannot know whether
  the account was debited and the owner was never told it was: REVERSED, the uplink sends the
  0400 after its sign-on (the bank undoes a top-up at any age, and answers 25 for one it never
  saw);
- neither: nothing stands at the bank (never sent, declined, or its 0400 already answered).
Each record is then marked with what became of it, for settle() to put in History when the
owner is next unlocked (History is sealed under the owner's key, which a booting terminal has
not), and removed. A cut after the record's removal and before History's write loses the
History entry, never money.
"""

from terminal.app import Operation
from ui.screens import CANCEL, TIMEOUT, format_amount

# The flow's other modules (terminal.errors, .receipt, .accounts) are imported by its steps: at
# every start terminal.link imports this module for recover(), which needs none of them.

TOPUPS = "/topups"  # the records' folder (not named like a package: the flash's root is on sys.path)
WHAT = "Transit card"  # the payee on every screen and in History
# What a record's "done" says became of it (recover), as History's result.
_CREDITED = "approved"
_REVERSED = "reversed (no answer)"
_NOT_LOADED = "reversed (card not loaded)"  # approved, but the card could not take it: its 0400 (06)
_NOT_SENT = "nothing taken"  # never sent, declined, or its 0400 answered already


def _journal():
    from uplink.journal import Journal

    return Journal(TOPUPS)


def _applet(vault):
    """The transit applet with its key (a bytearray: wipe it after), or (None, key) if the
    card's state does not verify."""
    from nfc.transit import TransitApplet
    from terminal.emulate import TRANSIT_LABEL, applet_key

    key = applet_key(vault, TRANSIT_LABEL)
    applet = TransitApplet(key)
    return (None if applet.broken else applet), key


def recover(vault, reversals):
    """Decide each top-up a cut or a crash left unfinished (see the module's docstring): credit
    the card or leave its 0400 to the uplink (whose journal is `reversals`). Runs before the
    uplink does: nothing here needs the bank."""
    from vault.crypto import wipe

    topups = _journal()
    keys = topups.keys()
    if not keys:
        return
    try:
        applet, key = _applet(vault)
    except Exception:  # the vault without its device secrets (wiped): no card to load, only 0400s
        applet, key = None, bytearray()
    try:
        for name in keys:
            record = topups.entry(name)
            if record is None or "done" in record:
                continue  # decided before: waits for settle()
            reversal = reversals.entry(name)
            ref = name.encode()
            if applet is not None and applet.last_topup == ref:
                done = _CREDITED
            elif reversal is not None and reversal.get("armed"):
                # The card's state broken, or the flash failing under it: the armed 0400 (06) goes.
                done = _NOT_LOADED
                if applet is not None:
                    try:
                        applet.credit(record["amount"], ref)
                        done = _CREDITED
                    except (OSError, ValueError):
                        pass
            else:
                done = _REVERSED if reversal is not None else _NOT_SENT
            if done == _CREDITED:
                reversals.done(name)
            record["done"] = done
            topups.queue(record)
    finally:
        wipe(key)


def settle(app):
    """Put the top-ups recover() decided in History (the owner is unlocked), then drop them."""
    topups = _journal()
    for name in topups.keys():
        record = topups.entry(name)
        if record is not None and "done" in record:
            topups.done(name)
            _history(app, record, record["done"])


def _history(app, record, result, reference=""):
    from terminal import receipt
    from terminal.history import History

    History(app.vault).add("Top-up", record["amount"], receipt.alpha(record["currency"]), WHAT, result,
                           account=record["name"], reference=reference)


class TopUp(Operation):
    async def start(self, app):
        from terminal import receipt
        from terminal.accounts import OWNER, bound
        from vault.crypto import wipe

        settle(app)
        applet, key = _applet(app.vault)
        wipe(key)
        if applet is None:
            await app.ui.message("Transit card unreadable", "Its stored balance does not verify: it cannot be topped up.",
                                 remedy="Ask the transit operator to issue the card again.", error=True)
            return None
        from nfc.transit import MAX_BALANCE

        self.card, self.balance = applet.card_id, applet.balance
        self.currency = "%03d" % applet.currency
        self.room = MAX_BALANCE - applet.balance
        if self.room <= 0:
            await app.ui.message("Transit card full", "It holds %s, the most a transit card can hold." % self._money(
                applet.balance), remedy="Top it up again once you have travelled with it.")
            return None
        accounts = [a for a in bound(app.vault, OWNER) if a[1].get("currency", "978") == self.currency]
        if not accounts:
            await app.ui.message("No account", "No account in %s is bound to this terminal to top up from." %
                                 receipt.alpha(self.currency), remedy="Your bank binds accounts to it.", error=True)
            return None
        answer = await app.ui.menu("Top up from", [record["name"] for _, record in accounts])
        if answer in (CANCEL, TIMEOUT):
            return None
        self.source = accounts[answer]
        return "amount"

    def _money(self, minor):
        from terminal import receipt

        return format_amount(minor, receipt.alpha(self.currency))

    async def amount(self, app):
        from terminal import receipt
        from ui import entry

        value = await entry.amount(app.ui, "Amount", receipt.alpha(self.currency))
        if value in (CANCEL, TIMEOUT):
            return "start" if value == CANCEL else None
        if value > self.room:
            await app.ui.message("Too much for the card", "The card holds %s and can take %s more at most." % (
                self._money(self.balance), self._money(self.room)), remedy="Enter a smaller amount.", error=True)
            return "amount"
        self.value = value
        return "confirm"

    async def confirm(self, app):
        from terminal import receipt
        from terminal.accounts import confirm_owner

        answer = await app.ui.confirm_amount(WHAT, self.value, receipt.alpha(self.currency), self.source[1]["name"],
                                             title="Top-up")
        if answer is not True:
            return "amount" if answer == CANCEL else None
        return "send" if await confirm_owner(app, self.value, self.currency, WHAT) else "confirm"

    async def send(self, app):
        from terminal import errors, receipt

        account, named = self.source
        record = {"amount": self.value, "currency": self.currency, "name": named["name"]}
        about = "%s to %s from %s" % (self._money(self.value), WHAT, named["name"])
        app.ui.progress("Bank", "Topping up " + about)
        self.step = None  # sent or not, a lock from here on does not send it again
        topups = _journal()
        name = None
        try:
            up = await app.link.ready()
            key = up.next_key()
            name = record["key"] = key[0] + key[1]
            topups.queue(record)  # on flash before the 0200 (recover() reads it after a cut)
            answer = errors.answered(await self.exchange(up.top_up(account, self.value, self.card, self.currency,
                                                                   key)))
        except Exception as e:
            if name is not None:
                topups.done(name)  # declined, or its 0400 is the uplink's: nothing more to do here
            await receipt.failed(app, "Top-up", self.value, self.currency, WHAT, e, account=named["name"])
            return None
        return await self._credit(app, up, answer, topups, record)

    async def _credit(self, app, up, answer, topups, record):
        from terminal import errors, receipt

        self.critical = True  # the approval is carried to the card before anything else
        try:
            balance = load(app.vault, up, answer, topups, record)
            if balance is None:
                await up.reverse(answer)  # queued (06) before it is sent, sent until answered
                topups.done(record["key"])
        finally:
            self.critical = False
        if balance is None:
            await receipt.failed(app, "Top-up", self.value, self.currency, WHAT, errors.Failure(
                errors.FAILED, "The card could not take it: the top-up is being cancelled at the bank."),
                account=record["name"])
            return None
        _history(app, record, _CREDITED, answer.rrn or "")
        await app.ui.message("Topped up", "%s. The card now holds %s. Bank reference %s." % (
            receipt.summary("Top-up", self.value, self.currency, WHAT, account=record["name"]), self._money(balance),
            answer.rrn), timeout_ms=30_000)
        return None


def load(vault, up, answer, topups, record):
    """Put an approved top-up (answer: the Uplink's, its reversal armed) on the card, then drop
    its reversal and its record, each on flash before the next: the card's new balance. None if
    the card cannot take it (its state broken, the flash failing): nothing done, the caller
    reverses it."""
    from vault.crypto import wipe

    applet, key = _applet(vault)
    try:
        if applet is None:
            return None
        balance = applet.credit(record["amount"], record["key"].encode())
    except (OSError, ValueError):  # the card did not change
        return None
    finally:
        wipe(key)
    up.completed(answer)
    topups.done(record["key"])
    return balance
