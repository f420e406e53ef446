"""Files of the vfs (update packages of kind 2) from the admin CLI to the virtual handheld, end
to end: published with the bank's update key (`python -m tools.bank.admin publish files <dir>`),
offered at the sign-on (DE48 FILES=<version>: the unit reports FILES=<installed>), downloaded in
0800/360 records over the real uplink from the REAL host (tests/host/uplinkfix.py), verified
against the key provisioning put in the vault, installed at once (update.package.follow), the
files' new content read back on the unit and the version in the fleet view (`admin devices`)
from the sign-on after; a set of a lower security version refused, the installed set kept.
(The installer's power cuts: test_ota_power.py.)
"""

import pytest

import test_uplink
import uplinkfix as fx
from test_update_delivery import UPDATE_DONE, bank, fleet, forget_parameters  # noqa: F401 (a fixture)
from tools.bank import admin

FILES = {"/data/notice.txt": "Closed on Sunday.\n", "/data/issuer/tariff.json": '{"zones": [1, 2]}'}
NEW = {"/data/notice.txt": "Open on Sunday from 10.\n" * 50, "/data/issuer/tariff.json": '{"zones": [1, 2, 3]}'}

ON_DEVICE = UPDATE_DONE + """
import os
from update import files
async def _updated(up):
    await _update_done(up)
    return (files.installed(), repr(up.update_error))
def offered():
    up.update = None
    return go(_updated)
def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None
def clean():
    files.recover()
    for p in %r + ['/update.json']:
        try:
            os.remove(p)
        except OSError:
            pass
clean()
""" % sorted(FILES)


@pytest.fixture(scope="module")
def handheld(vdevice, device, bank):
    test_uplink._join_bank(vdevice, device, bank)
    forget_parameters(device)  # another module's (its bank CA would refuse this bank's host)
    device.exec(ON_DEVICE)
    try:
        yield device
    finally:
        try:
            device.exec("clean()\nboard.wlan().active(False)")
        finally:
            vdevice.rig.detach("wifi")
            device.soft_reset()


def publish(bank, tmp_path, version, svn, content):
    root = tmp_path / ("files-%d" % version)
    for path, text in content.items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text(text)
    assert admin.main(["--state-dir", str(bank.dir), "publish", "files", str(root), "--version", str(version),
                       "--svn", str(svn)]) == 0


def test_files_from_the_admin_cli_to_the_handheld_and_back_in_the_fleet_view(handheld, bank, tmp_path, capsys):
    assert handheld.eval("files.installed()") == (0, 0)
    publish(bank, tmp_path, 1, 1, FILES)
    records = bank.log().count("0800/360 -> 00")
    assert handheld.eval("offered()", timeout=60) == ((1, 1), "None")
    assert {p: handheld.eval("read(%r)" % p) for p in FILES} == FILES
    assert bank.log().count("0800/360 -> 00") > records
    # The sign-on after the install told the bank: the fleet view has the files version.
    assert fleet(bank, capsys)[fx.SERIAL][4] == "1"
    # And a newer set replaces the whole set (several records now), version 2 reported.
    publish(bank, tmp_path, 2, 1, NEW)
    assert handheld.eval("offered()", timeout=60) == ((2, 1), "None")
    assert {p: handheld.eval("read(%r)" % p) for p in NEW} == NEW
    assert fleet(bank, capsys)[fx.SERIAL][4] == "2"


def test_files_of_a_lower_security_version_are_refused_and_the_installed_set_kept(handheld, bank, tmp_path, capsys):
    publish(bank, tmp_path, 3, 0, FILES)  # the old content, a newer version, a lower security version
    (installed, error) = handheld.eval("offered()", timeout=60)
    assert installed == (2, 1) and "files of security version 0, below this unit's 1" in error, error
    assert {p: handheld.eval("read(%r)" % p) for p in NEW} == NEW
    assert not [n for n in handheld.eval("os.listdir('/data') + os.listdir('/data/issuer')") if n.endswith(".new")]
    assert fleet(bank, capsys)[fx.SERIAL][4] == "2"
