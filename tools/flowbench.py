"""`python -m tools.bench flows`: the cardholder's two money flows end to end on the virtual
handheld against the real bank host, and what each costs.

The flows (the firmware's own code: lib/emv's kernel, drivers/pn532, lib/uplink over lib/wifi
and the rig's access point, mutual TLS, DUKPT):
- contactless purchase: the test card (emv:visa-classic) in the PN532's field, the kernel's
  contactless path (PPSE, SELECT, GPO with the ARQC, records, fDDA), online PIN when the card
  asks for it, the 0200 with DE55 and the 0210 with the ARPC, completion;
- pushed request: the merchant pushes a payment request through the bank (its 0600 reaches the
  device, which acknowledges it), the device pays it from the owner's bound account (0200 on
  file, 0210).

Per flow (one measured run, then the heap bisection):
- firmware CPU: the device process's CPU time (time.clock()) over the flow less what the
  simulator's own bus calls (board.sim's links to the rig) took; the ESP32 estimate scales it
  by the pystone ratio (tools/bench.py esp32_estimate);
- wire: the I2C bus's wire time at its clock (board.sim I2C.wire_us: START, address, 9 clocks
  a byte, STOP at 400 kHz);
- network: the time the device waited on its socket for the bank: from each request written
  (0200) to its answer read (0210), through the access point's forwarder and the host;
- card in field (contactless): from the first poll with the card already in the field (so the
  reader finds it at once) to the card's last answer: after it the card can leave. Its ESP32
  estimate = wire + the chip's and card's own time + CPU in that window x the pystone ratio;
- heap: in use after every import and setup, in use with the bank session up, and the least
  free heap with which the whole flow still ends approved (bisection, the rest of the heap
  filled with small blocks, as `bench emv`); the working set is the smallest heap that runs
  the flow less the heap in use after imports.
"""

import statistics
import sys
import tempfile
import threading
import time
import urllib.error
from pathlib import Path

from tools import image
from tools.device import Device
from tools.vdevice.spawn import VDeviceProcess

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "host"))
import uplinkfix as fx  # noqa: E402  the bank host seeded with the test card and the device

AMOUNT = 2500  # minor units: above every test card's CVM and offline limits, so online
REQUEST_AMOUNT = 1875
HEAP = "512K"  # the kernel's, drivers' and uplink's bytecode in RAM here (frozen on the board)
STEP_KB = 2  # the heap bisection's resolution
RUNS = 5  # measured runs of each flow, before the heap bisection
JOURNAL = "/bench-journal"

