"""python -m tools.provision image and secure, without a board.

image: a firmware "build" is made here, small but valid: a tiny ELF (Xtensa, one IRAM and one
DRAM section) turned into ESP32 images by esptool's own elf2image, as ESP-IDF's build does; the
merged factory image is then read back: esptool's image-info on the bootloader and the app at
their offsets, the partition table by its MD5, the LittleFS superblock and files at the vfs
offset, erased flash (0xFF) between.

secure: the whole sequence on espefuse's virtual eFuses (--virt, kept in a file between calls).
A new file is the virtual handheld's blank chip, revision 3 as the board's (tools.vdevice
chip_efuses: CHIP_VER_REV1 and CHIP_VER_REV2, which Espressif's factory burns), so the documented
command works on a fresh machine; a file espefuse made itself is a revision 0 chip, refused.
"""

import json
import struct
import subprocess
import sys

import littlefs
import pytest
from esptool import cmds

from tools import image
from tools.provision import partitions
from tools.provision.__main__ import main

IRAM, DRAM = 0x40080400, 0x3FFB0000


def tiny_elf(code=b"\x06\xff\xff" + b"\x00" * 13, data=b"PocketTerminal!\x00"):
    """ELF32 little-endian for Xtensa (EM 94): .text in IRAM (an infinite `j` loop), .data in DRAM."""
    names = b"\x00.text\x00.data\x00.shstrtab\x00"
    off_code = 52
    off_data = off_code + len(code)
    off_names = off_data + len(data)
    body = code + data + names
    body += b"\x00" * ((-(52 + len(body))) % 4)
    shoff = 52 + len(body)
    header = (b"\x7fELF\x01\x01\x01" + b"\x00" * 9
              + struct.pack("<HHIIIIIHHHHHH", 2, 94, 1, IRAM, 0, shoff, 0, 52, 32, 0, 40, 4, 3))

    def section(name, type_, flags, addr, offset, size):
        return struct.pack("<IIIIIIIIII", name, type_, flags, addr, offset, size, 0, 0, 4, 0)

    return header + body + (section(0, 0, 0, 0, 0, 0) + section(1, 1, 6, IRAM, off_code, len(code))
                            + section(7, 1, 3, DRAM, off_data, len(data)) + section(13, 3, 0, 0, off_names, len(names)))


def esp32_image(tmp, name, **options):
    elf = tmp / (name + ".elf")
    elf.write_bytes(tiny_elf())
    cmds.elf2image(str(elf), "esp32", output=str(tmp / (name + ".bin")), flash_size="4MB", flash_mode="dio", **options)
    return tmp / (name + ".bin")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """A firmware build's two images (for chip revision 3, as firmware/sdkconfig.board makes
    them; the app padded for Secure Boot v2 signing) and the `image` output made from them."""
    tmp = tmp_path_factory.mktemp("provision-image")
    app = esp32_image(tmp, "micropython", min_rev_full=300, secure_pad_v2=True)
    bootloader = esp32_image(tmp, "bootloader", min_rev_full=300)
    out = tmp / "out"
    assert main(["image", "--out", str(out), "--firmware", str(app), "--bootloader", str(bootloader),
                 "--audit", str(tmp / "audit.jsonl")]) == 0
    return {"tmp": tmp, "app": app, "bootloader": bootloader, "out": out, "audit": tmp / "audit.jsonl"}


