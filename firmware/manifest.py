# Frozen into the firmware (MicroPython manifest, run by the port's makemanifest.py with the
# working directory set to this file's folder). Frozen code runs from flash (no heap for the
# bytecode) and, under Secure Boot v2, cannot be changed without the signing key.
#
# Not the port's boards/manifest.py: that one adds bundle-networking (webrepl, mip, requests)
# and sensor drivers this terminal does not use; webrepl in particular is a REPL over Wi-Fi.

# The port's own start-up: flashbdev.py finds the "vfs" partition, inisetup.py formats it when
# it holds no file system. Its _boot.py, which mounts the partition, is ours (_boot.py here: the
# mount's read size, lib/flashfs.py).
freeze("$(PORT_DIR)/modules", ("apa106.py", "espnow.py", "flashbdev.py", "inisetup.py", "machine.py"))
module("_boot.py")
# asyncio is Python code in MicroPython, frozen by every port.
include("$(MPY_DIR)/extmod/asyncio")

# The terminal itself, shared with the board-faithful virtual handheld (tools/vdevice/port).
include("manifest_terminal.py")
