# The vault's lifecycle: every transition, and every refusal leaving the state unchanged.
import flashfs
import vault
import vault.store
from vault import BLOCKED, FACTORY, PERSONALIZED, PROVISIONED, WIPED, crypto

from expect import raises
from torn import stopped_at
from vaultfix import ITEMS, PIN, UNBLOCK_KEY, factory, personalized, provisioned, reopened

OTHER = bytearray(b"135790")
WRONG = bytearray(b"000000")


def refused(v, exc, call, *args):
    """call(*args) raises exc and leaves state, meta and the index as they were."""
    before = (v.state, repr(v.meta))
    with raises(exc):
        call(*args)
    assert (v.state, repr(v.meta)) == before, (v.state, before[0])


def test_blank_device_starts_in_factory():
    v = factory()
    assert v.state == FACTORY and not v.unlocked
    assert reopened(v).state == FACTORY


def test_factory_refuses_owner_operations():
    v = factory()
    refused(v, vault.WrongState, v.set_pin, PIN)
    refused(v, vault.WrongState, v.verify_pin, PIN)
    refused(v, vault.WrongState, v.device_secret, "device.key")
    refused(v, vault.WrongState, v.unblock, b"x" * 32)
    refused(v, vault.WrongState, v.reinitialize)
    refused(v, ValueError, v.provision, "not.an.item", b"x")
    refused(v, ValueError, lambda: v.set_policy(max_tries=3))


def test_provisioning_needs_every_item():
    v = factory()
    v.provision("device.key", ITEMS["device.key"])
    refused(v, vault.WrongState, v.finish_provisioning)
    for item, data in ITEMS.items():
        v.provision(item, data)
    v.finish_provisioning()
    assert v.state == PROVISIONED
    refused(v, vault.WrongState, v.provision, "device.key", b"again")
    refused(v, vault.WrongState, lambda: v.set_policy(max_fails=3))
    refused(v, vault.WrongState, v.finish_provisioning)
    assert bytes(v.device_secret("dukpt.ik")) == ITEMS["dukpt.ik"]


def test_set_pin_personalizes_and_unlocks():
    v = provisioned()
    refused(v, ValueError, v.set_pin, bytearray(b"12"))
    refused(v, ValueError, v.set_pin, bytearray(b"12a4"))
    refused(v, vault.WrongState, v.verify_pin, PIN)
    v.set_pin(PIN)
    assert v.state == PERSONALIZED and v.unlocked
    refused(v, vault.WrongState, v.set_pin, OTHER)
    v = reopened(v)
    assert v.state == PERSONALIZED and not v.unlocked
    v.verify_pin(PIN)
    assert v.unlocked


def test_the_pin_is_not_stored():
    v = personalized()
    assert b"246810" not in repr(v.meta).encode()
    import os

    for name in os.listdir(v.store.root):
        with open(v.store.root + "/" + name, "rb") as f:
            assert b"246810" not in f.read(), name


def test_locked_vault_refuses_owner_operations():
    v = personalized()
    v.put("note", b"hello")
    v.lock()
    refused(v, vault.Locked, v.get, "note")
    refused(v, vault.Locked, v.put, "note", b"changed")
    refused(v, vault.Locked, v.bind_account, "1", b"r", b"c")
    refused(v, vault.Locked, v.enroll_finger, 1)
    refused(v, vault.Locked, v.wipe)
    # Provisioning secrets stay usable (the bank connection does not wait for the owner).
    assert bytes(v.device_secret("device.cert")) == ITEMS["device.cert"]
    v.verify_pin(PIN)
    assert bytes(v.get("note")) == b"hello"


def test_the_owner_chooses_the_idle_lock_and_nothing_else_of_the_policy():
    v = personalized()
    v.set_idle(300)
    v = reopened(v)
    assert v.policy["idle_s"] == 300
    v.verify_pin(PIN)
    for wrong in (0, -30, 59, 301, 10**9, "60", None):
        refused(v, ValueError, v.set_idle, wrong)
    v.lock()
    refused(v, vault.Locked, v.set_idle, 30)
    refused(v, vault.WrongState, lambda: v.set_policy(max_fails=100))  # the issuer's, in the factory only


def test_the_app_spends_the_wrong_pin_delay_between_counting_and_checking():
    # count_pin_attempt / check_pin: the delay after wrong PINs is the caller's to spend (the
    # app, in its event loop, counting it down), and check_pin will not run before it is over.
    import time

    v = personalized()
    v.lock()
    refused(v, vault.WrongState, v.check_pin, PIN)  # nothing counted
    for _ in range(vault.FREE_ATTEMPTS):
        assert v.count_pin_attempt(WRONG) == 0
        with raises(vault.WrongPin):
            v.check_pin(WRONG)
    assert v.count_pin_attempt(PIN) == v.policy["delay_ms"]  # the 4th attempt waits
    with raises(vault.WrongState):
        v.check_pin(PIN)  # too early: refused, the attempt stays counted
    assert v.meta["fails"] == vault.FREE_ATTEMPTS + 1
    delay = v.count_pin_attempt(PIN)
    assert delay == 2 * v.policy["delay_ms"]
    time.sleep_ms(delay)
    v.check_pin(PIN)
    assert v.unlocked and v.meta["fails"] == 0


