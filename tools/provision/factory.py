"""`image`: the factory images of one firmware build, in an output folder:

    vfs.img              the vfs partition's file system (tools/image.py's builder): empty, data
                         only, for the firmware is frozen into the app (firmware/manifest.py),
                         and an OTA update replaces it there (docs/updates.md)
    fs-handheld/         the firmware as files (board "handheld"), what `flash` writes through
                         the REPL of a unit without a ROM bootloader (the virtual handheld)
    partition-table.bin  firmware/partitions.csv in ESP-IDF's binary format
    factory.bin          given --firmware and --bootloader: everything merged at the table's
                         offsets, from 0x0 (esptool merge-bin), to write in one piece
    layout.json          what goes where: offset, size and SHA-256 of each part (flash reads it)
"""

import json
from pathlib import Path

from esptool import bin_image, cmds

from tools import image
from tools.provision import partitions
from tools.provision.common import IMAGE, fail, progress, sha256_file

CHIP = "esp32"
MIN_REV_FULL = 300  # CONFIG_ESP32_REV_MIN_FULL in firmware/sdkconfig.board


def check_app_image(path, what):
    """An ESP32 image esptool can parse (header, segments, checksum): else a clear error."""
    try:
        img = bin_image.LoadFirmwareImage(CHIP, str(path))
        img.verify()
    except Exception as e:  # esptool raises FatalError, struct.error, ... on a file that is no image
        fail(IMAGE, "%s %s is not a valid ESP32 image: %s" % (what, path, e))
    if img.min_rev_full < MIN_REV_FULL:
        fail(IMAGE, "%s %s runs on chip revisions from v%d.%d: not built with firmware/sdkconfig.board "
             "(CONFIG_ESP32_REV_MIN_FULL=300, which Secure Boot v2 needs)" % (what, path, img.min_rev_full // 100,
                                                                             img.min_rev_full % 100))
    return img


def build(out_dir, firmware=None, bootloader=None):
    """Build the images; return the layout (also written to layout.json)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        table = partitions.parse()
    except partitions.PartitionError as e:
        fail(IMAGE, "firmware/partitions.csv: %s" % e)
    vfs = partitions.find(table, "vfs")
    progress("building the file system image (tools/image.py: data only, the firmware is frozen)")
    try:
        progress(image.build(out / "vfs.img", board="sim", blocks=vfs.size // image.BLOCK_SIZE,
                             staging=out / "fs-vfs"))
        image.stage(out / "fs-handheld", board="handheld")
    except image.ImageError as e:
        fail(IMAGE, str(e))
    (out / "partition-table.bin").write_bytes(partitions.to_binary(table))
    parts = {"partition-table": (partitions.TABLE_OFFSET, partitions.TABLE_SIZE, out / "partition-table.bin"),
             "vfs": (vfs.offset, vfs.size, out / "vfs.img")}
    if firmware or bootloader:
        if not (firmware and bootloader):
            fail(IMAGE, "a factory image needs both --firmware (the app, micropython.bin) and --bootloader")
        app = partitions.app_slot(table)  # ota_0: a blank otadata boots it
        check_app_image(bootloader, "the bootloader")
        check_app_image(firmware, "the firmware")
        for name, path, offset, room in (("bootloader", bootloader, partitions.BOOTLOADER_OFFSET,
                                          partitions.TABLE_OFFSET - partitions.BOOTLOADER_OFFSET),
                                         ("app", firmware, app.offset, app.size)):
            size = Path(path).stat().st_size
            if size > room:
                fail(IMAGE, "the %s (%d bytes) does not fit its 0x%x bytes at 0x%x" % (name, size, room, offset))
            parts[name] = (offset, room, Path(path))
    layout = {name: {"offset": offset, "room": room, "file": str(path), "size": Path(path).stat().st_size,
                     "sha256": sha256_file(path)} for name, (offset, room, path) in parts.items()}
    if firmware:
        progress("merging bootloader, partition table, app and file system into factory.bin (esptool merge-bin)")
        pieces = sorted((v["offset"], v["file"]) for v in layout.values())
        cmds.merge_bin(pieces, CHIP, output=str(out / "factory.bin"))
        layout["factory"] = {"offset": 0, "file": str(out / "factory.bin"), "size": (out / "factory.bin").stat().st_size,
                             "sha256": sha256_file(out / "factory.bin")}
    (out / "layout.json").write_text(json.dumps(layout, indent=1, sort_keys=True) + "\n")
    return layout


def load_layout(out_dir):
    path = Path(out_dir) / "layout.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        fail(IMAGE, "no image layout at %s (%s): run `python -m tools.provision image --out %s` first"
             % (path, e, out_dir))
