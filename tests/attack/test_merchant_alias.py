"""Attacks on the payment identifier through the merchant API (issue 21 part 4): a merchant (or
whoever holds a merchant key) guessing aliases, pushing to one its owner retired, or to an alias
another bank issued, or trying to learn a device's serial from an alias. Each gets the one
answer an unknown identifier gets (404, the same words), no row and no push; a typo is a 400.
"""

import asyncio
import json

import pytest

from tests.host import bankfix
from tools.bank import alias as aliases

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")
GUESSES = 150


class Handheld:
    """PT000001 signed on in a loop of the test's own: its alias, and what was pushed to it."""

    def __init__(self, bank, serial="PT000001"):
        self.loop = asyncio.new_event_loop()
        self.t = self.loop.run_until_complete(self._open(bank, serial))

    async def _open(self, bank, serial):
        t = await bankfix.terminal(bank.state, bank.address, serial)
        await t.sign_on()
        return t

    def alias(self, new=False):
        answer = self.loop.run_until_complete(self.t.request("0200", {"3": "910000" if new else "900000"}))
        assert answer["39"] == "00" and answer["48"].startswith("ALIAS=")
        return answer["48"][len("ALIAS="):]

    def pushed(self):
        """The 0600s that reached it (after a moment for one on its way)."""
        self.loop.run_until_complete(asyncio.sleep(0.3))
        out = []
        while not self.t.pushes.empty():
            out.append(self.t.pushes.get_nowait())
        return out

    def close(self):
        self.loop.run_until_complete(self.t.close())
        self.loop.close()


@pytest.fixture
def handheld(bank):
    h = Handheld(bank)
    yield h
    h.close()


def push(bank, alias, order):
    return bankfix.api(bank, "POST", "/payment-requests", {"alias": alias, "order": order, "amount": 100,
                                                           "currency": "978"})


def unknown(answer, alias):
    """The 404 of an unknown identifier, its words with the alias taken out (to compare)."""
    status, body = answer
    assert status == 404, answer
    return body["error"].replace(alias, "<alias>")


def test_guessed_aliases_all_get_the_unknown_answer_and_push_nothing(bank, handheld):
    live = handheld.alias()
    words = set()
    for i in range(GUESSES):
        guess = aliases.new()
        if guess == live:
            continue  # one chance in 2**34
        words.add(unknown(push(bank, guess, "G-%d" % i), guess))
    assert words == {"no handheld has the identifier <alias> now"}
    assert handheld.pushed() == [] and bank.state.ledger.dump()["payment_requests"] == []
    # The live one works: the guesses cost the owner nothing.
    assert push(bank, live, "G-live")[0] == 201 and len(handheld.pushed()) == 1


def test_a_retired_alias_answers_as_one_never_issued(bank, handheld):
    old = handheld.alias()
    new = handheld.alias(new=True)
    never = aliases.new()
    assert unknown(push(bank, old, "R-1"), old) == unknown(push(bank, never, "R-2"), never)
    assert handheld.pushed() == [] and bank.state.ledger.dump()["payment_requests"] == []
    assert push(bank, new, "R-3")[0] == 201 and len(handheld.pushed()) == 1


def test_an_alias_of_another_banks_device_reaches_nothing_here(bank, handheld, tmp_path):
    # Bank B has a device of the same serial; the alias it gave that device means nothing to A.
    other = bankfix.make_state(tmp_path / "bank-b", "sqlite:///%s" % (tmp_path / "bank-b.db"))
    try:
        theirs = aliases.new()
        with other.ledger.db.transaction():
            other.ledger.give_alias("PT000001", theirs)
        assert other.ledger.device_by_alias(theirs) == "PT000001"
    finally:
        other.close()
    mine = handheld.alias()
    assert theirs != mine
    assert unknown(push(bank, theirs, "B-1"), theirs) == "no handheld has the identifier <alias> now"
    assert handheld.pushed() == []


def test_typos_and_ambiguous_bodies_are_400_and_the_serial_never_shows(bank, handheld):
    live = handheld.alias()
    typo = live[:3] + aliases.ALPHABET[(aliases.ALPHABET.index(live[3]) + 1) % 31] + live[4:]
    for bad in (typo, live[:7], live + "2", live.replace(live[0], "0"), "PT000001", 12345678, None):
        status, body = push(bank, bad, "T-1")
        assert status == 400 and "alias" in body["error"], (bad, body)
    both = bankfix.api(bank, "POST", "/payment-requests", {"alias": live, "device": "PT000001", "order": "T-2",
                                                           "amount": 1, "currency": "978"})
    assert both[0] == 400
    # An alias of a device that is not signed on: 409, naming the alias, not the serial.
    away = Handheld(bank, "PT000002")
    try:
        theirs = away.alias()
    finally:
        away.close()
    status, body = push(bank, theirs, "T-3")
    assert status == 409 and theirs in body["error"] and "PT000002" not in json.dumps(body)
    status, req = push(bank, live, "T-4")
    assert status == 201 and "PT000001" not in json.dumps(req)
    assert "PT000001" not in json.dumps(bankfix.api(bank, "GET", "/payment-requests/" + req["id"])[1])
    assert handheld.pushed()[0]["37"] == req["id"]
