"""Benchmarks that print figures: `python -m tools.bench vdevice|pystone|pin|screens`.

vdevice: what the virtual handheld itself costs, so that figures measured on it can be read:
start-up, soft reset, a REPL round trip, an I2C transaction against its wire time, and the heap
the launcher and boot leave to the firmware.

pystone: the MicroPython unix port's pystones/s on this host (tools/bench_pystone.py), its ratio
to the ESP32's, and so what a millisecond of firmware CPU time here means on the board
(esp32_estimate(), shared/DESIGN.md "Performance budgets").

pin: the vault's PIN key derivation (PBKDF2) per PIN check, on the unix port and as an ESP32
estimate, the iteration count that would take 0.5 s there, and the flash writes each vault
operation makes.

screens: the heap each screen of the toolkit needs while it draws, against the budget.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import image
from tools.device import Device
from tools.vdevice import DEFAULT_HEAP, micropython_exe
from tools.vdevice.spawn import VDeviceProcess

ROOT = Path(__file__).resolve().parent.parent
PYSTONE = Path(__file__).resolve().parent / "bench_pystone.py"
# shared/DESIGN.md "Performance budgets": the ESP32 runs Pystone (micropython-lib's pystone_lowmem,
# whose loop tools/bench_pystone.py keeps unchanged) at ~1400 pystones/s. Firmware CPU time
# measured on the host is scaled by this host's unix port figure over this one.
ESP32_PYSTONES = 1400
# ~0.4 s a run on a current x86 server: long enough for a steady figure, 3 runs well under 10 s.
PYSTONE_LOOPS = 100_000


def timed(fn, n):
    """Median and best of n runs of fn(), in milliseconds."""
    runs = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return statistics.median(runs), min(runs)


def bench_vdevice():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image.build(tmp / "flash.img")
        t = time.perf_counter()
        with VDeviceProcess(tmp / "flash.img", tmp / "state") as vd:
            started = (time.perf_counter() - t) * 1000
            dev = Device(vd.repl)
            print("start to REPL on the pty (flash mounted, boot.py run): %.0f ms" % started)
            print("soft reset (fresh interpreter, boot.py):              %.1f ms median, %.1f best"
                  % timed(dev.soft_reset, 10))
            print("raw REPL round trip of `pass`:                          %.2f ms median, %.2f best"
                  % timed(lambda: dev.exec("pass"), 50))
            total, used = dev.eval("(__import__('gc').mem_free() + __import__('gc').mem_alloc(),"
                                   " (__import__('gc').collect(), __import__('gc').mem_alloc())[1])")
            print("heap: %d bytes, in use after boot (launcher, board, sim): %d, free %d"
                  % (total, used, total - used))
            vd.rig.attach("i2c0", "at24c02", addr=0x50)
            n = 200
            us = dev.eval("(lambda i2c, t: ([i2c.writeto(0x50, bytes(17)) for _ in range(%d)],"
                          " __import__('time').ticks_diff(__import__('time').ticks_us(), t))[1])"
                          "(__import__('board').buses.i2c(), __import__('time').ticks_us())" % n) / n
            wire = (2 + 9 * 18) / 400_000 * 1e6
            print("I2C write of 17 bytes at 400 kHz: %.0f us on the device, %.0f us of it wire time"
                  % (us, wire))
            dev.close()


def pystone_runs(loops=PYSTONE_LOOPS, runs=3):
    """Pystones/s of each of `runs` runs of tools/bench_pystone.py on the MicroPython unix port,
    each a fresh process with the virtual handheld's heap (so its garbage collector works as
    hard as the firmware's does there)."""
    exe = micropython_exe()
    figures = []
    for _ in range(runs):
        proc = subprocess.run([exe, "-X", "heapsize=%s" % DEFAULT_HEAP, str(PYSTONE), str(int(loops))],
                              capture_output=True, text=True, timeout=120)
        found = [line.split(":", 1)[1] for line in proc.stdout.splitlines() if line.startswith("pystones/s:")]
        if proc.returncode or not found:
            raise RuntimeError("%s %s failed (exit %d):\n%s%s"
                               % (exe, PYSTONE.name, proc.returncode, proc.stdout, proc.stderr))
        figures.append(float(found[0]))
    return figures


def unix_pystones(loops=PYSTONE_LOOPS, runs=3):
    """The MicroPython unix port's pystones/s on this host: the best of `runs` runs."""
    return max(pystone_runs(loops, runs))


_unix_pystones = None  # measured once per process, by esp32_ratio()


def esp32_ratio():
    """How many times longer the ESP32 takes than this host's unix port for the same firmware code."""
    global _unix_pystones
    if _unix_pystones is None:
        _unix_pystones = unix_pystones()
    return _unix_pystones / ESP32_PYSTONES


def esp32_estimate(host_seconds):
    """Firmware CPU time measured on the unix port here -> the ESP32 estimate, in seconds."""
    return host_seconds * esp32_ratio()


def bench_pystone():
    global _unix_pystones
    figures = pystone_runs()
    _unix_pystones = max(figures)
    ratio = esp32_ratio()
    print("MicroPython unix port (%s, heap %s): %.0f pystones/s, best of %s (%d loops each)"
          % (micropython_exe(), DEFAULT_HEAP, _unix_pystones, ", ".join("%.0f" % f for f in figures),
             PYSTONE_LOOPS))
    print("ESP32 (shared/DESIGN.md): ~%d pystones/s; ratio %.1f" % (ESP32_PYSTONES, ratio))
    print("1 ms of firmware CPU time on this host ~ %.0f ms on the ESP32" % (esp32_estimate(0.001) * 1000))


