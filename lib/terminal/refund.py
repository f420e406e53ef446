"""Give back a payment from History: an approved purchase (this terminal was paid by a card) or
a paid request (the owner paid a merchant), named by the bank's reference (its RRN); a purchase
approved offline (terminal.offline) by its advice's DE11 + DE7 (History's reference for it),
once its advice has left the batch: the bank takes it only if it posted it.

The terminal does not choose between a void and a refund: it asks for the amount, and the bank
decides by its business day (tools/bank/PROTOCOL.md, "Voids, refunds and the business day"):
the day of the payment still open, a void (all of it, cancelled); after the bank's cut-over, a
refund (all or part of what is left). The answer says which, and History keeps it as an entry
of its own ("Void: Corner Bakery", "Refund: Purchase") whose reference names the payment's
("<its RRN> for <the payment's>").

    await app.perform(GiveBack(entry))      # terminal.app.History, for an eligible entry

Lazy: History imports this module when the owner asks, the app lets go of it after.
"""

from terminal import errors, receipt
from terminal.app import Operation
from ui.screens import CANCEL, TIMEOUT, format_amount

# What the bank's refusals mean here (the terminal's own words for a payment are about paying).
_NOTHING_LEFT = ("The bank says there is nothing to give back of this payment: it was voided, "
                 "reversed or refunded in whole already.")
_TOO_MUCH = ("The bank says this is more than is left of the payment. On the day of the payment "
             "only all of it can be given back.")
# 25 for an offline purchase: the bank has no advice of it from this terminal that it posted.
_NOT_POSTED = ("The bank has not taken this payment approved offline: it refused it when the terminal "
               "sent it, so nothing was paid, or has not received it yet.")


def _declined(rc):
    if rc == "12":
        return errors.Failure(errors.DECLINED, _NOTHING_LEFT, "Its statement shows what was given back.", rc=rc)
    if rc == "13":
        return errors.Failure(errors.DECLINED, _TOO_MUCH, "Give back less, or all of it.", rc=rc)
    if rc == "25":
        return errors.Failure(errors.DECLINED, _NOT_POSTED, "Its statement shows whether it was paid.", rc=rc)
    return errors.declined(rc)


class GiveBack(Operation):
    """Void or refund the payment of a History entry (terminal.history.Entry), confirmed by the
    owner as every payment is (fingerprint or PIN, ui.fingerprint.confirm_owner)."""

    def __init__(self, entry):
        super().__init__()
        self.entry = entry
        self.value = entry.amount

    async def start(self, app):
        e = self.entry
        answer = await app.ui.menu("Give back", ["All: " + format_amount(e.amount, e.currency), "Part of it"])
        if answer in (CANCEL, TIMEOUT):
            return None
        self.value = e.amount
        return "confirm" if answer == 0 else "amount"

    async def amount(self, app):
        from ui import entry

        amount = await entry.amount(app.ui, "Amount", self.entry.currency)
        if amount in (CANCEL, TIMEOUT):
            return "start"
        self.value = amount
        return "confirm"

    async def confirm(self, app):
        from ui import fingerprint

        e = self.entry
        # The pad says where the money goes: "€5.00 back to" / "Current account" (its "to").
        confirmed = await fingerprint.confirm_owner(app.ui, app.session, app.sensor, prompt="Your PIN to give back",
                                                    payment=(format_amount(self.value, e.currency) + " back",
                                                             e.card or None))
        return "send" if confirmed else None

    def _what(self):
        """"€5.00 by Corner Bakery to Current account" (a request: its merchant gives it back),
        "€5.00 to •••• 0010" (a purchase: this terminal does)."""
        e = self.entry
        text = format_amount(self.value, e.currency)
        if e.kind != "Purchase":
            text += " by " + e.counterparty
        return text + " to " + e.card if e.card else text

    def _record(self, app, kind, result, reference=""):
        """History's entry, written before the screen that tells it (terminal.receipt's rule):
        listed as "€5.00 Refund: Corner Bakery", beside the payment's "€20.00 Corner Bakery"."""
        from terminal.history import History

        e = self.entry
        History(app.vault).add(kind, self.value, e.currency, kind + ": " + e.counterparty, result, account=e.card,
                               reference=reference)

    async def send(self, app):
        e = self.entry
        app.ui.progress("Bank", "Asking the bank to give back " + format_amount(self.value, e.currency))
        self.step = None  # sent or not, a lock from here on does not send it again
        try:
            up = await app.link.ready()
            answer = await self.exchange(up.give_back(e.reference, self.value, receipt.numeric(e.currency),
                                                      e.result == receipt.OFFLINE))
            if not answer.approved:
                raise _declined(answer.rc)
        except Exception as x:
            f = errors.failure(x)
            self._record(app, "Refund", f.title.lower() + (" (%s)" % f.rc if f.rc else ""))
            await errors.show(app.ui, f, "Giving back " + self._what())
            return None
        # The bank's DE48: "VOID=<rrn>" or "REFUND=<rrn>" (the payment's).
        kind = "Void" if str(answer.fields.get(48, "")).startswith("VOID=") else "Refund"
        reference = "%s for %s" % (answer.rrn, e.reference)
        self._record(app, kind, "approved", reference)
        await app.ui.message("Voided" if kind == "Void" else "Refunded",
                             "Given back: %s. Bank reference %s." % (self._what(), reference), timeout_ms=30_000)
        return None
