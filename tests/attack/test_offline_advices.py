"""Attacks on offline advices (issue 21 part 3), at the bank: a forged TC, an ARQC passed off as a
TC, a TC made for another amount, the same TC replayed in a new advice, the advice's own bytes
played again, and advices beyond the offline cap. Each is refused and moves no money; the one
genuine advice among them is posted once.
"""

import asyncio

import pytest

from tests.host import bankfix
from tools.bank.host import OFFLINE_CAP

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")


@pytest.fixture
def bank(tmp_path):
    host = bankfix.BankThread(bankfix.make_state(tmp_path, "sqlite:///%s" % (tmp_path / "bank.db")))
    yield host
    host.stop()


def money(bank):
    return tuple(bank.state.ledger.account(a)["balance"] for a in ("ALICE", "SHOP", "CLEARING"))


def test_forged_replayed_and_beyond_the_cap_advices_move_no_money(bank):
    card = bankfix.make_card()

    async def go():
        t = await bankfix.reconnect(bank.state, bank.address)
        answers = {}
        forged = card.icc_data(1000, cid=0x40)
        forged[0x9F26] = bytes(b ^ 0x01 for b in forged[0x9F26])
        answers["a TC that does not verify"] = await t.advice(card, 1000, tags=forged)
        answers["an ARQC as a TC"] = await t.advice(card, 1000, tags=card.icc_data(1000, cid=0x80))
        answers["a TC of another amount"] = await t.advice(card, 4000, tags=card.icc_data(400, cid=0x40))
        answers["beyond the cap"] = await t.advice(card, OFFLINE_CAP + 1)
        answers["far beyond the cap"] = await t.advice(card, 999_999_999_999)
        before = money(bank)
        genuine = card.icc_data(1000, cid=0x40)
        raw, doc, _ = t.purchase_message(card, 1000, tags=genuine, mti="0220")
        posted = await t.send_raw(raw, "0230", doc["11"])
        answers["the same TC in a new advice"] = await t.advice(card, 1000, tags=genuine)
        # The advice's own bytes again: its KSN is used already.
        answers["its bytes played again"] = await t.send_raw(raw, "0230", doc["11"])
        await t.close()
        return answers, before, posted
    answers, before, posted = asyncio.run(asyncio.wait_for(go(), 60))
    assert {k: a["39"] for k, a in answers.items()} == {
        "a TC that does not verify": "05", "an ARQC as a TC": "12", "a TC of another amount": "13",
        "beyond the cap": "13", "far beyond the cap": "13", "the same TC in a new advice": "94",
        "its bytes played again": "63"}
    assert before == (100000, 0, 0)                     # nothing of the refused ones was posted
    assert posted["39"] == "00"
    assert money(bank) == (100000 - 1000, 1000, 0)      # the genuine one, once
