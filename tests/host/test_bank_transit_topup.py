"""Top-ups at the bank (issue 21 part 1), on SQLite and PostgreSQL: a device loads its transit
card from an account bound to it (0200, processing code 920000, tools/bank/PROTOCOL.md "Top-up"):
the account debited, TRANSIT credited, once per DE41 + DE11 + DE7; 51 when not covered; its 0400
undoes it at any age. The attacks are in tests/attack/test_bank_topup.py.
"""

import pytest

from tests.host import bankfix
from tests.host.test_bank_flows import bank, postgres, run  # noqa: F401 (fixtures)
from tests.host.test_bank_void_refund import balances, conserved

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")

CARD = "8F3A00C2D4E5F601"


def test_a_top_up_moves_the_money_once_and_its_reversal_undoes_it_at_any_age(bank):
    async def go():
        t = await bankfix.reconnect(bank.state, bank.address)
        raw, doc, _ = t.build("0200", {"3": "920000", "4": "%012d" % 2000, "48": "CARD=" + CARD,
                                       "49": "978", "102": "ALICE"})
        first = await t.send_raw(raw, "0210", doc["11"])
        # The same top-up again (its answer lost): the first answer, under the repeat's own KSN.
        repeat, _, _ = t.build("0200", {k: v for k, v in doc.items() if k not in ("t", "11", "41", "53")},
                               stan=doc["11"])
        again = await t.send_raw(repeat, "0210", doc["11"])
        after_one = balances(bank, "ALICE", "TRANSIT")
        poor = await t.top_up("BOB", 5001, CARD)                 # BOB holds 50.00
        exactly = await t.top_up("BOB", 5000, CARD)
        bank.host.bank.reversal_window = 0                       # long past any window
        undone = await t.reverse(doc)
        await t.close()
        return first, again, after_one, poor, exactly, undone
    first, again, after_one, poor, exactly, undone = run(go())
    assert first["39"] == "00" and first["mac_ok"] and len(first["38"]) == 6 and first["48"] == "CARD=" + CARD
    assert (again["39"], again["37"], again["mac_ok"]) == ("00", first["37"], True)
    assert after_one == (100000 - 2000, 2000)
    assert (poor["39"], exactly["39"]) == ("51", "00")
    assert undone["39"] == "00"
    assert balances(bank, "ALICE", "BOB", "TRANSIT") == (100000, 0, 5000)
    assert conserved(bank)
    kinds = [(t["kind"], t["rc"]) for t in bank.state.ledger.transactions() if t["kind"] in ("top-up", "reversal")]
    assert sorted(kinds) == [("reversal", "00"), ("top-up", "00"), ("top-up", "00"), ("top-up", "51")]
