"""python -m tools.provision inject on the virtual handheld, against the real bank host
(tests/host/uplinkfix.py's BankHost: `python -m tools.bank` on a fresh state directory).

- end to end: a blank flash image -> inject (secrets from the bank's HSM and PKI, read-back,
  the TLS test connection: the unit's uplink signing on) -> PROVISIONED -> a card purchase
  approved by the bank with online PIN and ARQC, the ledger moved; the audit record, grepped
  for every secret;
- refusals: a provisioned unit without --reprovision, a certificate from another CA, a key
  that does not match, no bank state, an unreachable bank host;
- the read-back checks catching a value the unit holds that is not the one meant;
- a power cut at each flash write of inject's transaction: the unit afterwards is FACTORY with
  no secret or PROVISIONED with all, never half;
- the production lock: the eFuse bit burned by the unit (espefuse reads it in the virtual
  eFuse file), the unit reset and its REPL gone.
"""

import base64
import datetime
import json
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import uplinkfix as fx
from tools.device import Device, DeviceError
from tools.provision import inject
from tools.provision.__main__ import main
from tools.provision.common import ProvisionError
from tools.vaultops import VaultBench
from tools.vdevice.spawn import VDeviceProcess

WIFI = "PocketNet:correct horse"  # the rig's access point (tools/rig/wifi.py)

PURCHASE = """
import asyncio, wifi, uplink, vault
v = vault.Vault().open()
w = wifi.Wifi(network=('PocketNet', 'correct horse'))
up = uplink.Uplink(v, {'host': 'localhost', 'port': 8583, 'serial': 'PT000001', 'merchant': 'PT000001SHOP001',
                       'currency': '978'}, wifi=w)
pin = bytearray(b'1234')
async def _go():
    wt = asyncio.create_task(w.run())
    t = asyncio.create_task(up.run())
    try:
        if not await up.wait_ready(20000):
            return ('not ready', repr(up.error))
        a = await up.purchase(card, %d, pin=pin)
        return (a.mti, a.rc)
    finally:
        t.cancel()
        wt.cancel()
        await asyncio.sleep_ms(0)
print(repr(asyncio.run(_go())))
"""


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    host = fx.BankHost(tmp_path_factory.mktemp("bank"))
    yield host
    host.stop()


@pytest.fixture
def unit(firmware_image, tmp_path, bank):
    """A virtual handheld on a blank flash image, its Wi-Fi access point routing to the bank."""
    shutil.copyfile(firmware_image, tmp_path / "flash.img")
    vd = VDeviceProcess(tmp_path / "flash.img", tmp_path / "state")
    vd.rig.attach("wlan0", "wifi", name="wifi")
    vd.rig.call("do", name="wifi", action="target", host=bank.address[0], port=bank.address[1])
    yield vd
    vd.stop()


def run_inject(unit, bank, audit, *extra):
    return main(["inject", "--port", unit.repl, "--serial", fx.SERIAL, "--bank-state", str(bank.dir),
                 "--bank-host", "localhost:8583", "--wifi", WIFI, "--audit", str(audit), *extra])


def secrets_of(bank):
    """Every secret inject sends, in the forms a leak could take (hex, upper hex, base64)."""
    from tools.bank import pki
    from tools.bank.state import State

    state = State(bank.dir)
    record = json.loads((bank.dir / "factory" / (fx.SERIAL + ".json")).read_text())
    unblock = state.hsm.unseal(bytes.fromhex(record["unblock_sealed"]),
                               b"issuer.unblock " + fx.SERIAL.encode() + bytes((record["generation"],)))
    ikid = inject.initial_key_id(fx.SERIAL, "00000001", record["generation"])
    values = [state.hsm.initial_key(ikid), unblock, pki.device_files(bank.pki, fx.SERIAL)["key_der"].read_bytes()]
    state.close()
    forms = []
    for v in values:
        forms += [v.hex(), v.hex().upper(), base64.b64encode(v).decode()]
    # A key's DER is long: any 16-byte piece of it, in hex, would be a leak too.
    forms += [values[2][i:i + 16].hex() for i in range(0, len(values[2]) - 16, 16)]
    return forms


