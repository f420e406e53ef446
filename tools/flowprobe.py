"""The flows bench's side on the handheld (tools/flowbench.py): the app's objects as
terminal._terminal makes them, unlocked, the flows' instruments, trial(kind) and purchases(n).

    import flowprobe as P                       # after a fresh boot (boot.py run, not main.py)
    P.setup(pin, amount, transfer, card_flows)
    P.trial(kind)     # ((status, figures or why), memory figures)
    P.purchases(n)    # n contactless purchases in a row

Frozen into the virtual handheld only (tools/vdevice/port/manifest.py, beside the launcher),
never into the firmware. Sent over the raw REPL instead, this script was compiled on the device:
its ~6 KB of bytecode and names sat in the GC heap through every flow, which the board's
firmware never spends, and the growth bisection measured the harness with the firmware. Frozen,
only what it holds at run time is in the heap (the app's objects, which the app holds too, and
its few wrappers and counters). Each flow's modules are imported when the flow starts and let go
when it ends, as the home menu runs an operation (terminal.app._perform): imported here for good,
the three flows' modules were resident in every flow, which they never are in the app.
"""

import gc

import heapstat
from heapstat import cpu_us

gc.collect()
BOOT = gc.mem_alloc()  # the heap after boot (the launcher, boot.py)
import asyncio
import time

import board
import parts
import vault
from board import sim as _sim
from terminal.app import App, _modules, _unload
from terminal.link import Link
from ui.screens import UI
from vault.session import Session

# The simulator's own CPU, us (outermost call only): its links to the rig, the UARTs' reads;
# whether a timed call is under way; the calls timed; what the timing itself costs a call, us
# (_calibrate). CPU times are heapstat.cpu_us()'s: time.clock() counts whole milliseconds.
SIM = [0, 0, 0, 0.0]
WIRE = [0, 0]  # SPI, UART wire time us (I2C keeps its own: i2c.wire_us)
# The network: from a request written (MTI xx00, xx20) to a response read (xx10, xx30), us.
NET = [0, None]
MARK = {}
# A person's time (the PIN pad, the lock screen's menu): left out of the figures, the native
# parts' too (the pad's own flash and crypto work): spent()'s five figures, then its native
# parts (PAUSE_NATIVE).
PAUSE = [0] * 5
PAUSE_NATIVE = []
# The end: the flow's result drawn (the host taps it away), or a failure's screen.
END = {'balance': 'Balance', 'request_void': 'Voided', 'topup': 'Topped up', 'offline': 'Approved offline'}
STEP = ['setup']
PENDING = [0, 0]  # requests to have waiting before the flow (the steady state's), and how many did
ARGS = {}  # setup()'s: the amounts, the card flows


