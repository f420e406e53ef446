"""Build the board-faithful virtual handheld: `python -m tools.vdevice.build` (make does it).

The interpreter the virtual handheld runs is the MicroPython release the board runs, v1.28.0, its
unix port built 32-bit (`gcc -m32`: 4-byte pointers, 16-byte GC blocks, as on the ESP32) with the
variant in tools/vdevice/port: the firmware frozen as firmware/manifest.py freezes it for the
board, the ESP32's GC heap (56 KB growing once into ESP-IDF's heap) and its 16 KB C stack.

The source, in this order:
- $MICROPYTHON_TARBALL: a tarball of the v1.28.0 tree with the two submodules the unix port
  needs (lib/mbedtls, lib/micropython-lib) at the commits below (CI sets it);
- otherwise the tag and those commits fetched with git from GitHub.
It is unpacked once into build/micropython-1.28.0, with firmware/patches applied (the board's
build applies the same: firmware/README.md), and later builds reuse it; a change of the patches
makes it anew. make there is incremental (a firmware change re-freezes and relinks in seconds).
"""

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from tools import fonts
from tools.provision.common import sha256_file

ROOT = Path(__file__).resolve().parent.parent.parent
TAG = "v1.28.0"
REPOSITORY = "https://github.com/micropython/micropython"
# The submodule commits v1.28.0 pins (git ls-tree v1.28.0 lib/...).
SUBMODULES = {
    "lib/mbedtls": "107ea89daaefb9867ea9121002fbbdf926780e98",  # Mbed TLS v3.6.2
    "lib/micropython-lib": "8380c7bb8f9e5e5260e9539156742925e00366b2",
}
TARBALL_VARIABLE = "MICROPYTHON_TARBALL"
SOURCE = ROOT / "build" / ("micropython-" + TAG[1:])
VARIANT = Path(__file__).resolve().parent / "port"
BUILD = "build-pocket"  # the port's build folder, beside the stock ones
EXE = SOURCE / "ports" / "unix" / BUILD / "micropython"
MPY_CROSS = SOURCE / "mpy-cross" / "build" / "mpy-cross"
STAMP = SOURCE / ".pocket-source"  # what the tree was made from

# The firmware's own changes to MicroPython, the board's and this build's alike (each file says
# why), applied in name order.
FIRMWARE_PATCHES = ROOT / "firmware" / "patches"

# One line of the unix port that the ESP32's shape needs changed, and why: the unix port sizes
# an import's path buffer (on the C stack, one per nested import) at PATH_MAX, 4096 bytes; the
# ESP32 port at 128. Four nested imports were 16 KB, the board's whole stack.
PATCHES = [
    ("ports/unix/mpconfigport.h",
     "#define MICROPY_ALLOC_PATH_MAX      (PATH_MAX)\n",
     "#ifndef MICROPY_ALLOC_PATH_MAX\n#define MICROPY_ALLOC_PATH_MAX      (PATH_MAX)\n#endif\n"),
]


class BuildError(Exception):
    pass


def frozen_sources():
    """Every file whose change means a rebuild: the frozen firmware, the launcher, the bench's probe,
    the variant, the fonts' generator and what it made."""
    yield from (ROOT / name for name in ("boot.py", "main.py"))
    yield ROOT / "tools" / "fonts.py"
    yield fonts.OUT_DIR / fonts.MODULE
    for folder in ("board", "drivers", "lib"):
        yield from (ROOT / folder).rglob("*.py")
    yield from (ROOT / "firmware").glob("manifest*.py")
    yield from FIRMWARE_PATCHES.glob("*.patch")
    yield Path(__file__).resolve().parent / "launcher.py"
    yield Path(__file__).resolve().parent / "esp32.py"
    yield ROOT / "tools" / "flowprobe.py"
    yield from VARIANT.iterdir()


def stale():
    """True if the interpreter is missing or older than anything frozen into it."""
    if not EXE.exists():
        return True
    built = EXE.stat().st_mtime
    return any(not p.exists() or p.stat().st_mtime > built for p in frozen_sources())


def git_in(tree):
    """subprocess.run's keywords for git on the files of tree (a MicroPython tree, a git clone or
    not): run inside this project's checkout, git would take the paths as the project's and
    (git apply) skip them; the ceiling keeps it from finding any repository above the tree."""
    return {"cwd": tree, "env": dict(os.environ, GIT_CEILING_DIRECTORIES=str(tree.parent))}


