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

Both screens start with what was (or was not) paid, as the owner says it (summary()):
    Purchase  "€12.50 from card •••• 0010"          (this terminal is paid: no "to")
    Request   "€12.50 to Corner Bakery from Current account" / "... from card •••• 0010"
    Transfer  "€25.00 to Alice Martin from Current account"
then "Bank reference <RRN>." (approved) or the failure's own words (failed, under its title).
"""

from terminal import errors
from ui.screens import format_amount

# terminal.history (~0.9 KB of heap) is imported at the end, where a payment writes its entry:
# a card payment imports this module at its start (alpha), and its card reading is its peak.

# ISO 4217 numeric -> alphabetic, for the currencies ui.screens knows how to show.
_ALPHA = {"978": "EUR", "840": "USD", "826": "GBP", "756": "CHF", "392": "JPY"}


def alpha(currency):
    """The alphabetic code of a currency given either way ("978" -> "EUR", "EUR" -> "EUR")."""
    return _ALPHA.get(currency, currency)


def numeric(currency):
    """The ISO 4217 numeric code of a currency given either way ("EUR" -> "978"), as the bank
    speaks it (History keeps the alphabetic)."""
    for code, letters in _ALPHA.items():
        if currency in (code, letters):
            return code
    return currency


# History's result of an offline approval (terminal.offline): History marks it while its advice waits.
OFFLINE = "approved offline"

# Kinds whose payee is this terminal (its merchant account): the receipt names no "to".
_TO_THIS_TERMINAL = ("Purchase",)


def summary(kind, amount, currency, counterparty, card=None, account=None):
    """What a payment is, in the words of the owner (see the module's docstring)."""
    text = format_amount(amount, alpha(currency))
    if kind not in _TO_THIS_TERMINAL:
        text += " to " + counterparty
    from terminal.history import mask_pan

    masked = mask_pan(card) if card else ""
    paid_with = "card " + masked if masked else account
    return text + " from " + paid_with if paid_with else text


async def approved(app, kind, amount, currency, counterparty, answer, card=None, account=None):
    """Record the approved transaction (with the bank's RRN) and show "Approved"; approved
    offline (answer: a terminal.offline.Advice), "approved offline" with the advice's reference
    (its STAN and DE7), and "Approved offline"."""
    from terminal.history import History

    currency = alpha(currency)
    advice = getattr(answer, "key", None)
    reference = (answer.reference if advice else answer.rrn) or ""
    History(app.vault).add(kind, amount, currency, counterparty, OFFLINE if advice else "approved", card=card,
                           account=account, reference=reference)
    text = summary(kind, amount, currency, counterparty, card, account)
    if advice:
        text += ". Approved by the card; the bank is told when it can be reached"
    elif reference:
        text += ". Bank reference " + reference
    await app.ui.message("Approved offline" if advice else "Approved", text + ".", timeout_ms=30_000)


async def failed(app, kind, amount, currency, counterparty, e, card=None, account=None):
    """Record the failure (a balance inquiry's is not) and show its screen (errors.show), the
    payment's summary first. e: a Failure, or an uplink or card error that errors.failure()
    translates."""
    f = errors.failure(e)
    if kind == "Balance":
        await errors.show(app.ui, f)
        return
    from terminal.history import History

    rc = getattr(f, "rc", None)
    History(app.vault).add(kind, amount, alpha(currency), counterparty,
                           f.title.lower() + (" (%s)" % rc if rc else ""), card=card, account=account)
    await errors.show(app.ui, f, summary(kind, amount, currency, counterparty, card, account))
