"""Advices of offline approvals at the bank (issue 21 part 3, PROTOCOL.md "Offline approvals and
their advices"), on SQLite and PostgreSQL: a 0220 carrying the card's TC is verified by the HSM
and posted once, whatever the device resends (its 0230 lost, the bank restarted between); an
advice forwarded late, after the card paid online elsewhere (a higher ATC seen since), still
posts. The attacks (forged, replayed, beyond the cap) are in tests/attack/test_offline_advices.py.
"""

import datetime

import pytest

from tests.host import bankfix
from tests.host.test_bank_flows import bank, postgres, run  # noqa: F401 (fixtures)
from tools.bank.host import OFFLINE_CAP

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")

OPENED_WITH = 100000 + 5000 + 1000     # bankfix.make_state's balances (ALICE, BOB, USD1)


def conserved(state):
    """Every transaction's postings sum to zero, and all accounts hold what they were opened with."""
    per_rrn = {}
    for p in state.ledger.postings():
        per_rrn[p["rrn"]] = per_rrn.get(p["rrn"], 0) + p["amount"]
    return all(v == 0 for v in per_rrn.values()) and sum(a["balance"] for a in state.ledger.accounts()) == OPENED_WITH


def balances(state):
    return tuple(state.ledger.account(a)["balance"] for a in ("ALICE", "SHOP"))


def test_an_advice_is_posted_exactly_once_through_a_lost_answer_and_a_restart(bank):
    card = bankfix.make_card()
    when = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    before = balances(bank.state)

    async def first():
        t = await bankfix.reconnect(bank.state, bank.address)
        tags = card.icc_data(1800, cid=0x40)
        ans = await t.advice(card, 1800, tags=tags, when=when)
        # The device did not get that 0230 (lost): it sends the same advice again, same DE11 + DE7.
        again = await t.advice(card, 1800, tags=tags, stan=ans["sent"]["11"], when=when)
        await t.close()
        return tags, ans, again
    tags, ans, again = run(first())
    assert ans["39"] == "00" and ans["mac_ok"] and len(ans["37"]) == 12 and len(ans["38"]) == 6
    assert "55" not in ans                                  # a TC is final: no ARPC
    assert (again["39"], again["37"], again["mac_ok"]) == ("00", ans["37"], True)
    assert balances(bank.state) == (before[0] - 1800, before[1] + 1800)

    bank.stop()                                             # the bank restarted on its ledger
    bank.__init__(bank.state)                               # (the fixture stops this one)

    async def after_restart():
        t = await bankfix.reconnect(bank.state, bank.address)
        third = await t.advice(card, 1800, tags=tags, stan=ans["sent"]["11"], when=when)
        await t.close()
        return third
    third = run(after_restart())
    assert (third["39"], third["37"]) == ("00", ans["37"])
    assert balances(bank.state) == (before[0] - 1800, before[1] + 1800)
    txns = [t for t in bank.state.ledger.transactions() if t["mti"] == "0220"]
    assert [(t["kind"], t["amount"], t["rc"]) for t in txns] == [("offline", 1800, "00")]
    assert conserved(bank.state)


@pytest.mark.parametrize("bank", ["sqlite"], indirect=True)
def test_an_advice_forwarded_after_the_card_paid_online_elsewhere_is_posted(bank):
    card = bankfix.make_card()

    async def go():
        t = await bankfix.reconnect(bank.state, bank.address)
        offline = card.icc_data(OFFLINE_CAP, cid=0x40)      # approved offline here, at the cap
        online = await t.purchase(card, 700, pin="1234")     # then online elsewhere: a higher ATC
        late = await t.advice(card, OFFLINE_CAP, tags=offline)
        await t.close()
        return online, late
    online, late = run(go())
    assert (online["39"], late["39"]) == ("00", "00")
    assert conserved(bank.state)