def test_blank_unit_to_purchase(unit, bank, tmp_path, capsys):
    audit = tmp_path / "audit.jsonl"
    assert run_inject(unit, bank, audit) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "signs on to the bank host" in out and "PT000001 is PROVISIONED" in out
    record = json.loads(audit.read_text().splitlines()[-1])
    registered = bank.ledger  # the host's own view
    assert record["result"] == "ok" and record["read_back"] == "ok" and record["tls_test"] == "ok"
    assert record["state_before"] == "BLANK" and record["state"] == "PROVISIONED"
    assert record["serial"] == fx.SERIAL and record["operator"] and record["start"] <= record["end"]
    generation = record["generation"]  # injections of this serial so far (other tests here inject it too)
    assert record["ksn"] == "00000001" + "%02x000001" % generation + "00000000"
    from tools.bank.state import State

    state = State(bank.dir)
    assert record["certificate_sha256"] == state.ledger.device(fx.SERIAL)["cert_sha256"]
    state.close()
    text = audit.read_text()
    leaks = [s for s in secrets_of(bank) if s in text]
    assert not leaks, "secrets in the audit record"
    # The provisioned unit pays: a card purchase with online PIN and ARQC, approved, booked.
    before = registered()["accounts"]
    code, _, _ = fx.card_result_code(1250)
    dev = Device(unit.repl)
    try:
        dev.soft_reset()  # a fresh interpreter, as after the unit's next start
        dev.exec(code)
        got = dev.exec(PURCHASE % 1250, timeout=90).strip().splitlines()[-1]
    finally:
        dev.close()
    assert got == "('0210', '00')"
    after = registered()["accounts"]
    assert after[fx.CARD_ACCOUNT] == before[fx.CARD_ACCOUNT] - 1250 and after[fx.SHOP] == before[fx.SHOP] + 1250
    # Provisioned: refused without --reprovision, the unit untouched; with it: wiped, a new
    # generation of DUKPT key id (its counters never restart), PROVISIONED again.
    assert run_inject(unit, bank, audit) == 4
    assert "already PROVISIONED" in capsys.readouterr().err
    assert json.loads(audit.read_text().splitlines()[-1])["result"] == "failed"
    assert run_inject(unit, bank, audit, "--reprovision", "--production-lock") == 0
    assert "gives no REPL: production-locked" in capsys.readouterr().out
    record = json.loads(audit.read_text().splitlines()[-1])
    assert (record["state_before"], record["state"], record["production"]) == ("PROVISIONED", "PROVISIONED", True)
    assert record["production_efuse"] == "BLOCK3 bit 255"
    assert record["ksn"] == "00000001" + "%02x000001" % (generation + 1) + "00000000"
    # The bit as espefuse (the third-party reader of the virtual eFuse file) sees it: BLOCK3's
    # last word 0x80000000, nothing else burned.
    assert efuse_dump(unit)["BLOCK3"] == ["00000000"] * 7 + ["80000000"]
    with pytest.raises(DeviceError):
        Device(unit.repl, timeout=2)


