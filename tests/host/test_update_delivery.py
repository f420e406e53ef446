"""Terminal parameters from the admin CLI to the virtual handheld, end to end: published with
the bank's update key (`python -m tools.bank.admin publish params`), offered at the sign-on
(DE48 CFG=), downloaded in 0800/360 records over the real uplink from the REAL host
(tests/host/uplinkfix.py), verified against the key provisioning put in the vault, installed,
reported back (the fleet view: `admin devices`); a package of another signer and one of a lower
security version refused; the link cut and the power cut mid-download (the package starts
again, nothing partial applied); a revoked terminal refused at sign-on and told so.
"""

import json
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import test_uplink
import uplinkfix as fx
from tools import emvcard
from tools.bank import admin, updates
from tools.bank.state import State
from tools.emvcard import perso
from tools.vdevice import appimage

KEYS = perso.capk_entries(emvcard.CARDS_DIR)

# The uplink's following of a sign-on's offer awaited to its end (its Event), at most 15 s: the
# update tests' devices share it.
UPDATE_DONE = """
async def _update_done(up):
    for _ in range(600):
        if up.update is not None and up.update.is_set():
            break
        await asyncio.sleep_ms(25)
"""

ON_DEVICE = UPDATE_DONE + """
import os
from emv import capk
from vault import Vault
from vault.store import Store
from update import config, package
async def _updated(up):
    await _update_done(up)
    return (config.installed(), repr(up.update_error), up.offered)
def offered():
    up.update = None
    return go(_updated)
_record = up.record
async def slow_record(pid, offset, length):
    if offset > package.PREFIX:  # the first payload record is staged: time for the test's cut
        await asyncio.sleep_ms(1500)
    return await _record(pid, offset, length)
async def _revoked():
    wt = asyncio.create_task(w.run())
    rt = asyncio.create_task(up.run())
    try:
        for _ in range(200):  # the sign-on refused: run() keeps why while it waits to ask again
            if isinstance(up.error, uplink.Revoked):
                break
            await asyncio.sleep_ms(100)
    finally:
        rt.cancel()
        wt.cancel()
        await asyncio.sleep_ms(0)
    from terminal import errors
    from terminal.link import Link
    link = Link(vault, None, config={'host': 'localhost', 'port': 8583, 'serial': 'PT000001'}, wifi=w)
    link.uplink = up
    try:
        await link.ready(100)
    except errors.Failure as f:
        return repr(up.error), f.title, f.message, link._state()[1]
def revoked():
    return asyncio.run(_revoked())
"""


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    host = fx.BankHost(tmp_path_factory.mktemp("bank"))
    yield host
    host.stop()


@pytest.fixture(scope="module")
def handheld(vdevice, device, bank):
    test_uplink._join_bank(vdevice, device, bank)
    forget_parameters(device)
    device.exec(ON_DEVICE)
    try:
        yield device
    finally:
        try:
            forget_parameters(device)
            device.exec("board.wlan().active(False)")
        finally:
            vdevice.rig.detach("wifi")
            device.soft_reset()


def forget_parameters(device):
    """The unit's installed parameters dropped: none installed yet for this module's bank, and
    none left for the next module's (the bank CA they name would refuse its host's)."""
    device.exec("import os\n"
                "for p in ('/config/params.json', '/config/terminal.json', '/data/capk.json', '/config/bank-ca.der'):\n"
                "    try:\n        os.remove(p)\n    except OSError:\n        pass")


def publish(bank, tmp_path, version, svn, limit, keys=KEYS[:1]):
    doc = {"capk": keys, "terminal": {"contactless_limits": [["", 100000, limit, 0]], "floor_limit": 0}}
    path = tmp_path / ("params-%d.json" % version)
    path.write_text(json.dumps(doc))
    assert admin.main(["--state-dir", str(bank.dir), "publish", "params", str(path), "--version", str(version),
                       "--svn", str(svn)]) == 0


