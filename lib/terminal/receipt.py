"""The end of every payment: History first, then the screen the owner reads.

    answer = errors.answered(await uplink.pay_request(req, account="ACC-OWNER"))
    await receipt.approved(app, "Request", 1250, "978", "Corner Bakery", answer, account="Current account")
    await receipt.failed(app, "Purchase", 1250, "EUR", "Purchase", e, card=result.pan)

The entry is written before the first await: a flow that clears op.critical and calls these at
once cannot be locked in between (asyncio switches only where a task waits), so what the bank
did is always in History, even when a lock ends the result screen. A flow sets its next step
before calling (op.step = None): a lock on the result screen must not resume the payment.

currency: ISO 4217, numeric as the bank speaks it ("978") or alphabetic as screens show it.
card: the PAN (History keeps its last four digits); account: the bound account's name.
"""

from terminal import errors
from terminal.history import History, mask_pan
from ui.screens import format_amount

# ISO 4217 numeric -> alphabetic, for the currencies ui.screens knows how to show.
_ALPHA = {"978": "EUR", "840": "USD", "826": "GBP", "756": "CHF", "392": "JPY"}


def alpha(currency):
    """The alphabetic code of a currency given either way ("978" -> "EUR", "EUR" -> "EUR")."""
    return _ALPHA.get(currency, currency)


def _paid_with(card, account):
    return mask_pan(card) if card else (account or "")


async def approved(app, kind, amount, currency, counterparty, answer, card=None, account=None):
    """Record the approved transaction (with the bank's RRN) and show "Approved"."""
    currency = alpha(currency)
    reference = answer.rrn or ""
    History(app.vault).add(kind, amount, currency, counterparty, "approved", card=card, account=account,
                           reference=reference)
    text = "%s to %s" % (format_amount(amount, currency), counterparty)
    paid_with = _paid_with(card, account)
    if paid_with:
        text += " from " + paid_with
    if reference:
        text += ". Bank reference " + reference
    await app.ui.message("Approved", text + ".", timeout_ms=30_000)


async def failed(app, kind, amount, currency, counterparty, e, card=None, account=None):
    """Record the failure (a balance inquiry's is not) and show its screen (errors.show).
    e: a Failure, or an uplink or card error that errors.failure() translates."""
    f = errors.failure(e)
    if kind != "Balance":
        rc = getattr(f, "rc", None)
        History(app.vault).add(kind, amount, alpha(currency), counterparty,
                               f.title.lower() + (" (%s)" % rc if rc else ""), card=card, account=account)
    await errors.show(app.ui, f)