def setup(pin, amount, transfer, card_flows):
    """The app's objects and the instruments, once after boot."""
    global _make_slot, i2c, ui, store, session, link, app, up, _write, _receive, _shown
    ARGS.update(amount=amount, transfer=transfer, card_flows=card_flows)
    i2c = board.buses.i2c()
    display, touch = parts.display(), parts.touch()
    nfc = parts.nfc()
    _make_slot = parts.slot

    async def init():
        await display.init()
        await touch.init()
        await nfc.begin()
    asyncio.run(init())
    ui, store = UI(display, touch), vault.Vault().open()
    session = Session(store)
    session.unlock_with_pin(bytearray(pin))
    link = Link(store, ui)
    app = App(ui, session, None, None, link)
    up = link.uplink
    ui.progress('Benchmark', 'Flows')  # the fonts and the canvas as after the app's first screen
    _sim._Link.send = _sim_timed(_sim._Link.send)
    _sim._Link.request = _sim_timed(_sim._Link.request)
    # The buses are C on the board (machine.I2C, SPI, UART, Pin, PWM): each of the simulator's
    # methods is timed whole, not only its round trip to the rig, or the Python around that
    # (I2C's bookkeeping, Pin.value's request, UART.read's copies, the ioctl asyncio's poller
    # calls) counts as firmware bytecode x the pystone ratio.
    for cls, names in ((_sim.I2C, ('writeto', 'writevto', 'readfrom_into', 'readfrom', 'writeto_mem', 'readfrom_mem',
                                   'readfrom_mem_into')),
                       (_sim.SPI, ('write', 'read', 'readinto', 'write_readinto')),
                       (_sim.UART, ('write', 'read', 'any', 'ioctl', 'flush', 'txdone')),
                       (_sim.Pin, ('value', '__call__', 'on', 'off', 'init')),
                       (_sim.PWM, ('freq', 'duty_u16', 'deinit'))):
        for name in names:
            if name in cls.__dict__:
                setattr(cls, name, _sim_timed(cls.__dict__[name]))
    # asyncio's wait for I/O (a UART, an IRQ's ThreadSafeFlag) is host overhead too: the unix
    # port polls what is not a file descriptor every millisecond while it waits (extmod/modselect.c,
    # MICROPY_PY_SELECT_IOCTL_CALL_PERIOD_MS; ~16 us of CPU a poll here), where the ESP32 port
    # blocks in ulTaskNotifyTake (ports/esp32/mpconfigport.h, MICROPY_EVENT_POLL_HOOK) until an
    # interrupt wakes it (machine_pin.c, machine_uart.c: mp_hal_wake_main_task_from_isr) or the
    # 10 ms tick. Counted as firmware, a card's 20 ms answer cost ~0.3 ms of bytecode, 50 ms on the
    # ESP32 model, for a wait the board spends asleep.
    from asyncio import core
    core.IOQueue.wait_io_event = _sim_timed(core.IOQueue.wait_io_event)
    _calibrate()
    spi_transfer = _sim.SPI._transfer

    def spi_wired(self, data, read=True):
        WIRE[0] += len(data) * 8000000 // self.baudrate
        return spi_transfer(self, data, read)
    _sim.SPI._transfer = spi_wired
    uart_readinto = _sim_timed(_sim.UART.readinto)

    def uart_wired(self, buf, nbytes=None):
        got = uart_readinto(self, buf, nbytes)
        if got:  # the slot's line is half-duplex: every character sent comes back, so RX is all of it
            WIRE[1] += got * self._char_us()
        return got
    _sim.UART.readinto = uart_wired
    _write, _receive = up._write, up._receive
    up._write, up._receive = _timed_write, _timed_receive
    ui.pin_pad = _paused(ui.pin_pad)
    parts.slot = _slot
    ui.menu = _paused(ui.menu)
    _shown = ui.shown
    ui.shown = _timed_shown


def _sim_timed(fn):
    def call(*args, **kw):
        if SIM[1]:
            return fn(*args, **kw)
        SIM[1] = 1
        SIM[2] += 1
        c = cpu_us()
        try:
            return fn(*args, **kw)
        finally:
            SIM[0] += time.ticks_diff(cpu_us(), c)
            SIM[1] = 0
    return call


def _calibrate(n=10000):
    # The timing's own bytecode around a timed call (the call through *args, the flags, the
    # clock's calls) is the harness's, not the firmware's: ~3 us a call here, and a card's
    # command makes ~12 timed calls. Measured on a timed no-op against the bare one.
    def nop():
        pass
    timed = _sim_timed(nop)
    before = SIM[0]
    c = cpu_us()
    for _ in range(n):
        timed()
    wrapped = time.ticks_diff(cpu_us(), c) - (SIM[0] - before)
    c = cpu_us()
    for _ in range(n):
        nop()
    bare = time.ticks_diff(cpu_us(), c)
    SIM[0], SIM[2] = before, SIM[2] - n
    SIM[3] = max(0.0, (wrapped - bare) / n)


def snap():
    return (time.ticks_us(), cpu_us(), SIM[0] + SIM[2] * SIM[3], i2c.wire_us + WIRE[0] + WIRE[1], NET[0],
            heapstat.native())


def spent(a, b):
    # elapsed us, firmware CPU us (all of it), simulator CPU us, wire us, network us, native
    # [(calls, bytes, host us)] between two snaps. The simulator's CPU less its calls' timing is
    # a float: rounded to whole us and never below 0 (a window with no call is 0).
    return [time.ticks_diff(b[0], a[0]), max(0, time.ticks_diff(b[1], a[1])), max(0, round(b[2] - a[2])),
            b[3] - a[3], b[4] - a[4],
            [(p[0] - q[0], p[1] - q[1], (p[2] - q[2]) / 1000) for p, q in zip(b[5], a[5])]]


async def _timed_write(raw):
    await _write(raw)
    if raw[2:3] in (b'0', b'2'):
        NET[1] = time.ticks_us()


def _timed_receive(raw):
    if raw[:4] == b'0600':
        MARK['start'] = snap()
    elif raw[2:3] in (b'1', b'3') and NET[1] is not None:
        NET[0] += time.ticks_diff(time.ticks_us(), NET[1])
        NET[1] = None
    _receive(raw)


