"""Benchmarks that print figures: `python -m tools.bench vdevice|pystone|pin|screens|nfc|contact|emv|flows|uplink`.

vdevice: what the virtual handheld itself costs, so that figures measured on it can be read:
start-up, soft reset, a REPL round trip, an I2C transaction against its wire time, and the heap
the launcher and boot leave to the firmware.

pystone: the MicroPython unix port's pystones/s on this host (tools/bench_pystone.py), its ratio
to the ESP32's, and so what a millisecond of firmware CPU time here means on the board
(esp32_estimate(), shared/DESIGN.md "Performance budgets").

pin: the vault's PIN key derivation (PBKDF2) per PIN check, on the unix port and as an ESP32
estimate, the iteration count that would take 0.5 s there, the flash writes each vault
operation makes, and the heap one commit (and one DUKPT state save) allocates and needs in one
piece.

screens: what each screen of the toolkit costs to draw: the heap it allocates (first draw, a
redraw, the canvas's render alone), the heap it needs (its working set, against the budget) and
its CPU time (tools/screenbench.py).

nfc: a SELECT PPSE and a 10-APDU exchange over the PN532: bus transactions, wire time, driver
CPU time and the ESP32 estimate.

contact: the same over the contact slot, at the initial etu and after PPS.

emv: the EMV kernel (lib/emv) in a contact and a contactless transaction with the rig's test
card: the kernel's own CPU time (host, ESP32 estimate), the transaction over the real
interface (total, wire), and the kernel's working set.

flows: every flow of the terminal end to end against the bank host on the board-faithful
handheld, new and in steady state: heap after boot, peak, largest allocation, the growth of the
board's split heap it needs and the headroom left, the deepest C stack, the ESP32 time model
(bytecode x pystone ratio, native C apart, wire, network) against the targets, and the IDF side
on paper (tools/flowbench.py; `flows --help` for its options).

uplink: the heap the uplink allocates building and sending a purchase's 0200 and parsing its
0210, the DUKPT keys' share apart (tools/uplinkbench.py).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import image
from tools.device import Device
from tools.vdevice import BOARD_HEAP, heap_args, micropython_exe
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
    each a fresh process of the board-faithful interpreter (the same 32-bit build the firmware
    runs in) with the board's heap, so its garbage collector works as hard as the firmware's."""
    exe = micropython_exe()
    figures = []
    for _ in range(runs):
        heap, env = heap_args()
        proc = subprocess.run([exe, *heap, str(PYSTONE), str(int(loops))], capture_output=True, text=True,
                              timeout=120, env=dict(os.environ, **env))
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
    print("MicroPython unix port, board-faithful (%s, heap %s growing as the ESP32's): %.0f pystones/s, best of %s"
          " (%d loops each)" % (micropython_exe(), BOARD_HEAP, _unix_pystones, ", ".join("%.0f" % f for f in figures),
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


# What one vault commit costs the heap, on the device: bytes allocated (gc off) and the
# smallest hole it completes in, the heap filled with blocks of one size and every other one
# freed (a heap fragmented as a payment leaves it: much free, no large piece). The state
# before: personalized, unlocked, an account bound (meta ~1.4 KB).
# Device side: the bytes fn() allocates, counted with the collector off (every byte, garbage
# included). The benches that count allocations prepend it to their own device code.
ALLOCATED = """
import gc
def allocated(fn):
    gc.collect()
    gc.disable()
    try:
        start = gc.mem_alloc()
        fn()
        return gc.mem_alloc() - start
    finally:
        gc.enable()
"""
COMMIT_HEAP = """
import gc, json, sys, time
v = open_vault()
v.verify_pin(PIN)
v.bind_account('DE89370400440532013000', b'record', b'certificate')
dukpt = bytearray(4 + 32 * 16)  # lib/dukpt's state: counter and 32 key registers
WORD = 8 if sys.maxsize > 2 ** 32 else 4
BLOCK = 4 * WORD  # the GC's allocation unit
def smallest_hole(fn, lo=2, hi=128):
    # In GC blocks; the answer in bytes. Blocks of one size fill the heap, then the smallest
    # blocks fill what is left (so no free piece borders a freed one), then every other
    # block of the first kind is freed.
    one = (None,)
    hoard = [None] * 4096  # made once: growing them while memory is short would fail by itself
    grit = [None] * 4096
    while hi - lo > 1:
        mid = (lo + hi) // 2
        gc.collect()
        n = g = 0
        for blocks, kept in ((mid, hoard), (1, grit)):
            while True:
                if n == len(hoard) or g == len(grit):
                    raise RuntimeError('smallest_hole: the hoard is too short to fill the heap')
                try:
                    block = one * ((blocks * BLOCK - 2 * WORD) // WORD)  # one allocation, exactly
                except MemoryError:
                    break
                if kept is hoard:
                    hoard[n] = block
                    n += 1
                else:
                    grit[g] = block
                    g += 1
        block = None
        for i in range(1, n, 2):
            hoard[i] = None
        ok = completes(fn)
        for kept in (hoard, grit):
            for i in range(len(kept)):
                kept[i] = None
        lo, hi = (lo, mid) if ok else (mid, hi)
    return hi * BLOCK
def completes(fn):
    try:
        fn()
    except MemoryError:
        return False
    return True
def ms(fn, n=20):
    t = time.ticks_us()
    for _ in range(n):
        fn()
    return time.ticks_diff(time.ticks_us(), t) / n / 1000
def dukpt_step():
    v.replace_dukpt_state(dukpt)
print(repr((len(json.dumps(v.meta)), allocated(v.store.commit), smallest_hole(v.store.commit),
            ms(v.store.commit), allocated(dukpt_step), smallest_hole(dukpt_step), ms(dukpt_step))))
"""


def bench_pin():
    """The vault: PBKDF2 per PIN check (host, ESP32 estimate), flash writes per operation, heap per commit."""
    from tools.vaultops import OPERATIONS, VaultBench

    heap, env = heap_args()
    out = subprocess.run([micropython_exe(), *heap, "-c", PIN_KDF], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, **env))
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
            bench.boot_from(bench.prepare("store entry"))
            meta, commit, commit_hole, commit_ms, step, step_hole, step_ms = bench.report(ALLOCATED + COMMIT_HEAP)
    print("heap per vault commit on the virtual handheld (%s growing as the ESP32's, 32-bit),"
          " meta ~%d bytes of JSON:" % (BOARD_HEAP, meta))
    for what, total, hole, t in (("commit (meta alone)", commit, commit_hole, commit_ms),
                                 ("DUKPT state save (put)", step, step_hole, step_ms)):
        print("  %-24s allocates %5d bytes (gc off); completes in holes of %4d bytes; %.1f ms here"
              " (flash I/O included)" % (what, total, hole, t))


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
NFC_SETUP = """
import asyncio, board, time
from board import handheld as h
from drivers.pn532 import PN532, I2CLink
_pin = board.buses.machine.Pin
i2c = board.buses.i2c()
nfc = PN532(I2CLink(i2c, irq=board.buses.pin(h.PIN_NFC_IRQ, _pin.IN)),
            reset=board.buses.pin(h.PIN_NFC_RESET, _pin.OUT, value=1))
asyncio.run(nfc.begin())
card = asyncio.run(nfc.poll(2000))
async def _exchange(apdus, rounds):
    for _ in range(rounds):
        for apdu in apdus:
            await card.transceive(apdu)
def measure(apdus, rounds):
    # Per round: elapsed us, device CPU us, I2C transactions, their wire time us.
    i2c.transactions = i2c.wire_us = 0
    c, t = time.clock(), time.ticks_us()
    asyncio.run(_exchange(apdus, rounds))
    return (time.ticks_diff(time.ticks_us(), t) / rounds, (time.clock() - c) * 1e6 / rounds,
            i2c.transactions / rounds, i2c.wire_us / rounds)
def bus_cpu(n=300):
    # The simulator's own CPU per I2C transaction (its socket round trip), not the driver's.
    c = time.clock()
    for _ in range(n):
        i2c.readfrom(0x24, 1)
    return (time.clock() - c) * 1e6 / n
"""
SELECT_PPSE = "00A404000E325041592E5359532E444446303100"
# Ten APDUs of the sizes a contactless purchase sends: SELECT, GPO, READ RECORDs, GENERATE AC.
TEN_APDUS = [SELECT_PPSE, "00A4040007A000000003101000", "80A8000002830000"] + ["00B2%02X0C00" % r for r in range(1, 7)] + [
    "80AE8000" + "2B" + "00" * 43 + "00"]


def bench_nfc():
    """A SELECT PPSE and a 10-APDU exchange over the PN532 on I2C: bus transactions, wire time,
    the device's CPU time (the driver's, with the simulator's own bus calls taken out), the time
    spent waiting for the chip and the card, and the ESP32 estimate."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image.build(tmp / "flash.img")
        with VDeviceProcess(tmp / "flash.img", tmp / "state") as vd:
            vd.rig.attach("i2c0", "pn532", addr=0x24, name="nfc")
            vd.rig.call("do", name="nfc", action="place", kind="iso-dep", applet="echo")
            dev = Device(vd.repl)
            dev.exec(NFC_SETUP, timeout=60)
            per_txn = min(dev.eval("bus_cpu()") for _ in range(3))
            print("PN532 on I2C at 400 kHz, an ISO-DEP card at 106 kbps (the rig's chip and card timing);"
                  " the simulator's bus costs %.0f us of CPU a transaction, taken out below" % per_txn)
            for label, apdus in (("SELECT PPSE", [SELECT_PPSE]), ("10-APDU exchange", TEN_APDUS)):
                apdu_list = "[%s]" % ", ".join("bytes.fromhex(%r)" % a for a in apdus)
                runs = [dev.eval("measure(%s, 5)" % apdu_list, timeout=120) for _ in range(3)]
                elapsed, cpu, txns, wire = min(runs, key=lambda r: r[1])
                driver = max(0.0, cpu - txns * per_txn)
                waiting = max(0.0, elapsed - wire - cpu)
                esp32 = wire + waiting + esp32_estimate(driver / 1e6) * 1e6
                print("  %-17s %3d I2C transactions; wire %5.1f ms, chip and card %5.1f ms, driver CPU %5.2f ms"
                      " (ESP32 estimate %5.1f ms); total here %5.1f ms, on the ESP32 about %5.1f ms"
                      % (label, txns, wire / 1e3, waiting / 1e3, driver / 1e3, esp32_estimate(driver / 1e6) * 1e3,
                         elapsed / 1e3, esp32 / 1e3))
            dev.close()


CONTACT_SETUP = """
import asyncio, board, time
from drivers.iso7816_slot import Slot
slot = Slot.from_board(board)
uart = board.buses.card_uart()
async def _exchange(apdus, rounds):
    for _ in range(rounds):
        for apdu in apdus:
            await slot.transceive(apdu)
def measure(apdus, rounds):
    # Per round: elapsed us, device CPU us, characters on the line (every one comes back to the
    # UART: the device's own as the echo, the card's), their wire time us at the current etu.
    uart.rx_chars = 0
    c, t = time.clock(), time.ticks_us()
    asyncio.run(_exchange(apdus, rounds))
    chars = uart.rx_chars / rounds
    return (time.ticks_diff(time.ticks_us(), t) / rounds, (time.clock() - c) * 1e6 / rounds,
            chars, chars * uart._char_us())
"""


def bench_contact():
    """A SELECT and the 10-APDU exchange over the contact slot: at the initial etu (372 clocks
    at 4 MHz, the 9600-class rate) on a T=0 card, and after PPS to D=4 on a T=1 card."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image.build(tmp / "flash.img")
        with VDeviceProcess(tmp / "flash.img", tmp / "state") as vd:
            vd.rig.attach("uart2", "iso7816", name="card")
            dev = Device(vd.repl)
            dev.exec(CONTACT_SETUP, timeout=60)
            for preset, label in (("emv-t0", "T=0, initial etu (10752 baud)"), ("t1", "T=1 after PPS to D=4")):
                vd.rig.call("do", name="card", action="insert", atr=preset, applet="echo")
                atr = dev.eval("asyncio.run(slot.activate()).raw.hex()", timeout=30)
                print("%s (ATR %s):" % (label, atr))
                for name, apdus in (("SELECT", [SELECT_PPSE]), ("10-APDU exchange", TEN_APDUS)):
                    apdu_list = "[%s]" % ", ".join("bytes.fromhex(%r)" % a for a in apdus)
                    runs = [dev.eval("measure(%s, 3)" % apdu_list, timeout=300) for _ in range(2)]
                    elapsed, cpu, chars, wire = min(runs, key=lambda r: r[1])
                    esp32 = wire + max(0.0, elapsed - wire - cpu) + esp32_estimate(cpu / 1e6) * 1e6
                    print("  %-17s %4d characters; wire %6.1f ms, device CPU %5.2f ms (ESP32 estimate %6.1f ms);"
                          " total here %6.1f ms, on the ESP32 about %6.1f ms"
                          % (name, chars, wire / 1e3, cpu / 1e3, esp32_estimate(cpu / 1e6) * 1e3, elapsed / 1e3,
                             esp32 / 1e3))
                dev.exec("asyncio.run(slot.deactivate())")
                vd.rig.call("do", name="card", action="remove")
            dev.close()


# The EMV kernel on the device: a live transaction through a driver records the card's answers
# (TAPE); replaying them to the kernel with the same unpredictable number (so DDA and fDDA
# verify again) times the kernel alone, without driver, bus or card.
EMV_SETUP = """
import gc, os
import emv.kernel as _K
from emv import capk, cvm, oda, select
from emv.config import TerminalConfig
from emv.kernel import Kernel
kernel = Kernel(TerminalConfig(), capk.Store.load(%r), choose=lambda labels: 0,
                pin=lambda tries: bytearray(b'1234'))
DATE = bytes.fromhex('260615')
TAPE, UN = [], [None]
def _recording(transceive):
    async def tx(apdu):
        r = await transceive(apdu)
        TAPE.append(bytes(r))
        return r
    return tx
class _Replay:
    def __init__(self):
        self.i = 0
    async def tx(self, apdu):
        self.i += 1
        return TAPE[self.i - 1]
class _SameUn:
    def urandom(self, n):
        return UN[0][:n]
def live(transceive, contactless):
    # (outcome, TVR, commands, elapsed us) of a transaction through the interface
    TAPE[:] = []
    gc.collect()
    t = time.ticks_us()
    r = asyncio.run(kernel.transact(_recording(transceive), 2500, contactless=contactless, date=DATE))
    us = time.ticks_diff(time.ticks_us(), t)
    UN[0] = r.terminal[0x9F37]
    return r.outcome, bytes(r.tvr).hex(), r.commands, us
def replay(contactless):
    _K.os = _SameUn()
    try:
        r = asyncio.run(kernel.transact(_Replay().tx, 2500, contactless=contactless, date=DATE))
    finally:
        _K.os = os
    return r.outcome, bytes(r.tvr).hex()
def kernel_cpu(contactless, n=5):
    # us: nothing waits in a replay, its elapsed time is the kernel's CPU time
    best = None
    for _ in range(n):
        gc.collect()
        t = time.ticks_us()
        replay(contactless)
        us = time.ticks_diff(time.ticks_us(), t)
        best = us if best is None or us < best else best
    return best
"""
# Room for the drivers' and the kernel's bytecode (frozen on the board) and both simulated
# buses, with the working set measured below it.
EMV_HEAP = "512K"
EMV_CAPK = "/data/capk.json"


def capk_file():
    """The CA public key file of tools/emvcard's test CAs (python -m tools.emvcard capk)."""
    from tools.emvcard.__main__ import main as emvcard
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "capk.json"
        emvcard(["capk", "--out", str(out)])
        return out.read_bytes()


def bench_emv():
    """A contact (T=1 after PPS) and a contactless purchase of 25.00 with emv:visa-classic:
    offline PIN, DDA or fDDA, the ARQC; kernel CPU time from a replay of the card's answers."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image.build(tmp / "flash.img")
        with VDeviceProcess(tmp / "flash.img", tmp / "state", heap=EMV_HEAP) as vd:
            dev = Device(vd.repl)
            dev.soft_reset()
            dev.makedirs(EMV_CAPK.rsplit("/", 1)[0])
            dev.write_file(EMV_CAPK, capk_file())
            vd.rig.attach("uart2", "iso7816", name="card")
            vd.rig.attach("i2c0", "pn532", addr=0x24, name="nfc")
            vd.rig.call("do", name="nfc", action="place", kind="iso-dep", applet="emv:visa-classic#nfc")
            vd.rig.call("do", name="card", action="insert", atr="t1", applet="emv:visa-classic#contact")
            dev.exec(CONTACT_SETUP + NFC_SETUP + EMV_SETUP % EMV_CAPK + WORKING_SET, timeout=60)
            dev.eval("asyncio.run(slot.activate()).raw.hex()", timeout=30)
            print("emv:visa-classic, 25.00, offline PIN; the kernel timed on a replay of the card's answers"
                  " (no driver, bus or card), best of 5:")
            for name, cl, tx in (("contact (T=1, D=4)", False, "slot.transceive"),
                                 ("contactless (PN532, I2C)", True, "card.transceive")):
                dev.exec("uart.rx_chars = 0; i2c.transactions = i2c.wire_us = 0")
                outcome, tvr, commands, elapsed = dev.eval("live(%s, %s)" % (tx, cl), timeout=120)
                wire = dev.eval("i2c.wire_us" if cl else "uart.rx_chars * uart._char_us()")
                again = dev.eval("replay(%s)" % cl, timeout=60)
                if list(again) != [outcome, tvr]:
                    raise RuntimeError("the replay ended %r, the live run %r" % (again, (outcome, tvr)))
                cpu = dev.eval("kernel_cpu(%s)" % cl, timeout=120)
                need = dev.eval("working_set(lambda: replay(%s))" % cl, timeout=300)
                print("  %-25s %s, TVR %s, %2d commands; kernel CPU %5.1f ms here, ESP32 estimate %5.0f ms;"
                      " whole transaction here %6.1f ms of which wire %6.1f ms; working set %4.1f KB"
                      % (name, outcome, tvr, commands, cpu / 1e3, esp32_estimate(cpu / 1e6) * 1e3,
                         elapsed / 1e3, wire / 1e3, need / 1024))
            resident = dev.eval("(gc.collect(), gc.mem_alloc())[1]")
            print("heap in use with the drivers, the kernel and the simulated buses loaded: %.1f KB"
                  " (bytecode in RAM here, frozen in flash on the board)" % (resident / 1024))
            dev.close()


def bench_screens():
    from tools import screenbench
    screenbench.main()


def bench_flows(argv=()):
    from tools import flowbench
    flowbench.main(list(argv))


def bench_uplink():
    from tools import uplinkbench
    uplinkbench.main()


BENCHES = {"vdevice": bench_vdevice, "pystone": bench_pystone, "pin": bench_pin, "screens": bench_screens,
           "nfc": bench_nfc, "contact": bench_contact, "emv": bench_emv, "flows": bench_flows,
           "uplink": bench_uplink}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=tuple(BENCHES))
    args, rest = parser.parse_known_args(argv)
    if args.what == "flows":  # its own options (python -m tools.bench flows --help)
        bench_flows(rest)
    elif rest:
        parser.error("unrecognized arguments: %s" % " ".join(rest))
    else:
        BENCHES[args.what]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