# The device's side. Needs bench.NFC_SETUP (nfc, i2c, the card), bench.EMV_SETUP (kernel, DATE)
# and the provisioned `vault` before it.
FLOW_SETUP = """
import asyncio, gc, time, uplink, wifi
from board import sim as _sim
from uplink.journal import Journal
try:
    for _n in os.listdir(%(journal)r):
        os.remove(%(journal)r + '/' + _n)
except OSError:
    pass
w = wifi.Wifi(network=('PocketNet', 'correct horse'))
up = uplink.Uplink(vault, {'host': 'localhost', 'port': 8583, 'serial': %(serial)r,
                           'merchant': %(serial)r + 'SHOP001', 'currency': '978'}, wifi=w, journal=Journal(%(journal)r))
# The simulator's own CPU: every bus call to the rig goes through one _Link (outermost call only).
SIM = [0.0, 0]
def _sim_timed(fn):
    def call(self, *args, **kw):
        if SIM[1]:
            return fn(self, *args, **kw)
        SIM[1] = 1
        c = time.clock()
        try:
            return fn(self, *args, **kw)
        finally:
            SIM[0] += time.clock() - c
            SIM[1] = 0
    return call
_sim._Link.send = _sim_timed(_sim._Link.send)
_sim._Link.request = _sim_timed(_sim._Link.request)
# The network: from a request written to its answer read (us), and the push's arrival.
NET = [0, None]
MARK = [None]
def snap():
    return (time.ticks_us(), time.clock(), SIM[0], i2c.wire_us, NET[0])
_write, _receive = up._write, up._receive
async def _timed_write(raw):
    await _write(raw)
    if raw[:4] == b'0200':
        NET[1] = time.ticks_us()
def _timed_receive(raw):
    if raw[:4] == b'0600':
        MARK[0] = snap()
    elif raw[:4] == b'0210' and NET[1] is not None:
        NET[0] += time.ticks_diff(time.ticks_us(), NET[1])
        NET[1] = None
    _receive(raw)
up._write, up._receive = _timed_write, _timed_receive
def spent(a, b):
    # elapsed us, firmware CPU us, wire us, network us between two snaps
    return (time.ticks_diff(b[0], a[0]), (b[1] - a[1] - (b[2] - a[2])) * 1e6, b[3] - a[3], b[4] - a[4])
async def contactless(up):
    t0 = snap()
    tag = await nfc.poll(2000)
    if tag is None:
        raise RuntimeError('no card in the field')
    last = [t0]
    async def tx(apdu):
        r = await tag.transceive(apdu)
        last[0] = snap()
        return r
    res = await kernel.transact(tx, %(amount)d, contactless=True, date=DATE)
    if res.outcome != 'online':
        raise RuntimeError('the kernel ended ' + res.outcome)
    a = await up.purchase(res, %(amount)d, pin=bytearray(b'1234') if res.online_pin else None)
    auth = None
    if a.icc:
        from emv import tlv as _tlv
        auth = dict(_tlv.decode(a.icc)).get(0x91)
    await kernel.complete(tx, res, a.rc.encode(), auth)
    t1 = snap()
    return {'outcome': res.outcome, 'rc': a.rc, 'rrn': a.rrn, 'online_pin': res.online_pin,
            'commands': res.commands, 'flow': spent(t0, t1), 'field': spent(t0, last[0])}
async def request(up):
    req = await asyncio.wait_for_ms(up.next_request(), 30000)
    a = await up.pay_request(req, account=%(account)r)
    t1 = snap()
    return {'outcome': 'approved' if a.approved else 'declined', 'rc': a.rc, 'rrn': a.rrn, 'id': req.id,
            'flow': spent(MARK[0], t1)}
FLOWS = {'contactless': contactless, 'request': request}
def trial(kind):
    # The flow on a fresh session (signed on first, outside the figures): ('ok', figures) or
    # ('failed', why), and the heap in use with the session up.
    async def session():
        wt = asyncio.create_task(w.run())
        t = asyncio.create_task(up.run())
        try:
            if not await up.wait_ready(20000):
                return ('failed', 'no session: %%r' %% (up.error,)), 0
            gc.collect()
            resident = gc.mem_alloc()
            MARK[0] = None
            try:
                return ('ok', await FLOWS[kind](up)), resident
            except Exception as e:
                return ('failed', '%%s: %%s' %% (type(e).__name__, e)), resident
        finally:
            t.cancel()
            wt.cancel()
            await asyncio.sleep_ms(0)
    try:
        return asyncio.run(session())
    except MemoryError as e:
        return ('failed', 'MemoryError: %%s' %% e), 0
"""


