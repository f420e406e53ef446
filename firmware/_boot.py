# The ESP32 port's _boot.py (ports/esp32/modules/_boot.py of v1.28.0), run by the port's C before
# boot.py, with the vfs partition mounted by lib/flashfs.py (its read size) instead of with
# VfsLfs2's defaults. The virtual handheld's launcher mounts through the same function.
import gc
import vfs
from flashbdev import bdev

import flashfs

try:
    if bdev:
        flashfs.mount(bdev)
except OSError:
    import inisetup

    inisetup.setup()  # formats the partition and mounts it with the defaults: again as ours
    vfs.umount("/")
    flashfs.mount(bdev)

gc.collect()