def test_wrong_pin_counts_and_a_right_one_resets():
    v = personalized()
    v.lock()
    for left in (9, 8, 7):
        with raises(vault.WrongPin) as e:
            v.verify_pin(OTHER)
        assert e.value.attempts_left == left and not v.unlocked
    v = reopened(v)
    assert v.meta["fails"] == 3  # on flash, not only in RAM
    v.verify_pin(PIN)
    assert v.unlocked and v.meta["fails"] == 0 and v.attempts_left == 10


def test_delay_doubles_after_the_free_attempts():
    v = personalized(delay_ms=250)
    v.lock()
    for _ in range(8):
        with raises(vault.WrongPin):
            v.verify_pin(OTHER)
    assert v.sleep_ms.delays == [0, 0, 0, 250, 500, 1000, 2000, 4000], v.sleep_ms.delays
    assert v.delay_ms(40) == vault.MAX_DELAY_MS


def test_n_wrong_pins_block():
    v = personalized(max_fails=5, delay_ms=1)
    v.put("note", b"owner data")
    v.bind_account("001", b"record", b"certificate")
    v.lock()
    for _ in range(4):
        with raises(vault.WrongPin):
            v.verify_pin(OTHER)
    with raises(vault.Blocked):
        v.verify_pin(OTHER)
    assert v.state == BLOCKED and not v.unlocked
    # The PIN secrets are destroyed: the PIN wrap, the fingerprint wrap, the owner's entries.
    assert v.meta["pin"] is None and v.meta["fp_wrap"] is None
    assert v.store.entries("owner") == []
    refused(v, vault.WrongState, v.verify_pin, PIN)
    refused(v, vault.WrongState, v.set_pin, PIN)
    v = reopened(v)
    assert v.state == BLOCKED
    assert bytes(v.device_secret("issuer.ca")) == ITEMS["issuer.ca"]


def test_right_pin_at_the_last_attempt_still_unlocks():
    v = personalized(max_fails=5, delay_ms=1)
    v.lock()
    for _ in range(4):
        with raises(vault.WrongPin):
            v.verify_pin(OTHER)
    assert v.attempts_left == 1
    v.verify_pin(PIN)
    assert v.unlocked and v.state == PERSONALIZED and v.attempts_left == 5


def test_a_block_cut_short_is_finished_at_open():
    v = personalized(max_fails=3, delay_ms=1)
    v.lock()
    v.meta["fails"] = 3  # the counter reached the limit, the power failed before the block
    v.store.commit()
    assert reopened(v).state == BLOCKED


def block(v):
    v.lock()
    for _ in range(v.attempts_left - 1):
        with raises(vault.WrongPin):
            v.verify_pin(WRONG)
    with raises(vault.Blocked):
        v.verify_pin(WRONG)


def test_unblock_needs_the_issuers_signature_and_cannot_be_replayed():
    v = personalized(max_fails=3, delay_ms=1)
    block(v)
    challenge = v.unblock_challenge()
    assert len(challenge) == 16
    refused(v, vault.Refused, v.unblock, crypto.hmac_sha256(b"\x00" * 32, vault.UNBLOCK_LABEL + challenge))
    refused(v, vault.Refused, v.unblock, b"\x00" * 32)
    signed = crypto.hmac_sha256(UNBLOCK_KEY, vault.UNBLOCK_LABEL + challenge)
    v.unblock(signed)
    assert v.state == PROVISIONED and v.meta["fails"] == 0
    refused(v, vault.WrongState, v.unblock, signed)  # not blocked: nothing to unblock
    v.set_pin(OTHER)
    block(v)
    assert v.unblock_challenge() != challenge  # a fresh challenge at each block
    refused(v, vault.Refused, v.unblock, signed)  # the old message is refused


def test_change_pin():
    v = personalized(delay_ms=1)
    v.put("note", b"kept")
    v.lock()
    with raises(vault.WrongPin):
        v.change_pin(OTHER, bytearray(b"1111"))
    with raises(ValueError):
        v.change_pin(PIN, bytearray(b"1"))
    v.change_pin(PIN, bytearray(b"1111"))
    v = reopened(v)
    with raises(vault.WrongPin):
        v.verify_pin(PIN)
    v.verify_pin(bytearray(b"1111"))
    assert bytes(v.get("note")) == b"kept"


