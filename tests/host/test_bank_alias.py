"""The payment identifier at the bank (issue 21 part 4): the alias a device asks for (0200/900000)
and rotates (0200/910000), kept in the ledger on SQLite and PostgreSQL, and the merchant API
pushing a request to it. The attacks on it are in tests/attack/test_merchant_alias.py.
"""

import asyncio
import datetime

import pytest

from tests.host import bankfix
from tests.host.test_bank_flows import bank, postgres, run, signed_on  # noqa: F401 (fixtures)
from tools.bank import alias as aliases

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")


def alias_in(answer):
    assert answer["39"] == "00" and answer["mac_ok"], answer
    assert answer["48"].startswith("ALIAS=")
    return answer["48"][len("ALIAS="):]


def test_the_check_character_catches_every_single_typo_and_every_swap():
    for _ in range(50):
        alias = aliases.new()
        assert len(alias) == 8 and aliases.parse(alias) == alias
        assert aliases.parse(" pocket:%s-%s " % (alias[:4].lower(), alias[4:])) == alias
        for i in range(8):
            for c in aliases.ALPHABET:
                if c != alias[i]:
                    assert aliases.parse(alias[:i] + c + alias[i + 1:]) is None
            for j in range(i + 1, 8):
                if alias[i] != alias[j]:
                    swapped = list(alias)
                    swapped[i], swapped[j] = swapped[j], swapped[i]
                    assert aliases.parse("".join(swapped)) is None
    # No look-alikes: 0/O and 1/I/L are not in the alphabet, so no alias has them.
    assert not set("01OIL") & set(aliases.ALPHABET) and len(set(aliases.ALPHABET)) == 31
    assert aliases.parse("PT000001") is None and aliases.parse("4761739001010010") is None


def test_an_alias_is_given_once_kept_and_rotated_and_the_old_one_retired(bank):
    async def go():
        t = await signed_on(bank)
        first = alias_in(await t.request("0200", {"3": "900000"}))
        again = alias_in(await t.request("0200", {"3": "900000"}))
        # A rotation sent twice (the same STAN and DE7, as a device's repeat) rotates once.
        when = datetime.datetime.now(datetime.timezone.utc)
        raw, doc, _ = t.build("0200", {"3": "910000"}, when=when)
        new = alias_in(await t.send_raw(raw, "0210", doc["11"]))
        raw, _, _ = t.build("0200", {"3": "910000"}, stan=doc["11"], when=when)   # under its next KSN
        repeat = alias_in(await t.send_raw(raw, "0210", doc["11"]))
        now = alias_in(await t.request("0200", {"3": "900000"}))
        other = await signed_on(bank, "PT000002")
        others = alias_in(await other.request("0200", {"3": "900000"}))
        await t.close()
        await other.close()
        return first, again, new, repeat, now, others
    first, again, new, repeat, now, others = run(go())
    assert aliases.parse(first) == first and first == again
    assert new != first and repeat == now == new and aliases.parse(new) == new
    led = bank.state.ledger
    assert led.device_by_alias(first) is None and led.device_by_alias(new) == "PT000001"
    assert led.device_by_alias(others) == "PT000002" and others not in (first, new)
    assert [a for a, status in led.aliases("PT000001") if status == "active"] == [new]
    assert first in [a for a, status in led.aliases("PT000001") if status == "retired"]


def test_a_merchant_pushes_to_the_alias_and_never_sees_the_serial(bank):
    async def go():
        t = await signed_on(bank)
        alias = alias_in(await t.request("0200", {"3": "900000"}))
        status, req = await asyncio.to_thread(bankfix.api, bank, "POST", "/payment-requests", {
            "alias": "pocket:" + alias.lower(), "order": "Q-1", "amount": 700, "currency": "978"})
        assert status == 201, req
        push = await asyncio.wait_for(t.pushes.get(), 10)
        paid = await t.pay_request(push, "ALICE")
        rotated = alias_in(await t.request("0200", {"3": "910000"}))
        old = await asyncio.to_thread(bankfix.api, bank, "POST", "/payment-requests", {
            "alias": alias, "order": "Q-2", "amount": 700, "currency": "978"})
        fresh = await asyncio.to_thread(bankfix.api, bank, "POST", "/payment-requests", {
            "alias": rotated, "order": "Q-3", "amount": 701, "currency": "978"})
        push3 = await asyncio.wait_for(t.pushes.get(), 10)
        await t.close()
        return alias, req, push, paid, old, fresh, push3
    alias, req, push, paid, old, fresh, push3 = run(go())
    assert req["alias"] == alias and "device" not in req and "PT000001" not in str(req)
    assert push["mac_ok"] and push["37"] == req["id"] and push["48"] == "ORD=Q-1"
    assert paid["39"] == "00"
    status, shown = bankfix.api(bank, "GET", "/payment-requests/" + req["id"])
    assert status == 200 and shown["status"] == "paid" and shown["alias"] == alias and "device" not in shown
    assert old[0] == 404 and alias in old[1]["error"]
    assert fresh[0] == 201 and push3["37"] == fresh[1]["id"] and push3["4"] == "000000000701"
    assert bank.state.ledger.account("ALICE")["balance"] == 100000 - 700
