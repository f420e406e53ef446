"""`python -m tools.bench flows`: the cardholder's two money flows end to end on the virtual
handheld against the real bank host, and what each costs.

The handheld is the demo's (tools/demo: the bank seeded with its accounts and test cards, the
unit personalised: provisioned, owner PIN, accounts bound, Wi-Fi and /config/bank.json), with
the handheld's parts attached (display, touch panel, PN532...). Each flow runs the terminal's
own code on the app's own objects (terminal.app.App with its ui.screens.UI, vault session and
terminal.link.Link: Wi-Fi and the uplink), not the home menu:
- contactless purchase: terminal.purchase.Purchase from its "card" step (the amount entered):
  terminal.card.pay_by_card: "Insert or tap card", the test card (emv:visa-classic) put in the
  PN532's field once that screen is drawn (as a person does; lifted after the flow), the
  kernel's contactless path, the online PIN typed on the panel's keypad (by the rig's
  touch model, as terminalfix does), Uplink.purchase (0200 with DE55, 0210 with the ARPC), the
  completion, then terminal.receipt (History, "Approved", tapped away);
- pushed request: the merchant pushes a payment request through the bank (its 0600 reaches
  the link), terminal.pay.PayRequest pays it from the owner's default account from its
  "from_account" step (the owner's confirmation is the human part, left out), then the receipt.

Per flow (measured runs, then the heap bisection):
- total: from the flow's start (the purchase's poll that finds the card; the request's 0600
  read) to "Approved" drawn, less the time on the PIN pad (a person typing);
- firmware CPU: the device process's CPU time (time.clock()) over that, less the simulator's own
  bus calls (board.sim's links to the rig) and the PIN pad; the ESP32 estimate scales it by the
  pystone ratio (tools/bench.py esp32_estimate);
- wire: the I2C bus's wire time at its clock (board.sim I2C.wire_us: START, address, 9 clocks
  a byte, STOP at 400 kHz): the PN532 and the touch panel, which share the bus;
- network: the time the device waited on its socket for the bank: from each request written
  (0200) to its answer read (0210), through the access point's forwarder and the host;
- card in field (contactless): from the start of the poll that finds the card to the card's
  last answer: after it the card can leave (ODA and the bank need no card). Its ESP32
  estimate = wire + the chip's and card's own time + CPU in that window x the pystone ratio;
- heap: in use after every import and setup (the app's objects, the first screen drawn), in
  use with the bank session up, and the smallest -X heapsize in which the whole flow (boot,
  setup, sign-on, the flow) still ends approved (bisection); the working set is that heap less
  the heap in use after imports (on the board the code is frozen, not in the heap).
- the TLS session is not in that heap, here nor on the board, so the working set is printed
  without it and with it. MicroPython's own mbedTLS (extmod/mbedtls/mbedtls_config_common.h)
  allocates through m_tracked_calloc, in the GC heap, only on ports that set
  MICROPY_MBEDTLS_CONFIG_BARE_METAL; the unix port does not (ports/unix/mbedtls/
  mbedtls_config_port.h): its mbedTLS takes libc's calloc (measured: a handshake adds 0.6 KB to
  gc.mem_alloc(), the ssl objects). The ESP32 port links ESP-IDF's mbedtls component
  (ports/esp32/esp32_common.cmake), which allocates from the IDF heap beside the GC heap. The
  session's own size is measured here: mbedTLS's heap held by an open client session like the
  uplink's (P-256 certificates from one CA, the client's certificate, TLS 1.2), by heaptrack
  (installed with the system's packages; without it the column says "-"): the same client
  run with and without the session, what each still holds at exit, subtracted.
- the unix port is 64-bit: a GC block is 32 bytes and every pointer 8 (16 and 4 on the ESP32),
  so object-heavy heap here overstates the board's; byte buffers are the same size.
"""

import ast
import datetime
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
from pathlib import Path

from tools import demo, image
from tools.bank.spawn import HostProcess
from tools.bank.state import State
from tools.screenshots import screen_line
from tools.vdevice import micropython_exe
from tools.vdevice.spawn import VDeviceProcess

