"""Attacks on the merchant API (issue 17): it had no authentication (anyone who reached it pushed
requests to any device under any name, read any account's balance and every device's message
trace), and took a 13-digit amount, "Café", "100", 1.9 or true, or ended in a 500 with a row
stuck at "pushed". Now: every call signed by a merchant's key (HMAC, timestamp, nonce), a
merchant sees its own requests and account only, the trace is the operator's, the body is
checked strictly (400, never a 500, never a row); and a bounded, seeded fuzz of the body.
"""

import asyncio
import collections
import json
import random
import time
import urllib.error
import urllib.request

import pytest

from tests.host import bankfix
from tools.bank.merchant import Client, load_credentials, sign

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")
FUZZ_SEED, FUZZ_COUNT = 17, 300
GOOD = {"device": "PT000001", "order": "M-1", "amount": 1250, "currency": "978"}


def raw_call(bank, method, path, data=None, headers=None):
    req = urllib.request.Request("http://%s:%d%s" % (tuple(bank.api) + (path,)), data, headers or {},
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def requests(bank):
    return bank.state.ledger.dump()["payment_requests"]


@pytest.fixture
def signed_on(bank):
    """The bank with PT000001 signed on (pushes go out to it)."""
    async def go():
        t = await bankfix.terminal(bank.state, bank.address)
        await t.sign_on()
        return t
    loop = asyncio.new_event_loop()
    t = loop.run_until_complete(go())
    yield bank
    loop.run_until_complete(t.close())
    loop.close()


def test_unsigned_forged_stale_and_replayed_calls_are_refused(signed_on):
    bank = signed_on
    body = json.dumps(GOOD).encode()
    creds = load_credentials(bank.state.dir, "Corner Bakery")
    assert raw_call(bank, "POST", "/payment-requests", body)[0] == 401
    forged = dict(creds, secret="00" * 32)
    assert raw_call(bank, "POST", "/payment-requests", body, sign(forged, "POST", "/payment-requests", body))[0] == 401
    stale = sign(creds, "POST", "/payment-requests", body, now=time.time() - 3600)
    assert raw_call(bank, "POST", "/payment-requests", body, stale)[0] == 401
    headers = sign(creds, "POST", "/payment-requests", body)
    assert raw_call(bank, "POST", "/payment-requests", body, headers)[0] == 201
    assert raw_call(bank, "POST", "/payment-requests", body, headers)[0] == 401     # replayed
    other = json.dumps(dict(GOOD, amount=99999)).encode()
    assert raw_call(bank, "POST", "/payment-requests", other, headers)[0] == 401   # another body
    assert raw_call(bank, "GET", "/trace")[0] == 401 and raw_call(bank, "GET", "/accounts/ALICE")[0] == 401
    assert len(requests(bank)) == 1


def test_a_merchant_sees_only_its_own_and_names_only_itself(signed_on):
    bank = signed_on
    status, req = bankfix.api(bank, "POST", "/payment-requests", GOOD)
    assert status == 201 and (req["merchant"], req["merchant_id"]) == ("Corner Bakery", "CORNERBAKERY")
    assert bankfix.api(bank, "GET", "/payment-requests/" + req["id"])[0] == 200
    assert bankfix.api(bank, "GET", "/payment-requests/" + req["id"], merchant="Kiosk")[0] == 404
    assert bankfix.api(bank, "GET", "/accounts/SHOP")[1]["id"] == "SHOP"          # its own account
    assert bankfix.api(bank, "GET", "/accounts/ALICE")[0] == 404                  # a customer's
    assert bankfix.api(bank, "GET", "/trace")[0] == 403                          # the operator's only
    assert bankfix.api(bank, "GET", "/trace", merchant="OPERATOR")[0] == 200
    assert bankfix.api(bank, "POST", "/payment-requests", dict(GOOD, order="M-2", merchant="Kiosk"))[0] == 400


@pytest.mark.parametrize("change", [
    {"amount": "100"}, {"amount": 1.9}, {"amount": True}, {"amount": 1_000_000_000_000}, {"amount": 0},
    {"amount": -5}, {"amount": None}, {"currency": 978}, {"currency": "97"}, {"order": "Café"},
    {"order": ""}, {"order": "x" * 61}, {"device": "PT00000١"}, {"ttl": 0}, {"ttl": "60"}, {"merchant": "Café"},
])
def test_strict_validation_400_and_no_row(signed_on, change):
    bank = signed_on
    status, answer = bankfix.api(bank, "POST", "/payment-requests", dict(GOOD, **change))
    assert status == 400 and answer["error"], answer
    assert requests(bank) == []


def test_bodies_that_are_not_utf8_json_400(signed_on):
    bank = signed_on
    creds = load_credentials(bank.state.dir, "Corner Bakery")
    for body in (json.dumps(GOOD).encode("utf-16"), b"\xff\xfe{", b"[" * 100000, b"{}", b"[]", b"null"):
        assert raw_call(bank, "POST", "/payment-requests", body, sign(creds, "POST", "/payment-requests", body))[0] == 400
    assert requests(bank) == []


def test_fuzz_the_merchant_api_body(signed_on):
    bank = signed_on
    client = Client("http://%s:%d" % tuple(bank.api), load_credentials(bank.state.dir, "Corner Bakery"))
    rng = random.Random(FUZZ_SEED)
    values = [0, 1, -1, 1.5, 10 ** 13, True, None, "", "978", "Café", "\u0000", "PT000001", "x" * 70, [], {},
              "100", 99_999_999, 100_000_000, "€", "PT000002"]
    counts = collections.Counter()
    for i in range(FUZZ_COUNT):
        body = dict(GOOD, order="F-%d" % i)
        for _ in range(rng.randint(1, 3)):
            key = rng.choice(list(GOOD) + ["ttl", "merchant", "x"])
            if rng.random() < 0.2:
                body.pop(key, None)
            else:
                body[key] = rng.choice(values)
        status, _ = client.call("POST", "/payment-requests", body)
        assert status in (201, 400, 404, 409), (status, body)
        counts[status] += 1
    print("\nmerchant API fuzz, seed %d: %d bodies, answers by status: %s" % (
        FUZZ_SEED, FUZZ_COUNT, dict(sorted(counts.items()))))
    rows = requests(bank)
    assert len(rows) == counts[201] and all(r[7] == "pushed" for r in rows)
