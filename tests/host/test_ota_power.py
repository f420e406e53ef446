"""Updates installed on the virtual handheld (lib/update/ota.py, lib/update/files.py), through
update.package's own download loop over packages the bank's code builds (tools/bank/updates.py,
signed with `cryptography`), and the
virtual ESP32's bootloader (tools/vdevice/esp32.py) judging the result at each boot:

  - a power cut at each flash write of a firmware update leaves the old image booting, or the
    new one on trial (PENDING_VERIFY), never neither;
  - a new image that does not confirm itself before the next reset is rolled back;
  - a confirmed one raises the SECURE_VERSION eFuse (read back with espefuse), after which a
    package of a lower security version is refused before anything is written;
  - a power cut at each flash write of a files update leaves the whole old set or the whole new one.

Every boot is in safe mode (the standby key held: boot.py, then the REPL; its file recovery
runs): what is measured is the update's writes, not the terminal starting.
"""

import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tools.bank import updates
from tools.vaultops import VaultBench
from tools.vdevice import appimage

ISSUER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
FIRMWARE, FILES = updates.FIRMWARE, updates.FILES


def package(kind, version, svn, payload):
    """A package as the bank publishes one (tools/bank/updates.py), signed by the issuer's key."""
    return updates.build(kind, version, svn, payload, ISSUER)


def install_code(bench, pkg):
    """Device code: update.package.install() over the package, read from a file on the flash in
    records as the bank link gives them (the package written there first, before any flash
    operation the test counts or cuts); prints what happened."""
    bench.dev.write_file("/pkg", pkg)
    n = ISSUER.public_key().public_numbers()
    return """
import asyncio
from update import package
f = open('/pkg', 'rb')
async def fetch(offset, length):
    f.seek(offset)
    return f.read(length)
try:
    print('installed', asyncio.run(package.install(fetch, (bytes.fromhex(%r), %d))))
except package.Refused as e:
    print('refused', e)
""" % (n.n.to_bytes(256, "big").hex(), n.e)


OLD = ("ota_0", 1, 0, "VALID")  # the factory's image, booted as before
CONFIRM = "from update import ota\nota.confirm()\n"
# A small image: two 4 KB sectors of the slot (one erased mid-stream), so that each of its writes
# can be cut in turn in a few seconds.
IMAGE_SIZE = 6000
OLD_FILES = [("/lib/tariff.json", b'{"v": 1}'), ("/data/logo.txt", b"old logo\n" * 40)]
NEW_FILES = [("/lib/tariff.json", b'{"v": 2, "zones": [1, 2, 3]}'), ("/data/logo.txt", b"new logo\n" * 60)]
READ_FILES = "print(repr([open(p, 'rb').read() for p in %r]))" % [p for p, _ in OLD_FILES]


@pytest.fixture(scope="module")
def bench(firmware_image, tmp_path_factory):
    """A virtual handheld of its own; factory.img: its whole flash as the factory left it (the
    vfs image, and beside it otadata and the slots, ota_0 holding the factory's app)."""
    with VaultBench(firmware_image, tmp_path_factory.mktemp("update-power")) as b:
        b.boot_from(b.tmp / "blank.img")
        b.vd.rig.call("snapshot", path=str(b.tmp / "factory.img"))
        yield b


def booted(bench):
    """(slot, version, security version, otadata state) the virtual bootloader chose last."""
    slot, version, svn, state = (bench.tmp / "state" / "vdevice.boot").read_text().split()
    return slot, int(version), int(svn), state


def reset(bench):
    boots = bench.vd.rig.call("reset")["boots"]
    bench.vd.wait_booted(after_boots=boots - 1)
    bench.connect()


