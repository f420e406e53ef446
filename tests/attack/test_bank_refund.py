"""Attacks on voids and refunds (issue 21 part 2), on SQLite and PostgreSQL: giving back more than
was paid (at once, in parts, in parts racing through two hosts), giving back what was declined,
reversed or is itself a refund, amounts of zero, below zero or past any purchase, a reference
forged or another device's, and replays (of the device's message, of the merchant's call).
Every one is refused and moves no money.
"""

import asyncio
import concurrent.futures
import json
import urllib.error
import urllib.request

import pytest

from tests.host import bankfix
from tools.bank import admin
from tools.bank.host import Bank, Decline
from tools.bank.merchant import load_credentials, sign
from tools.bank.state import State

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def cutover(bank):
    assert admin.main(["--state-dir", str(bank.state.dir), "--database", bank.state.database_url,
                       "cutover"]) == 0


def money(bank):
    led = bank.state.ledger
    return tuple(led.account(a)["balance"] for a in ("ALICE", "SHOP", "CLEARING"))


def terminal(bank, serial="PT000001"):
    return bankfix.reconnect(bank.state, bank.address, serial)


def give_back_fields(rrn, amount, currency="978"):
    return {"3": "200000", "4": amount if isinstance(amount, str) else "%012d" % amount,
            "48": "RRN=" + rrn, "49": currency}


def test_nothing_beyond_the_original_and_nothing_that_is_not_a_standing_purchase(bank):
    async def go():
        t = await terminal(bank)
        bought = await t.purchase(bankfix.make_card(), 1000, pin="1234")
        declined = await t.purchase(bankfix.make_card(), 500, pin="9999")        # wrong PIN: 55
        inquiry = await t.balance("ALICE")
        raw, doc, _ = t.purchase_message(bankfix.make_card(), 700, pin="1234")
        undone = await t.send_raw(raw, "0210", doc["11"])
        assert (await t.reverse(doc))["39"] == "00"
        moved = await t.transfer("ALICE", "BOB", 100)
        cutover(bank)
        before = money(bank)
        answers = {
            "beyond at once": await t.give_back(bought["37"], 1001),
            "zero": await t.give_back(bought["37"], 0),
            "past any purchase": await t.give_back(bought["37"], 999_999_999_999),
            "another currency": await t.give_back(bought["37"], 1000, currency="840"),
            "declined": await t.give_back(declined["37"], 500),
            "reversed": await t.give_back(undone["37"], 700),
            "a transfer": await t.give_back(moved["37"], 100),
            "a balance inquiry's": await t.give_back(inquiry["37"], 1),
        }
        negative = await t.request("0200", give_back_fields(bought["37"], "-00000000100"))
        after = money(bank)
        part = await t.give_back(bought["37"], 600)
        answers["beyond in parts"] = await t.give_back(bought["37"], 401)
        answers["a refund's own"] = await t.give_back(part["37"], 600)
        await t.close()
        return declined, answers, negative, before, after, part
    declined, answers, negative, before, after, part = run(go())
    assert declined["39"] == "55"
    assert {k: a["39"] for k, a in answers.items()} == {
        "beyond at once": "13", "zero": "13", "past any purchase": "13", "another currency": "13",
        "declined": "12", "reversed": "12", "a transfer": "12", "a balance inquiry's": "12",
        "beyond in parts": "13", "a refund's own": "12"}
    assert negative["39"] == "30"                           # DE4 is digits: not even read
    assert after == before and part["39"] == "00"
    assert money(bank) == (before[0] + 600, before[1] - 600, before[2])


