"""The virtual handheld's first heap area adds what its stand-ins for the board's C hold in the
GC heap (tools.vdevice.STAND_INS): the launcher's globals, board/sim.py's and tools/vdevice/esp32.py's module objects,
measured here in a fresh board-faithful interpreter as the constant says. A change to either
that moves its heap by more than a few GC blocks fails here until the constant follows it.
"""

import subprocess

import pytest

from tools.vdevice import BOARD_HEAP, STAND_INS, heap_args, micropython_exe, parse_size

BLOCKS = 4 * 16  # a few 16-byte GC blocks of slack: a dict's growth step is more than this

# Each probe in a function: its figures are locals (on the stack), so the module's globals dict
# does not grow between the two counts.
LAUNCHER = """
import gc
def held():
    gc.collect()
    a = gc.mem_alloc()
    import launcher
    gc.collect()
    return gc.mem_alloc() - a
print(held())
"""

ESP32 = LAUNCHER.replace("import launcher", "import esp32")

# board/sim.py alone: board and board.handheld (the board has them too) stay, everything that
# holds the sim module lets go of it, and what the collection frees is the sim's.
SIM = """
import gc, sys
import board
def held():
    gc.collect()
    a = gc.mem_alloc()
    sys.modules.pop('board.sim')
    del board.sim, board._machine, board.net
    board.buses.machine = None
    gc.collect()
    return a - gc.mem_alloc()
print(held())
"""


def held(code):
    out = subprocess.run([micropython_exe(), "-X", "heapsize=" + BOARD_HEAP, "-c", code], cwd="/",
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def test_the_stand_ins_hold_what_the_first_area_adds():
    launcher, sim, esp32 = held(LAUNCHER), held(SIM), held(ESP32)
    assert 512 < launcher and 2048 < sim and 512 < esp32  # measured: a probe that freed nothing would say 0
    assert abs(launcher + sim + esp32 - STAND_INS) <= BLOCKS, (launcher, sim, esp32, STAND_INS)


@pytest.mark.parametrize("launcher", [False, True])
def test_only_the_launcher_gets_the_stand_ins(launcher):
    argv, env = heap_args(launcher=launcher)
    assert argv == ["-X", "heapsize=%d" % (parse_size(BOARD_HEAP) + STAND_INS) if launcher else "heapsize=56K"]
    assert env == ({"PT_STAND_INS": str(STAND_INS)} if launcher else {})
    assert heap_args("128K", launcher=launcher) == (["-X", "heapsize=131072"], {"PT_IDF_HEAP": "0"})
