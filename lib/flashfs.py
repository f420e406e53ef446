"""The vfs partition's LittleFS as the firmware mounts it at every reset: on the board from
firmware/_boot.py (in place of the ESP32 port's, which mounts with VfsLfs2's defaults), in the
virtual handheld from tools/vdevice/launcher.py, which stands for that start-up. One function, so
that the board and the model mount alike; and the file chores every writer of the file system
needs, in one place.

    flashfs.mount(bdev)    # at "/", before boot.py runs
    flashfs.makedirs(path) # the folders of a file's path that are missing
    flashfs.remove(path)   # a file removed if it is there
    flashfs.write_whole(path, data)  # a small file's new contents in place, whole

The read size: VfsLfs2's default, 32 bytes, gives LittleFS caches of 128 bytes (extmod/
vfs_lfsx.c: cache_size = 4 x the read size). Every metadata lookup then reads the flash chip
128 bytes at a time, and each read is one esp_partition_read: ~80 us on the ESP32 whatever its
size up to ~1 KB, most of it the driver's per-call cost (tools/flowbench.py). A folder's
compaction reads its log over and over: with History full, a payment's own file work (the
DUKPT puts, History.add, the journal) read the flash 13,000 times on average and up to 47,700
(~1.1 s and ~3.9 s on the ESP32). Measured over 30 such payments on the virtual handheld, by the
read size (reads: mean, most; flash erases a payment):

    32:  13,017, 47,667; 10.7       64: 4,521, 10,830; 7.8
    128:  2,545,  6,430;  7.8      256: 1,397,  3,363; 7.8

64 bytes: a third of the reads (a quarter of their time on the ESP32), and files up to 256
bytes kept inline in their folder's metadata (LittleFS's inline limit is the cache size), so the
journal's records and the small vault entries no longer take a block of their own to erase (45
ms each): a contact purchase erases 4 sectors, not 7. The price is RAM: the file system's two
caches, 512 bytes in the GC heap from the mount on (256 before), and 256 bytes in each open
file's object (128 before). 128 would read less again, but with its 512-byte caches in every
open file the flows bench (tools/flowbench.py) found 10-14 KB of headroom left in the steady
state, and a contact purchase that did not complete on the board's heap; with 64's, 17-19 KB
in two runs (32's: 17-22; the figures swing by 2-5 KB from run to run). The program size stays
32 (the flash's format is not changed by either).

No modification times: VfsLfs2 stamps every file it writes with one (a 12-byte attribute in the
folder's metadata log, at each close), which nothing in the firmware reads. Without them the
logs fill more slowly, so a folder is compacted less often (a compaction reads its whole log
over and over: 4,000 reads in /store at 128). With 64 and no times, the same 30 payments read
3,139 times on average, at most 7,042.
"""

import os

import vfs
from micropython import const

_READ_SIZE = const(64)


def mount(bdev):
    vfs.mount(vfs.VfsLfs2(bdev, readsize=_READ_SIZE, mtime=False), "/")


def makedirs(path):
    """Every folder of path (a file's) that is missing, made: LittleFS makes one level at a time."""
    at = ""
    for part in path.split("/")[:-1]:
        if part:
            at += "/" + part
            try:
                os.mkdir(at)
            except OSError:  # there already
                pass


def remove(path):
    """path removed if it is there (a file a power cut may or may not have left)."""
    try:
        os.remove(path)
    except OSError:
        pass


def write_whole(path, data):
    """data (bytes or str, made before: nothing left to fail while the file is open) as path's
    contents, in place. LittleFS makes a file's new contents current at its close, whole or not
    at all, so a power cut leaves the old or the new. But an exception while it is open (a
    Ctrl-C at the REPL; the heap out at the open) closes it with what it has, often nothing,
    and that is made current: it is written again, whole, before the exception goes on."""
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    try:
        with open(path, mode) as f:
            f.write(data)
    except BaseException:
        with open(path, mode) as f:
            f.write(data)
        raise
