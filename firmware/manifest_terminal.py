# The Pocket Terminal's own code, frozen: included by manifest.py (the board) and by the
# board-faithful virtual handheld's manifest (tools/vdevice/port/manifest.py, with sim=True).
# Paths are relative to this folder, whoever includes it.
options.defaults(sim=False)

# micropython-lib's ssl (the Python face of the port's C `tls`), which lib/uplink/tls.py imports:
# the ESP32 port gets it only through bundle-networking, which firmware/manifest.py leaves out.
require("ssl")

# boot.py frozen: MicroPython runs a frozen boot.py before any file of that name
# (shared/runtime/pyexec.c, pyexec_file_if_exists), so the production lock it applies cannot
# be replaced through the file system. main.py for the same reason.
module("boot.py", base_path="..")
module("main.py", base_path="..")
# board/: the reference board's pins and buses; board/sim.py only in the virtual handheld, where
# it stands for the board's machine module (C on the board, so frozen like it).
package("board", files=("__init__.py", "handheld.py") + (("sim.py",) if options.sim else ()), base_path="..")
package("drivers", base_path="..")
# lib/ is /lib on the device: every module and package in it, named relative to lib/.
freeze("../lib")
# The UI's fonts (lib/ui/font.py), data made from a typeface by `python -m tools.fonts`, which
# writes build/frozen/roboto.py: frozen, its bytes are in the app image, not on the file system.
module("roboto.py", base_path="../build/frozen")
