"""The bank host's message trace (GET /trace on the merchant API, tools/bank/host.py Trace): every
message in and out, numbered, in a bounded ring; nothing in it lets a card be used (PAN and
track 2 masked, no PIN block, the ICC data as its tag list)."""

import asyncio
import json

import bankfix
import pytest
from test_bank_flows import bank, postgres, run  # noqa: F401 (the fixtures: SQLite and PostgreSQL)
from tools.bank.host import PIN_BLOCK_NOT_SHOWN, Trace, trace_fields

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")


def trace(bank, since=0):
    status, answer = bankfix.api(bank, "GET", "/trace?since=%d" % since, merchant="OPERATOR")
    assert status == 200, answer
    return answer


def test_a_purchase_in_the_trace_masked(bank):
    start = trace(bank)["next"]

    async def go():
        t = await bankfix.terminal(bank.state, bank.address)
        await t.sign_on()
        raw, doc, _ = t.purchase_message(bankfix.make_card(), 2599, pin="1234")
        ans = await t.send_raw(raw, "0210", doc["11"])
        await t.close()
        return doc, ans
    doc, ans = run(go())
    assert ans["39"] == "00"
    got = trace(bank, start)
    assert [(m["dir"], m["mti"]) for m in got["messages"]] == [("in", "0800"), ("out", "0810"),
                                                             ("in", "0200"), ("out", "0210")]
    assert got["next"] == start + 4 and [m["seq"] for m in got["messages"]] == list(range(start, start + 4))
    request, answer = got["messages"][2]["fields"], got["messages"][3]["fields"]
    assert request["2"] == answer["2"] == "476173******0010"
    assert request["52"] == PIN_BLOCK_NOT_SHOWN
    assert request["55"] == "(%d bytes) tags 82 95 9A 9C 5F2A 5F34 9F02 9F03 9F10 9F1A 9F26 9F27 9F36 9F37" % (
        len(doc["55"]) // 2)
    assert request["4"] == "000000002599" and answer["39"] == "00" and "64" in answer
    text = json.dumps(got)
    for secret in (bankfix.CARD["pan"], doc["52"], doc["52"].upper(), doc["55"], doc["55"].upper()):
        assert secret not in text
    assert trace(bank, got["next"]) == {"next": got["next"], "messages": []}


def test_a_pushed_request_in_the_trace(bank):
    async def go():
        t = await bankfix.terminal(bank.state, bank.address)
        await t.sign_on()
        start = trace(bank)["next"]
        await asyncio.to_thread(bankfix.api, bank, "POST", "/payment-requests", {
            "device": "PT000001", "order": "T-1", "amount": 450, "currency": "978"})
        await asyncio.wait_for(t.pushes.get(), 10)
        await asyncio.sleep(0.2)  # the 0610 acknowledgement on its way
        await t.close()
        return start
    start = run(go())
    got = trace(bank, start)["messages"]
    assert [(m["dir"], m["mti"]) for m in got] == [("out", "0600"), ("in", "0610")]
    assert got[0]["fields"]["48"] == "ORD=T-1" and got[0]["fields"]["4"] == "000000000450"


def test_a_bad_since_is_refused(bank):
    assert bankfix.api(bank, "GET", "/trace?since=x", merchant="OPERATOR")[0] == 400


def test_track_2_masked_whatever_its_separator():
    assert trace_fields({"35": "4761739001010010D30122011234567F"})["35"] == "476173******0010" + "*" * 16
    assert trace_fields({"35": "5413330089020011=3012201"})["35"] == "541333******0011" + "*" * 8


def test_the_ring_keeps_the_last_and_counts_on():
    ring = Trace(size=3)
    for _ in range(5):
        ring.record("in", "PT000001", b"not ISO 8583 \x00\x01")
    got = ring.since(0)
    assert got["next"] == 5 and [m["seq"] for m in got["messages"]] == [2, 3, 4]
    assert got["messages"][0]["fields"] == {} and got["messages"][0]["mti"] is None
    assert got["messages"][0]["error"].startswith("15 bytes that do not decode")
    assert ring.since(4)["messages"][0]["seq"] == 4 and ring.since(5)["messages"] == []
