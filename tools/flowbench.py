"""`python -m tools.bench flows`: every flow of the terminal end to end on the board-faithful
virtual handheld (MicroPython v1.28.0, 32-bit, the firmware frozen, the ESP32's split GC heap and
16 KB task stack: tools/vdevice) against the demo's bank host, with what each costs the ESP32.

    python -m tools.bench flows [--runs N] [--flows a,b] [--purchases N] [--no-steady] [--step KB]

The handheld is the demo's (tools/demo: the bank seeded with its accounts and test cards, the
unit personalised), its parts attached. Each flow runs the terminal's own code on the app's own
objects (terminal.app.App, ui.screens.UI, the vault session, terminal.link.Link), entered at the
step after the owner's choices (the amount typed, the account picked: a person's time):
- contactless: terminal.purchase.Purchase from "card": emv:visa-classic put in the PN532's field
  once "Insert or tap card" is drawn, the kernel's contactless path, the online PIN typed on the
  panel's keypad by the rig's touch model, the 0200/0210, the receipt ("Approved" tapped away);
- contact: the same purchase with the card inserted in the slot (T=1, offline PIN);
- request: the bank pushes a merchant's payment request (0600), terminal.pay.PayRequest pays it
  from the owner's default account ("from_account");
- request by card: the same request paid with the contactless card ("card");
- balance: terminal.accounts.Balance of the default account ("Balance: ..." drawn);
- transfer: terminal.accounts.Transfer from the default account to the other ("send");
- unlock: App.unlock from the lock screen by PIN (the vault's PBKDF2 check, the session opened).
- request voided: a request paid as above (not measured), then terminal.refund.GiveBack of its
  History entry from "send" (the 0200/200000, the bank's void, History's entry, "Voided").
- transit top-up: terminal.topup.TopUp from "send" (its record, the 0200/920000, the transit card
  credited, History's entry, "Topped up").
- parameters: new terminal parameters (the test CAs' keys and the terminal's limits, published by the
  bench with the bank's update key once, at the flow's first run) offered as at a sign-on and
  installed: lib/update/package.follow(), its 0800/360 records, the signature and hash checks,
  the staged, committed install; the unit's own parameters dropped before each run (not
  measured) so that every run installs them.
- files: the issuer's files (one of 4 KB under /data, published by the bench once) offered and
  installed at once in the same way (update.files: staged beside, committed by one rename); the
  unit's files version dropped before each run.
- update: terminal.update.Update, the owner having chosen "Update available": the package's
  signed header read and shown, "Install now" tapped, the package (a 32 KB app image of a version
  above any the unit runs, published with the bank's update key before each run that follows an
  install: publish_update) downloaded in 0800/360 records, verified and written to
  the other OTA slot, the boot switched to it (update.ota); the restart after it is not measured.
- offline: a contact purchase online (not measured: the card's offline counters back to 0), then
  the same purchase with the bank away (the uplink taken as not signed on) and the issuer's
  parameters allowing offline approvals below 50.00 (terminal.offline): the card's TC, the
  advice stored on flash, "Approved offline"; then the bank back: the advice forwarded
  (0220/0230) on the session. The time is the offline purchase's; its memory with the forward.
Not covered: card mode (the handheld as a card for a shop's reader: tools.bench nfc and the
terminal tests drive it), fingerprint unlock, and the settings screens (no bank, no card).

Per flow, on the board's heap unless said otherwise:
- memory: the heap in use after boot (launcher, boot.py) and with the app set up and the bank
  session up; the flow's peak (heapstat.live(): the most bytes live after any collection in the
  flow, a floor of what it needs); the largest single allocation (heapstat.largest()); and the
  smallest growth of the heap (PT_IDF_HEAP, bisected to --step KB) in which the whole run from
  boot still completes: the board's heap grows once by 57,344 bytes (to 111,936 usable), so the
  headroom at the peak is 57,344 - that growth. Only the firmware's heap counts: the device's
  side of the bench (tools/flowprobe.py) is frozen, its code in flash as the firmware's; each
  flow's modules are let go when it ends, as the app's home menu does; and the first area adds
  what the stand-ins for the board's C (the launcher, board/sim.py, the esp32 module) hold (tools.vdevice.STAND_INS).
  The bisection is faithful to the split heap:
  the same 56 KB first area, then one area taken from what ESP-IDF has free. A fixed heap of the
  same total (-X heapsize, PT_IDF_HEAP=0: what the bench bisected before) is one contiguous area,
  so a block that would straddle the board's two areas fits there and not on the board: it
  flatters fragmentation, and is not used. Once the heap is fragmented, completing is not
  strictly monotone in the heap size: the bisection lands on a growth in which the flow
  completed from boot, within a few KB of the true edge; the timed runs then repeat the flow on
  one boot, and a repeat that runs out is reported too. Budget: >= 16 KB headroom at every peak.
  A flow that does not complete on the board's heap is reported so ("does not complete:
  MemoryError at <step>"), with the growth it would need.
- steady state: tools/steadystate.fill(device, bank_dir) fills every store to its cap (History
  full, fingerprints, bound accounts, CA keys of several banks, the reversal journal), and each
  run has the uplink's cap of payment requests waiting (steadystate.push_requests; a request flow
  brings the last one); then every flow is measured again. The journal's reversals go to the
  bank at the first sign-on after the fill (it answers them, nothing to undo) and a payment
  waits for that, as the owner's would: only the first boot after the fill starts with the
  journal at its cap. Then --purchases contactless purchases in a row on one boot (each signs on
  anew: the link is stopped between trials) with 8 KB more growth than the first purchase
  needed (at the least the board's): fragmentation and leaks show as a purchase that no longer
  completes, as the heap in use after a collection creeping up, and as the largest free block
  shrinking; then every flow once more on that boot.
- stack: the deepest C stack of the flow (heapstat.stack(): the C stack at every stack check,
  which heapstat makes itself, so it is the smallest PT_STACK, less the 1 KB margin, that the
  flow completes in: found in one run, where a bisection of PT_STACK would take ten), against
  the 16 KB task's 15 KB limit. These are x86-32 frames: the ESP32's Xtensa windowed ABI spills
  register windows (16-48 bytes a call) and aligns frames to 16 bytes, so its frames are larger
  for the same depth: the figure is a floor, and the margin under 15 KB is what covers that.

Time (the ESP32 model). The device process's CPU (heapstat.cpu_us(), to the microsecond: the
unix port's time.clock() counts whole milliseconds) over the flow is split into:
- the simulator's own CPU (board/sim.py's buses and links to the rig, which stand for the
  board's machine.I2C/SPI/UART/Pin in C: each of their methods timed whole, the outermost call):
  left out; what the buses cost on the board is their wire time, which the simulator already
  spends (it sleeps out each transfer's wire time: I2C at 400 kHz, 9 clocks a byte plus START
  and STOP; SPI at its baud rate; the UARTs at theirs, the rig pacing RX), so it is in the
  flow's elapsed time as on the board;
- the host's polling while asyncio waits for I/O (asyncio's IOQueue.wait_io_event, timed as the
  simulator's): left out too. The unix port polls what has no file descriptor (an IRQ's
  ThreadSafeFlag, the simulated UART) every millisecond (extmod/modselect.c,
  MICROPY_PY_SELECT_IOCTL_CALL_PERIOD_MS), ~16 us of CPU a poll here; the ESP32 port sleeps in
  ulTaskNotifyTake (ports/esp32/mpconfigport.h, MICROPY_EVENT_POLL_HOOK) until the interrupt
  wakes it (machine_pin.c, machine_uart.c: mp_hal_wake_main_task_from_isr) or the 10 ms tick;
- native C (heapstat.native(): time in mbedTLS's TLS records and handshake, cryptolib's AES,
  hashlib's SHA-256 and SHA-1, pow(a, b, m) in mpz, and LittleFS), with its call and byte counts;
- the timing's own cost (heapstat's "timing" part: the process's CPU clock is a system call, ~0.5
  us here, read twice around each native call timed, where a LittleFS call in its file's cache
  takes less): left out of both;
- the flash (heapstat.native() too): the block device's reads, programs and erases, each with its
  bytes. Here they are the simulated flash's pread/pwrite of an image file (tools/vdevice/port/
  modvflash.c), whose host time says nothing of the board: they are left out of the CPU and
  priced as the board's SPI flash does them (below). Counted as bytecode before, LittleFS and
  that file I/O were ~0.8 ms a vault commit here, ~0.14 s on the model, while the chip's erases
  (tens of ms each) were not counted at all;
- the rest is firmware bytecode, x the pystone ratio (tools/bench.py esp32_ratio(): this host's
  unix port, the same 32-bit build, over the ESP32's ~1400 pystones/s; the pystones timed in the
  process's CPU time, as the flows' bytecode is, so that a busy host does not shrink the ratio).
ESP32 estimate = bytecode x ratio + native on the ESP32 + the flow's waits (elapsed - CPU -
network: wire, the rig's chip and card timing, asyncio's sleeps) + network (the device waiting
for the bank: request written to answer read, through the rig's access point on this machine;
a real link adds its round trips). Native on the ESP32:
- SHA-256 and SHA-1 (hashlib; ESP-IDF's mbedTLS uses the SHA accelerator): 80 us a digest, the
  figure measured for a short mbedtls SHA-256 with the hardware on an ESP32 (arduino-esp32 issue
  #6819: 80 us with the accelerator, 43 us in software; the larger one is used), plus 1 us each
  64-byte block after the first (the ESP32 TRM's 60-100 cycles a block; measured 5 us for one
  block and 6 us for two, pitslaboratory.blogspot.com 2022/05, "ESP32 SHA hardware accelerator").
- AES (cryptolib), TLS records and pow: on a core on the ESP32 too (the AES accelerator is not
  faster for 16-64-byte calls: the driver's per-call cost dominates, see "Analyzing the Resource
  Utilization of AES Encryption on IoT Devices", Santa Clara University; ESP-IDF's GCM hashes in
  software; MicroPython's mpz is C): host time x the pystone ratio, an upper bound (the
  interpreter being C too, the ratio is that of compiled C on both). LittleFS likewise (its C, the
  block device's work left out).
- The flash: LittleFS on esp32.Partition, which makes one esp_partition_read or _write per
  LittleFS read or program (ports/esp32/esp32_partition.c) and one esp_partition_erase_range per
  4 KB erase. Reads and programs from ESP-IDF's own performance floors for the ESP32 (components/
  idf_test/include/esp32/idf_performance_target.h, the esp_flash driver: reads of 4 bytes at
  >= 35,200 B/s and of 2 KB at >= 6,650,000 B/s, writes of 4 bytes at >= 20,100 B/s and of 2 KB
  at >= 754,000 B/s, each floor set at "about 70% of the average test data"): the averages
  (floor / 0.7) as a cost per call and per byte through those two points, a read 79.3 us + 0.067
  us a byte, a program 135.9 us + 0.86 us a byte (the floors themselves would be 1.43 times
  these: 113 us a small read). The cost per call is most of it: each one disables the flash
  cache and stalls the other core around its SPI transfers, and LittleFS reads 64 to 256 bytes
  at a time (its read size and its caches, as the firmware mounts it: lib/flashfs.py, on the
  board and here alike; VfsLfs2's defaults read 32 to 128 and made 3 times as many reads), its
  metadata mostly. An erase: 45 ms a 4 KB sector,
  the typical sector erase time of the 3 V SPI NOR flash of the module's class (Winbond
  W25Q32JV: tSE 45 ms typical, 400 ms at most; ESP-IDF's floor for the ESP32, 45,300 B/s, is 70%
  of the slowest vendor's and would be 90 ms). The CPU waits through all three (the flash is the
  code's cache: ESP-IDF disables it while a write or an erase is in progress). Not modelled: the
  vfs partition is flash-encrypted on the board, whose encrypted writes go through the
  encryption block a few bytes at a time: the programs there may take longer than these.
Targets: contactless card in the field <= 500 ms (EMVCo), aim 300 ms; a contact purchase <= 4 s
without PIN typing; unlock 0.5-1 s. Card in the field: from the poll that finds the card to its
last answer (ODA and the bank need no card). Time on the PIN pad and on the owner's menus is a
person's and is left out.

The IDF side, on paper (idf_budget()): the ESP32-WROOM-32E's internal RAM left beside the GC
heap against Wi-Fi and the TLS session. The session is measured here: heapstat.tls() counts
mbedTLS's calloc/free (the unix port's mbedTLS allocates with calloc outside the GC heap, as
ESP-IDF's does from the IDF heap on the board), so its peak in the handshake and what the open
session holds are the board's too, with the same mbedTLS configuration (MicroPython's
extmod/mbedtls: 16 KB in, 4 KB out record buffers). Figures cited there.
"""