def efuse_dump(vd):
    """{block: [words in hex]} of the virtual handheld's eFuses, as `espefuse dump` prints them."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "espefuse", "--chip", "esp32", "--virt", "--path-efuse-file",
                          str(vd.state_dir / "vdevice.efuse"), "dump"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: line.split("dump:")[1].split() for line in out.splitlines() if " dump: " in line}


def foreign_certificate(serial, key):
    """A certificate for serial and key, signed by a CA that is not the bank's."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Pocket Terminal issuer CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, serial)]))
            .issuer_name(name).public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=9))
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_identity_checks_refuse_bad_certificates_and_keys(bank):
    from tools.bank import pki

    files = pki.device_files(bank.pki, fx.SERIAL)
    ca, cert, key = (bank.pki / "ca.der").read_bytes(), files["cert_der"].read_bytes(), files["key_der"].read_bytes()
    assert inject.check_identity(ca, cert, key, fx.SERIAL)[1] == pki.fingerprint(cert)
    der = serialization.load_der_private_key(key, None)
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    cases = [((ca, foreign_certificate(fx.SERIAL, der), key, fx.SERIAL), "not signed by the issuer CA"),
             ((ca, cert, other, fx.SERIAL), "does not match its certificate"),
             ((ca, cert, key, "PT000002"), "names ['PT000001'], not PT000002"),
             ((ca, cert[:-10], key, fx.SERIAL), "does not parse")]
    for args, message in cases:
        with pytest.raises(ProvisionError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
            inject.check_identity(*args)
        assert e.value.code == 5


def test_no_bank_state_and_unreachable_bank_stop_the_line(unit, bank, tmp_path, capsys, monkeypatch):
    # The TLS test's wait for a sign-on that cannot come, 3 s instead of the line's 20: the
    # bank refuses every attempt, so its last error is the same (the uplink tries each second).
    monkeypatch.setattr(inject, "TLS_TEST_MS", 3000)
    audit = tmp_path / "audit.jsonl"
    assert main(["inject", "--port", unit.repl, "--serial", fx.SERIAL, "--bank-state", str(tmp_path / "nobank"),
                 "--audit", str(audit)]) == 5
    assert "no bank HSM or issuer CA" in capsys.readouterr().err
    dev = Device(unit.repl)
    assert inject.unit_state(dev)[2] == "BLANK"  # nothing was written
    dev.close()
    unit.rig.call("do", name="wifi", action="target", host="127.0.0.1", port=1)  # the bank is down
    assert run_inject(unit, bank, audit) == 7
    err = capsys.readouterr().err
    # The refusal itself, not a Wi-Fi still joining: within those 3 s an attempt was refused.
    assert "could not sign on to the bank host localhost:8583: connection ended before the sign-on" in err, err
    record = json.loads(audit.read_text().splitlines()[-1])
    assert record["result"] == "failed" and record["read_back"] == "ok" and "tls_test" not in record


@pytest.fixture(scope="module")
def bench(firmware_image, tmp_path_factory, bank):
    """A virtual handheld of its own (tools/vaultops.VaultBench) with a FACTORY snapshot. Its
    standby key is held, as on the factory's fixture: every boot is in safe mode (the REPL,
    without the terminal application)."""
    with VaultBench(firmware_image, tmp_path_factory.mktemp("inject-power")) as b:
        b.vd.rig.set_pin("standby_key", 0)
        b.boot_from(b.tmp / "blank.img")
        b.dev.exec("vault.Vault().open()")
        b.vd.rig.call("snapshot", path=str(b.tmp / "factory.img"))
        yield b


# What a unit holds after a cut: its state, its entries' check values, any store file left over.
HOLDS = """
import os
v = vault.Vault().open()
r = {'state': v.state, 'files': sorted(os.listdir('/store'))}
if v.state == 'PROVISIONED':
    import hashlib, binascii
    r['items'] = {i: binascii.hexlify(hashlib.sha256(v.device_secret(i)).digest()).decode()
                  for i in vault.PROVISIONING_ITEMS}
print(repr(r))
"""


def test_read_back_catches_a_value_that_is_not_the_one_meant(bench, bank):
    items, _ = inject.unit_secrets(bank.dir, fx.SERIAL, "00000001")
    for item, altered in (("dukpt.ksn", items["dukpt.ksn"][:-1] + b"\x01"),
                          ("device.cert", items["device.cert"][:-1] + bytes((items["device.cert"][-1] ^ 1,))),
                          ("dukpt.ik", bytes(16))):
        bench.boot_from(bench.tmp / "factory.img")
        bench.dev.exec(inject.transaction_code(dict(items, **{item: altered})))
        with pytest.raises(ProvisionError) as e:
            inject.read_back(bench.dev, items)
        assert e.value.code == 6 and item in str(e.value), str(e.value)
    bench.boot_from(bench.tmp / "factory.img")
    bench.dev.exec(inject.transaction_code(items))
    assert inject.read_back(bench.dev, items)["state"] == "PROVISIONED"


def test_power_cut_at_each_write_of_inject(bench, bank, capsys):
    import hashlib

    items, _ = inject.unit_secrets(bank.dir, fx.SERIAL, "00000001")
    expected = {i: hashlib.sha256(v).hexdigest() for i, v in items.items()}
    code = inject.transaction_code(items)
    bench.boot_from(bench.tmp / "factory.img")
    start = bench.vd.rig.call("flash_writes")
    bench.dev.exec(code)
    writes = bench.vd.rig.call("flash_writes") - start
    assert writes > 10
    done = bench.report(HOLDS)
    assert (done["state"], done["items"]) == ("PROVISIONED", expected)
    seen = {}
    for k in range(1, writes + 1):
        bench.boot_from(bench.tmp / "factory.img")
        bench.cut(k, code)
        held = bench.report(HOLDS)
        if held["state"] == "FACTORY":
            # No secret: no entry, and no sealed file left behind either.
            assert [f for f in held["files"] if f.startswith("e.")] == [], (k, held)
        else:
            assert held["state"] == "PROVISIONED" and held["items"] == expected, (k, held)
            assert len([f for f in held["files"] if f.startswith("e.")]) == len(items), (k, held)
        seen[held["state"]] = seen.get(held["state"], 0) + 1
    # Both sides of the transaction's commit were cut.
    assert set(seen) == {"FACTORY", "PROVISIONED"}, seen
    with capsys.disabled():
        print("\ninject: power cut at each of its %d flash writes; the unit afterwards: %s" % (
            writes, ", ".join("%s %d times" % kv for kv in sorted(seen.items()))))
