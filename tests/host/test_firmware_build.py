"""What can be checked here of the custom firmware build (firmware/): no ESP-IDF, no xtensa
compiler, so no firmware is built. Checked instead: the partition table parses, is aligned,
fits the 4 MB flash without overlaps and holds the vfs image tools/image.py builds; the manifest
freezes exactly the firmware files the board runs, each of which exists and compiles with
mpy-cross for the ESP32; the sdkconfig fragment sets every option firmware/README.md claims."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools import image
from tools.vdevice import build as vbuild
from tools.provision import partitions

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"


def test_partition_table_fits_4mb_without_overlaps():
    parts = partitions.parse()
    assert [p.name for p in parts] == ["nvs", "otadata", "phy_init", "fdata", "ota_0", "ota_1", "vfs"]
    spans = sorted((p.offset, p.end) for p in parts)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    assert spans[0][0] >= partitions.TABLE_OFFSET + partitions.TABLE_SIZE
    assert spans[-1][1] <= 4 * 1024 * 1024
    # Two OTA slots of 1.6875 MB each (firmware/README.md says why), the otadata that chooses.
    slots = [partitions.app_slot(parts, i) for i in (0, 1)]
    assert [(s.name, s.offset, s.size) for s in slots] == [("ota_0", 0x20000, 0x1B0000), ("ota_1", 0x1D0000, 0x1B0000)]
    otadata = partitions.find(parts, "otadata")
    assert (otadata.type, otadata.subtype, otadata.size) == ("data", 0x00, 0x2000)


def test_vfs_partition_is_the_image_tools_image_builds():
    vfs = partitions.find(partitions.parse(), "vfs")
    assert (vfs.offset, vfs.size) == (0x380000, image.VFS_BLOCKS * image.BLOCK_SIZE) == (0x380000, 0x80000)
    assert vfs.encrypted and vfs.subtype == 0x81  # the port's _boot.py mounts it by its label "vfs"
    assert partitions.find(partitions.parse(), "fdata").encrypted


def test_partition_table_binary_format():
    parts = partitions.parse()
    table = partitions.to_binary(parts)
    assert len(table) == 0xC00
    # The first entry, by hand from gen_esp32part.py's format: nvs, data (1), nvs (2), 0x11000, 0x4000.
    assert table[:32] == (b"\xaa\x50\x01\x02" + (0x11000).to_bytes(4, "little") + (0x4000).to_bytes(4, "little")
                          + b"nvs".ljust(16, b"\x00") + b"\x00\x00\x00\x00")
    md5_at = 32 * len(parts)
    assert table[md5_at:md5_at + 16] == b"\xeb\xeb" + b"\xff" * 14
    assert set(table[md5_at + 32:]) == {0xFF}
    assert [repr(p) for p in partitions.from_binary(table)] == [repr(p) for p in parts]
    corrupted = bytearray(table)
    corrupted[40] ^= 1
    with pytest.raises(partitions.PartitionError, match="MD5"):
        partitions.from_binary(bytes(corrupted))


@pytest.mark.parametrize("row, error", [
    ("extra, data, nvs, 0x1f0000, 0x20000,", "overlaps"),
    ("extra, data, nvs, 0x400000, 0x1000,", "past the 4 MB"),
    ("app2, app, factory, 0x21000, 0x1000,", "not aligned"),
    ("extra, data, nvs, 0xf000, 0x1000,", "overlaps the partition table"),
])
def test_partition_checks_refuse_bad_layouts(tmp_path, row, error):
    csv = tmp_path / "partitions.csv"
    csv.write_text((FIRMWARE / "partitions.csv").read_text() + row + "\n")
    with pytest.raises(partitions.PartitionError, match=error):
        partitions.parse(csv)


@pytest.mark.parametrize("drop, error", [("ota_1,", "two app partitions"), ("otadata,", "one otadata")])
def test_partition_checks_want_both_ota_slots_and_otadata(tmp_path, drop, error):
    csv = tmp_path / "partitions.csv"
    lines = (FIRMWARE / "partitions.csv").read_text().splitlines()
    csv.write_text("\n".join(line for line in lines if not line.startswith(drop)) + "\n")
    with pytest.raises(partitions.PartitionError, match=error):
        partitions.parse(csv)


def manifest_files(manifest=FIRMWARE / "manifest.py", port="esp32"):
    """Run a manifest with MicroPython's own tools/manifestfile.py (the v1.28.0 tree the virtual
    handheld is built from, as the port's build runs it); return {frozen name: source path}."""
    source = vbuild.SOURCE
    sys.path.insert(0, str(source / "tools"))
    try:
        import manifestfile
    finally:
        sys.path.remove(str(source / "tools"))
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": str(source), "MPY_LIB_DIR": str(source / "lib" / "micropython-lib"),
        "PORT_DIR": str(source / "ports" / port), "BOARD_DIR": str(FIRMWARE)})
    m.execute(str(manifest))
    return {f.target_path: Path(f.full_path).resolve() for f in m.files()}


def ours(frozen):
    """The frozen files of this tree (not MicroPython's, whose tree build/ holds; the fonts
    tools/fonts.py makes into build/ are the tree's)."""
    return {name: src for name, src in frozen.items() if ROOT in src.parents and vbuild.SOURCE not in src.parents}


