"""The bank's side of updates and terminal management over real TLS with the CPython terminal
(tools/bank/client.py), on SQLite and on PostgreSQL (tools/bank/PROTOCOL.md, "Updates and
terminal management"): the sign-on's versions recorded and what is newer offered, a package
served in 0800/360 records (checked whole against `cryptography`), the refusals, the fleet
view, revocation (62 to every request, nothing posted) and reinstatement.
"""

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from tests.host import bankfix
from tests.host.test_bank_flows import bank, postgres, run, signed_on  # noqa: F401 (fixtures)
from tools.bank import admin, updates

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")


def publish(bank, kind, version, svn=0, payload=b"payload"):
    return updates.publish(bank.state, kind, version, svn, payload)


async def versions(t, fw, svn, cfg, files=None):
    de48 = "FW=%d;SVN=%d;CFG=%d" % (fw, svn, cfg) + ("" if files is None else ";FILES=%d" % files)
    return await t.request("0800", {"70": "001", "48": de48})


def test_the_sign_on_records_the_versions_and_is_told_what_is_newer(bank):
    publish(bank, updates.PARAMETERS, 3)
    publish(bank, updates.FIRMWARE, 7, 2)
    publish(bank, updates.FILES, 4, 1)

    async def go():
        t = await signed_on(bank)  # a firmware from before updates: no DE48, approved
        # before files updates (no FILES=): offered none; then files older, then all current
        answers = [await versions(t, 6, 2, 0), await versions(t, 6, 2, 0, 3), await versions(t, 7, 2, 3, 4)]
        await t.close()
        return answers
    before_files, older, current = run(go())
    assert (before_files["39"], before_files["48"], before_files["mac_ok"]) == ("00", "CFG=3;UPD=1.7", True)
    assert (older["39"], older["48"], older["mac_ok"]) == ("00", "CFG=3;FILES=4;UPD=1.7", True)
    assert current["39"] == "00" and "48" not in current
    rows = {r["serial"]: r for r in admin.fleet(bank.state)}
    assert rows["PT000002"]["last_sign_on"] == "never" and rows["PT000002"]["config"] is None
    row = rows["PT000001"]
    assert (row["serial"], row["firmware"], row["svn"], row["config"], row["files"], row["state"]) == (
        "PT000001", 7, 2, 3, 4, "production")
    assert row["last_sign_on"] != "never"


def test_a_package_comes_whole_in_records_and_verifies_with_the_update_key(bank):
    payload = bytes(range(256)) * 8
    pid = publish(bank, updates.PARAMETERS, 1, 0, payload)

    async def go():
        t = await signed_on(bank)
        got, offset, answers = b"", 0, []
        while True:
            a = await t.request("0800", {"70": "360", "48": "PKG=%s;OFF=%d;LEN=999" % (pid, offset)})
            answers.append(a)
            assert a["39"] == "00" and a["mac_ok"], a
            chunk = bytes.fromhex(a.get("72", ""))
            if not chunk:
                break
            got += chunk
            offset += len(chunk)
        await t.close()
        return got, answers
    raw, answers = run(go())
    assert answers[0]["48"] == "PKG=%s;OFF=0;SIZE=%d" % (pid, len(raw))
    assert len(answers) == 4 and answers[-1]["48"].endswith("SIZE=%d" % len(raw))  # 3 records, then none
    assert raw[305:] == payload and raw[:5] == b"PTPK\x03"
    key = serialization.load_pem_private_key(updates.key_path(bank.state).read_bytes(), None).public_key()
    key.verify(raw[49:305], raw[:49], padding.PKCS1v15(), hashes.SHA256())  # raises if not


ASKS = [("PKG=3.9;OFF=0;LEN=10", "25"), ("PKG=3.1;OFF=0;LEN=1000", "30"), ("PKG=3.1;OFF=0;LEN=0", "30"),
        ("PKG=3.1;OFF=-1;LEN=10", "30"), ("PKG=3.1", "30"), ("OFF=0;LEN=10", "30"), ("PKG=3.1;OFF=x;LEN=1", "30")]


def test_a_download_the_host_cannot_serve_is_refused(bank):
    publish(bank, updates.PARAMETERS, 1)

    async def go():
        t = await signed_on(bank)
        answers = [await t.request("0800", {"70": "360", "48": ask}) for ask, _ in ASKS]
        await t.close()
        return answers
    for (ask, rc), a in zip(ASKS, run(go())):
        assert (a["39"], a["mac_ok"], "72" in a) == (rc, True, False), (ask, a)


def test_a_version_is_published_once_and_its_package_stays(bank):
    pid = publish(bank, updates.PARAMETERS, 2, 0, b"first")
    first = (updates.packages_dir(bank.state) / (pid + ".ptpk")).read_bytes()
    with pytest.raises(updates.UpdateError, match="published already"):
        publish(bank, updates.PARAMETERS, 2, 0, b"second")
    assert (updates.packages_dir(bank.state) / (pid + ".ptpk")).read_bytes() == first


def test_a_revoked_device_is_refused_everything_then_reinstated(bank):
    cli = ["--state-dir", str(bank.state.dir), "--database", bank.state.database_url]
    assert admin.main(cli + ["revoke", "PT000001"]) == 0
    before = balances(bank)

    async def go():
        t = await bankfix.terminal(bank.state, bank.address, "PT000001")
        refused = [await versions(t, 1, 0, 0), await t.purchase(bankfix.make_card(), 1000, pin="1234")]
        states = {r["serial"]: r["state"] for r in admin.fleet(bank.state)}
        assert admin.main(cli + ["reinstate", "PT000001"]) == 0
        again = await versions(t, 1, 0, 0)
        await t.close()
        return refused, states, again
    (sign_on, purchase), states, again = run(go())
    assert (sign_on["39"], sign_on["mac_ok"], purchase["39"]) == ("62", True, "62")
    assert "48" not in sign_on
    assert states == {"PT000001": "revoked", "PT000002": "production"}
    assert balances(bank) == before  # nothing posted
    assert again["39"] == "00"


def balances(bank):
    return {a["id"]: a["balance"] for a in bank.state.ledger.accounts()}