import argparse
import ast
import datetime
import json
import os
import socket
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
from contextlib import contextmanager
from pathlib import Path

from tools import demo, image
from tools.bank.spawn import HostProcess
from tools.bank.state import State
from tools.screenshots import screen_line
from tools.vdevice import heap_args, micropython_exe
from tools.vdevice.spawn import VDeviceProcess

AMOUNT = 2500  # minor units: above every test card's CVM and offline limits, so online
REQUEST_AMOUNT = 1875
# The update flow's app image (tools/vdevice/appimage.py): the download streams in records, so
# the heap does not grow with the image (the board's is ~1.6 MB: its time is ~50 x this one's).
UPDATE_IMAGE = 32 * 1024
FILES_SIZE = 4 * 1024  # the files flow's one file: several records
TRANSFER_AMOUNT = 1000
CARD = "visa-classic"
CARD_PIN = "1234"
RUNS = 3  # measured runs of each flow
STEP = 2048  # the growth bisection's resolution, bytes
ROW_SLACK = 8 * 1024  # the purchases in a row get this much more growth than the first one needed
PURCHASES = 20  # --purchases' default (DESIGN.md's steady state is 200: `--purchases 200`)
TAP_EVERY_MS = 150  # a finger's pace on the PIN pad
BOARD_GROWTH = 57344  # the board's one growth of the GC heap (tools/vdevice/port/esp32mem.c)
HEADROOM_BUDGET = 16 * 1024  # DESIGN.md: >= 16 KB headroom at every peak
BEYOND = 4 * BOARD_GROWTH  # how far past the board the bisection looks for a flow that does not fit
TASK_STACK, STACK_MARGIN = 16 * 1024, 1024  # the MicroPython task's stack and the port's margin
# The ESP32 (see the docstring): SHA with the accelerator, a digest and each further block; the
# SPI flash, a read and a program a call and a byte, an erase a sector.
SHA_DIGEST_US, SHA_BLOCK_US = 80.0, 1.0
FLASH_READ_US, FLASH_READ_BYTE_US = 79.3, 0.0666
FLASH_PROGRAM_US, FLASH_PROGRAM_BYTE_US = 135.9, 0.862
FLASH_ERASE_US = 45_000.0
TARGETS = {"contactless": ("card in field", 500, 300), "request_card": ("card in field", 500, 300),
           "contact": ("total", 4000, None), "unlock": ("total", 1000, 500)}
