"""Benchmarks that print figures: `python -m tools.bench vdevice|pystone`.

vdevice: what the virtual handheld itself costs, so that figures measured on it can be read:
start-up, soft reset, a REPL round trip, an I2C transaction against its wire time, and the heap
the launcher and boot leave to the firmware.

pystone: the MicroPython unix port's pystones/s on this host (tools/bench_pystone.py), its ratio
to the ESP32's, and so what a millisecond of firmware CPU time here means on the board
(esp32_estimate(), shared/DESIGN.md "Performance budgets").
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


BENCHES = {"vdevice": bench_vdevice, "pystone": bench_pystone}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=tuple(BENCHES))
    args = parser.parse_args(argv)
    BENCHES[args.what]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
