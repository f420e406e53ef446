"""Power cuts inside the install of new terminal parameters (lib/update/config.py through
lib/update/package.install): at each of its flash writes in turn the power fails, the virtual
handheld boots again, and the parameters must be the old ones or the new ones whole (version,
terminal parameters and CA keys together), nothing left staged, and the new package must then
install (again, or refused as not newer once it is in). The test prints how many cut points it
covered.
"""

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tools import emvcard
from tools.bank import updates
from tools.emvcard import perso
from tools.vaultops import VaultBench

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEYS = perso.capk_entries(emvcard.CARDS_DIR)
OLD = {"capk": KEYS[:1], "terminal": {"contactless_limits": [["", 100000, 5000, 0]]}}
NEW = {"capk": KEYS[:2], "terminal": {"contactless_limits": [["", 150000, 9000, 0]]}}

SETUP = """
import asyncio, os
from update import package, config
KEY = package.key_of(bytes.fromhex(%r))
async def _fetch(offset, length):
    with open('/pkg-new.ptpk', 'rb') as f:
        f.seek(offset)
        return f.read(length)
def install():
    try:
        return asyncio.run(package.install(_fetch, KEY)).version
    except package.Refused as e:
        return str(e)
"""
REPORT = """
r = {}
try:
    r['version'] = config.installed()[0]
    r['limits'] = config.terminal()['contactless_limits']
    from emv import capk
    r['keys'] = len(capk.Store.load())
    r['staged'] = 'params.new' in os.listdir('/config')
    r['again'] = install()
    r['after'] = config.installed()[0]
except Exception as e:
    r['error'] = repr(e)
print(repr(r))
"""


def package(version, doc):
    return updates.build(3, version, 0, updates.params_payload(doc)[0], KEY)


@pytest.fixture(scope="module")
def bench(firmware_image, tmp_path_factory):
    with VaultBench(firmware_image, tmp_path_factory.mktemp("update-power")) as b:
        b.boot_from(b.tmp / "blank.img")
        setup = SETUP % updates.public_item(KEY).hex()
        b.dev.exec(setup)
        b.dev.write_file("/pkg-new.ptpk", package(1, OLD))
        assert b.dev.eval("install()") == 1
        b.dev.write_file("/pkg-new.ptpk", package(2, NEW))
        b.snapshot = b.tmp / "old parameters.img"
        b.vd.rig.call("snapshot", path=str(b.snapshot))
        b.setup = setup
        yield b


def test_power_cut_at_every_write_of_a_parameters_install(bench, capsys):
    bench.boot_from(bench.snapshot)
    bench.dev.exec(bench.setup)
    start = bench.vd.rig.call("flash_writes")
    assert bench.dev.eval("install()") == 2
    writes = bench.vd.rig.call("flash_writes") - start
    assert writes > 3
    seen = set()
    for k in range(1, writes + 1):
        bench.boot_from(bench.snapshot)
        bench.dev.exec(bench.setup)
        bench.cut(k, "install()")
        bench.dev.exec(bench.setup)
        r = bench.report(REPORT)
        assert "error" not in r, (k, r)
        assert not r["staged"], (k, r)
        want = OLD if r["version"] == 1 else NEW
        assert r["version"] in (1, 2), (k, r)
        assert (r["limits"], r["keys"]) == (want["terminal"]["contactless_limits"], len(want["capk"])), (k, r)
        # Old: the package installs now; new: it is refused as not newer. Either way, 2 after.
        assert r["again"] == (2 if r["version"] == 1 else "parameters version 2, not newer than the installed 2"), (k, r)
        assert r["after"] == 2, (k, r)
        seen.add(r["version"])
    assert seen == {1, 2}, seen  # cuts before and after the commit point were both covered
    with capsys.disabled():
        print("\nparameters install: power cut at each of its %d flash writes, old or new whole every time" % writes)