def test_merged_factory_image_layout(build, capsys):
    merged = (build["out"] / "factory.bin").read_bytes()
    assert len(merged) == partitions.FLASH_SIZE
    table = partitions.parse()
    app, vfs = partitions.app_slot(table), partitions.find(table, "vfs")
    boot_bytes, app_bytes = build["bootloader"].read_bytes(), build["app"].read_bytes()
    regions = [(0x1000, boot_bytes), (partitions.TABLE_OFFSET, partitions.to_binary(table)),
               (app.offset, app_bytes), (vfs.offset, (build["out"] / "vfs.img").read_bytes())]
    for offset, data in regions:
        assert merged[offset:offset + len(data)] == data, hex(offset)
    # Between the parts: erased flash.
    ends = [o + len(d) for o, d in regions]
    for end, (start, _) in zip([0] + ends, regions):
        assert start >= end and set(merged[end:start]) <= {0xFF}, hex(start)
    # esptool's image tools on the merged file's images, cut out at their offsets.
    capsys.readouterr()
    cmds.image_info([(0x1000, merged[0x1000:0x1000 + len(boot_bytes)]), (app.offset, merged[app.offset:app.offset + len(app_bytes)])])
    info = capsys.readouterr().out
    assert info.count("Checksum: 0x") == 2 and info.count("(valid)") == 4, info  # checksum + SHA-256, twice
    assert info.count("Entry point: 0x%08x" % IRAM) == 2
    assert "Minimal chip revision: v3.0" in info
    # The partition table, read back by its MD5; the file system, mounted from the vfs offset.
    assert [repr(p) for p in partitions.from_binary(merged[partitions.TABLE_OFFSET:partitions.TABLE_OFFSET + 0xC00])] \
        == [repr(p) for p in table]
    assert merged[vfs.offset + 8:vfs.offset + 16] == b"littlefs"  # the superblock's magic
    fs = littlefs.LittleFS(block_size=image.BLOCK_SIZE, block_count=vfs.size // image.BLOCK_SIZE, mount=False,
                           read_size=image.LFS_READ_SIZE, prog_size=image.LFS_PROG_SIZE,
                           lookahead_size=image.LFS_LOOKAHEAD)
    fs.context.buffer = bytearray(merged[vfs.offset:vfs.end])
    fs.mount()
    # Data only: the firmware is frozen into the app (and an OTA update replaces it there).
    assert fs.listdir("/") == []
    # What `flash` writes through a unit's REPL (a stock-MicroPython board, the virtual handheld).
    tree = build["out"] / "fs-handheld"
    assert {"boot.py", "main.py", "lib", "board", "drivers"} <= {p.name for p in tree.iterdir()}
    assert not (tree / "board" / "sim.mpy").exists()  # a real board's tree
    assert (tree / "boot.py").read_bytes() == (image.ROOT / "boot.py").read_bytes()


def test_layout_and_audit_record(build):
    layout = json.loads((build["out"] / "layout.json").read_text())
    assert {n: layout[n]["offset"] for n in layout} == {"factory": 0, "bootloader": 0x1000, "partition-table": 0x10000,
                                                       "app": 0x20000, "vfs": 0x380000}
    record = json.loads(build["audit"].read_text().splitlines()[-1])
    assert record["result"] == "ok" and record["images"] == {n: layout[n]["sha256"] for n in layout}


def test_image_refuses_a_firmware_not_built_for_revision_3(build, capsys):
    old = esp32_image(build["tmp"], "old")  # elf2image's default: any chip revision
    assert main(["image", "--out", str(build["tmp"] / "o2"), "--firmware", str(old), "--bootloader",
                 str(build["bootloader"]), "--audit", str(build["audit"])]) == 9
    assert "CONFIG_ESP32_REV_MIN_FULL=300" in capsys.readouterr().err
    garbage = build["tmp"] / "garbage.bin"
    garbage.write_bytes(b"MicroPython v1.29 firmware, honest" * 4)
    assert main(["image", "--out", str(build["tmp"] / "o3"), "--firmware", str(garbage), "--bootloader",
                 str(build["bootloader"]), "--audit", str(build["audit"])]) == 9
    assert "is not a valid ESP32 image" in capsys.readouterr().err
    assert json.loads(build["audit"].read_text().splitlines()[-1])["result"] == "failed"


def espefuse(efuse_file, *args):
    return subprocess.run([sys.executable, "-m", "espefuse", "--chip", "esp32", "--virt", "--path-efuse-file",
                           str(efuse_file), "--do-not-confirm", *args], capture_output=True, text=True, check=True).stdout


def summary_lines(efuse_file, *names):
    out = espefuse(efuse_file, "summary")
    return {n: next(line for line in out.splitlines() if line.startswith(n + " ")) for n in names}, out