def test_a_wrap_under_another_iteration_count_opens_and_is_made_anew():
    # A unit personalised when PIN_ITERATIONS was 1600: its wrap records that count, opens with
    # it, and is wrapped anew under today's count (a new salt) at the first right PIN.
    v = personalized()
    v.put("note", b"kept")
    salt = crypto.random_bytes(16)
    key = v._pin_key(PIN, salt, 1600)
    v.meta["pin"] = {"salt": salt.hex(), "iter": 1600, "wrap": v._wrap(key, v.data_key)}
    v.store.commit()
    v = reopened(v)
    with raises(vault.WrongPin):
        v.verify_pin(WRONG)
    assert v.meta["pin"]["iter"] == 1600  # a wrong PIN changes nothing of the wrap
    v.verify_pin(PIN)
    assert v.meta["pin"]["iter"] == vault.PIN_ITERATIONS and v.meta["pin"]["salt"] != salt.hex()
    v = reopened(v)
    with raises(vault.WrongPin):
        v.verify_pin(WRONG)
    v.verify_pin(PIN)
    assert bytes(v.get("note")) == b"kept"


def test_accounts_are_bound_to_the_owner():
    v = personalized()
    v.bind_account("DE89370400440532013000", b"account record", b"-----BEGIN CERTIFICATE-----")
    v.bind_account("FR1420041010050500013M02606", b"second", b"cert 2")
    v = reopened(v)
    assert sorted(v.accounts()) == ["DE89370400440532013000", "FR1420041010050500013M02606"]
    with raises(vault.Locked):
        v.account("DE89370400440532013000")
    v.verify_pin(PIN)
    assert v.account("DE89370400440532013000") == (b"account record", b"-----BEGIN CERTIFICATE-----")


def test_wipe_and_reinitialize():
    v = personalized()
    v.lock()
    refused(v, vault.Locked, v.wipe)
    v.verify_pin(PIN)
    v.wipe()
    assert v.state == WIPED and not v.unlocked
    v = reopened(v)
    assert v.state == WIPED
    for call, args in ((v.verify_pin, (PIN,)), (v.provision, ("device.key", b"k")), (v.set_pin, (PIN,)),
                       (v.device_secret, ("device.key",))):
        with raises(vault.WrongState):
            call(*args)
    v.reinitialize()
    assert v.state == FACTORY and v.store.entries() == []


def test_blocked_vault_can_be_wiped():
    v = personalized(max_fails=3, delay_ms=1)
    block(v)
    v.wipe()
    assert v.state == WIPED


def test_a_fail_count_the_flash_did_not_take_stops_the_pin_check():
    # The count is read back (Store.committed: the meta on flash checked a piece at a time
    # against the tag commit() made) before the PIN is looked at: a flash that kept other bytes
    # than the ones written must not let a guess through uncounted.
    v = personalized()
    store = v.store
    commit = store.commit

    def a_flash_that_loses_a_bit():
        commit()
        path = store.root + "/meta." + str(store.meta["seq"])
        with open(path, "r+b") as f:
            first = f.read(1)
            f.seek(0)
            f.write(bytes((first[0] ^ 1,)))

    store.commit = a_flash_that_loses_a_bit
    with raises(vault.VaultError) as e:
        v.verify_pin(bytearray(b"000000"))
    assert "did not reach the flash" in str(e.value), e.value
    store.commit = commit
    assert v.store.committed() is False


def test_an_exception_at_any_write_of_a_commit_leaves_a_store_that_opens():
    # An exception half way through a commit (the heap out on the board, a Ctrl-C at a
    # developer's REPL) closes the file being written with what it has, and LittleFS makes that
    # current: meta half written under its new name was then the newest at the next open,
    # failing its authentication, and the unit was Tampered, one to return to its issuer. At
    # each write of a PIN check (its count's commit, the reset's) and of a put, stopped half
    # way: the store opens, the PIN unlocks, the entry is the old value or the new.
    v = personalized()
    v.put("note", b"0")
    cuts = {}
    for what in ("pin", "put"):
        cut = 1
        while True:
            if what == "pin":
                stopped = stopped_at(cut, lambda: v.verify_pin(PIN), (vault.store, flashfs))
            else:
                stopped = stopped_at(cut, lambda: v.put("note", b"%d" % cut), (vault.store, flashfs))
            v = reopened(v)  # as after the reset that follows
            v.verify_pin(PIN)
            assert v.unlocked and v.meta["fails"] == 0, (what, cut)
            if what == "put":
                assert bytes(v.get("note")) in (b"%d" % (cut - 1) if cut > 1 else b"0", b"%d" % cut), (cut, v.get("note"))
                if bytes(v.get("note")) != b"%d" % cut:
                    v.put("note", b"%d" % cut)  # the old value stood: the next cut starts from this one
            if not stopped:
                break
            cut += 1
        cuts[what] = cut - 1
    assert cuts["pin"] > 10 and cuts["put"] > 10, cuts  # every write of both, a meta's pieces included
