# The vault's caps (issue 16): at most vault.FINGERPRINTS fingerprint ids and vault.ACCOUNTS
# bound accounts; the one past the cap is refused (vault.Full) and nothing is written for it,
# while one already held is still taken (re-enrolled, re-bound) and a removal makes room.
import vault
from expect import raises
from vaultfix import PIN, personalized, reopened


def test_fingerprints_up_to_the_cap_then_full():
    v = personalized()
    for template_id in range(vault.FINGERPRINTS):
        assert not v.fingers_full
        v.enroll_finger(template_id)
    assert vault.FINGERPRINTS == 10 and v.fingers_full
    seq = v.store.meta["seq"]
    with raises(vault.Full) as e:
        v.enroll_finger(10)
    assert str(e.value) == "10 fingerprints enrolled, the most the vault keeps"
    assert v.store.meta["seq"] == seq and v.store.committed()  # nothing committed for it
    v.enroll_finger(3)  # held already: no room needed
    v = reopened(v)
    v.verify_pin(PIN)
    assert v.fingers == list(range(10)) and v.fingers_full
    v.remove_finger(0)
    v.enroll_finger(10)
    assert reopened(v).fingers == list(range(1, 11))


def test_bound_accounts_up_to_the_cap_then_full():
    v = personalized()
    ids = ["ACC-%02d" % i for i in range(vault.ACCOUNTS)]
    for account_id in ids:
        v.bind_account(account_id, b"record " + account_id.encode(), b"certificate")
    assert vault.ACCOUNTS == 8 and sorted(v.accounts()) == ids
    with raises(vault.Full) as e:
        v.bind_account("ACC-08", b"record", b"certificate")
    assert str(e.value) == "8 accounts bound, the most the vault keeps"
    v = reopened(v)
    v.verify_pin(PIN)
    assert sorted(v.accounts()) == ids  # nothing stored for it
    v.bind_account("ACC-03", b"record renewed", b"certificate 2")  # bound already: replaced
    assert v.account("ACC-03") == (b"record renewed", b"certificate 2")
    v.remove("account.ACC-00")
    v.bind_account("ACC-08", b"record", b"certificate")
    assert sorted(reopened(v).accounts()) == ids[1:] + ["ACC-08"]
