# Tamper: every altered, swapped, deleted or rolled-back store file is detected; the vault then
# refuses to open (Tampered) and changes nothing: the reaction is "refuse", not "wipe", so that
# an attacker who can write the flash cannot turn a tamper into a wipe of the owner's data
# either; the issuer's service path re-provisions such a unit.
import json
import os

from vault import Vault, crypto
from vault.store import Store, Tampered

from expect import raises
from vaultfix import PIN, ROOT, personalized


COUNTER = ROOT + ".seq"  # the store's commit counter, beside its folder (vault/store.py)


def _path(name):
    return name if name.startswith("/") else ROOT + "/" + name


def read(name):
    with open(_path(name), "rb") as f:
        return f.read()


def write(name, data):
    with open(_path(name), "wb") as f:
        f.write(data)


def opens():
    store = Store(ROOT)
    try:
        Vault(store).open()
        return True
    except Tampered:
        return False
    finally:
        store.close()


def store_with_entries():
    v = personalized()
    v.put("note", b"owner's note")
    v.bind_account("001", b"record", b"certificate")
    v.store.close()
    return sorted(os.listdir(ROOT)) + [COUNTER]


def meta_name():
    return [n for n in os.listdir(ROOT) if n.startswith("meta.")][0]


def put_back(files):
    """The store exactly as it was, its commit counter too (checking it may have committed a
    new meta)."""
    for name in os.listdir(ROOT):
        os.remove(ROOT + "/" + name)
    for name, data in files.items():
        write(name, data)


def test_meta_is_json_and_its_hmac_byte_for_byte():
    # The commit writes meta a value at a time; the file must still be exactly what one
    # json.dumps and one HMAC over it give (the format of every vault already in the field).
    v = personalized()
    v.bind_account("001", b"record", b"certificate")
    v.meta["fingers"] = []  # an empty list and an empty dict serialize too
    v.meta["policy"]["nested"] = {}
    v.store.commit()
    body = json.dumps(v.meta).encode()
    assert read(meta_name()) == body + crypto.hmac_sha256(v.store._meta_key, b"meta" + body), len(body)
    assert len(body) > 1000, len(body)  # a meta as large as a personalized one is
    v.store.close()


def test_every_byte_of_every_file_is_covered():
    names = store_with_entries()
    assert names == ["e.account.001", "e.device.cert", "e.device.key", "e.dukpt.ik", "e.dukpt.ksn",
                     "e.issuer.ca", "e.issuer.unblock", "e.issuer.update", "e.note", meta_name(), "secret", COUNTER], names
    files = {name: read(name) for name in names}
    flips = 0
    for name, original in files.items():
        # Every byte of the small files; a spread of positions in the larger ones.
        step = 1 if len(original) <= 128 else 7
        for i in list(range(0, len(original), step)) + [len(original) - 1]:
            put_back(files)
            data = bytearray(original)
            data[i] ^= 0x20
            write(name, data)
            if name in ("e.note", "e.account.001"):
                # Owner entries are checked against the index at open, and in full once the
                # owner's key is there: either refusal counts.
                assert not opens() or not owner_entry_reads(name), (name, i)
            else:
                assert not opens(), (name, i)
            flips += 1
    put_back(files)
    assert opens()
    print("flipped", flips, "bytes")


def owner_entry_reads(name):
    store = Store(ROOT)
    v = Vault(store).open()
    v.verify_pin(PIN)
    try:
        v.get(name[2:])
        return True
    except Tampered:
        return False
    finally:
        store.close()


def test_swapped_entries_are_detected():
    store_with_entries()
    a, b = read("e.dukpt.ik"), read("e.dukpt.ksn")
    write("e.dukpt.ik", b)
    write("e.dukpt.ksn", a)
    assert not opens()


def test_a_deleted_entry_is_detected():
    store_with_entries()
    os.remove(ROOT + "/e.issuer.ca")
    assert not opens()