def secure_version_efuse(bench):
    """The SECURE_VERSION eFuse as espefuse reads the virtual chip's file (the oracle)."""
    out = subprocess.run([sys.executable, "-m", "espefuse", "--chip", "esp32", "--virt", "--path-efuse-file",
                          str(bench.tmp / "state" / "vdevice.efuse"), "summary", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out[out.index("{"):])["SECURE_VERSION"]["value"]


def counted(bench, code):
    """Run code; (flash operations it made, what it printed)."""
    start = bench.vd.rig.call("flash_writes")
    said = bench.dev.exec(code, timeout=60)
    return bench.vd.rig.call("flash_writes") - start, said


def test_firmware_update_power_cut_at_each_write(bench, capsys):
    pkg = package(FIRMWARE, 2, 1, appimage.build(2, 1, size=IMAGE_SIZE))
    base = bench.tmp / "factory.img"
    bench.boot_from(base)
    assert booted(bench) == ("ota_0", appimage.FACTORY_VERSION, appimage.FACTORY_SECURE_VERSION, "VALID")
    bench.dev.exec(CONFIRM)
    writes, said = counted(bench, install_code(bench, pkg))
    assert "installed <package kind 1 version 2 svn 1, %d bytes>" % len(pkg[305:]) in said, said
    assert writes > 3
    outcomes = []
    for k in range(1, writes + 1):
        bench.boot_from(base)
        bench.dev.exec(CONFIRM)
        bench.cut(k, install_code(bench, pkg))
        outcomes.append(booted(bench))
        assert outcomes[-1] in (OLD, ("ota_1", 2, 1, "PENDING_VERIFY")), (k, outcomes[-1])
    # The switch is the last write (otadata's sector), or its erase before it.
    assert outcomes[:-2] == [OLD] * (writes - 2), outcomes
    with capsys.disabled():
        print("\nfirmware update: power cut at each of its %d flash writes; old image booted after %d, new on trial"
              " after %d" % (writes, outcomes.count(OLD), writes - outcomes.count(OLD)))


def test_image_must_match_its_signed_header(bench):
    bench.boot_from(bench.tmp / "factory.img")
    bench.dev.exec(CONFIRM)
    # Signed as version 5 but carrying an image whose descriptor says 4: refused, nothing written.
    writes, said = counted(bench, install_code(bench, package(FIRMWARE, 5, 1, appimage.build(4, 1, size=IMAGE_SIZE))))
    assert "refused the image's descriptor does not match" in said and writes == 0, said
    writes, said = counted(bench, install_code(bench, package(FIRMWARE, 5, 1, b"\x00" * IMAGE_SIZE)))
    assert "refused not an ESP32 app image" in said and writes == 0, said


def test_files_update_power_cut_at_each_write(bench, capsys):
    old = [c for _, c in OLD_FILES]
    new = [c for _, c in NEW_FILES]
    bench.boot_from(bench.tmp / "factory.img")
    old_set = package(FILES, 1, 1, updates.sections(OLD_FILES))
    assert "installed" in bench.dev.exec(install_code(bench, old_set), timeout=60)
    base = bench.tmp / "files-base.img"
    bench.vd.rig.call("snapshot", path=str(base))
    assert bench.report(READ_FILES) == old
    pkg = package(FILES, 2, 1, updates.sections(NEW_FILES))
    writes, said = counted(bench, install_code(bench, pkg))
    assert "installed" in said and bench.report(READ_FILES) == new, said
    seen = []
    for k in range(1, writes + 1):
        bench.boot_from(base)
        bench.cut(k, install_code(bench, pkg))
        seen.append(bench.report(READ_FILES))  # boot.py has finished or dropped the set
        assert seen[-1] in (old, new), (k, seen[-1])
    assert seen[0] == old and seen[-1] == new
    with capsys.disabled():
        print("\nfiles update: power cut at each of its %d flash writes; old set after %d, new set after %d"
              % (writes, seen.count(old), seen.count(new)))


@pytest.mark.parametrize("files, error", [
    ([("/store/meta", b"x")], "'/store/meta' may not be written"),
    ([("/lib/../store/meta", b"x")], "may not be written"),
    ([("/lib/a.py", b"1"), ("/lib/a.py", b"2")], "comes twice"),
    ([("/lib/a.py.new", b"1")], "may not be written"),
])
def test_files_refused_paths_leave_nothing(bench, files, error):
    bench.boot_from(bench.tmp / "factory.img")
    code = install_code(bench, package(FILES, 1, 1, updates.sections(files)))
    said = bench.dev.exec("try:\n" + "\n".join("    " + line for line in code.strip().splitlines())
                          + "\nexcept package.BadPackage as e:\n    print('bad', e)\nimport os\nprint(os.listdir('/'))",
                          timeout=60)
    assert "bad files: " in said and error in said, said
    assert "update." not in said, said  # nothing staged, listed or committed


# Last: it raises the eFuse for good, and leaves the unit unbootable from the factory's flash.
def test_new_image_rolls_back_unless_confirmed_then_raises_the_floor(bench):
    pkg = package(FIRMWARE, 2, 1, appimage.build(2, 1, size=IMAGE_SIZE))
    bench.boot_from(bench.tmp / "factory.img")
    bench.dev.exec(CONFIRM)
    assert "installed" in bench.dev.exec(install_code(bench, pkg), timeout=60)
    reset(bench)
    assert booted(bench) == ("ota_1", 2, 1, "PENDING_VERIFY")
    assert bench.report("from update import ota\nprint(repr(ota.running()))") == (2, 1)
    reset(bench)  # not confirmed: the bootloader marks it ABORTED and boots the old one
    assert booted(bench) == ("ota_0", 1, 0, "VALID")
    assert secure_version_efuse(bench) == 0
    # Again, and this time the new image confirms itself: valid, and the eFuse raised.
    bench.dev.exec(CONFIRM)
    assert "installed" in bench.dev.exec(install_code(bench, pkg), timeout=60)
    reset(bench)
    assert booted(bench) == ("ota_1", 2, 1, "PENDING_VERIFY")
    assert secure_version_efuse(bench) == 0  # not before it confirmed itself
    # On trial, it installs nothing (its fallback is the slot an update writes).
    assert bench.report("from update import ota\nprint(ota.on_trial())") is True
    writes, said = counted(bench, install_code(bench, package(FIRMWARE, 3, 1, appimage.build(3, 1, size=IMAGE_SIZE))))
    assert "refused the running firmware has not confirmed itself yet" in said and writes == 0, said
    bench.dev.exec(CONFIRM)
    assert bench.report("from update import ota\nprint(ota.on_trial())") is False
    assert secure_version_efuse(bench) == 0b1
    assert bench.report("from update import ota\nprint(ota.floor())") == 1
    reset(bench)
    assert booted(bench) == ("ota_1", 2, 1, "VALID")
    # A downgrade below the floor is refused before any write; a newer one goes to ota_0. The
    # confirmation is the bootloader's record, not the module's: confirmed, then update.ota let
    # go of and imported anew (as the app and a sign-on's offer let go of modules beside a flow),
    # it still installs.
    bench.dev.exec(CONFIRM + "import parts\nparts.unload(['update.ota'])\n")
    writes, said = counted(bench, install_code(bench, package(FIRMWARE, 3, 0, appimage.build(3, 0, size=IMAGE_SIZE))))
    assert "refused firmware of security version 0, below this unit's 1" in said and writes == 0, said
    writes, said = counted(bench, install_code(bench, package(FIRMWARE, 3, 1, appimage.build(3, 1, size=IMAGE_SIZE))))
    assert "installed" in said and writes > 0, said
    reset(bench)
    assert booted(bench) == ("ota_0", 3, 1, "PENDING_VERIFY")
    # The flash put back as the factory wrote it (the old image, svn 0): the eFuse stays, so the
    # bootloader finds no app it may boot, and the unit does not start.
    bench.dev.close()
    bench.dev = None
    bench.vd.rig.call("restore", path=str(bench.tmp / "factory.img"))
    bench.vd.proc.wait(10)
    assert "no bootable app partitions" in bench.vd.log_tail()
