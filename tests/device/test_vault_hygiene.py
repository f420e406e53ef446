# Secrets hygiene: key material and PINs are overwritten after use, and no error says a secret.
import vault
from vault.store import Tampered

from expect import raises
from vaultfix import PIN, UNBLOCK_KEY, personalized, reopened

WRONG = bytearray(b"000000")


def test_lock_overwrites_the_data_key():
    v = personalized()
    key = v.data_key
    assert key != bytearray(32)
    v.lock()
    assert key == bytearray(32) and v.data_key is None


def test_closing_the_store_overwrites_its_keys():
    v = personalized()
    store = v.store
    secret, keys = store._secret, [k for pair in store._keys.values() for k in pair]
    store.close()
    assert secret == bytearray(len(secret))
    for k in keys:
        assert k == bytearray(len(k))


def test_secrets_read_are_bytearrays_the_caller_can_wipe():
    v = personalized()
    for item in vault.PROVISIONING_ITEMS:
        assert isinstance(v.device_secret(item), bytearray), item
    v.put("note", b"x")
    assert isinstance(v.get("note"), bytearray)


def messages(v):
    """Every refusal the vault can give, as text."""
    out = []
    for call in (lambda: v.verify_pin(WRONG), lambda: v.set_pin(PIN), lambda: v.get("note"),
                 lambda: v.unblock(b"\x00" * 32), lambda: v.unlock_with_fingerprint(1),
                 lambda: v.provision("device.key", UNBLOCK_KEY)):
        try:
            call()
        except Exception as e:
            out.append("%s %r" % (e, e))
    return out


def test_no_error_says_a_secret():
    v = personalized()
    v.put("note", b"the owner's secret note")
    key_hex = bytes(v.data_key).hex()
    v.lock()
    said = " ".join(messages(v))
    assert said, "no refusal to look at"
    for secret in ("246810", "000000", key_hex, UNBLOCK_KEY.hex(), "owner's secret note"):
        assert secret not in said, secret


def test_tamper_message_names_the_file_only():
    v = personalized()
    v.put("note", b"the owner's secret note")
    root = v.store.root
    v.store.close()
    with open(root + "/e.note", "rb") as f:
        data = bytearray(f.read())
    data[-1] ^= 1
    with open(root + "/e.note", "wb") as f:
        f.write(data)
    with raises(Tampered) as e:
        reopened(v)
    assert str(e.value) == "store: entry note is not the version the index records", str(e.value)