# PBKDF2 on the unix port, outside any device: the firmware's own vault.crypto and count.
PIN_KDF = """
import sys, time
sys.path.insert(0, 'lib')
import vault
from vault import crypto
password, salt = bytearray(b'\\x11' * 32), b'\\x22' * 16
best = None
for _ in range(7):
    t = time.ticks_us()
    crypto.pbkdf2_sha256(password, salt, vault.PIN_ITERATIONS)
    us = time.ticks_diff(time.ticks_us(), t)
    best = us if best is None else min(best, us)
print(vault.PIN_ITERATIONS, best)
"""
PIN_CHECK_TARGET_S = 0.5  # shared/DESIGN.md: PIN key derivation sized for ~0.5 s on the ESP32


def bench_pin():
    """The vault: PBKDF2 per PIN check (host, ESP32 estimate), and flash writes per operation."""
    from tools.vaultops import OPERATIONS, VaultBench

    out = subprocess.run([micropython_exe(), "-X", "heapsize=%s" % DEFAULT_HEAP, "-c", PIN_KDF],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    if out.returncode:
        raise RuntimeError("PBKDF2 run failed:\n" + out.stdout + out.stderr)
    iterations, best_us = (int(x) for x in out.stdout.split())
    host_s = best_us / 1e6
    esp32_s = esp32_estimate(host_s)
    print("PBKDF2-HMAC-SHA256, %d iterations (vault.PIN_ITERATIONS), one PIN check:" % iterations)
    print("  unix port here: %.1f ms; ESP32 estimate (x%.0f pystone ratio): %.0f ms" % (host_s * 1e3, esp32_ratio(), esp32_s * 1e3))
    print("  iterations for %.1f s on the ESP32 by this estimate: %d"
          % (PIN_CHECK_TARGET_S, int(iterations * PIN_CHECK_TARGET_S / esp32_s)))
    print("flash writes (erases and programs) per vault operation, on the virtual handheld:")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image.build(tmp / "firmware.img")
        with VaultBench(tmp / "firmware.img", tmp) as bench:
            for name in OPERATIONS:
                print("  %-26s %4d" % (name, bench.flash_writes(name, bench.prepare(name))))


# The working set of a piece of device code: the least free heap in which it still runs,
# found by filling the heap with blocks down to 16 bytes (one large block could fail for
# fragmentation, not for want of memory) and bisecting.
WORKING_SET = """
import gc
def working_set(fn, top=96 * 1024, step=256):
    lo, hi = 0, top
    hoard = [None] * 2048  # made once: growing it while memory is short would fail by itself
    while hi - lo > step:
        mid = (lo + hi) // 2
        gc.collect()
        n = 0
        for size in (4096, 1024, 256, 64, 16):
            while gc.mem_free() > mid + size + 16 and n < len(hoard):
                try:
                    hoard[n] = bytearray(size)
                    n += 1
                except MemoryError:  # no hole that large left: go on with smaller blocks
                    break
        try:
            fn()
            ok = True
        except MemoryError:
            ok = False
        for i in range(n):
            hoard[i] = None
        if n == len(hoard):
            raise RuntimeError("working_set: the hoard list is too short to fill the heap")
        if ok:
            hi = mid
        else:
            lo = mid
    return hi
"""
# shared/DESIGN.md: the board has ~110 KB of heap for everything; a screen may take at most
# this much of it while it draws (the strip buffer, glyphs, the widgets).
SCREEN_BUDGET = 32 * 1024


def bench_screens():
    """Peak heap while drawing each screen: its working set, against SCREEN_BUDGET.

    Measured with the toolkit drawing into a display that discards the strips: the bus of the
    virtual handheld allocates for every transfer, which the board's SPI does not, and a
    memory error inside it would be the simulator's, not the screen's."""
    from tools.screenshots import SCREENS, SETUP, handheld_with_display

    null_display = ("import time\nclass NullDisplay:\n    width, height = display.width, display.height\n"
                    "    def blit(self, *args):\n        pass\n"
                    "_status = ui.status\nui = UI(NullDisplay(), NoTouch(), _status)\n")
    with handheld_with_display() as (dev, vd, tmp):
        print("heap needed while drawing each screen (its working set; budget %d KB):" % (SCREEN_BUDGET // 1024))
        for name, expr in SCREENS.items():
            dev.soft_reset()
            dev.exec(SETUP + WORKING_SET + null_display, timeout=60)
            dev.exec("_code = compile(%r, 'screen', 'exec')\n_draw = lambda: exec(_code, globals())\n_draw()" % expr)
            need = dev.eval("working_set(_draw)", timeout=300)
            garbage = dev.eval("(gc.collect(), gc.disable(), gc.mem_alloc(), _draw(), gc.mem_alloc(), gc.enable())",
                               timeout=60)
            resident = dev.eval("(gc.collect(), gc.mem_alloc())[1]")
            cpu_us = min(dev.eval("(lambda t: (_draw(), time.ticks_diff(time.ticks_us(), t))[1])(time.ticks_us())")
                         for _ in range(3))
            print("  %-18s %5.1f KB %-11s allocated while drawing %5.1f KB, resident %5.1f KB;"
                  " drawing %4.1f ms here, ESP32 estimate %4.0f ms"
                  % (name, need / 1024, "ok" if need <= SCREEN_BUDGET else "OVER BUDGET",
                     (garbage[4] - garbage[2]) / 1024, resident / 1024, cpu_us / 1000,
                     esp32_estimate(cpu_us / 1e6) * 1000))


BENCHES = {"vdevice": bench_vdevice, "pystone": bench_pystone, "pin": bench_pin, "screens": bench_screens}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=tuple(BENCHES))
    args = parser.parse_args(argv)
    BENCHES[args.what]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
