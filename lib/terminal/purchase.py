"""Card purchase (reader mode): the owner types the amount, the customer inserts or taps a card
(terminal.card), the bank authorises it for this terminal's merchant account, the receipt.

Steps: "start" (the amount) then "card". A lock while waiting for the card or on a PIN pad
resumes at "card" (the card is asked for again; nothing was sent); once the bank has been
asked, the operation is over (step None) before the result screen.
"""

from terminal import errors, receipt
from terminal.app import Operation
from ui.screens import CANCEL, TIMEOUT

KIND = "Purchase"
COUNTERPARTY = "Purchase"  # what History lists beside the amount (the shop is this terminal)


def _currency(app):
    """The bank's currency for this terminal (ISO 4217 numeric), the uplink's default without one."""
    up = app.link.uplink
    return up.currency if up is not None else "978"


class Purchase(Operation):
    def __init__(self):
        super().__init__()
        self.amount = 0

    async def start(self, app):
        from ui import entry

        amount = await entry.amount(app.ui, "Amount", receipt.alpha(_currency(app)))
        if amount in (CANCEL, TIMEOUT):
            return None
        self.amount = amount
        return "card"

    async def card(self, app):
        from terminal.card import pay_by_card

        amount, currency = self.amount, _currency(app)
        read = []  # the card's result once it goes online: its PAN for History

        async def online(result, pin):
            read.append(result)
            up = await app.link.ready()  # (a pin not taken here is wiped by pay_by_card)
            return await up.purchase(result, amount, currency, pin=pin)

        try:
            paid = await pay_by_card(app, self, amount, currency, online, offline=True)
        except errors.Failure as f:
            self.step = None
            await receipt.failed(app, KIND, amount, currency, COUNTERPARTY, f, card=read[0].pan if read else None)
            return None
        if paid is None:
            return None  # cancelled: nothing was charged
        answer, result = paid
        self.step = None
        await receipt.approved(app, KIND, amount, currency, COUNTERPARTY, answer, card=result.pan)
        return None
