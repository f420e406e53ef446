"""Attacks on the bank's books (issue 17): PostgreSQL paid one pushed request twice (two 0200s
for it at once, 18 of 20 tries: the request was read without a lock); the payer's device could
reverse a paid request at any time. Two hosts on one database: in one process (each its own
database connections, as two host processes have), and as two host processes (python -m
tools.bank) the device's two payments reach over TLS; a reversal is for the transaction it
names, within a window.
"""

import asyncio
import collections
import concurrent.futures
import time

import pytest

from tests.host import bankfix
from tools.bank import wire
from tools.bank.host import Bank
from tools.bank.spawn import HostProcess
from tools.bank.state import State

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")
TRIES = 20


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def push(bank, t, order, amount):
    async def go():
        status, req = await asyncio.to_thread(bankfix.api, bank, "POST", "/payment-requests", {
            "device": "PT000001", "order": order, "amount": amount, "currency": "978"})
        assert status == 201, req
        return await asyncio.wait_for(t.pushes.get(), 10)
    return go()


def payment(t, pushed):
    """(raw, doc) of a 0200 paying a pushed request (its 0600's doc) from ALICE, built by t."""
    raw, doc, _ = t.build("0200", {"3": "000000", "4": pushed["4"], "22": "010", "42": pushed["42"],
                                   "48": pushed["48"], "49": pushed["49"], "102": "ALICE"})
    return raw, doc


def test_a_pushed_request_is_paid_once_whatever_arrives_at_once(bank):
    other = State(bank.state.dir, bank.state.database_url)        # a second host on the database
    hosts = (bank.host.bank, Bank(other.ledger, other.hsm))
    ikid = bank.state.ledger.device("PT000001")["ikid"]

    async def go():
        t = await bankfix.terminal(bank.state, bank.address)
        await t.sign_on()
        pushed = [await push(bank, t, "R-%d" % i, 100) for i in range(TRIES)]
        await asyncio.sleep(0.2)      # the last 0610 taken (the pays' KSNs come after it)
        await t.close()
        # Two payments of each request (KSNs in turn), one to each host at once.
        return [(p["37"], [payment(t, p)[0] for _ in hosts]) for p in pushed]
    try:
        rounds = run(go())
        outcomes = collections.Counter()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for req_id, pays in rounds:
                rcs = sorted(wire.decode(o.answer)["39"] for o in pool.map(
                    lambda hp: hp[0].handle("PT000001", hp[1], ikid), zip(hosts, pays)))
                outcomes["+".join(rcs)] += 1
                assert rcs in (["00", "12"], ["00", "63"]), (req_id, rcs)   # 63: the later KSN came first
                assert bank.state.ledger.request(request_id=req_id)["status"] == "paid"
        print("\n%d requests each paid twice at once through two hosts: %s" % (TRIES, dict(outcomes)))
    finally:
        other.close()
    assert bank.state.ledger.account("ALICE")["balance"] == 100000 - 100 * TRIES


async def paid_request(bank, order, amount):
    """A terminal signed on, a request pushed to it and paid: (terminal, the 0600's doc, the
    0200's doc, the 0210's doc)."""
    t = await bankfix.terminal(bank.state, bank.address)
    await t.sign_on()
    p = await push(bank, t, order, amount)
    raw, doc = payment(t, p)
    return t, p, doc, await t.send_raw(raw, "0210", doc["11"])


def test_reversals_only_within_the_window_and_for_the_transaction_they_name(bank):
    async def go():
        t, p, doc, paid = await paid_request(bank, "W-1", 400)
        other_amount = await t.reverse(dict(doc, **{"4": "%012d" % 1}))
        bank.host.bank.reversal_window = 0       # the window passed: the payer's device tries
        await asyncio.sleep(0.05)
        late = await t.reverse(doc)
        await t.close()
        return p, paid, other_amount, late
    p, paid, other_amount, late = run(go())
    assert (paid["39"], other_amount["39"], late["39"]) == ("00", "13", "12")
    assert bank.state.ledger.request(request_id=p["37"])["status"] == "paid"
    assert bank.state.ledger.account("ALICE")["balance"] == 100000 - 400


def test_a_reversal_within_the_window_undoes_the_payment(bank):
    async def go():
        t, p, doc, paid = await paid_request(bank, "W-2", 300)
        rev = await t.reverse(doc)
        await t.close()
        return p, paid, rev
    p, paid, rev = run(go())
    assert (paid["39"], rev["39"]) == ("00", "00")
    assert bank.state.ledger.request(request_id=p["37"])["status"] == "pushed"
    assert bank.state.ledger.account("ALICE")["balance"] == 100000


@pytest.fixture(params=["sqlite", "postgresql"])
def two_processes(request, tmp_path):
    """Two bank host processes (python -m tools.bank) on one database, and its state."""
    url = request.getfixturevalue("postgres").url() if request.param == "postgresql" \
        else "sqlite:///%s" % (tmp_path / "bank.db")
    state = bankfix.make_state(tmp_path, url)
    hosts = []
    try:
        for _ in range(2):
            hosts.append(HostProcess(state.dir, database=url))
        yield state, hosts
    finally:
        for h in hosts:
            h.stop()
        state.close()


def test_a_pushed_request_is_paid_once_through_two_host_processes(two_processes):
    # The device signed on with host A, which pushes each request; then two 0200s for it go out
    # at once, one to each host process (A and B each decide with their own connections to the
    # one database). KSNs in turn: the one with the lower counter alternates between the hosts.
    state, (a, b) = two_processes
    before = state.ledger.account("ALICE")["balance"]

    async def go():
        ta = await bankfix.terminal(state, a.address)
        tb = await bankfix.terminal(state, b.address)
        await ta.sign_on()
        outcomes = collections.Counter()
        for i in range(TRIES):
            await asyncio.to_thread(a.post, "/payment-requests", {
                "device": "PT000001", "order": "P-%d" % i, "amount": 100, "currency": "978"}, "Corner Bakery")
            p = await asyncio.wait_for(ta.pushes.get(), 10)
            await asyncio.sleep(0.05)  # its 0610 taken before the pays' KSNs
            pays = [payment(ta, p) for _ in range(2)]
            if i % 2:
                pays.reverse()
            answers = await asyncio.gather(ta.send_raw(pays[0][0], "0210", pays[0][1]["11"]),
                                           tb.send_raw(pays[1][0], "0210", pays[1][1]["11"]))
            rcs = sorted(x["39"] for x in answers)
            assert rcs in (["00", "12"], ["00", "63"]), (p["37"], rcs)
            assert all(x["mac_ok"] for x in answers)
            outcomes["+".join(rcs)] += 1
            assert state.ledger.request(request_id=p["37"])["status"] == "paid"
        await ta.close()
        await tb.close()
        return outcomes

    started = time.monotonic()
    outcomes = run(go())
    print("\n%d requests each paid twice at once through two host processes (%s): %s in %.1f s"
          % (TRIES, state.database_url.split(":")[0], dict(outcomes), time.monotonic() - started))
    assert state.ledger.account("ALICE")["balance"] == before - 100 * TRIES
