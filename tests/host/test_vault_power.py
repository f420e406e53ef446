"""Power cuts inside every vault operation that writes: at each of its flash operations in turn
the power fails, the virtual handheld boots again, and the invariants must hold:
  - the store opens (nothing corrupted) into a defined state;
  - no PIN attempt is regained: once the device was about to check a PIN, the attempt is on
    flash (the vault's delay hook, which runs right before the check, says "CHECKING");
  - every entry is its old or its new version, never lost;
  - each operation ends all done or not done at all (old PIN xor new PIN, blocked or
    unblocked, wiped or intact).
The test prints how many cut points it covered.
"""

import pytest

from tools.vaultops import OPERATIONS, VaultBench

# What every check reports: the store opens, its state, the fail counter, the device secrets.
REPORT = """
r = {}
try:
    v = open_vault()
    r['state'] = v.state
    r['fails'] = v.meta.get('fails')
    if v.state in ('PROVISIONED', 'PERSONALIZED', 'BLOCKED'):
        r['dukpt'] = bytes(v.device_secret('dukpt.ik'))
%s
except Exception as e:
    r['error'] = repr(e)
print(repr(r))
"""


def probe(body):
    return REPORT % "\n".join("    " + line for line in body.strip().splitlines())


# What each operation's check looks at on the device, after the cut and the reboot.
PROBES = {
    "set PIN": probe("""
if v.state == 'PERSONALIZED':
    r['pin'] = probe_pin(v, PIN)
"""),
    "verify wrong PIN": probe("""
r['pin'] = probe_pin(v, PIN)
"""),
    "verify the last wrong PIN": probe(""),
    "verify right PIN": probe("""
r['pin'] = probe_pin(v, PIN)
r['note'] = bytes(v.get('note'))
"""),
    "change PIN": probe("""
r['old'] = probe_pin(v, PIN)
v.lock()
r['new'] = probe_pin(v, NEW)
v.verify_pin(PIN if r['old'] else NEW)
r['note'] = bytes(v.get('note'))
"""),
    "store entry": probe("""
v.verify_pin(PIN)
r['note'] = bytes(v.get('note'))
"""),
    "store entry again": probe("""
v.verify_pin(PIN)
r['note'] = bytes(v.get('note'))
"""),
    "bind account": probe("""
v.verify_pin(PIN)
r['accounts'] = v.accounts()
r['bound'] = [v.account(a) for a in r['accounts']]
r['note'] = bytes(v.get('note'))
"""),
    "wipe": probe("""
if v.state == 'PERSONALIZED':
    r['pin'] = probe_pin(v, PIN)
    r['note'] = bytes(v.get('note'))
"""),
    "unblock": probe("""
if v.state == 'BLOCKED':
    v.unblock(crypto.hmac_sha256(UNBLOCK_KEY, vault.UNBLOCK_LABEL + v.unblock_challenge()))
    r['unblocked_later'] = v.state
"""),
}


def check(name, report, checking):
    """The invariants of one operation cut short; `checking`: the device had said CHECKING."""
    assert "error" not in report, report
    state = report["state"]
    if state != "WIPED":
        assert report["dukpt"] == b"secret for dukpt.ik", report
    if name == "set PIN":
        assert state == "PROVISIONED" or (state == "PERSONALIZED" and report["pin"]), report
    elif name == "verify wrong PIN":
        assert state == "PERSONALIZED" and report["pin"], report
        # Once the check was due, the attempt is on flash; before, it may or may not be.
        assert report["fails"] == 1 if checking else report["fails"] in (0, 1), report
    elif name == "verify the last wrong PIN":
        # Once the last attempt was checked the vault is blocked (open() finishes a block that
        # the power cut short); before, it is one attempt from it or already counted out.
        assert state == "BLOCKED" if checking else (state, report["fails"]) in (("PERSONALIZED", 2), ("BLOCKED", 3)), report
    elif name == "verify right PIN":
        assert state == "PERSONALIZED" and report["pin"] and report["note"] == b"version 1", report
        assert report["fails"] in (1, 0) if checking else report["fails"] in (0, 1), report
    elif name == "change PIN":
        assert state == "PERSONALIZED" and report["old"] != report["new"], report
        assert report["note"] == b"version 1", report
    elif name == "store entry":
        assert report["note"] in (b"version 1", b"version 2"), report
    elif name == "store entry again":  # over the copy the put before emptied
        assert report["note"] in (b"version 2", b"version 3"), report
    elif name == "bind account":
        assert report["accounts"] in ([], ["DE89370400440532013000"]), report
        assert report["bound"] in ([], [(b"record", b"certificate")]), report
        assert report["note"] == b"version 1", report
    elif name == "wipe":
        assert state == "WIPED" or (state == "PERSONALIZED" and report["pin"] and report["note"] == b"version 1"), report
    elif name == "unblock":
        # Either it happened, or it did not and the same challenge can still be answered.
        assert state == "PROVISIONED" or report.get("unblocked_later") == "PROVISIONED", report


@pytest.fixture(scope="module")
def bench(firmware_image, tmp_path_factory):
    with VaultBench(firmware_image, tmp_path_factory.mktemp("vault-power")) as b:
        yield b


def test_every_operation_has_a_probe():
    assert set(PROBES) == set(OPERATIONS)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_power_cut_at_every_flash_write(bench, name, capsys):
    _, preamble, operation = OPERATIONS[name]
    snapshot = bench.prepare(name)
    writes = bench.flash_writes(name, snapshot)  # a dry run counts them
    assert writes > 0, name
    after_check = 0
    for k in range(1, writes + 1):
        bench.boot_from(snapshot)
        bench.dev.exec(preamble)
        checking = b"CHECKING" in bench.cut(k, operation)
        after_check += checking
        check(name, bench.report(PROBES[name]), checking)
    if name == "verify wrong PIN":
        # Every write comes before the check: no answer is ever given before the count is on flash.
        assert after_check == 0, (name, after_check)
    elif name.startswith("verify"):
        # Cuts both before and after the moment of the check were covered.
        assert 0 < after_check < writes, (name, after_check, writes)
    with capsys.disabled():
        print("\n%s: power cut at each of its %d flash writes (%d of them after the device said it was"
              " checking the PIN), invariants held" % (name, writes, after_check))
