"""Build the handheld's flash file system: `python -m tools.image` (what `make image` runs).

The device's file system is a LittleFS2 image in the layout of the ESP32 "vfs" partition
(4096-byte blocks). For a board running stock MicroPython ("handheld") it holds boot.py and
main.py as source, as the ESP32 port runs them, and every firmware package compiled by mpy-cross
to plain bytecode .mpy (no native code). The virtual handheld's interpreter has the firmware
frozen into it, as the board's own build has (firmware/manifest.py): its image ("sim") holds
the data alone, so that no bytecode is loaded into the heap that the board keeps in flash.

The same builder serves `make image` (build/flash.img for the virtual handheld), the deploy to a
real board over mpremote (the staged tree), and the factory image (tools/provision).
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import littlefs

from tools.provision import partitions

ROOT = Path(__file__).resolve().parent.parent

# The ESP32 vfs partition: the flash erase sector is the block; its size is the partition
# table's (firmware/partitions.csv, which also has the OTA app slots).
BLOCK_SIZE = 4096
VFS_BLOCKS = partitions.find(partitions.parse(), "vfs").size // BLOCK_SIZE
# A board running stock MicroPython has the stock 4 MB table's vfs: 2 MB at 0x200000.
STOCK_VFS_BLOCKS = 0x200000 // BLOCK_SIZE
# MicroPython's VfsLfs2 defaults (extmod/vfs_lfs.c): the image must be what the board itself
# would have written, so that it mounts on both.
LFS_READ_SIZE = 32
LFS_PROG_SIZE = 32
LFS_LOOKAHEAD = 32

# Source files run as they are (the port executes boot.py and main.py from source).
SOURCE_FILES = ("boot.py", "main.py")
# Packages compiled to .mpy, and where they sit on the device: lib/ is /lib on sys.path.
PACKAGES = {"board": "board", "drivers": "drivers", "lib": "lib"}
# Modules that exist only for the virtual handheld; a real board's image leaves them out.
SIM_ONLY = ("board/sim.py",)


class ImageError(Exception):
    pass


def firmware_sources(board="sim"):
    """Yield (source path, device path) for every firmware file that goes on the device."""
    for name in SOURCE_FILES:
        yield ROOT / name, name
    for package, device_dir in PACKAGES.items():
        for src in sorted((ROOT / package).rglob("*.py")):
            rel = src.relative_to(ROOT).as_posix()
            if board != "sim" and rel in SIM_ONLY:
                continue
            dest = device_dir + "/" + src.relative_to(ROOT / package).with_suffix(".mpy").as_posix()
            yield src, dest
    # The UI's fonts, made from a typeface at build time (tools/fonts.py): a module of /lib,
    # frozen by the board's own firmware as the rest (firmware/manifest_terminal.py).
    from tools import fonts

    yield fonts.build(), "lib/" + fonts.MODULE[:-3] + ".mpy"


def mpy_cross():
    exe = shutil.which("mpy-cross", path=str(Path(sys.executable).parent)) or shutil.which("mpy-cross")
    if not exe:
        raise ImageError("mpy-cross not found: run `make setup` (it installs the pinned mpy-cross)")
    return exe


def compile_mpy(src, out, name):
    """src compiled to bytecode at out; name is how tracebacks call it (lib/diag.py)."""
    result = subprocess.run([mpy_cross(), "-s", name, "-o", str(out), str(src)], capture_output=True, text=True)
    if result.returncode:
        raise ImageError("mpy-cross failed on %s:\n%s" % (name, result.stderr.strip()))


def stage(out_dir, board="sim"):
    """Write the device's file tree into out_dir (compiling packages); return the device paths."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    paths = []
    for src, dest in firmware_sources(board) if board != "sim" else ():
        target = out_dir / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if dest.endswith(".mpy"):
            compile_mpy(src, target, src.relative_to(ROOT).as_posix())
        else:
            shutil.copyfile(src, target)
        paths.append(dest)
    return paths


def build(out_path, board="sim", blocks=None, staging=None):
    """Build the LittleFS2 image at out_path (blocks: by default the vfs of the board's partition
    table, this tree's for "sim", the stock one for "handheld"); return a one-line summary."""
    out_path = Path(out_path)
    blocks = blocks or (VFS_BLOCKS if board == "sim" else STOCK_VFS_BLOCKS)
    staging = Path(staging) if staging else out_path.parent / ("fs-" + board)
    paths = stage(staging, board)
    fs = littlefs.LittleFS(block_size=BLOCK_SIZE, block_count=blocks, read_size=LFS_READ_SIZE,
                           prog_size=LFS_PROG_SIZE, lookahead_size=LFS_LOOKAHEAD)
    payload = 0
    for dest in paths:
        parent = dest.rpartition("/")[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        data = (staging / dest).read_bytes()
        with fs.open(dest, "wb") as f:
            f.write(data)
        payload += len(data)
    used = fs.used_block_count
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    tmp.write_bytes(fs.context.buffer)
    tmp.replace(out_path)
    return "%s: %d files, %d bytes, %d of %d blocks used" % (out_path, len(paths), payload, used, blocks)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.image", description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "build" / "flash.img"))
    parser.add_argument("--board", choices=("sim", "handheld"), default="sim",
                        help="sim: the virtual handheld's, data only (its firmware is frozen); handheld: "
                             "the firmware as files, for a board running stock MicroPython")
    parser.add_argument("--blocks", type=int, help="file-system size in 4096-byte blocks (default: the board's vfs)")
    args = parser.parse_args(argv)
    try:
        print(build(args.output, args.board, args.blocks))
    except ImageError as e:
        print("image: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