def _instrument():
    # The card in the field: the poll that finds it (each poll until the card answers), its last
    # answer; the chip card from its activation (_slot). A payment lets go of the drivers it is
    # done with (the PN532's once a card is in the slot) and the flow of its modules, so what is
    # wrapped is marked on itself (its wrapper in its own dict), never held here: held, the
    # PN532's driver stayed in the heap through a contact purchase, where the app frees it.
    from drivers import pn532
    reader = parts.nfc()
    if 'list_passive_target' not in reader.__dict__:
        _list = reader.list_passive_target

        async def _timed_list(*a, **kw):
            if 'field' not in MARK:
                MARK['start'] = snap()
            return await _list(*a, **kw)
        reader.list_passive_target = _timed_list
    if 'timed' not in pn532.IsoDep.__dict__:
        _transceive = pn532.IsoDep.transceive

        async def _timed_transceive(self, apdu, *a):
            r = await _transceive(self, apdu, *a)
            MARK['field'] = snap()
            MARK['commands'] = MARK.get('commands', 0) + 1
            return r
        pn532.IsoDep.transceive = _timed_transceive
        pn532.IsoDep.timed = True


def _slot():
    # parts.slot(), its activation timed: the slot's driver is made once a card is in it
    # (terminal.card), so it is instrumented then; imported by _instrument, it was in the heap
    # through every card flow's wait, where the app has only the slot's switch.
    slot = _make_slot()
    cls = type(slot)
    if 'timed' not in cls.__dict__:
        _activate = cls.activate

        async def _timed_activate(self, *a, **kw):
            if 'card' not in MARK:
                MARK['card'] = MARK['start'] = snap()
            return await _activate(self, *a, **kw)
        cls.activate = _timed_activate
        cls.timed = True
    return slot


def _paused(fn):
    async def call(*a, **kw):
        s = snap()
        try:
            return await fn(*a, **kw)
        finally:
            got = spent(s, snap())
            for i, v in enumerate(got[:5]):
                PAUSE[i] += v
            PAUSE_NATIVE[:] = [tuple(a + b for a, b in zip(p, q)) for p, q in zip(PAUSE_NATIVE, got[5])] \
                if PAUSE_NATIVE else got[5]
    return call


# The owner's choice of account is theirs: the default one.
async def _default(app, title, accounts):
    return accounts[0]


def _timed_shown(title, text=None, buttons=(), **more):
    if title == END.get(MARK.get('kind'), 'Approved') and 'end' not in MARK:
        MARK['end'] = snap()
        MARK['text'] = text
    elif more.get('error') and 'failed' not in MARK:
        MARK['failed'] = '%s: %s' % (title, text)
    _shown(title, text, buttons, **more)


async def _purchase():
    from terminal.purchase import Purchase
    op = Purchase()
    op.amount, op.step = ARGS['amount'], 'card'
    await op.run(app)


async def _pushed():
    while len(link.requests) <= PENDING[1]:
        await asyncio.sleep_ms(5)


async def _request(step):
    from terminal.accounts import OWNER, bound
    from terminal.pay import PayRequest
    await asyncio.wait_for_ms(_pushed(), 30000)
    op = PayRequest(link.requests[-1])  # the bench's: any others wait (the steady state's)
    op.paying, op.step = bound(store, OWNER)[0], step
    await op.run(app)


async def _balance():
    from terminal import accounts
    accounts._choose = _default
    await accounts.Balance().start(app)  # one look: it would offer the accounts again


async def _transfer():
    from terminal.accounts import OWNER, Transfer, bound
    owners = bound(store, OWNER)
    op = Transfer()
    op.source, op.target, op.value, op.step = owners[0], owners[1], ARGS['transfer'], 'send'
    await op.run(app)


def _measure_from_here():
    # The part measured starts here, after one that is not (a flow's first payment): what that
    # one left in MARK dropped (its card's snapshot, ~0.6 KB of tuples and floats through the
    # part measured; a 'card' the next activation would not take as the start), the heap
    # collected, the figures started.
    kind = MARK['kind']
    MARK.clear()
    MARK['kind'] = kind
    gc.collect()
    heapstat.reset()
    MARK['start'] = snap()