AMOUNT = 2500  # minor units: above every test card's CVM and offline limits, so online
REQUEST_AMOUNT = 1875
CARD = "visa-classic"
CARD_PIN = "1234"
HEAP = "512K"  # the terminal's bytecode in RAM here (frozen on the board)
STEP_KB = 2  # the heap bisection's resolution
RUNS = 5  # measured runs of each flow, before the heap bisection
TAP_EVERY_MS = 150  # a finger's pace on the PIN pad
# Imported before the figures: on the board these are frozen code, not the flow's heap.
MODULES = ("terminal.purchase", "terminal.pay", "terminal.card", "terminal.receipt", "terminal.history",
           "terminal.errors", "terminal.accounts", "emv", "emv.kernel", "emv.apdu", "emv.capk", "emv.cvm",
           "emv.oda", "emv.risk", "emv.select", "emv.tags", "emv.tlv", "drivers.pn532", "drivers.iso7816_slot",
           "iso7816", "pinblock")

# The device's side, after a soft reset (boot.py run, not main.py): the app's objects as
# terminal._terminal makes them, unlocked, the flows' instruments, trial().
FLOW_SETUP = """
import asyncio, gc, time
import board, parts, vault
from board import sim as _sim
from terminal.app import App
from terminal.link import Link
from ui.screens import UI
from vault.session import Session
for _m in %(modules)r:
    __import__(_m)
from drivers import pn532 as _pn532
from terminal.accounts import OWNER, bound
from terminal.pay import PayRequest
from terminal.purchase import Purchase
i2c = board.buses.i2c()
display, touch = parts.display(), parts.touch()
nfc = parts.nfc()
async def _init():
    await display.init()
    await touch.init()
    await nfc.begin()
asyncio.run(_init())
ui, store = UI(display, touch), vault.Vault().open()
session = Session(store)
session.unlock_with_pin(bytearray(%(pin)r))
link = Link(store, ui)
app = App(ui, session, None, None, link)
up = link.uplink
ui.progress('Benchmark', 'Flows')  # the fonts and the canvas as after the app's first screen
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
MARK = {}
def snap():
    return (time.ticks_us(), time.clock(), SIM[0], i2c.wire_us, NET[0])
def spent(a, b):
    # elapsed us, firmware CPU us, wire us, network us between two snaps
    return [time.ticks_diff(b[0], a[0]), (b[1] - a[1] - (b[2] - a[2])) * 1e6, b[3] - a[3], b[4] - a[4]]
_write, _receive = up._write, up._receive
async def _timed_write(raw):
    await _write(raw)
    if raw[:4] == b'0200':
        NET[1] = time.ticks_us()
def _timed_receive(raw):
    if raw[:4] == b'0600':
        MARK['start'] = snap()
    elif raw[:4] == b'0210' and NET[1] is not None:
        NET[0] += time.ticks_diff(time.ticks_us(), NET[1])
        NET[1] = None
    _receive(raw)
up._write, up._receive = _timed_write, _timed_receive
# The card in the field: the poll that finds it (each poll until the card answers), its last answer.
_list = nfc.list_passive_target
async def _timed_list(*a, **kw):
    if 'field' not in MARK:
        MARK['start'] = snap()
    return await _list(*a, **kw)
nfc.list_passive_target = _timed_list
_transceive = _pn532.IsoDep.transceive
async def _timed_transceive(self, apdu, *a):
    r = await _transceive(self, apdu, *a)
    MARK['field'] = snap()
    MARK['commands'] = MARK.get('commands', 0) + 1
    return r
_pn532.IsoDep.transceive = _timed_transceive
# The PIN pad is a person's time: left out of the figures.
PAUSE = [0, 0.0, 0, 0, 0]
_pin_pad = ui.pin_pad
async def _timed_pin_pad(*a, **kw):
    s = snap()
    try:
        return await _pin_pad(*a, **kw)
    finally:
        for i, v in enumerate(spent(s, snap())):
            PAUSE[i] += v
ui.pin_pad = _timed_pin_pad
# The end: "Approved" drawn (the host taps it away), or a failure's screen.
_shown = ui.shown
def _timed_shown(title, text=None, buttons=(), **more):
    if title == 'Approved' and 'end' not in MARK:
        MARK['end'] = snap()
        MARK['text'] = text
    elif more.get('error'):
        MARK['failed'] = '%%s: %%s' %% (title, text)
    _shown(title, text, buttons, **more)
ui.shown = _timed_shown
async def contactless():
    op = Purchase()
    op.amount, op.step = %(amount)d, 'card'
    await op.run(app)
async def _pushed():
    while not link.requests:
        await asyncio.sleep_ms(5)
async def request():
    await asyncio.wait_for_ms(_pushed(), 30000)
    op = PayRequest(link.requests[0])
    op.paying, op.step = bound(store, OWNER)[0], 'from_account'
    await op.run(app)
FLOWS = {'contactless': contactless, 'request': request}
def _less_pause(s):
    return [v - p for v, p in zip(s, PAUSE)]
def trial(kind):
    # The flow with the session up (signed on first, outside the figures): ('ok', figures) or
    # ('failed', why), and the heap in use with the session up.
    async def session():
        link.start()
        try:
            if not await up.wait_ready(20000):
                return ('failed', 'no session: %%r' %% (up.error,)), 0
            gc.collect()
            resident = gc.mem_alloc()
            MARK.clear()
            for i in range(len(PAUSE)):
                PAUSE[i] = 0
            print('bench ready')
            try:
                await FLOWS[kind]()
            except Exception as e:
                return ('failed', '%%s: %%s' %% (type(e).__name__, e)), resident
            if 'end' not in MARK:
                return ('failed', MARK.get('failed', 'no Approved screen')), resident
            rrn = MARK['text'].rsplit('Bank reference ', 1)[-1].rstrip('.')
            got = {'rc': '00', 'rrn': rrn, 'flow': _less_pause(spent(MARK['start'], MARK['end']))}
            if kind == 'contactless':
                got['outcome'] = 'approved'
                got['commands'] = MARK['commands']
                got['field'] = spent(MARK['start'], MARK['field'])
            return ('ok', got), resident
        finally:
            link.stop()
            await asyncio.sleep_ms(0)
    try:
        return asyncio.run(session())
    except MemoryError as e:
        return ('failed', 'MemoryError: %%s' %% e), 0
"""


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

    def push(self, order, amount):
        """A merchant's payment request for the device: the merchant API's answer."""
        return self.post("/payment-requests", {"device": demo.SERIAL, "merchant": "Corner Bakery", "amount": amount,
                                               "currency": demo.CURRENCY, "order": order})


