"""The demo terminal (tools/demo.py, tests/host/terminalfix.py): the bank seeded with the demo's
accounts, cards and device; the virtual handheld provisioned against it (its TLS test signing
on), its owner's PIN and bound accounts in the vault; the app started from main.py at its lock
screen, unlocked with DEMO_PIN by taps on the touch panel to the home menu."""

import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from terminalfix import terminal  # noqa: F401 (the fixture)
from tools import demo
from tools.bank import pki
from tools.bank.state import State


def test_the_app_comes_up_locked_and_the_demo_pin_opens_the_home_menu(terminal):
    t = terminal
    locked = t.screen(lambda s: s["title"].startswith("Locked"), timeout=30)
    assert "PIN" in locked["buttons"]
    home = t.unlock()
    assert home["title"] == "Pocket Terminal" and "Balance" in home["buttons"]
    t.choose("Lock")  # on a later page of the menu: "More" until it shows
    t.screen(lambda s: s["title"].startswith("Locked"))


def test_the_bank_knows_the_demo(terminal):
    state = State(terminal.bank.dir)
    try:
        led = state.ledger
        assert led.account("ACC-OWNER")["available"] == 100_000
        assert led.account("ACC-SAVINGS")["available"] == 25_000
        assert led.device(demo.SERIAL)["merchant_account"] == demo.SHOP
        assert led.bindings(demo.SERIAL) == [("ACC-ALICE", "payee"), ("ACC-OWNER", "owner"), ("ACC-SAVINGS", "owner")]
        masked = {c["pan_masked"] for c in led.cards()}
        assert "476173******0010" in masked  # visa-classic
        assert "457199******0011" in masked  # bank-b-debit, another issuer
    finally:
        state.close()
    assert terminal.ledger()["CARD-VISA-CLASSIC"] == demo.CARD_BALANCE


def test_the_vault_holds_the_bound_accounts_and_the_bank_config(terminal):
    t = terminal
    assert (t.vault_state, t.accounts) == ("PERSONALIZED", ["ACC-ALICE", "ACC-OWNER", "ACC-SAVINGS"])
    dev = t.device  # the app stopped: the REPL
    try:
        config = json.loads(dev.read_file("/config/bank.json"))
        assert config == {"host": "localhost", "port": 8583, "serial": demo.SERIAL, "merchant": demo.SERIAL,
                          "currency": "978"}
        assert json.loads(dev.read_file("/config/wifi.json")) == {"ssid": demo.WIFI[0], "key": demo.WIFI[1]}
        dev.exec("import vault\nv = vault.Vault().open()\npin = bytearray(%r)\nv.verify_pin(pin)" % demo.DEMO_PIN.encode())
        bound = {}
        for account in t.accounts:
            record, cert = dev.eval("v.account(%r)" % account)
            bound[account] = (json.loads(record), x509.load_der_x509_certificate(cert))
        device_key = dev.eval("bytes(v.device_secret('device.cert'))")
    finally:
        t.restart()
    records = {a: r for a, (r, _) in bound.items()}
    assert records == {
        "ACC-OWNER": {"name": "Current account", "role": "owner", "currency": "978", "default": True},
        "ACC-SAVINGS": {"name": "Savings", "role": "owner", "currency": "978", "default": False},
        "ACC-ALICE": {"name": "Alice Martin", "role": "payee", "currency": "978", "default": False},
    }
    # Each binding certificate: issued by the bank's CA, for this device's key, naming the
    # account, the device and the role.
    ca = x509.load_pem_x509_certificate((State(t.bank.dir).pki_dir / "ca.pem").read_bytes())
    device = x509.load_der_x509_certificate(bytes(device_key))
    for account, (record, cert) in bound.items():
        cert.verify_directly_issued_by(ca)
        assert cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == \
            device.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        names = {a.oid: a.value for a in cert.subject}
        assert (names[NameOID.COMMON_NAME], names[NameOID.SERIAL_NUMBER], names[NameOID.ORGANIZATIONAL_UNIT_NAME]) \
            == (account, demo.SERIAL, record["role"])


def test_after_a_restart_the_app_is_locked_again(terminal):
    terminal.screen(lambda s: s["title"].startswith("Locked"), timeout=30)


def test_a_binding_needs_a_known_device_and_role(tmp_path):
    pki.init(tmp_path)
    with pytest.raises(pki.PkiError, match="no certificate for device"):
        pki.issue_binding(tmp_path, demo.SERIAL, "ACC-OWNER", "owner")
    pki.issue_device(tmp_path, demo.SERIAL)
    with pytest.raises(pki.PkiError, match="owner or payee"):
        pki.issue_binding(tmp_path, demo.SERIAL, "ACC-OWNER", "admin")


def test_a_demo_state_from_before_merchant_credentials_is_completed_and_serves(tmp_path):
    # A state as the demo seeded it before the merchant API had keys: no merchants' tables, no
    # credentials. `make run` (tools/websim, demo.complete) gives every demo merchant and the
    # operator a key, and the bank host started on it takes their signed calls.
    from tools.bank.spawn import HostProcess

    state_dir = tmp_path / "bank"
    demo.seed(state_dir)
    state = State(state_dir)
    for table in ("merchant_nonces", "merchants", "dukpt_counters", "card_atcs"):
        state.ledger.db.execute("DROP TABLE %s" % table)
    state.close()
    for f in (state_dir / "merchants").iterdir():
        f.unlink()
    assert demo.seeded(state_dir)
    added = demo.complete(state_dir)
    assert added == [demo.merchant.id_for(n) for n, _ in demo.MERCHANTS] + ["OPERATOR"]
    # One credentials file lost later: that merchant gets a new key, the others keep theirs.
    kiosk = state_dir / "merchants" / "COFFEECORNER.json"
    old_key = json.loads(kiosk.read_text())["key_id"]
    kiosk.unlink()
    assert demo.complete(state_dir) == ["COFFEECORNER"] and demo.complete(state_dir) == []
    assert json.loads(kiosk.read_text())["key_id"] != old_key
    host = HostProcess(state_dir)
    try:
        assert host.get("/accounts/ACC-SHOP", "Corner Bakery")["balance"] == 0
        assert host.client("Coffee Corner").call("GET", "/trace")[0] == 403   # a merchant's key
        assert host.get("/trace")["next"] >= 0                               # the operator's
    finally:
        host.stop()
