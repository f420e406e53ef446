"""Attacks on the DUKPT counter (issue 17): the bank takes a device's KSN counter only upwards.
A message under a counter the device used already (a replay) or lower (a device whose key store
was put back to an earlier copy: rolled back, or cloned) is refused with 63 and not acted on,
also after the host restarts.
"""

import asyncio

import pytest

from tests.host import bankfix

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def balances(state):
    return state.ledger.account("ALICE")["balance"], state.ledger.account("BOB")["balance"]


def test_a_reused_ksn_counter_is_refused(bank):
    async def go():
        t = await bankfix.terminal(bank.state, bank.address)
        await t.sign_on()
        first = await t.transfer("ALICE", "BOB", 100)
        used = t.ikid + t.counter.to_bytes(4, "big")       # the KSN of that transfer
        again = await t.request("0200", {"3": "400000", "4": "%012d" % 100, "49": "978", "102": "ALICE",
                                         "103": "BOB"}, ksn=used)
        await t.close()
        return first, again
    first, again = run(go())
    assert first["39"] == "00" and (again["39"], again["mac_ok"]) == ("63", True)
    assert balances(bank.state) == (100000 - 100, 5000 + 100)


def test_a_rolled_back_device_is_refused_also_after_a_host_restart(bank):
    async def go(host, counter=0, rollback=0):
        t = await bankfix.terminal(bank.state, host.address, counter=counter)
        t.counter -= rollback
        t.stan = t.counter       # the STAN is kept in the same store: it goes back with it
        out = [(await t.sign_on())["39"], (await t.transfer("ALICE", "BOB", 100))["39"]]
        await t.close()
        return out, t.counter
    (rcs, counter) = run(go(bank))
    assert rcs == ["00", "00"]
    # The device's store put back to its copy of two messages ago: the same counters again.
    assert run(go(bank, counter, rollback=2))[0] == ["63", "63"]
    bank.host.sessions.clear()
    restarted = bankfix.BankThread(bank.state)
    try:
        assert run(go(restarted, counter, rollback=2))[0] == ["63", "63"]
        assert run(go(restarted, counter))[0] == ["00", "00"]    # the device that moved on is served
    finally:
        restarted.stop()
    assert balances(bank.state) == (100000 - 200, 5000 + 200)


def test_a_unit_provisioned_again_counts_from_1_under_its_new_key_and_its_old_key_stays_refused(bank):
    # tools/provision/inject gives a unit provisioned again a new initial key id (its generation,
    # the derivation id's top byte; the device registered without a pinned key id): the new key's
    # counter starts at 1 and is served; the old key's counters stay where they were.
    from tools.bank import admin
    from tools.bank.client import Terminal

    admin.register_device(bank.state, "PT000003", merchant_account="SHOP")
    devices = bank.state.pki_dir / "devices"
    ctx = Terminal.context(bank.state.pki_dir / "ca.pem", devices / "PT000003.pem", devices / "PT000003.key.pem")

    async def sign_ons(generation, counter, n=2):
        ikid = bytes.fromhex("00000001") + bytes((generation,)) + (3).to_bytes(3, "big")
        t = await Terminal("PT000003", bank.state.hsm.initial_key(ikid), ikid, counter).open(*bank.address, ctx)
        rcs = [(await t.sign_on())["39"] for _ in range(n)]
        await t.close()
        return rcs

    assert run(sign_ons(0, 0, n=3)) == ["00"] * 3
    assert run(sign_ons(1, 0)) == ["00", "00"]      # provisioned again: a new key, from 1
    assert run(sign_ons(0, 1)) == ["63", "63"]      # the old key's store put back
    assert run(sign_ons(1, 2)) == ["00", "00"]      # the new one carries on


def test_a_store_copied_before_the_unit_was_provisioned_again_is_refused(bank, capsys):
    # A clone of the unit's store taken before it was provisioned again carries the old key, at
    # a counter past anything the bank saw of it (nothing to call "gone back"). Once inject has
    # loaded the new key it pins it at the bank (tools.provision.inject.pin_initial_key): only
    # the key the unit now holds is served.
    from tools.bank import admin
    from tools.bank.client import Terminal
    from tools.provision import inject

    admin.register_device(bank.state, "PT000004", merchant_account="SHOP")
    devices = bank.state.pki_dir / "devices"
    ctx = Terminal.context(bank.state.pki_dir / "ca.pem", devices / "PT000004.pem", devices / "PT000004.key.pem")

    def ikid(generation):
        return bytes.fromhex("00000001") + bytes((generation,)) + (4).to_bytes(3, "big")

    async def sign_on(generation, counter):
        t = await Terminal("PT000004", bank.state.hsm.initial_key(ikid(generation)), ikid(generation),
                           counter).open(*bank.address, ctx)
        rc = (await t.sign_on())["39"]
        await t.close()
        return rc

    assert run(sign_on(0, 0)) == "00"
    inject.pin_initial_key(bank.state, "PT000004", ikid(1))  # provisioned again: generation 1
    assert "serves PT000004 under initial key %s only" % ikid(1).hex().upper() in capsys.readouterr().out
    assert run(sign_on(1, 0)) == "00"
    assert run(sign_on(0, 50)) == "63"      # the old store, its counter far ahead: refused
