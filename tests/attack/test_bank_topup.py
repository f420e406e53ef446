"""Attacks on top-ups (0200, processing code 920000; issue 21 part 1), on SQLite and PostgreSQL:
loading a transit card from an account not bound to the device (another device's, a payee's, one
that does not exist), in another currency, with amounts of zero, below zero, not digits, or past
what a card holds, a DE48 that is not a card, and a top-up replayed byte for byte. Each is
refused and moves no money.
"""

import asyncio

import pytest

from tests.host import bankfix

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")

CARD = "8F3A00C2D4E5F601"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def money(bank):
    led = bank.state.ledger
    return tuple(led.account(a)["balance"] for a in ("ALICE", "BOB", "CAROL", "USD1", "TRANSIT", "CLEARING"))


def fields(account, amount, card=CARD, currency="978"):
    return {"3": "920000", "4": amount if isinstance(amount, str) else "%012d" % amount, "48": "CARD=" + card,
            "49": currency, "102": account}


def test_no_top_up_from_an_account_that_is_not_the_owners_nor_of_a_wrong_amount(bank):
    async def go():
        t = await bankfix.reconnect(bank.state, bank.address)
        before = money(bank)
        answers = {
            "another device's account": await t.top_up("USD1", 100, currency="840"),
            "a payee's account": await t.top_up("CAROL", 100),
            "no such account": await t.top_up("MALLORY", 100),
            "another currency": await t.top_up("ALICE", 100, currency="840"),
            "zero": await t.top_up("ALICE", 0),
            "past a card's maximum": await t.top_up("ALICE", 15001),
            "past any amount": await t.top_up("ALICE", 999_999_999_999),
            "negative": await t.request("0200", fields("ALICE", "-00000000100")),
            "not digits": await t.request("0200", fields("ALICE", "0000000001x0")),
            "no card": await t.request("0200", dict(fields("ALICE", 100), **{"48": "ORD=1"})),
            "a card id not hex": await t.request("0200", fields("ALICE", 100, card="8F3A00C2D4E5F6ZZ")),
        }
        after = money(bank)
        await t.close()
        # The other device, naming the first one's account.
        other = await bankfix.reconnect(bank.state, bank.address, "PT000002")
        answers["an account of another device"] = await other.top_up("ALICE", 100)
        await other.close()
        return before, after, answers
    before, after, answers = run(go())
    assert {k: a["39"] for k, a in answers.items()} == {
        "another device's account": "57", "a payee's account": "57", "no such account": "57",
        "another currency": "57", "zero": "13", "past a card's maximum": "13", "past any amount": "13",
        "negative": "30", "not digits": "30", "no card": "30", "a card id not hex": "30",
        "an account of another device": "57"}
    assert after == before and money(bank) == before


def test_a_replayed_top_up_is_refused_and_moves_nothing(bank):
    async def go():
        t = await bankfix.reconnect(bank.state, bank.address)
        raw, doc, _ = t.build("0200", fields("ALICE", 2500))
        first = await t.send_raw(raw, "0210", doc["11"])
        loaded = money(bank)
        copy = await t.send_raw(raw, "0210", doc["11"])      # byte for byte: its KSN is used
        # A 0400 of it played twice: undone once.
        undo, undo_doc, _ = t.build("0400", {"3": "920000", "4": doc["4"], "49": "978",
                                             "90": "0200" + doc["11"] + doc["7"] + "0" * 22})
        undone = await t.send_raw(undo, "0410", undo_doc["11"])
        again = await t.send_raw(undo, "0410", undo_doc["11"])
        await t.close()
        return first, loaded, copy, undone, again
    first, loaded, copy, undone, again = run(go())
    assert (first["39"], copy["39"], undone["39"], again["39"]) == ("00", "63", "00", "63")
    assert loaded[0] == 100000 - 2500 and loaded[4] == 2500
    assert money(bank)[0] == 100000 and money(bank)[4] == 0
