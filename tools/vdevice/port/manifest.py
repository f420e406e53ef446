# What the board-faithful virtual handheld freezes: the firmware as firmware/manifest.py freezes
# it for the ESP32, less the port's own modules/ (the ESP32's _boot.py mounts a flash partition;
# the launcher does that here), plus what stands for the board's C: board/sim.py (machine's
# buses), the launcher (the port's boot sequence and its REPL, shared/runtime/pyexec.c) and
# esp32.py (the port's esp32.Partition and ESP-IDF's OTA and bootloader over the flash); and
# the flows bench's probe (tools/flowprobe.py), so that its code costs the heap nothing: the
# bench then measures the firmware's heap, not its own script's.
include("$(MPY_DIR)/extmod/asyncio")
include("../../../firmware/manifest_terminal.py", sim=True)
module("launcher.py", base_path="..")
module("esp32.py", base_path="..")
module("flowprobe.py", base_path="../..")