def test_a_forged_or_another_devices_reference_is_refused_the_same(bank):
    async def go():
        mine = await terminal(bank)
        bought = await mine.purchase(bankfix.make_card(), 1000, pin="1234")
        await mine.close()
        other = await terminal(bank, "PT000002")
        before = money(bank)
        theirs = await other.give_back(bought["37"], 1000)
        never = await other.give_back("123456789012", 1000)
        garbled = await other.request("0200", dict(give_back_fields(bought["37"], 1000),
                                                   **{"48": "RRN=%s;x" % bought["37"]}))
        missing = await other.request("0200", {"3": "200000", "4": "%012d" % 1000, "49": "978"})
        after = money(bank)
        await other.close()
        return theirs, never, garbled, missing, before, after
    theirs, never, garbled, missing, before, after = run(go())
    # Another device's purchase: the same 12 as a reference that never was (nothing said).
    assert theirs["39"] == never["39"] == garbled["39"] == missing["39"] == "12"
    assert after == before


def test_a_replayed_return_is_refused_and_a_replayed_merchant_call_too(bank):
    async def go():
        t = await terminal(bank)
        bought = await t.purchase(bankfix.make_card(), 1000, pin="1234")
        cutover(bank)
        raw, doc, _ = t.build("0200", give_back_fields(bought["37"], 300))
        first = await t.send_raw(raw, "0210", doc["11"])
        copy = await t.send_raw(raw, "0210", doc["11"])      # byte for byte: the KSN is used
        await t.close()
        return bought, first, copy
    bought, first, copy = run(go())
    assert (first["39"], copy["39"]) == ("00", "63")
    assert bank.state.ledger.refunded(bought["37"]) == 300

    # The merchant API: a signed call played again (its nonce) is refused before anything.
    req, _ = bankfix.paid_request(bank, "RP-1", 400)
    path = "/payment-requests/%s/refunds" % req["id"]
    body = json.dumps({"amount": 400, "reference": "once"}).encode()
    headers = dict(sign(load_credentials(bank.state.dir, "Corner Bakery"), "POST", path, body),
                   **{"Content-Type": "application/json"})
    statuses = []
    for _ in range(2):
        r = urllib.request.Request("http://%s:%d%s" % (tuple(bank.api) + (path,)), body, headers,
                                   method="POST")
        try:
            with urllib.request.urlopen(r, timeout=10) as answer:
                statuses.append(answer.status)
        except urllib.error.HTTPError as e:
            statuses.append(e.code)
    assert statuses == [201, 401]
    assert bank.state.ledger.refunded(bank.state.ledger.request(request_id=req["id"])["rrn"]) == 400


def test_the_merchant_api_refuses_bad_amounts_and_bodies(bank):
    req, _ = bankfix.paid_request(bank, "BA-1", 400)
    cutover(bank)
    before = money(bank)
    path = "/payment-requests/%s/refunds" % req["id"]
    for amount in (0, -1, -400, 401, 10 ** 12, 1.5, "100", True, None):
        status, _ = bankfix.api(bank, "POST", path, {"amount": amount, "reference": "a-%r" % (amount,)})
        assert status in (400, 409), amount
    for body in ({"amount": 100}, {"amount": 100, "reference": ""}, {"amount": 100, "reference": "x" * 37},
                 {"amount": 100, "reference": "é"}, {"amount": 100, "reference": "r", "to": "BOB"}, [100]):
        assert bankfix.api(bank, "POST", path, body)[0] == 400, body
    assert money(bank) == before


def test_refunds_racing_through_two_hosts_never_sum_beyond_the_original(bank):
    # Ten refunds of 300 each against one payment of 1000, five through each of two hosts on the
    # one database at once: the purchase's row lock decides them one after the other.
    req = bank.state.ledger.request(request_id=bankfix.paid_request(bank, "RACE-1", 1000)[0]["id"])
    cutover(bank)
    other = State(bank.state.dir, bank.state.database_url)
    hosts = (bank.host.bank, Bank(other.ledger, other.hsm))

    def one(i):
        try:
            return hosts[i % 2].merchant_return("CORNERBAKERY", req, 300, "race-%d" % i)["amount"]
        except Decline as d:
            return d.rc
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(one, range(10)))
    finally:
        other.close()
    assert sorted(map(str, outcomes)) == ["13"] * 7 + ["300"] * 3
    assert bank.state.ledger.refunded(req["rrn"]) == 900
    assert bank.state.ledger.account("ALICE")["balance"] == 100000 - 100