def test_secure_refuses_a_revision_0_chip(build, tmp_path, capsys):
    efuses = tmp_path / "efuses.bin"
    espefuse(efuses, "summary")  # espefuse's own new virtual chip: revision 0
    assert main(["secure", "--dry-run-virtual", "--efuse-file", str(efuses), "--images", str(build["out"]),
                 "--keys", str(tmp_path / "keys"), "--audit", str(tmp_path / "audit.jsonl")]) == 4
    assert "needs revision 3" in capsys.readouterr().err
    lines, _ = summary_lines(efuses, "FLASH_CRYPT_CNT", "ABS_DONE_1", "WAFER_VERSION_MAJOR")
    assert lines["WAFER_VERSION_MAJOR"].split("=")[1].split()[0] == "0"
    assert lines["FLASH_CRYPT_CNT"].split("=")[1].split()[0] == "0"  # nothing burned
    assert lines["ABS_DONE_1"].split("=")[1].split()[0] == "False"


def test_secure_on_virtual_efuses(build, tmp_path, capsys):
    # As documented (tools/provision/README.md), on a machine where no virtual chip exists yet:
    # the virtual handheld's blank chip is made, revision 3.
    efuses, keys, audit = tmp_path / "efuses.bin", tmp_path / "keys", tmp_path / "audit.jsonl"
    argv = ["secure", "--dry-run-virtual", "--efuse-file", str(efuses), "--images", str(build["out"]),
            "--keys", str(keys), "--audit", str(audit)]
    assert main(argv) == 0
    names = ("WAFER_VERSION_MAJOR", "FLASH_CRYPT_CNT", "FLASH_CRYPT_CONFIG", "ABS_DONE_1", "JTAG_DISABLE",
             "DISABLE_DL_ENCRYPT", "DISABLE_DL_DECRYPT", "DISABLE_DL_CACHE", "CONSOLE_DEBUG_DISABLE",
             "UART_DOWNLOAD_DIS")
    lines, out = summary_lines(efuses, *names)
    values = {n: line.split("=")[1].split()[0] for n, line in lines.items()}
    assert values == {"WAFER_VERSION_MAJOR": "3", "FLASH_CRYPT_CNT": "127", "FLASH_CRYPT_CONFIG": "15",
                      "ABS_DONE_1": "True", "JTAG_DISABLE": "True", "DISABLE_DL_ENCRYPT": "True",
                      "DISABLE_DL_DECRYPT": "True", "DISABLE_DL_CACHE": "True", "CONSOLE_DEBUG_DISABLE": "True",
                      "UART_DOWNLOAD_DIS": "True"}
    # BLOCK1: the flash-encryption key, unreadable (-/-: read- and write-protected);
    # BLOCK2: the digest of the signing key's public part, readable, write-protected.
    block = out.splitlines()
    b1 = next(i for i, line in enumerate(block) if line.startswith("BLOCK1 "))
    b2 = next(i for i, line in enumerate(block) if line.startswith("BLOCK2 "))
    assert "?? ??" in block[b1 + 1] and block[b1 + 1].rstrip().endswith("-/-"), block[b1:b1 + 2]
    record = json.loads(audit.read_text().splitlines()[-1])
    digest = record["signing_key_digest"]
    assert " ".join(digest[i:i + 2] for i in range(0, 64, 2)) in block[b2 + 1], (digest, block[b2 + 1])
    assert block[b2 + 1].rstrip().endswith("R/-")
    with capsys.disabled():
        print("\nespefuse --virt summary after `secure --dry-run-virtual`:")
        print("\n".join(lines[n] for n in names))
        print("\n".join(block[b1:b1 + 2] + block[b2:b2 + 2]))
    # The signed app verifies under the signing key; the flash-encryption key is gone (release mode).
    subprocess.run([sys.executable, "-m", "espsecure", "verify-signature", "--version", "2", "--keyfile",
                    str(keys / "secure_boot_signing_key.pem"), str(build["out"] / "secure" / "app.signed.bin")],
                   check=True, capture_output=True)
    assert sorted(p.name for p in keys.iterdir()) == ["secure_boot_signing_key.pem", "signing_key_digest.bin"]
    encrypted = (build["out"] / "secure" / "vfs.encrypted.bin").read_bytes()
    assert len(encrypted) == 0x80000 and encrypted[8:16] != b"littlefs"
    # The audit record holds no key: not the signing key's PEM body, nor any part of it.
    pem = (keys / "secure_boot_signing_key.pem").read_text().splitlines()[1:-1]
    text = audit.read_text()
    assert record["result"] == "ok" and record["efuses"]["ABS_DONE_1"] is True
    assert not any(line in text for line in pem)
    # A secured chip is not secured twice.
    capsys.readouterr()
    assert main(argv) == 4
    assert "already secured" in capsys.readouterr().err