class FlowRig:
    """The bank host, and the virtual handheld provisioned for it with the NFC reader, the
    test card's CA keys and the Wi-Fi access point routing to the host."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.bank = self.vd = self.dev = None

    def __enter__(self):
        from tools import bench
        try:
            self.bank = fx.BankHost(self.tmp / "bank")
            image.build(self.tmp / "flash.img")
            self.boot(HEAP, first=True)
            self.dev.makedirs(bench.EMV_CAPK.rsplit("/", 1)[0])
            self.dev.write_file(bench.EMV_CAPK, bench.capk_file())
            self.dev.exec(fx.provisioning(self.bank), timeout=60)
            self.setup()
            self.imports = self.dev.eval("(gc.collect(), gc.mem_alloc())[1]")
        except BaseException:
            self.__exit__()
            raise
        return self

    def boot(self, heap, first=False):
        """The handheld (again, on the same flash) with this MicroPython heap, and its rig."""
        self.stop_device()
        self.vd = VDeviceProcess(self.tmp / "flash.img", self.tmp / "state", heap=heap)
        self.dev = Device(self.vd.repl)
        rig = self.vd.rig
        self.dev.soft_reset()
        rig.attach("i2c0", "pn532", addr=0x24, name="nfc")
        rig.attach("wlan0", "wifi", name="wifi")
        rig.call("do", name="wifi", action="target", host=self.bank.address[0], port=self.bank.address[1])
        # In the field from the start: the first poll finds it at once.
        rig.call("do", name="nfc", action="place", kind="iso-dep", applet="emv:visa-classic")
        if not first:
            self.dev.exec("from vault import Vault\nfrom vault.store import Store\n"
                          "vault = Vault(Store('/uplink-vault')).open()", timeout=60)

    def setup(self):
        """The drivers, the kernel, the uplink and the flows on the device."""
        from tools import bench
        self.dev.exec(bench.NFC_SETUP + bench.EMV_SETUP % bench.EMV_CAPK, timeout=60)
        self.dev.exec(FLOW_SETUP % {"journal": JOURNAL, "serial": fx.SERIAL, "amount": AMOUNT,
                                    "account": fx.OWNER}, timeout=60)

    def stop_device(self):
        if self.dev is not None:
            self.dev.close()
            self.dev = None
        if self.vd is not None:
            self.vd.stop()
            self.vd = None

    def __exit__(self, *exc):
        self.stop_device()
        if self.bank is not None:
            self.bank.stop()

    def run(self, kind):
        """One flow on the device: (('ok', figures) or ('failed', why), heap in use with the
        session up). The pushed request is pushed by the merchant once the device is signed on."""
        pusher = None
        if kind == "request":
            pusher = threading.Thread(target=self._push, daemon=True)
            pusher.start()
        try:
            return self.dev.eval("trial(%r)" % kind, timeout=120)
        finally:
            if pusher is not None:
                pusher.join(30)

    def _push(self):
        # A device that never signs on (too small a heap) leaves the push refused (409): the
        # trial fails on the device's side, which says why.
        try:
            self.bank.push("ORD-BENCH-%d" % time.monotonic_ns(), REQUEST_AMOUNT)
        except urllib.error.HTTPError:
            pass

    def measured(self, kind, runs):
        """The flow `runs` times, each checked at the bank: the figures of each run, and the
        ledger's change on the account the flow debits."""
        account = fx.CARD_ACCOUNT if kind == "contactless" else fx.OWNER
        before = self.bank.ledger()["accounts"][account]
        done = []
        for _ in range(runs):
            (status, got), resident = self.run(kind)
            if status != "ok" or got["rc"] != "00":
                raise RuntimeError("the %s flow did not end approved: %r" % (kind, got))
            got["resident"] = resident
            done.append(got)
        debited = before - self.bank.ledger()["accounts"][account]
        return done, debited

    def completes_in(self, kind, heap_kb):
        """Whether the whole flow (boot, imports, sign-on, the flow) ends approved on a handheld
        with this heap."""
        try:
            self.boot("%dK" % heap_kb)
            self.setup()
            (status, got), _ = self.run(kind)
        except Exception:  # a MemoryError on the device (Device raises its traceback), a hang
            return False
        return status == "ok" and got["rc"] == "00"

    def smallest_heap(self, kind, lo_kb, hi_kb, step_kb=STEP_KB):
        """The smallest -X heapsize (KB, to step_kb) in which the whole flow completes."""
        while hi_kb - lo_kb > step_kb:
            mid = (lo_kb + hi_kb) // 2
            if self.completes_in(kind, mid):
                hi_kb = mid
            else:
                lo_kb = mid
        return hi_kb