async def _give_back():
    # A pushed request paid (the request flow, not measured: the payment to give back), its
    # modules let go as the app does; then the owner gives it back from its History entry:
    # terminal.refund.GiveBack from "send" (as the transfer, after the owner's choices and PIN),
    # voided by the bank (the same business day). The figures are the give-back's alone.
    before = _modules()
    await _request('from_account')
    _unload(before)
    before = None  # (the bench's own: not held through the flow measured)
    from terminal.history import History
    from terminal.refund import GiveBack
    op = GiveBack(History(store).page(0, 1)[0])
    op.step = 'send'
    _measure_from_here()
    await op.run(app)


def _offline_parameters(path):
    # The unit's own parameters kept aside on flash (their name, None if it had none), not as
    # text in the heap through the flow measured, and the floor limit the flow needs written.
    # A plain function, not in _offline: a coroutine's frame is on the heap and keeps what its
    # value stack last held (the files of the `with`s below, 384 bytes each, through the flow).
    import json
    import os
    kept = path + '.bench'
    try:
        with open(path) as f:
            t = json.load(f)
        os.rename(path, kept)
    except OSError:
        t, kept = {}, None
    t['floor_limit'] = 5000
    with open(path, 'w') as f:
        json.dump(t, f)
    return kept


async def _offline():
    # First the same purchase online (not measured, as _give_back's payment): the card's
    # offline counters back to 0, as its going online now and then does; else after its
    # consecutive offline limit (5) it declines, and the bench runs the flow some twenty times.
    # Then the bank away: the uplink taken as not signed on (its session kept: the heap as the
    # app's with the bank there, the heavier case), the issuer's parameters allowing offline
    # below 50.00 (for this flow only: the others go online; the unit's own put back after).
    # The card's TC, the advice stored, "Approved offline"; then the bank back: the advice
    # forwarded on the session.
    before = _modules()
    await _purchase()
    _unload(before)
    before = None  # (the bench's own: not held through the flow measured)
    import os
    from update.config import TERMINAL
    kept = _offline_parameters(TERMINAL)
    _measure_from_here()
    try:
        up.connected = False
        await _purchase()
        up.connected = True
        # Imported now, as the link does after a sign-on: held by the bench through the
        # purchase, the module (~1.3 KB) was live beside the card flow's, which the app lets go of.
        from terminal import offline
        await offline.forward(up)
        if offline.waiting():
            MARK['failed'] = 'the advice was not forwarded'
            MARK.pop('end', None)
    finally:
        up.connected = True
        os.remove(TERMINAL)
        if kept is not None:
            os.rename(kept, TERMINAL)


async def _top_up():
    # terminal.topup.TopUp from "send" (as the transfer, after the owner's choices and PIN): its
    # record, the 0200/920000, the transit card credited, History's entry, "Topped up". €1.00 a
    # run: the card (at most €150.00) takes every run of a bench.
    from terminal.accounts import OWNER, bound
    from terminal.topup import TopUp, _applet
    op = TopUp()
    applet, key = _applet(store)
    op.card, op.currency, op.source, op.value, op.step = applet.card_id, '978', bound(store, OWNER)[0], 100, 'send'
    del applet, key
    await op.run(app)


async def _unlock():
    session.lock('standby')
    await app.unlock()
    if store.unlocked:
        MARK['end'] = snap()


async def _at_once(offer, name, paths):
    # The bank's package of version 1 (tools/flowbench.py publishes it) offered as a sign-on's
    # answer offers it, downloaded and installed at once. First (not measured): whatever the
    # sign-on's own offer started finished, and what the unit installed of its kind dropped
    # (paths, of update.<name>), so that every run installs. Its modules are imported after that
    # offer's end, which lets go of the update.* modules imported meanwhile: imported before,
    # this frame kept those copies and the flow made second ones (the parameters' peak held both).
    import os
    while up.update is not None and not up.update.is_set():
        await asyncio.sleep_ms(20)
    from update import package
    module = __import__('update.' + name, None, None, ('VERSION',))
    for path in paths(module):
        try:
            os.remove(path)
        except OSError:
            pass
    gc.collect()
    heapstat.reset()
    MARK['start'] = snap()
    await package.follow(up, offer)
    if up.update_error is not None:
        MARK['failed'] = repr(up.update_error)
    elif module.installed()[0] == 1:
        MARK['end'] = snap()


async def _parameters():
    await _at_once('CFG=1', 'config', lambda config: (config.VERSION, config.TERMINAL))


async def _files():
    await _at_once('FILES=1', 'files', lambda files: (files.VERSION,))