# "update" last: once its package is published, every sign-on after is offered it.
FLOWS = ("contactless", "contact", "request", "request_card", "balance", "transfer", "unlock", "request_void",
         "topup", "offline", "parameters", "files", "update")
LABELS = {"contactless": "contactless purchase 25.00", "contact": "contact purchase 25.00",
          "request": "pushed request 18.75, account", "request_card": "pushed request 18.75, card",
          "balance": "balance", "transfer": "transfer 10.00", "unlock": "unlock by PIN",
          "request_void": "request 18.75 voided", "topup": "transit top-up 1.00",
          "offline": "contact 25.00 offline, forwarded", "parameters": "parameters update",
          "files": "files update, %d KB" % (FILES_SIZE // 1024),
          "update": "firmware update, %d KB" % (UPDATE_IMAGE // 1024)}
PARTS = ("TLS", "AES", "SHA-256", "SHA-1", "pow", "LittleFS", "flash read", "flash program", "flash erase", "timing")
FLASH = {"flash read": (FLASH_READ_US, FLASH_READ_BYTE_US), "flash program": (FLASH_PROGRAM_US, FLASH_PROGRAM_BYTE_US),
         "flash erase": (FLASH_ERASE_US, 0.0)}
CARD_FLOWS = ("contactless", "contact", "request_card", "offline")
CONTACT_FLOWS = ("contact", "offline")  # the card in the slot


def debited_account(kind):
    """The bank account a flow debits: the card's, the owner's default one, or none (balance,
    unlock: the default account, unchanged)."""
    return demo.card_account(CARD) if kind in CARD_FLOWS else demo.ACCOUNTS[0][0]

# The device's side (tools/flowprobe.py, frozen into the virtual handheld: see there why),
# after a fresh boot (boot.py run, not main.py): the app's objects as terminal._terminal makes
# them, unlocked, the flows' instruments, P.trial(kind), P.purchases(n).
FLOW_SETUP = "import flowprobe as P\nP.setup(%r, %d, %d, %r)"


class Bank(HostProcess):
    """`python -m tools.bank` on free ports (tools.bank.spawn) over a state dir seeded with the
    demo (tools/demo)."""

    def __init__(self, state_dir):
        demo.seed(state_dir)
        super().__init__(state_dir)

    def balance(self, account):
        state = State(self.dir)
        try:
            return state.ledger.account(account)["available"]
        finally:
            state.close()

    def top_up(self, account, amount):
        """Credit an account (the card's, so that the bench's many purchases never run it dry)."""
        state = State(self.dir)
        try:
            with state.ledger.db.transaction():
                state.ledger.credit(account, amount)
        finally:
            state.close()

    def push(self, order, amount, merchant="Corner Bakery"):
        """A merchant's payment request for the device: the merchant API's answer."""
        return self.post("/payment-requests", {"device": demo.SERIAL, "amount": amount,
                                               "currency": demo.CURRENCY, "order": order}, merchant)


@contextmanager
def _env(**values):
    """os.environ with these set (None: unset) while a device process starts: it inherits them."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = str(v)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# The heap personalisation runs on: not measured, so as much as it likes.
SETUP_GROWTH = 1 << 20


class FlowRig:
    """The demo's bank host, and the demo's handheld (personalised for it, its parts attached,
    the test card's CA keys, the Wi-Fi access point routing to the host). Each run is a fresh
    boot of the handheld on the same flash with a heap growth of its own."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.bank = self.vd = self.dev = None
        self.pending = False  # the steady state: payment requests waiting at their cap
        self.parameters = False  # the parameters flow's package published
        self.files = False  # the files flow's
        self.update_version = 1  # the last firmware package published for the update flow (1: none)
        self.update_due = True  # a new one is to be published before the next update run

    def __enter__(self):
        from tools import bench
        try:
            self.bank = Bank(self.tmp / "bank")
            image.build(self.tmp / "flash.img")
            self.boot(SETUP_GROWTH)
            demo.personalize(self.vd.repl, self.bank.dir)
            self.dev = demo.fresh(self.vd.repl)
            self.dev.makedirs(bench.EMV_CAPK.rsplit("/", 1)[0])
            self.dev.write_file(bench.EMV_CAPK, bench.capk_file())
            self.keypad = {k[4]: k[:4] for k in self.dev.eval("__import__('ui.screens').screens.keypad_layout()")}
        except BaseException:
            self.__exit__()
            raise
        return self

    def boot(self, growth=BOARD_GROWTH):
        """The handheld (again, on the same flash) on the board's heap with this growth budget
        (PT_IDF_HEAP), its parts attached, and the app set up when it can be (else self.dev is
        None and self.setup_error says why)."""
        self.stop_device()
        with _env(PT_IDF_HEAP=growth):
            self.vd = VDeviceProcess(self.tmp / "flash.img", self.tmp / "state", bare=False)
        self.vd.rig.call("do", name="wifi", action="target", host=self.bank.address[0], port=self.bank.address[1])

    def setup(self):
        """The app's objects and the flows on a freshly booted handheld: None, or why not."""
        from tools.device import DeviceError
        if self.dev is None:
            self.dev = demo.fresh(self.vd.repl)
        try:
            self.dev.exec(FLOW_SETUP % (demo.DEMO_PIN.encode(), AMOUNT, TRANSFER_AMOUNT, CARD_FLOWS), timeout=120)
            if self.pending:
                self.dev.exec("from uplink import REQUESTS")
        except DeviceError as e:
            last = str(e).strip().splitlines()[-1:] or ["?"]
            return "at setup: " + last[0]
        return None

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
        """One flow on the set-up device: ((status, figures or why), memory figures). The host
        acts as the person: it pushes the request once the device is signed on, puts the card
        in the field or the slot, types the card's PIN and the owner's, taps the result away."""
        if self.pending:  # the uplink's cap, less the one a request flow brings
            self.dev.exec("P.PENDING[0] = REQUESTS - %d" % kind.startswith("request"))
        if kind == "parameters" and not self.parameters:
            self.publish_parameters()
        if kind == "files" and not self.files:
            self.publish_files()
        if kind == "update" and self.update_due:
            self.publish_update()
        from mpremote.transport import TransportError

        console = _Console(self, kind)
        # Its output goes to the console as it comes (mpremote keeps none of it then).
        try:
            _, err = self.dev.transport.exec_raw("print('trial ' + repr(P.trial(%r)))" % kind, timeout=180,
                                                 data_consumer=console.feed)
        except TransportError as e:
            # The device stopped answering (out of memory where the REPL itself allocates, on a
            # heap that barely held the set-up): a failure of the run, reported as one.
            err = ("the device stopped answering in the flow (%s)" % e).encode()
        console.join()
        self.vd.rig.call("do", name="nfc", action="remove")
        self.vd.rig.call("do", name="card", action="remove")
        if err:
            return ("failed", err.decode(errors="replace").strip().splitlines()[-1]), {}
        if console.result is None:
            return ("failed", "no result from the device"), {}
        if kind == "update" and console.result[0][0] == "ok":
            self.update_due = True  # installed: the next boot may run it (see publish_update)
        return console.result

    def publish_parameters(self):
        """The parameters flow's package: the test CAs' keys (the card flows' too) and the default
        limits, version 1 (the flow installs it anew each run)."""
        from tools import bench
        from tools.bank import updates
        doc = {"capk": json.loads(bench.capk_file()),
               "terminal": {"contactless_limits": [["a000000003", 100000, 5000, 0], ["a000000004", 100000, 5000, 0],
                                                   ["", 100000, 5000, 0]], "floor_limit": 0}}
        state = State(self.bank.dir)
        try:
            updates.publish(state, updates.PARAMETERS, 1, 0, updates.params_payload(doc)[0])
        finally:
            state.close()
        self.parameters = True

    def publish_files(self):
        """The files flow's package, version 1 (the flow installs it anew each run)."""
        from tools.bank import updates
        state = State(self.bank.dir)
        try:
            updates.publish(state, updates.FILES, 1, 0, updates.sections([("/data/notice.txt", b"n" * FILES_SIZE)]))
        finally:
            state.close()
        self.files = True

    def publish_update(self):
        """The firmware package the update flow installs, of a version above any the unit may run:
        an update run that installed one switched the unit's boot to it (otadata), so the next
        boot (the next trial, the steady fill) runs that version, confirmed at its home menu, and
        the bank offers only a higher one. The flow measured is the same whatever the version."""
        from tools.bank import admin
        from tools.vdevice import appimage

        self.update_version += 1
        path = self.tmp / ("update-image-%d.bin" % self.update_version)
        path.write_bytes(appimage.build(self.update_version, 0, size=UPDATE_IMAGE))
        assert admin.main(["--state-dir", str(self.bank.dir), "publish", "firmware", str(path),
                           "--version", str(self.update_version)]) == 0
        self.update_due = False

    def tap_at(self, x, y, after_ms=0):
        self.vd.rig.call("do", name="touch", action="tap", x=int(x), y=int(y), after_ms=after_ms)

    def trial(self, kind, growth=BOARD_GROWTH):
        """A fresh boot with this growth, the app set up, the flow once: as run()."""
        try:
            self.boot(growth)
            why = self.setup()
        except Exception as e:  # the device did not come up at all
            return ("failed", "at boot: %s" % e), {}
        if why:
            return ("failed", why), {}
        return self.run(kind)

    def measured(self, kind, runs, growth=BOARD_GROWTH):
        """The flow `runs` times on one boot with this growth: (the runs' figures, their memory
        figures, the ledger's change on the account the flow debits), or (None, which run
        failed, why)."""
        account = debited_account(kind)
        self.top_up_card(kind)
        before = self.bank.balance(account)
        done, mems = [], []
        for i in range(runs):
            (status, got), mem = self.trial(kind, growth) if i == 0 else self.run(kind)
            if status != "ok":
                return None, i + 1, got
            done.append(got)
            mems.append(mem)
        return done, mems, before - self.bank.balance(account)

    def top_up_card(self, kind):
        if kind in CARD_FLOWS:
            self.bank.top_up(demo.card_account(CARD), 100 * AMOUNT)

    def completes(self, kind, growth):
        """(whether the flow completes from a fresh boot with this growth, why not, its memory)."""
        self.top_up_card(kind)
        (status, got), mem = self.trial(kind, growth)
        return status == "ok", None if status == "ok" else got, mem

    def smallest_growth(self, kind, step=STEP):
        """(the smallest PT_IDF_HEAP, to `step` bytes, in which boot, setup, sign-on and the flow
        complete, or None if not even with BEYOND; why it failed on the board's heap, or None;
        the memory figures of the smallest run)."""
        ok, why, mem = self.completes(kind, BOARD_GROWTH)
        if ok:
            lo, hi, best = -1, BOARD_GROWTH, mem
        else:
            ok, _, best = self.completes(kind, BEYOND)
            if not ok:
                return None, why, mem
            lo, hi = BOARD_GROWTH, BEYOND
        while hi - lo > step:
            mid = max(0, (lo + hi) // 2 // 1024 * 1024)
            if mid <= lo:
                break
            done, _, m = self.completes(kind, mid)
            if done:
                hi, best = mid, m
            else:
                lo = mid
        return hi, why, best


class _Console:
    """The person at the handheld during one flow, reading its console: the push once the
    session is up, the card on "Insert or tap card", a PIN on a PIN pad, "PIN" on the lock
    screen, a tap on the result's button."""

    def __init__(self, rig, kind):
        self.rig, self.kind = rig, kind
        self.pending = b""
        self.threads = []
        self.result = None

    def feed(self, data):
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            self.line(line.decode(errors="replace").rstrip("\r"))

    def line(self, line):
        if line.startswith("trial "):
            self.result = ast.literal_eval(line[len("trial "):])
        if line == "bench ready" and self.kind.startswith("request"):
            self._later(self._push)
        if line.startswith("bench pending "):
            self._later(self._pending, int(line.split()[-1]))
        screen = screen_line(line)
        if screen is None:
            return
        title, buttons = screen["title"], screen.get("buttons", {})
        if title == "Insert or tap card":
            if self.kind in CONTACT_FLOWS:
                self.rig.vd.rig.call("do", name="card", action="insert", atr="t1", applet="emv:" + CARD)
            else:
                self.rig.vd.rig.call("do", name="nfc", action="place", kind="iso-dep", applet="emv:" + CARD)
        elif screen.get("pin_pad"):
            self._type(CARD_PIN if title == "Card PIN" else demo.DEMO_PIN)
        elif title.startswith("Locked") and "PIN" in buttons:
            self._tap(buttons["PIN"])
        elif title.startswith("Update to version"):
            self._tap(buttons["Install now"])
        elif title in ("Approved", "Approved offline", "Balance", "Voided", "Topped up") or screen.get("error"):
            if self.kind in CARD_FLOWS:  # the card leaves: the next purchase (in a row) presents it anew
                self.rig.vd.rig.call("do", name="card" if self.kind in CONTACT_FLOWS else "nfc", action="remove")
            for box in buttons.values():
                self._tap(box)

    def _tap(self, box, after_ms=0):
        x, y, w, h = box
        self.rig.tap_at(x + w // 2, y + h // 2, after_ms=after_ms)

    def _type(self, pin):
        for i, key in enumerate(list(pin) + ["OK"]):
            self._tap(self.rig.keypad[key], after_ms=TAP_EVERY_MS * i)

    def _push(self):
        # A push the bank refuses (409: no live session) leaves the device's flow waiting until
        # its timeout, and the trial says so.
        try:
            self.rig.bank.push("ORD-BENCH-%d" % time.monotonic_ns(), REQUEST_AMOUNT)
        except urllib.error.HTTPError:
            pass

    def _pending(self, n):
        # The steady state's requests (tools/steadystate.push_requests), under orders of this
        # boot's own: the ones pushed to a boot before are the bank's still, not this boot's.
        from tools import steadystate

        boot = time.monotonic_ns()

        def push(merchant, order, amount):
            try:
                self.rig.bank.push("%s-%d" % (order, boot), amount, merchant)
            except urllib.error.HTTPError:
                pass
        steadystate.push_requests(push, n)

    def _later(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self):
        for t in self.threads:
            t.join(30)


# ---- the time model ----------------------------------------------------------------------------

def native_esp32_us(native, ratio):
    """The native parts of a window ([(calls, bytes, host us)] in PARTS order) on the ESP32, us
    (see the module's docstring)."""
    total = 0.0
    for name, (calls, nbytes, host_us) in zip(PARTS, native):
        if name in ("SHA-256", "SHA-1"):
            # update and finish are each a call; a digest is one finish: calls // 2 at least
            digests = max(1, calls // 2) if calls else 0
            total += digests * SHA_DIGEST_US + max(0, nbytes // 64 - digests) * SHA_BLOCK_US
        elif name in FLASH:
            per_call, per_byte = FLASH[name]
            total += calls * per_call + nbytes * per_byte
        elif name == "timing":
            continue  # the harness's clock readings around the other parts: not the board's
        else:
            total += host_us * ratio
    return total


def esp32_us(window, ratio):
    """A window's figures (trial's spent(): elapsed, CPU, simulator CPU, wire, network, native)
    -> (bytecode host us, native host us, ESP32 estimate us)."""
    elapsed, cpu, sim, wire, net, native = window
    native_host = sum(p[2] for p in native)
    bytecode = max(0.0, cpu - sim - native_host)
    waits = max(0.0, elapsed - cpu - net)
    return bytecode, native_host, bytecode * ratio + native_esp32_us(native, ratio) + waits + net


def esp32_runs(windows, ratio):
    """(bytecode host us, ESP32 estimate us) of one window measured in several runs: the
    bytecode's mean x ratio, native's mean on the ESP32, the waits' and the network's medians
    (robust to a run the host held up). The mean of the bytecode: a run the host's scheduler
    slowed weighs in it no more than in the CPU time it took."""
    parts = []
    for elapsed, cpu, sim, wire, net, native in windows:
        parts.append((cpu - sim - sum(p[2] for p in native), native_esp32_us(native, ratio), elapsed - cpu - net, net))
    bytecode = max(0.0, statistics.fmean(p[0] for p in parts))
    return bytecode, (bytecode * ratio + statistics.fmean(p[1] for p in parts)
                      + max(0.0, statistics.median(p[2] for p in parts)) + statistics.median(p[3] for p in parts))


def figures(kind, runs, mems, debited, ratio):
    """A flow's time row (ms): medians of the runs' times, the mean of their CPU times, the
    ESP32 estimates by esp32_runs."""
    def median(values):
        return statistics.median(values) / 1000

    def mean(values):
        return statistics.fmean(values) / 1000

    flows = [r["flow"] for r in runs]
    split = [esp32_us(f, ratio) for f in flows]
    bytecode, esp32 = esp32_runs(flows, ratio)
    row = {"flow": kind, "runs": len(runs), "total": median([f[0] for f in flows]),
           "cpu": mean([f[1] for f in flows]), "sim": mean([f[2] for f in flows]),
           "bytecode": bytecode / 1000, "native": mean([s[1] for s in split]),
           "wire": median([f[3] for f in flows]), "network": median([f[4] for f in flows]),
           "esp32": esp32 / 1000, "esp32_each": [s[2] / 1000 for s in split], "field": None, "field_esp32": None,
           "native_parts": [tuple(statistics.fmean(f[5][i][j] for f in flows) for j in range(3))
                            for i in range(len(PARTS))],
           "rrns": [r["rrn"] for r in runs if "rrn" in r], "debited": debited,
           "resident": max(m["resident"] for m in mems), "boot": mems[0]["boot"],
           "stack": max(m["stack"] for m in mems), "largest": max(m["largest"] for m in mems),
           "live": max(m["live"] for m in mems), "tls": mems[0]["tls"]}
    tapped = [r for r in runs if "field" in r]  # a card in the field: its exchange was seen
    if tapped:
        row["field"] = median([r["field"][0] for r in tapped])
        field_bytecode, field_esp32 = esp32_runs([r["field"] for r in tapped], ratio)
        row["field_esp32"] = field_esp32 / 1000
        row["field_esp32_each"] = [esp32_us(r["field"], ratio)[2] / 1000 for r in tapped]
        row["field_wire"] = median([r["field"][3] for r in tapped])
        row["field_bytecode"] = field_bytecode / 1000
        row["commands"] = tapped[0]["commands"]
    return row


def verdict(row):
    """The time target's verdict for a row: text, or None when the flow has no target. The
    runs' estimate (esp32_runs) and the range of each run's own (esp32_us): a limit is met only
    if every run met it (the flash's work swings from run to run with LittleFS's logs)."""
    if row["flow"] not in TARGETS:
        return None
    what, limit, aim = TARGETS[row["flow"]]
    field = what == "card in field"
    value = row["field_esp32"] if field else row["esp32"]
    if value is None:
        return None
    each = row.get("field_esp32_each" if field else "esp32_each") or [value]
    worst = max(each)
    text = "%s %.0f ms on the ESP32 model (runs %.0f-%.0f ms): " % (what, value, min(each), worst)
    if row["flow"] == "unlock":
        return text + ("within 0.5-1 s" if aim <= min(each) and worst <= limit else "under 0.5 s" if worst < aim
                       else "over 1 s by %.0f ms" % (worst - limit) if worst > limit else "partly under 0.5 s")
    if worst > limit:
        return text + "MISSES %d ms in %d of %d runs, by up to %.0f ms" % (
            limit, sum(1 for v in each if v > limit), len(each), worst - limit)
    return text + "meets %d ms in every run%s" % (limit, "" if aim is None else (
        ", and the %d ms aim" % aim if worst <= aim else ", not the %d ms aim" % aim))


# ---- the IDF side, on paper --------------------------------------------------------------------

# ESP32-WROOM-32E (ESP32-D0WD-V3): 520 KB of SRAM on the die, of which ESP-IDF's heap gets what
# the images, caches and static data leave. MicroPython's ESP32 port starts its GC heap at 56 KB
# and grows it once (ports/esp32/mpconfigport.h, MICROPY_GC_INITIAL_HEAP_SIZE and
# MICROPY_GC_SPLIT_HEAP_AUTO; the growth takes the largest free block), the design point being
# ~40 KB left to ESP-IDF after it (shared/DESIGN.md, issue 16).
IDF_LEFT = 40 * 1024
# Wi-Fi station (components/esp_wifi/Kconfig): CONFIG_ESP_WIFI_STATIC_RX_BUFFER_NUM static RX
# buffers (ESP-IDF's default 10, which MicroPython's ports/esp32/boards/sdkconfig.base leaves),
# "each buffer takes approximately 1.6KB of RAM", allocated at esp_wifi_init() and kept; dynamic
# TX and RX buffers taken per frame and freed once sent or delivered. One socket to the bank, a
# few short messages at a time: ~4 dynamic buffers in flight.
WIFI_BUFFER = 1600
WIFI_STATIC_RX_DEFAULT = 10
WIFI_IN_FLIGHT = 4 * WIFI_BUFFER
# The TLS session: this build's mbedTLS configuration is MicroPython's extmod/mbedtls (16 KB in,
# 4 KB out record buffers, as the ESP32 port's CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN), measured
# as the board's would be. With CONFIG_MBEDTLS_DYNAMIC_BUFFER (firmware/sdkconfig.board) ESP-IDF
# frees both record buffers between records and allocates one the size of each record as it
# comes (components/mbedtls/port/dynamic/esp_mbedtls_dynamic_impl.c): idle, each side keeps a
# small cache (the record header, 13 bytes, and the IV and counter, 24) in a buffer with an
# 8-byte head (struct esp_mbedtls_ssl_buf). The model: the measured session less its two record
# buffers, plus for each side a buffer of its largest record (header, payload and the head) at the
# handshake's peak and the idle caches while open.
RECORD_HEADER = 13  # MBEDTLS_SSL_HEADER_LEN
DYNAMIC_HEAD = 8  # struct esp_mbedtls_ssl_buf: state, len
DYNAMIC_IDLE = RECORD_HEADER + 24 + DYNAMIC_HEAD  # CACHE_IV_SIZE 16 + COUNTER_SIZE 8
RECORD_BUFFER_LEAST = 4096  # the record buffers are the session's only blocks this large
SDKCONFIG_BOARD = Path(__file__).resolve().parents[1] / "firmware" / "sdkconfig.board"


def board_sdkconfig(path=SDKCONFIG_BOARD):
    """The firmware's ESP-IDF options (NAME=value lines; '#' comments)."""
    options = {}
    for line in path.read_text().splitlines():
        name, eq, value = line.partition("=")
        if eq and not line.startswith("#"):
            options[name.strip()] = value.strip()
    return options


class _RecordSizes:
    """The largest TLS record each way through a relay between the client and the server (RFC
    5246 6.2: a 5-byte header, content type, version, 2-byte length)."""

    def __init__(self):
        self.largest = {"in": 0, "out": 0}  # in: to the device; out: from it

    def relay(self, listener, server_port):
        client, _ = listener.accept()
        upstream = socket.create_connection(("127.0.0.1", server_port))
        pumps = [threading.Thread(target=self._pump, args=(a, b, side), daemon=True)
                 for a, b, side in ((client, upstream, "out"), (upstream, client, "in"))]
        for t in pumps:
            t.start()
        for t in pumps:
            t.join(30)
        client.close()
        upstream.close()

    def _pump(self, src, dst, side):
        pending = b""
        while True:
            try:
                data = src.recv(4096)
            except OSError:
                data = b""
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            dst.sendall(data)
            pending += data
            while len(pending) >= 5:
                length = int.from_bytes(pending[3:5], "big")
                if len(pending) < 5 + length:
                    break
                self.largest[side] = max(self.largest[side], length)
                pending = pending[5 + length:]


def tls_session_bytes():
    """The uplink's client side (P-256 certificates from one CA, the device's certificate, TLS
    1.2) against a local TLS server, counted by heapstat.tls() in the board-faithful
    interpreter: {"peak": mbedTLS's heap at its peak in the handshake, "held": while the session
    is open, "buffers": the sizes of its record buffers, "records": the largest record each way
    ({"in", "out"}, bytes of payload)}."""
    sizes = _RecordSizes()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _pki(tmp)
        (tmp / "client.py").write_text(TLS_CLIENT)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the bank's (tools/bank)
        ctx.load_cert_chain(tmp / "server.pem", tmp / "server.key")
        ctx.load_verify_locations(tmp / "ca.pem")
        ctx.verify_mode = ssl.CERT_REQUIRED
        with socket.create_server(("127.0.0.1", 0)) as server, socket.create_server(("127.0.0.1", 0)) as front:
            def serve():
                conn, _ = server.accept()
                with conn:
                    try:
                        peer = ctx.wrap_socket(conn, server_side=True)
                        peer.sendall(b"ok")
                        peer.recv(1)  # until the client exits
                    except OSError:
                        pass
            threads = [threading.Thread(target=serve, daemon=True),
                       threading.Thread(target=sizes.relay, args=(front, server.getsockname()[1]), daemon=True)]
            for t in threads:
                t.start()
            heap, heap_env = heap_args()
            out = subprocess.run([micropython_exe(), *heap, "client.py", str(front.getsockname()[1])],
                                 cwd=tmp, env=dict(os.environ, **heap_env), capture_output=True, text=True, timeout=60)
            for t in threads:
                t.join(10)
    found = [line for line in out.stdout.splitlines() if line.startswith("tls ")]
    if out.returncode or not found:
        raise RuntimeError("the TLS client failed (exit %d):\n%s%s" % (out.returncode, out.stdout, out.stderr))
    (held, peak), buffers = ast.literal_eval(found[0][4:])
    return {"peak": peak, "held": held, "buffers": sorted(buffers), "records": dict(sizes.largest)}


# The uplink's client side (lib/uplink/tls.py) without the vault: the certificates from files.
TLS_CLIENT = """
import heapstat, socket, ssl, sys
s = socket.socket()
s.connect(socket.getaddrinfo('127.0.0.1', int(sys.argv[1]))[0][-1])
heapstat.reset()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_cert_chain(open('device.der', 'rb').read(), open('device.key', 'rb').read())
ctx.load_verify_locations(cadata=open('ca.der', 'rb').read())
ctx.verify_mode = ssl.CERT_REQUIRED
s = ctx.wrap_socket(s, server_hostname='localhost')
assert s.read(2) == b'ok'
print('tls', (heapstat.tls(), heapstat.tls_blocks(%d)))
""" % RECORD_BUFFER_LEAST


def _pki(tmp):
    """A CA, the server's certificate (localhost) and the device's, P-256 as tools.bank.pki
    issues them: the server's files (PEM) and the client's (DER, as the vault holds them)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench issuer CA")])

    def issue(name, key, ca=False):
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
             .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if name == "localhost":
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        return b.sign(ca_key, hashes.SHA256())

    pem, der = serialization.Encoding.PEM, serialization.Encoding.DER
    server_key, device_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    files = {"ca.pem": issue("Bench issuer CA", ca_key, ca=True).public_bytes(pem),
             "server.pem": issue("localhost", server_key).public_bytes(pem),
             "server.key": server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()),
             "device.der": issue(demo.SERIAL, device_key).public_bytes(der),
             "device.key": device_key.private_bytes(der, serialization.PrivateFormat.TraditionalOpenSSL,
                                                    serialization.NoEncryption())}
    files["ca.der"] = x509.load_pem_x509_certificate(files["ca.pem"]).public_bytes(der)
    for name, data in files.items():
        (tmp / name).write_bytes(data)


def tls_on_board(session, options):
    """(peak, held) bytes of the TLS session on the board with these ESP-IDF options: as
    measured, or with CONFIG_MBEDTLS_DYNAMIC_BUFFER the record buffers as ESP-IDF's dynamic
    buffers hold them (see above)."""
    if options.get("CONFIG_MBEDTLS_DYNAMIC_BUFFER") != "y":
        return session["peak"], session["held"]
    fixed = sum(session["buffers"])
    in_flight = sum(RECORD_HEADER + n + DYNAMIC_HEAD for n in session["records"].values())
    return session["peak"] - fixed + in_flight, session["held"] - fixed + 2 * DYNAMIC_IDLE


def idf_budget(session, options=None):
    """Lines: the internal RAM ESP-IDF has beside the grown GC heap, against Wi-Fi and TLS, with
    the firmware's ESP-IDF options (firmware/sdkconfig.board unless given)."""
    options = board_sdkconfig() if options is None else options
    rx = int(options.get("CONFIG_ESP_WIFI_STATIC_RX_BUFFER_NUM", WIFI_STATIC_RX_DEFAULT))
    wifi = rx * WIFI_BUFFER + WIFI_IN_FLIGHT
    tls_peak, tls_held = tls_on_board(session, options)
    need_open, need_peak = wifi + tls_held, wifi + tls_peak
    dynamic = options.get("CONFIG_MBEDTLS_DYNAMIC_BUFFER") == "y"

    def verdict(need):
        return "fits, %.1f KB spare" % ((IDF_LEFT - need) / 1024) if need <= IDF_LEFT \
            else "OVER by %.1f KB" % ((need - IDF_LEFT) / 1024)
    return [
        "IDF side (on paper, firmware/sdkconfig.board): ESP-IDF's heap left beside the grown GC heap ~%.1f KB"
        " (the port's design point);" % (IDF_LEFT / 1024),
        "  Wi-Fi station: %d static RX buffers x 1.6 KB = %.1f KB + ~%.1f KB of dynamic buffers in flight"
        " (components/esp_wifi/Kconfig)" % (rx, rx * WIFI_BUFFER / 1024, WIFI_IN_FLIGHT / 1024),
        "  TLS session measured (mbedTLS, heapstat.tls(), MicroPython's extmod/mbedtls configuration): %.1f KB"
        " held while open, %.1f KB at the handshake's peak, of which record buffers %s bytes; largest record"
        " %d bytes in, %d out" % (session["held"] / 1024, session["peak"] / 1024,
                                  " + ".join(str(b) for b in session["buffers"]), session["records"]["in"],
                                  session["records"]["out"]),
        "  on the board%s: %.1f KB held, %.1f KB at the handshake" % (
            " (CONFIG_MBEDTLS_DYNAMIC_BUFFER: record buffers the size of each record, freed between records)"
            if dynamic else "", tls_held / 1024, tls_peak / 1024),
        "  => %.1f KB needed with the session open (%s), %.1f KB at the handshake (%s) of ~%.1f KB"
        % (need_open / 1024, verdict(need_open), need_peak / 1024, verdict(need_peak), IDF_LEFT / 1024),
    ]


# ---- the bench -----------------------------------------------------------------------------------

def _steady_fill(rig):
    """tools/steadystate.fill(device, bank_dir) on the personalised handheld: (what it filled,
    None) or (None, why not)."""
    try:
        from tools import steadystate
    except ImportError:
        return None, "tools/steadystate.py is not there"
    rig.boot(SETUP_GROWTH)
    rig.dev = demo.fresh(rig.vd.repl)
    try:
        filled = steadystate.fill(rig.dev, rig.bank.dir)
    except Exception as e:  # the fill is another tool's: say what went wrong, keep the new unit's table
        return None, "tools/steadystate.fill failed: %s" % (str(e).strip().splitlines() or [type(e).__name__])[-1]
    finally:
        rig.stop_device()
    return filled, None


def in_a_row(rig, n, growth=BOARD_GROWTH):
    """n contactless purchases in a row on one boot with this growth, then every flow once:
    (completed, why the first failure, the heap in use after a collection before each and after
    the last, the largest free block after the last completed, {flow: "ok" or why})."""
    rig.top_up_card("contactless")
    rig.boot(growth)
    why = rig.setup()
    if why:
        return 0, why, [], None, {}
    if rig.pending:
        rig.dev.exec("P.PENDING[0] = REQUESTS")
    console = _Console(rig, "contactless")
    _, err = rig.dev.transport.exec_raw("print('trial ' + repr(P.purchases(%d)))" % n, timeout=60 + 30 * n,
                                        data_consumer=console.feed)
    console.join()
    rig.vd.rig.call("do", name="nfc", action="remove")
    if err or console.result is None:
        return 0, err.decode(errors="replace").strip().splitlines()[-1] if err else "no result", [], None, {}
    done, why, used, block = console.result
    after = {}
    for kind in FLOWS:
        rig.top_up_card(kind)
        (status, got), _ = rig.run(kind)
        after[kind] = "ok" if status == "ok" else got
    return done, why, used, block, after


def measure(kinds=FLOWS, runs=RUNS, step=STEP, steady=True, purchases=PURCHASES, log=print):
    """Everything the table prints: {'new': {kind: entry}, 'steady': ..., 'row': ..., ...}."""
    from tools.bench import esp32_ratio
    ratio = esp32_ratio()
    out = {"ratio": ratio, "tls": tls_session_bytes(), "new": {}, "steady": {}, "steady_note": None,
           "filled": None, "in_a_row": None}
    with tempfile.TemporaryDirectory() as tmp, FlowRig(tmp) as rig:
        for state in ("new", "steady"):
            if state == "steady":
                if not steady:
                    break
                out["filled"], out["steady_note"] = _steady_fill(rig)
                if out["steady_note"]:
                    break
                rig.pending = True
            for kind in kinds:
                log("%s %s: growth bisection" % (state, kind))
                growth, why, mem = rig.smallest_growth(kind, step)
                entry = {"growth": growth, "why": why, "mem": mem}
                if state == "new":
                    # Timed on the board's heap; a flow that does not complete there, or not again
                    # on the same boot, is timed where it does (and the table says so).
                    for timed_on in (BOARD_GROWTH, BEYOND) if why is None else (BEYOND,):
                        log("%s %s: %d timed runs, %s of growth" % (state, kind, runs, _kb(timed_on)))
                        got = rig.measured(kind, runs, timed_on)
                        if got[0] is not None:
                            entry["row"] = figures(kind, got[0], got[1], got[2], ratio)
                            entry["timed_on"] = timed_on
                            break
                        entry.setdefault("repeat_why", "run %d of %d on one boot with %s KB of growth: %s"
                                         % (got[1], runs, _kb(timed_on), got[2]))
                out[state][kind] = entry
        if purchases:
            # With ROW_SLACK more than the first purchase needed (at the least the board's): at
            # the bisection's edge one purchase completes or not by chance, the 200th shows a
            # heap that creeps or fragments.
            first = (out["steady"] or out["new"]).get("contactless", {}).get("growth")
            growth = max(BOARD_GROWTH, (first or BEYOND) + ROW_SLACK)
            log("%d purchases in a row, %s KB of growth" % (purchases, _kb(growth)))
            state = "new unit (no steady fill)" if out["steady_note"] or not steady else "steady state"
            out["in_a_row"] = (purchases, state, growth) + in_a_row(rig, purchases, growth)
    return out


def _kb(v):
    return "-" if v is None else "%.1f" % (v / 1024)


def memory_line(kind, entry):
    growth, why, mem = entry["growth"], entry["why"], entry["mem"]
    if growth is None:
        return "%-30s %6s %6s %7s %7s  does not complete: %s, not even with %s KB of growth" % (
            LABELS[kind], _kb(mem.get("boot")), _kb(mem.get("resident")), _kb(mem.get("live")),
            _kb(mem.get("largest")), why, _kb(BEYOND))
    headroom = BOARD_GROWTH - growth
    verdict_text = ("ok" if headroom >= HEADROOM_BUDGET else "UNDER 16 KB" if headroom >= 0
                    else "does not complete on the board: %s" % why)
    return "%-30s %6s %6s %7s %7s %7s %7s %6s  %s" % (
        LABELS[kind], _kb(mem.get("boot")), _kb(mem.get("resident")), _kb(mem.get("live")), _kb(mem.get("largest")),
        _kb(growth), _kb(headroom), _kb(mem.get("stack")), verdict_text)


def _part_text(name, part, ratio):
    """A native part of a row (mean calls, bytes, host us): its host time, or for the flash's
    operations (whose host time is an image file's I/O) their bytes and their time on the board."""
    calls, nbytes, host_us = part
    if name in FLASH:
        parts = [(0, 0, 0.0)] * len(PARTS)
        parts[PARTS.index(name)] = part
        return "%s %.0f, %.0f bytes, %.1f ms on the ESP32" % (name, calls, nbytes, native_esp32_us(parts, ratio) / 1000)
    return "%s %d calls %.1f ms" % (name, calls, host_us / 1000)


def print_table(out):
    ratio = out["ratio"]
    print("Memory (board-faithful handheld: 56 KB GC heap growing once by <= 56 KB into ESP-IDF's heap; KB)")
    for state in ("new", "steady"):
        if state == "steady":
            if out["steady_note"]:
                print("steady state: not measured (%s)" % out["steady_note"])
                continue
            if not out["steady"]:
                continue
        pending = [e["mem"].get("pending") for e in out[state].values() if e["mem"].get("pending") is not None]
        print("%s:" % ("new unit" if state == "new" else "steady state (tools/steadystate.fill: every store at its cap: %s;"
                       " payment requests waiting %s)" % (", ".join("%s %s" % kv for kv in (out["filled"] or {}).items()),
                                                          "-".join(str(n) for n in sorted({min(pending), max(pending)}))
                                                          if pending else "-")))
        print("%-30s %6s %6s %7s %7s %7s %7s %6s  %s" % ("flow", "boot", "ready", "peak", "largest", "growth",
                                                        "headrm", "stack", "verdict (>= 16 KB headroom)"))
        for kind, entry in out[state].items():
            print(memory_line(kind, entry))
    print("boot: heap in use after boot; ready: with the app set up and the bank session up; peak: the most live"
          " after any collection in the flow; largest: the largest single allocation; growth: the smallest growth"
          " (PT_IDF_HEAP, to the bisection's step) in which boot, setup, sign-on and the flow complete;"
          " headroom = 56.0 - growth (the board's one growth is 57,344 bytes: 111,936 usable);"
          " stack: the deepest C stack in the flow (x86-32 frames; limit 15.0 of the 16 KB task)")
    if out["in_a_row"]:
        n, state, growth, done, why, used, block, after = out["in_a_row"]
        print("%d contactless purchases in a row on one boot with %s KB of growth (%s): %d completed%s; heap in use"
              " after a collection: %s KB before the first, %s after the last completed (most %s); the largest"
              " free block after it %s KB; then each flow once more: %s"
              % (n, _kb(growth), state, done, "" if why is None else ", the next: %s" % why,
                 _kb(used[0] if used else None), _kb(used[done] if len(used) > done else None),
                 _kb(max(used) if used else None), _kb(block),
                 "; ".join("%s %s" % (k, v) for k, v in after.items()) or "-"))
    print()
    print("Time (ESP32 model, ms; see tools/flowbench.py; pystone ratio %.1f)" % ratio)
    print("%-30s %7s %7s %6s %7s %7s %6s %7s %8s %s" % ("flow", "total", "CPU", "sim", "bytecd", "native", "wire",
                                                         "network", "ESP32", "card in field here / ESP32"))
    for kind, entry in out["new"].items():
        row = entry.get("row")
        if row is None:
            print("%-30s not timed: %s" % (LABELS[kind], entry.get("repeat_why")))
            continue
        field = "%.1f / %.1f" % (row["field"], row["field_esp32"]) if row["field"] is not None else "-"
        print("%-30s %7.1f %7.1f %6.1f %7.1f %7.1f %6.1f %7.1f %8.0f %s%s"
              % (LABELS[kind], row["total"], row["cpu"], row["sim"], row["bytecode"], row["native"],
                 row["wire"], row["network"], row["esp32"], field,
                 "" if entry["timed_on"] == BOARD_GROWTH else "  (timed with %s KB of growth)" % _kb(entry["timed_on"])))
    for kind, entry in out["new"].items():
        row = entry.get("row")
        if entry.get("repeat_why"):
            print("%s: did not complete: %s" % (LABELS[kind], entry["repeat_why"]))
        if row is None:
            continue
        parts = ", ".join(_part_text(name, p, ratio) for name, p in zip(PARTS, row["native_parts"]) if p[0])
        v = verdict(row)
        field = ("; card in field here %.1f ms: wire %.1f, firmware bytecode %.1f (x ratio: %.0f on the ESP32), the"
                 " rest the reader's and the card's time and the poll" % (row["field"], row["field_wire"],
                                                                         row["field_bytecode"],
                                                                         row["field_bytecode"] * ratio)
                 if row["field"] is not None else "")
        print("%s: %d runs%s; native: %s%s%s" % (LABELS[kind], row["runs"],
                                                 " (RRN %s)" % ", ".join(row["rrns"]) if row["rrns"] else "",
                                                 parts or "none", field, "; " + v if v else ""))
    print("total: flow start (the poll that finds the card, the slot's activation, the 0600's arrival) to its result"
          " drawn, less the PIN pad and the owner's menus; CPU: the device's, of which sim: the simulator's buses"
          " (left out), native: mbedTLS/cryptolib/hashlib/mpz/LittleFS and the flash's operations (an image file's"
          " I/O here, priced as the board's SPI flash), bytecode: the rest; ESP32 = bytecode x ratio + native"
          " on the ESP32 + waits (wire, chip, card) + network")
    print()
    for line in idf_budget(out["tls"]):
        print(line)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.bench flows", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs of each flow (default %(default)s)")
    parser.add_argument("--flows", default=",".join(FLOWS), help="which, comma-separated (default: all)")
    parser.add_argument("--purchases", type=int, default=PURCHASES,
                        help="contactless purchases in a row in the steady state (default %(default)s; 200 is"
                        " DESIGN.md's figure, ~1 s each here)")
    parser.add_argument("--step", type=int, default=STEP // 1024, help="the growth bisection's step, KB")
    parser.add_argument("--no-steady", action="store_true", help="the new unit only")
    args = parser.parse_args(argv)
    kinds = [k for k in args.flows.split(",") if k]
    unknown = set(kinds) - set(FLOWS)
    if unknown:
        parser.error("unknown flows %s (of %s)" % (", ".join(sorted(unknown)), ", ".join(FLOWS)))
    out = measure(kinds, args.runs, args.step * 1024, not args.no_steady, args.purchases,
                  log=lambda text: print("...", text, flush=True))
    print()
    print_table(out)
