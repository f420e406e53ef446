"""Every failure a cardholder can meet, each with its own screen and what to do next.

A flow raises a Failure (or lets an uplink or card error become one through `failure(e)`) and
the operation shows it with `await show(ui, f)`: one table of words for the whole terminal, so
that a declined payment reads the same from the card purchase, the pushed request and the
transfer.

    try:
        answer = answered(await uplink.purchase(result, amount, pin=pin))
    except Exception as e:
        await show(app.ui, failure(e))
"""


class Failure(Exception):
    """A failure with its screen: `title`, the text (the exception's message, else `text`) and
    the `remedy`, what the owner can do about it."""

    title = "Something went wrong"
    text = "The operation did not complete."
    remedy = "Try again."

    def __init__(self, text=None, remedy=None):
        super().__init__(text or self.text)
        if remedy is not None:
            self.remedy = remedy

    @property
    def message(self):
        return self.args[0]


class NoNetwork(Failure):
    title = "No network"
    text = "The terminal is not connected to the bank."
    remedy = "Check that Wi-Fi is on and in range (Settings > Wi-Fi), then try again."


class BankTimeout(Failure):
    title = "No answer from the bank"
    text = "The bank did not answer in time. Nothing was charged: the payment is being cancelled."
    remedy = "Try again in a moment."


class BankRefused(Failure):
    title = "Bank not trusted"
    text = "The bank's identity could not be checked, so nothing was sent."
    remedy = "Check the network you are on; if it persists, call your bank."


class NeedsService(Failure):
    title = "Keys used up"
    text = "This terminal has used all its transaction keys and cannot send any more payments."
    remedy = "Bring it to your bank to have new keys put in."


class ReversalsWaiting(Failure):
    title = "Payments on hold"
    text = ("The terminal holds as many cancelled payments as it can until the bank confirms them, "
            "so it starts no new one. Nothing was charged.")
    remedy = "Stay connected (Settings > Wi-Fi): they go to the bank as soon as it answers. If it persists, call your bank."


class Declined(Failure):
    title = "Declined"
    text = "The bank declined the payment."
    remedy = "Pay with another card or account."

    def __init__(self, text=None, remedy=None, rc=None):
        super().__init__(text, remedy)
        self.rc = rc


class WrongPin(Declined):
    title = "Wrong PIN"
    text = "The card's PIN was not right; nothing was charged."
    remedy = "Try again with the right PIN. Too many wrong PINs block the card."


class CardBlocked(Declined):
    title = "Card blocked"
    text = "This card is blocked."
    remedy = "Call the bank that issued it; pay with another card or account."


class CardRemoved(Failure):
    title = "Card removed"
    text = "The card was taken away before the payment finished; nothing was charged."
    remedy = "Insert the card and leave it in until the terminal says so, or hold it still on the back."


class CardUnreadable(Failure):
    title = "Card not readable"
    text = "The terminal could not read this card."
    remedy = "Insert it again, chip first and face up, or try another card."


class RequestExpired(Failure):
    title = "Request expired"
    text = "The merchant's payment request has expired; nothing was paid."
    remedy = "Ask the merchant to send it again."


class TryAnotherInterface(Failure):
    title = "Insert the card"
    text = "This card cannot pay contactless here."
    remedy = "Insert it into the slot instead."



# Settings > Wi-Fi: joining another network (the terminal stays on the one it was on).
class WrongPassword(Failure):
    title = "Wrong password"
    text = "The network did not accept the password."
    remedy = "Check it (capitals count) and try again; the terminal stays on its previous network."


class NetworkNotFound(Failure):
    title = "Network not found"
    text = "The network no longer answers."
    remedy = "Move closer to its access point or check that it is on, then choose it again."


class NotJoined(Failure):
    title = "Not connected"
    text = "The network did not let the terminal in."
    remedy = "Try again; if it persists, restart the access point."

# The bank's response codes (tools/bank/PROTOCOL.md) as the owner reads them: code -> (failure
# class, text). A code not listed is a plain decline with its number.
_DECLINES = {
    "05": (Declined, "The bank declined the payment."),
    "12": (Declined, "The bank says this transaction is not valid (the request may be paid, refused or expired)."),
    "13": (Declined, "The bank says the amount is not right."),
    "14": (Declined, "The bank does not know this card."),
    "51": (Declined, "Not enough money in the account."),
    "54": (Declined, "The card has expired."),
    "55": (WrongPin, None),
    "57": (Declined, "The bank does not allow this transaction from this terminal."),
    "75": (CardBlocked, "Too many wrong PINs: the card is blocked."),
    "91": (BankTimeout, "The bank's systems are not available; nothing was charged."),
    "96": (BankTimeout, "The bank's systems are not available; nothing was charged."),
}


def declined(rc):
    """The failure for a response code other than 00."""
    cls, text = _DECLINES.get(rc, (Declined, "The bank declined the payment (code %s)." % rc))
    return cls(text, rc=rc) if issubclass(cls, Declined) else cls(text)


def answered(answer):
    """The answer when it approves, else raise the failure its response code names."""
    if not answer.approved:
        raise declined(answer.rc)
    return answer


def failure(e):
    """The Failure for an exception from a flow: itself if it is one, else what uplink's and
    the card's errors mean to the owner."""
    if isinstance(e, Failure):
        return e
    import uplink

    if isinstance(e, uplink.NotConnected):
        return NoNetwork()
    if isinstance(e, uplink.Unanswered):
        return BankTimeout()
    if isinstance(e, uplink.NeedsProvisioning):
        return NeedsService()
    if isinstance(e, uplink.JournalFull):
        return ReversalsWaiting()
    if isinstance(e, (uplink.CertificateError, uplink.TlsError)):
        return BankRefused()
    from emv import EmvError

    if isinstance(e, EmvError):
        return CardUnreadable()
    return Failure("%s (%s)." % (Failure.text[:-1], type(e).__name__))


async def show(ui, f, about=None):
    """The failure's screen (about: what failed, said before the failure's text, e.g. "€12.50
    to Corner Bakery from Current account"); returns when the owner has read it (OK) or after
    its timeout."""
    await ui.message(f.title, "%s. %s" % (about, f.message) if about else f.message, remedy=f.remedy, error=True)
