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

# The terminal. boot.py frozen: MicroPython runs a frozen boot.py before any file of that name
# (shared/runtime/pyexec.c, pyexec_file_if_exists), so the production lock it applies cannot
# be replaced through the file system. main.py for the same reason.
module("boot.py", base_path="..")
module("main.py", base_path="..")
# board/: the reference board only; board/sim.py is the virtual handheld's (tools/image.py SIM_ONLY).
package("board", files=("__init__.py", "handheld.py"), base_path="..")
package("drivers", base_path="..")
# lib/ is /lib on the device: every module and package in it, named relative to lib/.
freeze("../lib")
