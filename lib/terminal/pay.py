"""Paying what the bank pushed: a merchant's payment request (order, merchant, amount).

    PayRequest(request)   the request on screen ("Payment request"): Pay pays it from the
                          default bound account after the owner's fingerprint or PIN; Refuse
                          refuses it (0620: the merchant is told); Other way opens "Pay with":
                          another owner account, or "A card" (read on the spot, online PIN on
                          the keypad), Back there returning to the request. Back (or no answer)
                          leaves it waiting in the home menu's "Pay requests (N)".
    PayRequests()         that list of waiting requests, oldest first.

A request leaves the list when it is paid or refused, when it expires (the bank's deadline in
its 0600: terminal.link drops it; one opened as it expires says "Request expired", before
anything is sent), or when the bank says it is no longer payable (response code 12: paid,
refused or expired); after a decline for funds, a wrong PIN or no answer (the payment
reversed) it stays, to be paid another way or later.
"""

from terminal import errors, receipt
from terminal.accounts import OWNER, bound, confirm_owner
from terminal.app import Operation
from ui.screens import CANCEL, TIMEOUT, format_amount

GONE = "12"  # the bank's answer for a request no longer payable


class PayRequests(Operation):
    async def start(self, app):
        requests = list(app.link.requests)  # as listed: one may expire while the owner chooses
        if not requests:
            return None
        answer = await app.ui.menu("Pay requests", ["%s %s" % (format_amount(r.amount, receipt.alpha(r.currency)),
                                                               r.merchant) for r in requests])
        if answer in (CANCEL, TIMEOUT):
            return None
        await app.perform(PayRequest(requests[answer]))
        return "start"


class PayRequest(Operation):
    """One request; self.paying: (id, record) of the owner account chosen to pay it."""

    def __init__(self, request):
        super().__init__()
        self.request = request

    async def start(self, app):
        req = self.request
        if req.expired:
            return "expired"
        accounts = bound(app.vault, OWNER)
        default = accounts[0] if accounts and accounts[0][1].get("default") else None
        answer = await app.ui.confirm_amount(req.merchant, req.amount, receipt.alpha(req.currency),
                                             default[1]["name"] if default else None, title="Payment request",
                                             request=True)
        if req.expired:
            return "expired"  # while the owner read it
        if answer is True and default is not None:
            self.paying = default
            return "confirm"
        if answer == "refuse":
            return "refuse"
        # Pay with no default account chooses one; Back or no answer: it waits in "Pay requests (N)".
        return "choose" if answer is True or answer == "other" else None

    async def choose(self, app):
        accounts = bound(app.vault, OWNER)
        answer = await app.ui.menu("Pay with", [record["name"] for _, record in accounts] + ["A card"])
        if answer == TIMEOUT:
            return None  # waits in "Pay requests (N)"
        if answer == CANCEL:
            return "start"  # the request again, its answers with it
        if answer == len(accounts):
            return "card"
        self.paying = accounts[answer]
        return "confirm"

    async def confirm(self, app):
        req = self.request
        return "from_account" if await confirm_owner(app, req.amount, req.currency, req.merchant) else "start"

    async def expired(self, app):
        req = self.request
        self.step = None
        app.link.done(req)
        await receipt.failed(app, "Request", req.amount, req.currency, req.merchant, errors.Failure(errors.REQUEST_EXPIRED))
        return None

    async def _settle(self, app, pay):
        """await pay(uplink) and settle the outcome: what it returned (None: the owner gave up
        before anything was sent), or the Failure it raised. Once sent, a lock no longer
        resumes this operation (it is done), and the request leaves the list if paid or gone.
        A request that expired while the owner looked at it is not sent: RequestExpired."""
        try:
            if self.request.expired:
                raise errors.Failure(errors.REQUEST_EXPIRED)
            up = await app.link.ready()
            outcome = await pay(up)
        except Exception as e:
            outcome = errors.failure(e)
        if outcome is not None:
            self.step = None
            if not isinstance(outcome, errors.Failure) or getattr(outcome, "rc", None) == GONE \
                    or outcome.kind is errors.REQUEST_EXPIRED:
                app.link.done(self.request)
        return outcome

    async def _answered(self, exchange):
        return errors.answered(await self.exchange(exchange))

    async def from_account(self, app):
        req, (account_id, record) = self.request, self.paying
        app.ui.progress("Authorising", "Paying %s from %s" % (req.merchant, record["name"]))
        answer = await self._settle(app, lambda up: self._answered(up.pay_request(req, account=account_id)))
        if isinstance(answer, errors.Failure):
            await receipt.failed(app, "Request", req.amount, req.currency, req.merchant, answer, account=record["name"])
        else:
            await receipt.approved(app, "Request", req.amount, req.currency, req.merchant, answer,
                                   account=record["name"])
        return None

    async def card(self, app):
        from terminal.card import pay_by_card

        req = self.request
        read = []  # the card's result once it goes online: its PAN for the failure's receipt

        def paying(up):
            def online(result, pin):
                read.append(result)
                return up.pay_request(req, card=result, pin=pin)

            return pay_by_card(app, self, req.amount, req.currency, online, payee=req.merchant)

        paid = await self._settle(app, paying)
        if paid is None:
            return "choose"  # no card after all
        if isinstance(paid, errors.Failure):
            await receipt.failed(app, "Request", req.amount, req.currency, req.merchant, paid,
                                 card=read[0].pan if read else None)
        else:
            answer, result = paid
            await receipt.approved(app, "Request", req.amount, req.currency, req.merchant, answer, card=result.pan)
        return None

    async def refuse(self, app):
        from terminal.history import History

        req = self.request
        app.ui.progress("Refusing", "Telling %s you will not pay" % req.merchant)
        answer = await self._settle(app, lambda up: self._answered(up.refuse_request(req)))
        if isinstance(answer, errors.Failure):
            await errors.show(app.ui, answer)
            return None
        History(app.vault).add("Request", req.amount, receipt.alpha(req.currency), req.merchant, "refused",
                               reference=req.id)
        await app.ui.message("Refused", "%s was told you will not pay %s." % (
            req.merchant, format_amount(req.amount, receipt.alpha(req.currency))), timeout_ms=30_000)
        return None