def terminal_files(board):
    """What tools/image.py puts on a board, by frozen name (lib/ is /lib, so named relative to it)."""
    files = {dest[:-4] + ".py" if dest.endswith(".mpy") else dest: src.resolve()
             for src, dest in image.firmware_sources(board=board)}
    return {name[4:] if name.startswith("lib/") else name: src for name, src in files.items()}


def test_manifest_freezes_what_the_board_runs():
    frozen = manifest_files()
    terminal = ours(frozen)
    # The port's start-up with our _boot.py: it mounts the vfs partition through lib/flashfs.py,
    # as the virtual handheld's launcher does (test_the_virtual_handheld_freezes_the_same_firmware).
    assert terminal.pop("_boot.py") == FIRMWARE / "_boot.py"
    assert terminal == terminal_files("handheld")
    assert "board/sim.py" not in frozen
    others = {name for name in frozen if name not in terminal}
    # The port's own modules, asyncio, and micropython-lib's ssl (uplink/tls.py imports it; the
    # port has it only through bundle-networking, left out).
    assert {"flashbdev.py", "inisetup.py", "asyncio/core.py", "ssl.py"} <= others
    assert not {name for name in others if name.split("/")[0] in ("webrepl", "mip", "requests")}


def test_the_virtual_handheld_freezes_the_same_firmware():
    # The board-faithful interpreter (tools/vdevice/port/manifest.py): the board's firmware and
    # what stands for the board's C (board/sim.py, the launcher), not the port's own modules/;
    # and the flows bench's probe, frozen so that its code costs the heap nothing.
    frozen = manifest_files(vbuild.VARIANT / "manifest.py", port="unix")
    board = ours(manifest_files())
    assert frozen.pop("board/sim.py") == ROOT / "board" / "sim.py"
    assert frozen.pop("launcher.py") == vbuild.VARIANT.parent / "launcher.py"
    assert frozen.pop("esp32.py") == vbuild.VARIANT.parent / "esp32.py"
    assert frozen.pop("flowprobe.py") == ROOT / "tools" / "flowprobe.py"
    del board["_boot.py"]  # the launcher mounts the partition, through the same lib/flashfs.py
    assert ours(frozen) == board
    assert "ssl.py" in frozen and "asyncio/core.py" in frozen and "_boot.py" not in frozen


def test_every_frozen_file_compiles_for_the_esp32(tmp_path):
    frozen = manifest_files()
    assert len(frozen) > 20
    for name, src in frozen.items():
        assert src.is_file(), name
        result = subprocess.run([image.mpy_cross(), "-march=xtensawin", "-s", name, "-o", str(tmp_path / "out.mpy"),
                                 str(src)], capture_output=True, text=True)
        assert result.returncode == 0, (name, result.stderr)


def sdkconfig():
    settings = {}
    for line in (FIRMWARE / "sdkconfig.board").read_text().splitlines():
        if line.startswith("CONFIG_"):
            key, _, value = line.partition("=")
            assert key not in settings, "%s set twice" % key
            settings[key] = value
    return settings


def test_sdkconfig_sets_what_the_readme_claims():
    settings = sdkconfig()
    claimed = re.findall(r"`(CONFIG_[A-Z0-9_]+)=([^`]*)`", (FIRMWARE / "README.md").read_text())
    assert len(claimed) >= 15
    for key, value in claimed:
        assert settings.get(key) == value, key
    # The security settings this board cannot do without, whatever the README says.
    for key, value in {"CONFIG_SECURE_BOOT_V2_ENABLED": "y", "CONFIG_SECURE_BOOT_V2_RSA_ENABLED": "y",
                       "CONFIG_SECURE_FLASH_ENC_ENABLED": "y", "CONFIG_SECURE_FLASH_ENCRYPTION_MODE_RELEASE": "y",
                       "CONFIG_SECURE_BOOT_ALLOW_JTAG": "n", "CONFIG_SECURE_DISABLE_ROM_DL_MODE": "y",
                       "CONFIG_ESP32_REV_MIN_FULL": "300", "CONFIG_ESPTOOLPY_FLASHSIZE_4MB": "y",
                       "CONFIG_PARTITION_TABLE_OFFSET": hex(partitions.TABLE_OFFSET)}.items():
        assert settings.get(key) == value, key


def test_board_files_name_each_other():
    cmake = (FIRMWARE / "mpconfigboard.cmake").read_text()
    assert "${MICROPY_BOARD_DIR}/sdkconfig.board" in cmake
    assert "${MICROPY_BOARD_DIR}/manifest.py" in cmake
    assert "${MICROPY_BOARD_DIR}/partitions.csv" in cmake
    assert "set(IDF_TARGET esp32)" in cmake
    assert "sdkconfig.ble" not in cmake.split("set(SDKCONFIG_DEFAULTS")[1]


@pytest.mark.parametrize("patch", sorted((FIRMWARE / "patches").glob("*.patch")), ids=lambda p: p.name)
def test_the_virtual_handhelds_tree_has_the_boards_patches(patch):
    # The interpreter the tests and the benches run is the board's only if its tree carries the
    # same changes to MicroPython: each patch reverses cleanly there (it is applied, whole), and
    # the tree's stamp names this set of patches (a changed one makes the tree anew).
    vbuild.ensure()
    check = subprocess.run(["git", "apply", "--reverse", "--check", patch], capture_output=True, text=True,
                           **vbuild.git_in(vbuild.SOURCE))
    assert check.returncode == 0, check.stderr
    assert "; patches sha256:" in vbuild.STAMP.read_text()