def test_flash_on_the_virtual_handheld_writes_the_files_through_its_repl(build, tmp_path, capsys):
    """No ROM bootloader behind a pty: flash writes the firmware's files over the REPL and
    checks each by the SHA-256 the device computes; the vault's store is not touched."""
    from tools.device import Device
    from tools.vdevice.spawn import VDeviceProcess

    # The firmware as files is a stock-MicroPython board's (its 2 MB vfs): this table's 512 KB
    # vfs holds data only, the firmware being frozen into the app.
    image.build(tmp_path / "flash.img", blocks=image.STOCK_VFS_BLOCKS)
    with VDeviceProcess(tmp_path / "flash.img", tmp_path / "state") as vd:
        dev = Device(vd.repl)
        dev.exec("import os\nos.mkdir('/store')\nf = open('/store/keep', 'w')\nf.write('x')\nf.close()\n")
        dev.close()
        audit = tmp_path / "audit.jsonl"
        assert main(["flash", "--port", vd.repl, "--images", str(build["out"]), "--audit", str(audit)]) == 0
        assert "no ROM bootloader" in capsys.readouterr().out
        dev = Device(vd.repl)
        try:
            assert dev.eval("open('/store/keep').read()") == "x"
            staged = (build["out"] / "fs-handheld" / "lib" / "diag.mpy").read_bytes()
            assert dev.read_file("/lib/diag.mpy") == staged  # the image's files written
        finally:
            dev.close()
    record = json.loads(audit.read_text().splitlines()[-1])
    files = [p for p in (build["out"] / "fs-handheld").rglob("*") if p.is_file()]
    assert record["result"] == "ok" and record["written"]["files"] == len(files)


def test_flash_on_a_port_with_nothing_behind_it_says_so(build, tmp_path, capsys):
    assert main(["flash", "--port", str(tmp_path / "ttyUSB9"), "--images", str(build["out"]),
                 "--audit", str(tmp_path / "audit.jsonl")]) == 3
    assert "ttyUSB9" in capsys.readouterr().err


def test_secure_with_a_given_flash_key_keeps_it_out_of_the_record(build, tmp_path):
    efuses, audit, key = tmp_path / "efuses.bin", tmp_path / "audit.jsonl", tmp_path / "flash_key.bin"
    espefuse(efuses, "burn-efuse", "CHIP_VER_REV1", "1", "CHIP_VER_REV2", "1")
    key.write_bytes(bytes(range(1, 33)))
    assert main(["secure", "--dry-run-virtual", "--efuse-file", str(efuses), "--images", str(build["out"]),
                 "--keys", str(tmp_path / "keys"), "--flash-encryption-key", str(key), "--audit", str(audit)]) == 0
    assert key.read_bytes() == bytes(range(1, 33))  # given, so kept: its keeper's copy
    text = audit.read_text()
    assert key.read_bytes().hex() not in text and key.read_bytes().hex().upper() not in text
    # The vfs partition encrypted under exactly that key: espsecure decrypts it back to the image.
    plain = tmp_path / "vfs.plain"
    subprocess.run([sys.executable, "-m", "espsecure", "decrypt-flash-data", "--keyfile", str(key), "--address", "0x380000",
            "--output", str(plain), str(build["out"] / "secure" / "vfs.encrypted.bin")], check=True, capture_output=True)
    assert plain.read_bytes() == (build["out"] / "vfs.img").read_bytes()