async def _update():
    # The owner chose "Update available" and taps "Install now" (the bench's person does): the
    # signed header read, the package downloaded in records, verified and written to the other
    # OTA slot, the boot switched. The restart after it is not part of the flow.
    from terminal.update import Update
    from update import ota
    ota.confirm()  # the home menu's, before any update
    op = Update()
    while op.step not in (None, 'installed'):
        op.step = await getattr(op, op.step)(app)
    if op.step == 'installed':
        MARK['end'] = snap()


FLOWS = {'contactless': _purchase, 'contact': _purchase, 'request': lambda: _request('from_account'),
         'request_card': lambda: _request('card'), 'balance': _balance, 'transfer': _transfer, 'unlock': _unlock,
         'request_void': _give_back, 'topup': _top_up, 'offline': _offline, 'parameters': _parameters,
         'files': _files, 'update': _update}


def _less_pause(s):
    native = s[5] if not PAUSE_NATIVE else [tuple(a - b for a, b in zip(p, q)) for p, q in zip(s[5], PAUSE_NATIVE)]
    return [v - p for v, p in zip(s[:5], PAUSE)] + [native]


def trial(kind):
    # The flow with the session up (signed on first, outside the figures): ('ok', figures) or
    # ('failed', why), and the memory figures of the run either way.
    mem = {'boot': BOOT}

    async def session():
        STEP[0] = 'sign-on'
        link.start()
        try:
            if not await up.wait_ready(20000):
                return ('failed', 'no session: %r' % (up.error,))
            # Reversals left from before (a full journal in the steady state) go to the bank
            # after sign-on; a payment waits for them as the owner would.
            for _ in range(500):
                if not up.journal.keys():
                    break
                await asyncio.sleep_ms(20)
            while len(link.requests) > PENDING[0]:  # left from a flow before on this boot: answered
                link.done(link.requests[0])
            if len(link.requests) < PENDING[0]:
                print('bench pending %d' % (PENDING[0] - len(link.requests)))  # the host pushes them
                for _ in range(1000):
                    if len(link.requests) >= PENDING[0]:
                        break
                    await asyncio.sleep_ms(20)
            PENDING[1] = mem['pending'] = len(link.requests)
            before = _modules()
            gc.collect()
            mem['resident'] = gc.mem_alloc()
            MARK.clear()
            MARK['kind'] = kind
            for i in range(len(PAUSE)):
                PAUSE[i] = 0
            PAUSE_NATIVE[:] = []
            STEP[0] = kind
            if kind in ARGS['card_flows']:
                _instrument()
            heapstat.reset()
            MARK['start'] = snap()
            print('bench ready')
            try:
                await FLOWS[kind]()
            finally:
                _unload(before)  # as the app lets go of an operation's modules when it ends
            if 'end' not in MARK:
                return ('failed', MARK.get('failed', 'no %s screen' % END.get(kind, 'Approved')))
            got = {'flow': _less_pause(spent(MARK['start'], MARK['end']))}
            text = MARK.get('text') or ''
            if 'Bank reference ' in text:
                got['rrn'] = text.rsplit('Bank reference ', 1)[-1].rstrip('.')
            if 'field' in MARK:
                got['commands'] = MARK['commands']
                got['field'] = spent(MARK['start'], MARK['field'])
            return ('ok', got)
        finally:
            gc.collect()  # what the flow leaves live counts too (a flow may never have collected)
            mem['largest'], mem['stack'], mem['live'] = heapstat.largest(), heapstat.stack(), heapstat.live()[0]
            mem['tls'] = heapstat.tls()
            link.stop()
            await asyncio.sleep_ms(0)
    try:
        result = asyncio.run(session())
    except MemoryError as e:
        result = ('failed', 'MemoryError at %s: %s' % (STEP[0], e))
    except Exception as e:
        result = ('failed', '%s at %s: %s' % (type(e).__name__, STEP[0], e))
    STEP[0] = 'setup'
    return result, mem


def purchases(n):
    # n contactless purchases on this boot: (how many completed, why the first failure, the heap
    # in use after a collection before the first and after each, the largest free block then)
    used, block = [], None
    for i in range(n):
        gc.collect()
        used.append(gc.mem_alloc())
        try:
            (status, why), mem = trial('contactless')
        except MemoryError as e:  # between trial()'s own guards: setting one up
            status, why = 'failed', 'MemoryError starting it: %s' % e
        if status != 'ok':
            return i, why, used, block
        block = heapstat.live()[1]  # trial() collected last: the largest free block after it
        print('purchase', i + 1)
    gc.collect()
    used.append(gc.mem_alloc())
    return n, None, used, block
