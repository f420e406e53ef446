"""Attacks on the bank's card checks (issue 17): a genuine ARQC is good for the transaction the
card made it for, once. A cryptogram made for EUR 1.00 must not approve EUR 900.00, nor another
currency, nor on another day; the same DE55 in new 0200s (a replay), or an ATC lower than one
the bank has seen (a clone, or a replay of an older cryptogram), must be declined.
"""

import asyncio
import datetime

import pytest

from tests.host import bankfix

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def send(bank, build):
    """Sign on, send the 0200s that build(terminal, card) makes: their answers' (DE39, ARPC ok)."""
    async def go():
        t = await bankfix.terminal(bank.state, bank.address)
        await t.sign_on()
        out = []
        for raw, doc, _ in build(t, bankfix.make_card()):
            out.append((await t.send_raw(raw, "0210", doc["11"]))["39"])
        await t.close()
        return out
    return run(go())


def alice(bank):
    return bank.state.ledger.account("ALICE")["balance"]


def test_a_cryptogram_for_1_eur_does_not_approve_900(bank):
    rcs = send(bank, lambda t, card: [t.purchase_message(card, 90000, pin="1234", tags=card.icc_data(100))])
    assert rcs == ["13"] and alice(bank) == 100000 and bank.state.ledger.postings() == []


def test_a_cryptogram_for_another_currency_is_refused(bank):
    def build(t, card):
        card.currency = "840"
        try:
            tags = card.icc_data(100)
        finally:
            card.currency = "978"
        return [t.purchase_message(card, 100, pin="1234", tags=tags)]
    assert send(bank, build) == ["13"] and alice(bank) == 100000


def test_a_cryptogram_of_another_day_is_refused(bank):
    old = datetime.date.today() - datetime.timedelta(days=3)
    rcs = send(bank, lambda t, card: [t.purchase_message(card, 100, pin="1234", tags=card.icc_data(100, today=old))])
    assert rcs == ["12"] and alice(bank) == 100000


def test_the_same_de55_in_three_new_0200s_is_approved_once(bank):
    def build(t, card):
        tags = card.icc_data(500)
        return [t.purchase_message(card, 500, pin="1234", tags=tags) for _ in range(3)]
    assert send(bank, build) == ["00", "05", "05"]
    assert alice(bank) == 100000 - 500 and len(bank.state.ledger.postings()) == 2


def test_a_lower_atc_is_refused(bank):
    def build(t, card):
        first = t.purchase_message(card, 200, pin="1234")
        card.atc -= 2            # a clone of the card as it was two transactions ago
        return [first, t.purchase_message(card, 200, pin="1234")]
    assert send(bank, build) == ["00", "05"]
    assert alice(bank) == 100000 - 200