def _run(cmd, log, **kw):
    log.write("+ %s\n" % " ".join(str(c) for c in cmd))
    log.flush()
    result = subprocess.run([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, **kw)
    if result.returncode:
        raise BuildError("failed (exit %d): %s; see %s" % (result.returncode, " ".join(map(str, cmd)), log.name))


def source(log):
    """The v1.28.0 tree in build/, from the tarball or from GitHub, patched; returns where it
    came from.

    A tree already there is kept, wherever it came from, unless $MICROPYTHON_TARBALL names a
    different tarball or firmware/patches changed; a new one is made beside it and moved into
    place only when complete, so that an interrupted fetch never leaves half a tree (nor takes
    away a good one)."""
    tarball = os.environ.get(TARBALL_VARIABLE)
    if tarball and not Path(tarball).is_file():
        raise BuildError("%s=%s: no such file" % (TARBALL_VARIABLE, tarball))
    patches = sorted(FIRMWARE_PATCHES.glob("*.patch"))
    patched = "; patches sha256:" + hashlib.sha256(b"".join(p.read_bytes() for p in patches)).hexdigest()
    origin = (("tarball sha256:" + sha256_file(tarball)) if tarball else ("git " + TAG)) + patched
    made = STAMP.read_text().strip() if STAMP.exists() else ""
    if made == origin or (not tarball and made.endswith(patched)):
        return made
    work = SOURCE.with_name(SOURCE.name + ".new")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if tarball:
        with tarfile.open(tarball) as tar:
            top = {m.name.split("/", 1)[0] for m in tar.getmembers()}
            if top != {SOURCE.name}:
                raise BuildError("%s holds %s, not the %s tree" % (tarball, sorted(top), SOURCE.name))
            tar.extractall(work, filter="data")
        tree = work / SOURCE.name
    else:
        tree = work / SOURCE.name
        _run(["git", "clone", "--quiet", "--depth", "1", "--branch", TAG, REPOSITORY, tree], log)
        _run(["git", "-C", tree, "submodule", "update", "--init", "--depth", "1", *SUBMODULES], log)
        for path, commit in SUBMODULES.items():
            head = subprocess.run(["git", "-C", tree / path, "rev-parse", "HEAD"], capture_output=True,
                                  text=True).stdout.strip()
            if head != commit:
                raise BuildError("%s is at %s, not %s as %s pins" % (path, head, commit, TAG))
    for path, old, new in PATCHES:
        target = tree / path
        text = target.read_text()
        if old not in text:
            raise BuildError("%s no longer has the line this build changes: %r" % (path, old))
        target.write_text(text.replace(old, new, 1))
    for patch in patches:
        _run(["git", "apply", "--verbose", patch], log, **git_in(tree))
    (tree / STAMP.name).write_text(origin + "\n")
    if SOURCE.exists():
        shutil.rmtree(SOURCE)
    tree.rename(SOURCE)
    work.rmdir()
    return origin


def build(log=None, jobs=None):
    """Build (incrementally) and return the interpreter's path."""
    log_path = ROOT / "build" / "micropython-build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        source(log)
        jobs = str(jobs or os.cpu_count() or 1)
        fonts.build()  # the frozen fonts (firmware/manifest_terminal.py), rewritten only if they changed
        if not MPY_CROSS.exists():
            _run(["make", "-C", SOURCE / "mpy-cross", "-j", jobs], log)
        _run(["make", "-C", SOURCE / "ports" / "unix", "-j", jobs, "VARIANT_DIR=%s" % VARIANT,
              "BUILD=" + BUILD, "CC=gcc -m32"], log)
    # make leaves the executable alone when nothing it tracks changed (a comment edited, say):
    # touch it, so that stale() answers by what was built from.
    os.utime(EXE)
    return EXE


def build_locked():
    with open(_lock_path(), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build()


def _lock_path():
    path = ROOT / "build" / "micropython-build.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def ensure():
    """The interpreter, rebuilt first if anything frozen into it changed. One build at a time:
    processes that find it stale together (tests starting devices) wait for the one building."""
    if not stale():
        return EXE
    with open(_lock_path(), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build() if stale() else EXE


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.vdevice.build", description=__doc__.split("\n")[0])
    parser.add_argument("--if-stale", action="store_true", help="do nothing when the interpreter is up to date")
    args = parser.parse_args(argv)
    try:
        exe = ensure() if args.if_stale else build_locked()
    except BuildError as e:
        print("tools.vdevice.build: %s" % e, file=sys.stderr)
        return 1
    print(exe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