class FlowRig:
    """The demo's bank host, and the demo's handheld (personalised for it, its parts attached,
    the test card's CA keys, the Wi-Fi access point routing to the host)."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.bank = self.vd = self.dev = None

    def __enter__(self):
        from tools import bench
        try:
            self.bank = Bank(self.tmp / "bank")
            image.build(self.tmp / "flash.img")
            self.boot(HEAP)
            demo.personalize(self.vd.repl, self.bank.dir)
            self.dev = demo.fresh(self.vd.repl)
            self.dev.makedirs(bench.EMV_CAPK.rsplit("/", 1)[0])
            self.dev.write_file(bench.EMV_CAPK, bench.capk_file())
            self.keypad = {k[4]: k[:4] for k in self.dev.eval("__import__('ui.screens').screens.keypad_layout()")}
            self.setup()
            self.imports = self.dev.eval("(gc.collect(), gc.mem_alloc())[1]")
        except BaseException:
            self.__exit__()
            raise
        return self

    def boot(self, heap):
        """The handheld (again, on the same flash) with this MicroPython heap, its parts
        attached."""
        self.stop_device()
        self.vd = VDeviceProcess(self.tmp / "flash.img", self.tmp / "state", heap=heap, bare=False)
        self.vd.rig.call("do", name="wifi", action="target", host=self.bank.address[0], port=self.bank.address[1])

    def setup(self):
        """The app's objects and the flows on the device (a fresh interpreter: main.py not run)."""
        if self.dev is None:
            self.dev = demo.fresh(self.vd.repl)
        self.dev.exec(FLOW_SETUP % {"modules": MODULES, "pin": demo.DEMO_PIN.encode(), "amount": AMOUNT},
                      timeout=90)

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
        session up). The host acts as the person: it pushes the request once the device is
        signed on, types the card's PIN on the PIN pad, taps "Approved" (or a failure) away."""
        console = _Console(self, kind)
        # Its output goes to the console as it comes (mpremote keeps none of it then).
        _, err = self.dev.transport.exec_raw("print('trial ' + repr(trial(%r)))" % kind, timeout=120,
                                             data_consumer=console.feed)
        console.join()
        if kind == "contactless":
            self.vd.rig.call("do", name="nfc", action="remove")
        if err:
            raise RuntimeError(err.decode(errors="replace"))
        return console.result

    def tap_at(self, x, y, after_ms=0):
        self.vd.rig.call("do", name="touch", action="tap", x=int(x), y=int(y), after_ms=after_ms)

    def measured(self, kind, runs):
        """The flow `runs` times, each checked at the bank: the figures of each run, and the
        ledger's change on the account the flow debits."""
        account = demo.card_account(CARD) if kind == "contactless" else demo.ACCOUNTS[0][0]
        before = self.bank.balance(account)
        done = []
        for _ in range(runs):
            (status, got), resident = self.run(kind)
            if status != "ok" or got["rc"] != "00":
                raise RuntimeError("the %s flow did not end approved: %r" % (kind, got))
            got["resident"] = resident
            done.append(got)
        return done, before - self.bank.balance(account)

    def completes_in(self, kind, heap_kb):
        """Whether the whole flow (boot, setup, sign-on, the flow) ends approved on a handheld
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


class _Console:
    """The person at the handheld during one flow, reading its console: the push once the
    session is up, the card on "Insert or tap card", the PIN on "Card PIN", a tap on the
    result's button."""

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
        if line == "bench ready" and self.kind == "request":
            self._later(self._push)
        screen = screen_line(line)
        if screen is None:
            return
        if screen["title"] == "Insert or tap card":
            self.rig.vd.rig.call("do", name="nfc", action="place", kind="iso-dep", applet="emv:" + CARD)
        elif screen.get("pin_pad") and screen["title"] == "Card PIN":
            for i, key in enumerate(list(CARD_PIN) + ["OK"]):
                x, y, w, h = self.rig.keypad[key]
                self.rig.tap_at(x + w // 2, y + h // 2, after_ms=TAP_EVERY_MS * i)
        elif screen["title"] == "Approved" or screen.get("error"):
            for x, y, w, h in screen.get("buttons", {}).values():
                self.rig.tap_at(x + w // 2, y + h // 2)

    def _push(self):
        # A push the bank refuses (409: no live session) leaves the device's flow waiting until
        # its timeout, and the trial says so.
        try:
            self.rig.bank.push("ORD-BENCH-%d" % time.monotonic_ns(), REQUEST_AMOUNT)
        except urllib.error.HTTPError:
            pass

    def _later(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self):
        for t in self.threads:
            t.join(30)


# The uplink's client side (lib/uplink/tls.py) without the vault: the certificates from files,
# the session left open at exit (argv: port, 1 for TLS, 0 for the bare socket).
TLS_CLIENT = """
import socket, ssl, sys
s = socket.socket()
s.connect(socket.getaddrinfo('127.0.0.1', int(sys.argv[1]))[0][-1])
if sys.argv[2] == '1':
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(open('device.der', 'rb').read(), open('device.key', 'rb').read())
    ctx.load_verify_locations(cadata=open('ca.der', 'rb').read())
    ctx.verify_mode = ssl.CERT_REQUIRED
    s = ctx.wrap_socket(s, server_hostname='localhost')
print(s.read(2))
"""


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


def _held_at_exit(tmp, port, tls):
    """Bytes the client's process still holds at exit (heaptrack's "total memory leaked")."""
    # A small GC heap keeps the process's total under 1 MB, which heaptrack prints to 10 bytes.
    subprocess.run(["heaptrack", "-o", str(tmp / ("run%d" % tls)), micropython_exe(), "-X", "heapsize=64K",
                    "client.py", str(port), str(tls)], cwd=tmp, capture_output=True, check=True, timeout=60)
    report = subprocess.run(["heaptrack_print", "-f", str(next(tmp.glob("run%d.*" % tls)))], capture_output=True,
                            text=True, check=True).stdout
    value, unit = re.search(r"total memory leaked: ([0-9.]+)([KMG]?)", report).groups()
    return float(value) * {"": 1, "K": 1000, "M": 1000 ** 2, "G": 1000 ** 3}[unit]  # heaptrack's units are SI


def tls_session_bytes():
    """mbedTLS's heap held by one open client session like the uplink's (see the module's
    docstring), in bytes; None when heaptrack is not installed."""
    if not (shutil.which("heaptrack") and shutil.which("heaptrack_print")):
        return None
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _pki(tmp)
        (tmp / "client.py").write_text(TLS_CLIENT)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the bank's (tools/bank)
        ctx.load_cert_chain(tmp / "server.pem", tmp / "server.key")
        ctx.load_verify_locations(tmp / "ca.pem")
        ctx.verify_mode = ssl.CERT_REQUIRED
        with socket.create_server(("127.0.0.1", 0)) as server:
            def serve():
                for _ in range(2):
                    conn, _ = server.accept()
                    with conn:
                        try:
                            peer = ctx.wrap_socket(conn, server_side=True) if serving["tls"] else conn
                            peer.sendall(b"ok")
                            peer.recv(1)  # until the client exits
                        except OSError:
                            pass
            serving = {"tls": 0}
            t = threading.Thread(target=serve, daemon=True)
            t.start()
            bare = _held_at_exit(tmp, server.getsockname()[1], 0)
            serving["tls"] = 1
            held = _held_at_exit(tmp, server.getsockname()[1], 1)
            t.join(10)
    return held - bare


def figures(kind, runs, debited, smallest_kb, imports, ratio, tls=None):
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
           "tls": tls / 1024 if tls is not None else None,
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
    tls = tls_session_bytes()
    with tempfile.TemporaryDirectory() as tmp, FlowRig(tmp) as rig:
        measured = {kind: rig.measured(kind, runs) for kind in FLOWS}
        # Then the bisection, each trial on a handheld of its own (the measured runs' is gone).
        floor_kb, top_kb = rig.imports // 1024, int(HEAP.rstrip("K"))
        for kind in FLOWS:
            smallest = rig.smallest_heap(kind, floor_kb, top_kb) if bisect else None
            rows.append(figures(kind, *measured[kind], smallest, rig.imports, ratio, tls))
    return rows


FLOWS = ("contactless", "request")
LABELS = {"contactless": "contactless purchase 25.00", "request": "pushed request 18.75"}


def print_table(rows):
    from tools.bench import esp32_ratio

    def kb(v):
        return "-" if v is None else "%.1f" % v
    print("flow                        total   CPU here  CPU ESP32   wire  network  card in field     working set KB")
    print("                               ms         ms         ms     ms       ms  here / ESP32 ms   GC heap  + TLS")
    for r in rows:
        field = "%6.1f / %6.1f" % (r["field"], r["field_esp32"]) if r["field"] is not None else "%15s" % "-"
        with_tls = r["working_set"] + r["tls"] if None not in (r["working_set"], r["tls"]) else None
        print("%-26s %7.1f %10.1f %10.0f %6.1f %8.1f  %s %9s %6s"
              % (LABELS[r["flow"]], r["total"], r["cpu"], r["cpu_esp32"], r["wire"], r["network"], field,
                 kb(r["working_set"]), kb(with_tls)))
    print()
    for r in rows:
        print("%s: %d runs approved (RRN %s), the bank's ledger debited %d in all; heap in use after imports"
              " %.1f KB, with the bank session up %.1f KB; smallest -X heapsize for the whole flow %s KB"
              % (LABELS[r["flow"]], r["runs"], ", ".join(r["rrns"]), r["debited"], r["imports"], r["resident"],
                 r["smallest_heap"]))
    print("TLS session: %s KB of mbedTLS heap held while the bank session is open (heaptrack), outside the"
          " MicroPython GC heap here (the unix port's mbedTLS allocates with libc's calloc) and on the board"
          " (ESP-IDF's mbedTLS, the IDF heap): \"GC heap\" is the bisection's working set without it, \"+ TLS\""
          " the board's RAM the flow needs with it" % kb(rows[0]["tls"] if rows else None))
    print("The unix port is 64-bit: 32-byte GC blocks and 8-byte pointers (16 and 4 on the ESP32), so the GC"
          " figures overstate the board's for object-heavy data")
    print("ESP32 estimate: CPU here x %.1f (pystone ratio); wire: I2C at 400 kHz (board.sim); network: the device"
          " waiting on its socket (0200 written -> 0210 read) via the rig's access point to the bank host on"
          " this machine" % esp32_ratio())


def main():
    print_table(measure())