def figures(kind, runs, debited, smallest_kb, imports, ratio):
    """The printed row's numbers (ms, KB): medians of the runs' times, the mean of their CPU
    times (time.clock() counts in whole milliseconds: the mean of the runs is unbiased)."""
    def median(values):
        return statistics.median(values) / 1000

    def mean(values):
        return statistics.fmean(values) / 1000

    resident = max(r["resident"] for r in runs)
    cpu = mean([r["flow"][1] for r in runs])
    row = {"flow": kind, "runs": len(runs), "total": median([r["flow"][0] for r in runs]), "cpu": cpu,
           "cpu_esp32": cpu * ratio, "wire": median([r["flow"][2] for r in runs]),
           "network": median([r["flow"][3] for r in runs]), "field": None, "field_esp32": None,
           "imports": imports / 1024, "resident": resident / 1024, "smallest_heap": smallest_kb,
           "working_set": smallest_kb - imports / 1024 if smallest_kb else None,
           "rrns": [r["rrn"] for r in runs], "debited": debited}
    if "field" in runs[0]:
        f_elapsed = median([r["field"][0] for r in runs])
        f_cpu = mean([r["field"][1] for r in runs])
        f_wire = median([r["field"][2] for r in runs])
        row["field"] = f_elapsed
        # What is neither CPU nor wire in the window is the chip's and the card's own time.
        row["field_esp32"] = f_wire + max(0.0, f_elapsed - f_wire - f_cpu) + f_cpu * ratio
    return row


def measure(runs=RUNS, bisect=True):
    """Both flows: a list of figures() rows."""
    from tools.bench import esp32_ratio
    ratio = esp32_ratio()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FlowRig(tmp) as rig:
        measured = {kind: rig.measured(kind, runs) for kind in FLOWS}
        # Then the bisection, each trial on a handheld of its own (the measured runs' is gone).
        floor_kb, top_kb = rig.imports // 1024, int(HEAP.rstrip("K"))
        for kind in FLOWS:
            smallest = rig.smallest_heap(kind, floor_kb, top_kb) if bisect else None
            rows.append(figures(kind, *measured[kind], smallest, rig.imports, ratio))
    return rows


FLOWS = ("contactless", "request")
LABELS = {"contactless": "contactless purchase 25.00", "request": "pushed request 18.75"}


def print_table(rows):
    from tools.bench import esp32_ratio
    print("flow                        total   CPU here  CPU ESP32   wire  network  card in field      working set")
    print("                               ms         ms         ms     ms       ms  here / ESP32 ms         KB")
    for r in rows:
        field = "%6.1f / %6.1f" % (r["field"], r["field_esp32"]) if r["field"] is not None else "%15s" % "-"
        print("%-26s %7.1f %10.1f %10.0f %6.1f %8.1f  %s %10s"
              % (LABELS[r["flow"]], r["total"], r["cpu"], r["cpu_esp32"], r["wire"], r["network"], field,
                 "-" if r["working_set"] is None else "%.1f" % r["working_set"]))
    print()
    for r in rows:
        print("%s: %d runs approved (RRN %s), the bank's ledger debited %d in all; heap in use after imports"
              " %.1f KB, with the bank session up %.1f KB; smallest -X heapsize for the whole flow %s KB"
              % (LABELS[r["flow"]], r["runs"], ", ".join(r["rrns"]), r["debited"], r["imports"], r["resident"],
                 r["smallest_heap"]))
    print("ESP32 estimate: CPU here x %.1f (pystone ratio); wire: I2C at 400 kHz (board.sim); network: the device"
          " waiting on its socket (0200 written -> 0210 read) via the rig's access point to the bank host on"
          " this machine" % esp32_ratio())


def main():
    print_table(measure())
