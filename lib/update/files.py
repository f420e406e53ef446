"""Files of the vfs from the issuer (packages of kind 2, lib/update/package.py), replaced as one
set: after a power cut at any write the unit has the old set or the new one, never a mix.

The payload is a list of files, each: path length (1 byte), path (ASCII, absolute), content
length (u32 big-endian), content. A path must lie in one of ROOTS (the firmware's tree as
tools/image.py lays it out on a stock-MicroPython board, and /data); never the vault's store,
the journals, the history, the parameters (update.config's) or this module's own files.

Each file streams (never whole in RAM) into <path>.new, beside the file it replaces: every
rename is then within one directory, one LittleFS commit. (Renamed from a staging directory,
a cut in the middle of LittleFS's two-commit move between directories lost the file: found by
tests/host/test_ota_power.py.) Its path is appended to STAGED before the file is created, so
that nothing staged goes unlisted. finish() writes COMMIT (the paths, the version) by one
rename: the commit point. recover() then renames each <path>.new over its path and COMMIT last
to VERSION; run again after a cut, it finishes what is left. Before the commit point recover()
removes what STAGED lists: the old set stays whole. recover() runs at boot (boot.py) and before
any install.
"""

import os

from flashfs import makedirs, remove
from micropython import const

STAGED = "/update.staged"  # the paths staged so far, one a line
COMMIT = "/update.commit"  # {"version", "svn", "paths"}: present, the set is to be installed
VERSION = "/update.json"  # the same record, of the set installed last
_NEW = ".new"
ROOTS = ("/lib/", "/board/", "/drivers/", "/data/", "/boot.py", "/main.py")
_PATH_MAX = const(64)
_SPARE_BLOCKS = const(8)  # LittleFS's own blocks (metadata, copy-on-write) beside the files



def recover():
    """Finish a committed set a power cut interrupted, or drop an uncommitted one."""
    import json

    try:
        with open(COMMIT) as f:
            paths = json.load(f)["paths"]
    except OSError:
        paths = None
    if paths is not None:
        for path in paths:
            try:
                os.rename(path + _NEW, path)
            except OSError:  # moved before the cut
                pass
        os.rename(COMMIT, VERSION)
    remove(COMMIT + _NEW)  # a commit record cut short: not committed
    try:
        with open(STAGED) as f:
            staged = f.read().split()
    except OSError:
        return
    for path in staged:  # committed, they were moved already
        remove(path + _NEW)
    os.remove(STAGED)


def installed():
    """(version, security version) of the last set installed; (0, 0) before any."""
    import json

    try:
        with open(VERSION) as f:
            v = json.load(f)
        return int(v["version"]), int(v["svn"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0


def allowed(path):
    return (len(path) <= _PATH_MAX and path.startswith(ROOTS) and "/../" not in path + "/" and "//" not in path
            and "/./" not in path + "/" and not path.endswith(("/", _NEW)))


class Installer:
    """package.installer_for(2): see lib/update/package.py for the protocol."""

    def __init__(self):
        from update.sections import Reader

        # head comes with begin()
        self.sections = Reader(self._open, "files", _PATH_MAX)

    def installed(self):
        recover()
        return installed()

    def begin(self, head):
        """Refuses, before any write: a security version below the unit's (its eFuse, as for
        firmware), a version not newer than the set installed, a set the vfs has no room for."""
        from update import ota
        from update.package import Refused

        recover()
        low = max(ota.floor(), installed()[1])
        if head.svn < low:
            raise Refused("files of security version %d, below this unit's %d" % (head.svn, low))
        if head.version <= installed()[0]:
            raise Refused("files version %d, not newer than the installed %d" % (head.version, installed()[0]))
        fs = os.statvfs("/")
        if head.length + _SPARE_BLOCKS * fs[0] > fs[0] * fs[3]:
            raise Refused("%d bytes of files: the flash has %d free" % (head.length, fs[0] * fs[3]))
        self.head = head

    def write(self, offset, chunk):
        self.sections.write(chunk)

    def _open(self, path):
        if not allowed(path) or path in self.sections.names:
            from update.package import BadPackage

            raise BadPackage("files: %r may not be written (or comes twice)" % path)
        with open(STAGED, "a") as f:  # listed before it exists: recover() finds every one
            f.write(path + "\n")
        makedirs(path)
        return open(path + _NEW, "wb")

    def finish(self):
        from update.package import BadPackage

        if self.sections.cut_short() or not self.sections.names:
            raise BadPackage("files: the last file is cut short, or there is none")
        import json

        with open(COMMIT + _NEW, "w") as f:
            json.dump({"version": self.head.version, "svn": self.head.svn, "paths": self.sections.names}, f)
        os.rename(COMMIT + _NEW, COMMIT)  # the commit point
        recover()

    def abort(self):
        # Before the commit point recover() drops what was staged; after it, it finishes the set.
        self.sections.close()
        recover()
