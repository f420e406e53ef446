"""Benchmarks that print figures: `python -m tools.bench vdevice`.

vdevice: what the virtual handheld itself costs, so that figures measured on it can be read:
start-up, soft reset, a REPL round trip, an I2C transaction against its wire time, and the heap
the launcher and boot leave to the firmware.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tools import image
from tools.device import Device
from tools.vdevice.spawn import VDeviceProcess


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("vdevice",))
    parser.parse_args(argv)
    bench_vdevice()
    return 0


if __name__ == "__main__":
    sys.exit(main())
