# Frozen into the firmware (MicroPython manifest, run by the port's makemanifest.py with the
# working directory set to this file's folder). Frozen code runs from flash (no heap for the
# bytecode) and, under Secure Boot v2, cannot be changed without the signing key.
#
# Not the port's boards/manifest.py: that one adds bundle-networking (webrepl, mip, requests)
# and sensor drivers this terminal does not use; webrepl in particular is a REPL over Wi-Fi.

# The port's own start-up: _boot.py mounts the "vfs" partition (flashbdev.py), inisetup.py
# formats it when it holds no file system.
freeze("$(PORT_DIR)/modules")
# asyncio is Python code in MicroPython, frozen by every port.
include("$(MPY_DIR)/extmod/asyncio")

# The terminal itself, shared with the board-faithful virtual handheld (tools/vdevice/port).
include("manifest_terminal.py")
