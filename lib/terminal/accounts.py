"""The owner's bound accounts: which there are, the balance of one, a transfer between them or
to a saved payee, and the owner's confirmation that every payment from them needs.

An account is bound in the vault (vault.bind_account) with a JSON record:
    {"name": "Current account", "role": "owner" | "payee", "currency": "978", "default": true}
"""

import json

from terminal import errors, receipt
from terminal.app import Operation
from ui.screens import CANCEL, TIMEOUT, format_amount

OWNER = "owner"
PAYEE = "payee"


def bound(vault, role=None):
    """[(account id, record)] of the accounts bound to this terminal (of the role given), the
    default account first."""
    accounts = []
    for account_id in vault.accounts():
        record = json.loads(vault.account(account_id)[0])
        if role is None or record.get("role") == role:
            accounts.append((account_id, record))
    accounts.sort(key=lambda a: not a[1].get("default"))
    return accounts


async def confirm_owner(app, amount, currency, payee):
    """The owner confirms paying amount (minor units) to payee: the fingerprint when the sensor
    and the vault's policy allow it, else the PIN ("Confirm with PIN"), each screen showing what
    is paid to whom. True if confirmed (ui.fingerprint.confirm_owner, which the shop
    confirmation of lib/nfc/confirm uses too)."""
    from ui import fingerprint

    return await fingerprint.confirm_owner(app.ui, app.session, app.sensor, prompt="Your PIN to pay",
                                           payment=(format_amount(amount, receipt.alpha(currency)), payee))


async def _choose(app, title, accounts):
    answer = await app.ui.menu(title, [record["name"] for _, record in accounts])
    return None if answer in (CANCEL, TIMEOUT) else accounts[answer]


class Balance(Operation):
    """The balance of an owner account, as the bank has it now."""

    async def start(self, app):
        chosen = await _choose(app, "Balance", bound(app.vault, OWNER))
        if chosen is None:
            return None
        account_id, record = chosen
        app.ui.progress("Bank", "Asking for the balance of %s" % record["name"])
        try:
            up = await app.link.ready()
            currency, minor = errors.answered(await self.exchange(up.balance(account_id))).balance
        except Exception as e:
            await receipt.failed(app, "Balance", None, record.get("currency"), record["name"], e)
            return "start"
        await app.ui.message("Balance", "%s: %s" % (record["name"], format_amount(minor, receipt.alpha(currency))))
        return "start"


class Transfer(Operation):
    """From an owner account to another, or to a saved payee."""

    async def start(self, app):
        owners = bound(app.vault, OWNER)
        chosen = await _choose(app, "From", owners)
        if chosen is None:
            return None
        self.source = chosen
        return "to"

    async def to(self, app):
        others = [a for a in bound(app.vault, OWNER) if a[0] != self.source[0]] + bound(app.vault, PAYEE)
        chosen = await _choose(app, "To", others)
        if chosen is None:
            return "start"
        self.target = chosen
        return "amount"

    async def amount(self, app):
        from ui import entry

        amount = await entry.amount(app.ui, "Amount", receipt.alpha(self.source[1].get("currency", "978")))
        if amount in (CANCEL, TIMEOUT):
            return "to"
        self.value = amount
        return "confirm"

    async def confirm(self, app):
        currency = receipt.alpha(self.source[1].get("currency", "978"))
        answer = await app.ui.confirm_amount(self.target[1]["name"], self.value, currency, self.source[1]["name"],
                                             title="Transfer")
        if answer is not True:
            return "amount" if answer == CANCEL else None
        return "send" if await confirm_owner(app, self.value, currency, self.target[1]["name"]) else "confirm"

    async def send(self, app):
        (source, record), (target, payee) = self.source, self.target
        currency = record.get("currency", "978")
        app.ui.progress("Authorising", "Sending the transfer to the bank")
        self.step = None  # sent or not, a lock from here on does not send it again
        try:
            up = await app.link.ready()
            answer = errors.answered(await self.exchange(up.transfer(source, target, self.value, currency)))
        except Exception as e:
            await receipt.failed(app, "Transfer", self.value, currency, payee["name"], e, account=record["name"])
            return None
        await receipt.approved(app, "Transfer", self.value, currency, payee["name"], answer, account=record["name"])
        return None
