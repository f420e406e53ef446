"""Every failure a cardholder can meet, each with its own screen and what to do next.

A flow raises a Failure of one of the kinds below (or lets an uplink or card error become one through `failure(e)`) and
the operation shows it with `await show(ui, f)`: one table of words for the whole terminal, so
that a declined payment reads the same from the card purchase, the pushed request and the
transfer.

    raise Failure(NO_NETWORK, "No Wi-Fi: the radio is off.")   # the kind's title and remedy
    try:
        answer = answered(await uplink.purchase(result, amount, pin=pin))
    except Exception as e:
        await show(app.ui, failure(e))
"""


# Each failure's words: (title, text, remedy), the text being the default the flow may replace
# with its own. Tuples, not a class per failure: constants of the frozen firmware take no heap,
# where sixteen exception classes held 2.8 KB of it through every flow.
FAILED = ("Something went wrong", "The operation did not complete.", "Try again.")
# The bank not reached, each way for what it is (terminal.link.ready() tells them apart):
# unreachable (no Wi-Fi, no route), timed out (the bank took the connection or the message and
# said nothing), refused (its host turned the connection away: down, or not serving), untrusted
# (its certificate did not verify: another server, possibly an attack).
NO_NETWORK = ("No network", "The terminal is not connected to the bank.",
              "Check that Wi-Fi is on and in range (Settings > Wi-Fi), then try again.")
BANK_TIMEOUT = ("No answer from the bank",
                "The bank did not answer in time. Nothing was charged: the payment is being cancelled.",
                "Try again in a moment.")
BANK_DOWN = ("Bank not available", "The bank's host refused the connection: it is down or not taking "
             "payments now. Nothing was sent.", "Try again in a few minutes; if it persists, call your bank.")
UNTRUSTED = ("Bank not trusted", "The bank's identity could not be checked, so nothing was sent.",
             "Check the network you are on; if it persists, call your bank.")
REVOKED = ("Terminal revoked", "Your bank has revoked this terminal: it no longer takes payments "
           "or reaches your accounts.", "Call your bank.")
NEEDS_SERVICE = ("Keys used up",
                 "This terminal has used all its transaction keys and cannot send any more payments.",
                 "Bring it to your bank to have new keys put in.")
REVERSALS_WAITING = ("Payments on hold",
                     "The terminal holds as many cancelled payments as it can until the bank confirms them, "
                     "so it starts no new one. Nothing was charged.",
                     "Stay connected (Settings > Wi-Fi): they go to the bank as soon as it answers. If it persists, "
                     "call your bank.")
# The bank away and the payment beyond what the terminal may approve without it (terminal.offline).
OFFLINE_LIMIT = ("Bank needed", "The bank cannot be reached, and this payment is more than the terminal may approve "
                 "without it; nothing was charged.", "Try again when the bank is back, or pay with a smaller amount.")
DECLINED = ("Declined", "The bank declined the payment.", "Pay with another card or account.")
WRONG_PIN = ("Wrong PIN", "The card's PIN was not right; nothing was charged.",
             "Try again with the right PIN. Too many wrong PINs block the card.")
CARD_BLOCKED = ("Card blocked", "This card is blocked.", "Call the bank that issued it; pay with another card or account.")
CARD_REMOVED = ("Card removed", "The card was taken away before the payment finished; nothing was charged.",
                "Insert the card and leave it in until the terminal says so, or hold it still on the back.")
CARD_UNREADABLE = ("Card not readable", "The terminal could not read this card.",
                   "Insert it again, chip first and face up, or try another card.")
REQUEST_EXPIRED = ("Request expired", "The merchant's payment request has expired; nothing was paid.",
                   "Ask the merchant to send it again.")
TRY_ANOTHER_INTERFACE = ("Insert the card", "This payment cannot be made contactless (the card, or the amount).",
                         "Insert the card into the slot instead.")
# Settings > Wi-Fi: joining another network (the terminal stays on the one it was on).
WRONG_PASSWORD = ("Wrong password", "The network did not accept the password.",
                  "Check it (capitals count) and try again; the terminal stays on its previous network.")
NETWORK_NOT_FOUND = ("Network not found", "The network no longer answers.",
                     "Move closer to its access point or check that it is on, then choose it again.")
NOT_JOINED = ("Not connected", "The network did not let the terminal in.",
              "Try again; if it persists, restart the access point.")


class Failure(Exception):
    """A failure with its screen: its `kind` (one of the tuples above), its `title`, the text
    (the exception's message, else the kind's) and the `remedy`, what the owner can do about
    it; `rc`, the bank's response code of a decline (None otherwise)."""

    def __init__(self, kind=FAILED, text=None, remedy=None, rc=None):
        super().__init__(text or kind[1])
        self.kind = kind
        self.remedy = remedy if remedy is not None else kind[2]
        self.rc = rc

    @property
    def title(self):
        return self.kind[0]

    @property
    def message(self):
        return self.args[0]


# The bank's response codes (tools/bank/PROTOCOL.md) as the owner reads them: (code, which
# kind: 0 DECLINED, 1 WRONG_PIN, 2 CARD_BLOCKED, 3 BANK_TIMEOUT, the text: None for the kind's).
# A code not listed is a plain decline with its number.
_DECLINES = (
    ("05", 0, "The bank declined the payment."),
    ("12", 0, "The bank says this transaction is not valid (the request may be paid, refused or expired)."),
    ("13", 0, "The bank says the amount is not right."),
    ("14", 0, "The bank does not know this card."),
    ("51", 0, "Not enough money in the account."),
    ("54", 0, "The card has expired."),
    ("55", 1, None),
    ("57", 0, "The bank does not allow this transaction from this terminal."),
    ("75", 2, "Too many wrong PINs: the card is blocked."),
    ("91", 3, "The bank's systems are not available; nothing was charged."),
    ("96", 3, "The bank's systems are not available; nothing was charged."),
)


def declined(rc):
    """The failure for a response code other than 00 (a decline's carries the code; the bank
    not available is no decline)."""
    for code, kind, text in _DECLINES:
        if code == rc:
            break
    else:
        kind, text = 0, "The bank declined the payment (code %s)." % rc
    if kind == 3:
        return Failure(BANK_TIMEOUT, text)
    return Failure((DECLINED, WRONG_PIN, CARD_BLOCKED)[kind], text, rc=rc)


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

    if isinstance(e, uplink.Refused):
        return Failure(BANK_DOWN)
    if isinstance(e, uplink.NotConnected):
        return Failure(NO_NETWORK)
    if isinstance(e, uplink.Unanswered):
        return Failure(BANK_TIMEOUT)
    if isinstance(e, uplink.NeedsProvisioning):
        return Failure(NEEDS_SERVICE)
    if isinstance(e, uplink.Revoked):
        return Failure(REVOKED)
    if isinstance(e, uplink.JournalFull):
        return Failure(REVERSALS_WAITING)
    if isinstance(e, (uplink.CertificateError, uplink.TlsError)):
        return Failure(UNTRUSTED)
    from emv import EmvError

    if isinstance(e, EmvError):
        return Failure(CARD_UNREADABLE)
    return Failure(FAILED, "%s (%s)." % (FAILED[1][:-1], type(e).__name__))


async def show(ui, f, about=None):
    """The failure's screen (about: what failed, said before the failure's text, e.g. "€12.50
    to Corner Bakery from Current account"); returns when the owner has read it (OK) or after
    its timeout."""
    await ui.message(f.title, "%s. %s" % (about, f.message) if about else f.message, remedy=f.remedy, error=True)