def test_an_older_copy_of_an_entry_is_detected():
    v = personalized()
    v.put("note", b"version 1")
    old = read("e.note")
    v.put("note", b"version 2")  # into the entry's other copy, e2.note; e.note emptied
    v.store.close()
    assert read("e.note") == b"" and read("e2.note") != old
    write("e2.note", old)
    assert not opens()
    write("e.note", old)  # nor in the copy the index does not name
    write("e2.note", b"")
    assert not opens()


def test_an_entrys_copies_take_turns_and_the_old_one_is_emptied():
    # Each put writes the copy the index does not name, then empties the one it named: the
    # vault reads the new version after a reopen, and no old version is left in a file.
    v = personalized()
    for i in range(1, 5):
        v.put("note", b"version %d" % i)
        copies = sorted(n for n in os.listdir(ROOT) if n.endswith(".note"))
        assert [len(read(n)) > 0 for n in copies] == ([True] if i == 1 else [i % 2 == 1, i % 2 == 0]), (i, copies)
        v.store.close()
        v = Vault(Store(ROOT)).open()
        v.verify_pin(PIN)
        assert bytes(v.get("note")) == b"version %d" % i, i
    v.remove("note")
    assert not [n for n in os.listdir(ROOT) if n.endswith(".note")]
    v.store.close()


def test_an_old_version_left_beside_a_put_is_emptied_at_open():
    # A put cut after its meta, before it emptied the old copy: open() finishes it.
    v = personalized()
    v.put("note", b"version 1")
    old = read("e.note")
    v.put("note", b"version 2")
    v.store.close()
    write("e.note", old)
    store = Store(ROOT)
    reopened = Vault(store).open()
    reopened.verify_pin(PIN)
    assert bytes(reopened.get("note")) == b"version 2" and read("e.note") == b""
    store.close()


def test_an_older_meta_is_detected_when_entries_moved_on():
    v = personalized()
    v.put("note", b"version 1")
    old = read(meta_name())
    v.put("note", b"version 2")
    v.store.close()
    write(meta_name(), old)
    assert not opens()


def guessed(v, n=3):
    """n wrong PINs (each counted on flash, meta committed anew)."""
    for _ in range(n):
        try:
            v.verify_pin(bytearray(b"000000"))
        except Exception:
            pass


def test_an_older_meta_is_detected_when_only_the_fail_counter_moved_on():
    # The attack that matters: note the meta, guess PINs, put the old meta back.
    v = personalized()
    v.lock()
    old = read(meta_name())
    guessed(v)
    v.store.close()
    write(meta_name(), old)
    assert not opens()


def test_an_older_meta_beside_the_current_one_is_ignored():
    v = personalized()
    v.lock()
    old_name, old = meta_name(), read(meta_name())
    guessed(v, 1)
    v.store.close()
    write(old_name, old)  # back under its own, older name
    store = Store(ROOT)
    reopened = Vault(store).open()
    assert reopened.meta["fails"] == 1  # the newest meta counts; the older one is dropped
    assert meta_name() != old_name and len([n for n in os.listdir(ROOT) if n.startswith("meta.")]) == 1
    store.close()


def test_an_older_meta_put_back_under_its_own_name_is_detected():
    # The same attack with the file's own name: the newer meta removed, the older one alone,
    # its name and seq agreeing. Only the commit counter (outside the store's folder) tells.
    v = personalized()
    v.lock()
    old_name, old = meta_name(), read(meta_name())
    guessed(v)
    v.store.close()
    os.remove(ROOT + "/" + meta_name())
    write(old_name, old)
    with raises(Tampered) as e:
        Vault(Store(ROOT)).open()
    assert "older than the commit counter" in str(e.value), e.value
    os.remove(COUNTER)  # nor does removing the counter help
    with raises(Tampered) as e:
        Vault(Store(ROOT)).open()
    assert "counter is missing" in str(e.value), e.value


def test_a_missing_secret_is_detected():
    store_with_entries()
    os.remove(ROOT + "/secret")
    with raises(Tampered):
        Vault(Store(ROOT)).open()