def fleet(bank, capsys):
    capsys.readouterr()
    assert admin.main(["--state-dir", str(bank.dir), "devices"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["serial", "state", "firmware", "svn", "config", "files", "last", "sign-on"]
    return {line.split()[0]: line.split()[1:6] for line in out[1:]}


def limit_on(handheld):
    return handheld.eval("config.kernel('978').contactless_limits[0][2]")


def test_parameters_from_the_admin_cli_to_the_handheld_and_back_in_the_fleet_view(handheld, bank, tmp_path, capsys):
    assert handheld.eval("config.installed()") == (0, 0)
    publish(bank, tmp_path, 1, 1, 7000)
    # This script's own imports of them let go of first, as on a unit in use.
    handheld.exec("import parts; parts.unload(('update.config', 'update.package'))")
    stray = handheld.eval("__import__('heapstat').stray_modules()")  # (this script's own, let go of)
    assert handheld.eval("offered()", timeout=60) == ((1, 1), "None", None)
    # The offer was followed in the uplink's task: the modules it imported to do so are let go of
    # (update.follow), not kept in the heap through every flow after; and nothing holds them
    # (the uplink kept the finished task, whose coroutine's frame held update.package: ~2 KB).
    assert handheld.eval("[m for m in __import__('sys').modules if m.startswith('update.')]") == []
    assert sorted(handheld.eval("__import__('heapstat').stray_modules()")) == sorted(stray)
    assert limit_on(handheld) == 7000
    assert bank.log().count("0800/360 -> 00") >= 1
    # The sign-on after the install told the bank: the fleet view has the new version.
    assert fleet(bank, capsys)[fx.SERIAL] == ["production", str(appimage.FACTORY_VERSION), "0", "1", "0"]


def test_a_package_of_another_signer_is_refused_and_nothing_changes(handheld, bank):
    state = State(bank.dir)
    try:
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        raw = updates.build(3, 2, 1, updates.params_payload({"terminal": {"floor_limit": 1}})[0], other)
        (updates.packages_dir(state) / "3.2.ptpk").write_bytes(raw)
        state.ledger.add_package("3.2", 3, 2, 1, len(raw), "forged")
    finally:
        state.close()
    (version, error, _) = handheld.eval("offered()", timeout=60)
    # Another key's signature, read as a number, is at or above the issuer's modulus in some runs
    # (both keys are random 2048-bit ones: when the other's modulus is the larger, its signature
    # may land above ours): refused as out of range (RFC 8017's RSAVP1) before any RSA work;
    # below it, it recovers to an encoding that is not the issuer's.
    assert version == (1, 1), error
    assert "signature is not the issuer's" in error or "signature not below the modulus" in error, error
    assert limit_on(handheld) == 7000


def test_a_lower_security_version_is_refused(handheld, bank, tmp_path):
    publish(bank, tmp_path, 3, 0, 1)
    (version, error, _) = handheld.eval("offered()", timeout=60)
    assert version == (1, 1) and "security version 0, below the installed 1" in error
    assert limit_on(handheld) == 7000


def _cut_mid_download(bank, cut):
    """In a thread: once the host answered the header's record and the first of the payload
    (which the device then stages and sleeps 1.5 s: slow_record), cut."""
    def watch():
        seen = bank.log().count("0800/360 -> 00")
        deadline = time.time() + 30
        while bank.log().count("0800/360 -> 00") < seen + 2 and time.time() < deadline:
            time.sleep(0.02)
        cut()
    threading.Thread(target=watch, daemon=True).start()


def test_the_bank_hanging_up_mid_download_applies_nothing_and_the_next_sign_on_starts_again(
        handheld, bank, vdevice, tmp_path):
    publish(bank, tmp_path, 4, 1, 4000, keys=KEYS)  # several records
    handheld.exec("up.record = slow_record")
    try:
        _cut_mid_download(bank, lambda: vdevice.rig.call("do", name="wifi", action="cut_after_up"))
        (version, error, _) = handheld.eval("offered()", timeout=60)
        assert version == (1, 1) and ("Unanswered" in error or "NotConnected" in error), error
        assert "params.new" not in handheld.eval("os.listdir('/config')")
        assert limit_on(handheld) == 7000
    finally:
        handheld.exec("del up.record")
    vdevice.rig.call("do", name="wifi", action="up")
    assert handheld.eval("offered()", timeout=60)[0] == (4, 1)
    assert limit_on(handheld) == 4000 and handheld.eval("len(capk.Store.load())") == len(KEYS)


def test_a_power_cut_mid_download_applies_nothing_and_the_next_boot_starts_again(handheld, bank, vdevice, tmp_path):
    publish(bank, tmp_path, 5, 1, 5000, keys=KEYS)
    state = State(bank.dir)
    try:
        size = state.ledger.package("3.5")["size"]
    finally:
        state.close()
    assert size > 305 + 960  # a payload record beyond the one the cut lets through
    handheld.exec("up.record = slow_record")
    rig = vdevice.rig
    boots = rig.call("device")["boots"]
    records = bank.log().count("0800/360 -> 00")
    _cut_mid_download(bank, lambda: rig.call("power_cut"))
    handheld.transport.exec_raw_no_follow("offered()")
    vdevice.wait_booted(after_boots=boots, timeout=40)
    assert bank.log().count("0800/360 -> 00") == records + 2  # the header's and one of the payload
    _back(handheld, vdevice)
    assert handheld.eval("config.installed()") == (4, 1)  # the old ones, the partial staging dropped
    assert "params.new" not in handheld.eval("os.listdir('/config')")
    assert handheld.eval("offered()", timeout=60)[0] == (5, 1)
    assert limit_on(handheld) == 5000


def _back(handheld, vdevice):
    handheld.reconnect()
    handheld.soft_reset()
    vdevice.rig.call("do", name="wifi", action="up")
    handheld.exec("from vault import Vault\nfrom vault.store import Store\nvault = Vault(Store('/uplink-vault')).open()")
    handheld.exec(test_uplink.SETUP)
    handheld.exec(ON_DEVICE)


def test_the_bank_certificate_rotated_by_the_parameters(handheld, bank, vdevice, tmp_path):
    # The bank moves its host certificate to a new CA. Before the terminal's parameters name it,
    # a host with the new CA's certificate is refused as untrusted; the parameters name the old
    # CA and the new (the terminal keeps reaching today's host through the move), and then the
    # new host's handshake passes (it asks for the device's certificate, of the old CA still).
    ca_key = ec.generate_private_key(ec.SECP256R1())
    new_ca = fx._cert(ca_key, "Issuer CA 2027", None, None)
    host_key = ec.generate_private_key(ec.SECP256R1())
    server = fx.TlsServer(tmp_path / "new", fx._cert(host_key, "localhost", new_ca, ca_key), host_key,
                          bank.pki / "ca.pem")
    try:
        kind, message = test_uplink._refused(handheld, vdevice, bank, server.address)
        # (mbedTLS gives the refusal to the write or to the read: with its reason, or its code)
        assert kind == "CertificateError" or "CERT_VERIFY_FAILED" in message, (kind, message)
        bundle = (bank.pki / "ca.pem").read_text() + new_ca.public_bytes(serialization.Encoding.PEM).decode()
        path = tmp_path / "params-6.json"
        path.write_text(json.dumps({"bank_ca": bundle}))
        assert admin.main(["--state-dir", str(bank.dir), "publish", "params", str(path), "--version", "6",
                           "--svn", "1"]) == 0
        assert handheld.eval("offered()", timeout=60)[:2] == ((6, 1), "None")
        assert handheld.eval("len(config.bank_cas())") == 2
        assert limit_on(handheld) == 5000  # the sections it left out are as they were
        errors = len(server.errors)
        kind, message = test_uplink._refused(handheld, vdevice, bank, server.address)
        assert kind != "CertificateError" and "CERT_VERIFY" not in message, (kind, message)
        assert len(server.errors) == errors, server.errors  # the handshake passed on both sides
        assert handheld.eval("go(lambda up: asyncio.sleep_ms(0))", timeout=60) is None  # today's host still
    finally:
        server.close()


def test_the_lock_policy_from_the_parameters_reaches_the_vault_and_a_cut_short_one_is_finished(
        handheld, bank, tmp_path):
    lock = {"max_fails": 6, "delay_ms": 2000, "fp_window_s": 86400, "fp_max_fails": 3}
    path = tmp_path / "params-7.json"
    path.write_text(json.dumps({"terminal": {"contactless_limits": [["", 100000, 5000, 0]], "lock": lock}}))
    assert admin.main(["--state-dir", str(bank.dir), "publish", "params", str(path), "--version", "7",
                       "--svn", "1"]) == 0
    assert handheld.eval("offered()", timeout=60)[:2] == ((7, 1), "None")
    policy = "dict((k, v) for k, v in Vault(Store('/uplink-vault')).open().policy.items() if k != 'idle_s')"
    assert handheld.eval(policy) == lock  # committed: a vault opened anew has it
    # A power cut between the parameters' commit and the vault's: the vault still has the old
    # policy; the terminal's start (its Link) finishes it.
    handheld.exec("vault.issuer_policy({'max_fails': 10, 'delay_ms': 1000, 'fp_window_s': 259200, 'fp_max_fails': 5})")
    handheld.exec("from terminal.link import Link\nLink(vault, None, config={'host': 'localhost', 'port': 8583, "
                  "'serial': 'PT000001'}, wifi=w)")
    assert handheld.eval(policy) == lock


def test_a_lock_policy_out_of_the_issuers_bounds_is_refused(handheld, bank, tmp_path):
    # The host signs what it is given; the unit refuses it before anything is written (every
    # bound: test_update_package.py).
    lock = {"max_fails": 3}
    state = State(bank.dir)
    try:
        version = state.ledger.latest_package(updates.PARAMETERS)[1] + 1
    finally:
        state.close()
    path = tmp_path / "params.json"
    path.write_text(json.dumps({"terminal": {"lock": lock}}))
    assert admin.main(["--state-dir", str(bank.dir), "publish", "params", str(path), "--version", str(version),
                       "--svn", "1"]) == 0
    (installed, error, _) = handheld.eval("offered()", timeout=60)
    assert installed == (7, 1) and "lock policy" in error, error


def test_a_revoked_terminal_is_refused_at_sign_on_and_says_so(handheld, bank, capsys):
    assert admin.main(["--state-dir", str(bank.dir), "revoke", fx.SERIAL]) == 0
    try:
        assert fleet(bank, capsys)[fx.SERIAL][0] == "revoked"
        error, title, message, status = handheld.eval("revoked()", timeout=60)
        assert error.startswith("Revoked(")
        assert (title, status) == ("Terminal revoked", "revoked")
        assert "revoked this terminal" in message
        assert "the device is revoked: refused" in bank.log()
    finally:
        assert admin.main(["--state-dir", str(bank.dir), "reinstate", fx.SERIAL]) == 0
