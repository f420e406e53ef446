"""The device's ISO 8583 input under attack (issue 17): malformed messages from the bank's side of
the connection. The device's codec (lib/iso8583) and the uplink's reading of what arrives
(lib/uplink: read_frame, then _receive: decode, MAC, hand-over to the waiting request or to the
pushed requests) must answer anything with a typed error (Iso8583Error, or the link's
UplinkError), never let another exception out of the uplink's reading task or of the tasks it
starts, and keep the link: a malformed or wrongly MAC'd message is dropped (counted, its reason
kept: field numbers and lengths, never values), a frame that cannot be read closes the
connection with a clear error, for run() to connect again; the reversal journal is not touched.

A bounded, seeded fuzz on the device itself (its frozen firmware, its heap), counts printed:
well-formed messages of every kind the bank sends (0210, 0410, 0810, a pushed 0600), MAC'd
under a key of the uplink's, then mutated two ways: bytes (flipped, cut, inserted, the bitmap
changed) without a new MAC, and fields (dropped, emptied, at their longest, odd digits) with a
good MAC, so that the message reaches what comes after the MAC check.
"""

import asyncio
import ssl
import threading

import pytest

import uplinkfix as fx
from tests.host.test_uplink import SETUP, bank, handheld  # noqa: F401 (fixtures)
from tools.bank import pki

FUZZ_SEED, FUZZ_COUNT = 17, 2000

FUZZ = """
import asyncio, gc, random, sys, time
if '/tests' not in sys.path: sys.path.append('/tests')
import vaultfix
import aescmac, iso8583
from uplink import Uplink, UplinkError
from uplink.journal import Journal

def fuzz(seed, count):
    random.seed(seed)
    journal = Journal('/fuzz-journal')
    # A provisioned vault (tests/device/vaultfix): a pushed request's 0610 takes a DUKPT key.
    up = Uplink(vaultfix.provisioned('/fuzz-store'), {'host': 'bank.invalid', 'port': 1, 'serial': 'PT000001'},
                journal=journal, answer_ms=50)
    ksn = bytes(range(1, 11))
    key = bytes(range(16))
    up._macs[ksn] = key
    mac = lambda data: aescmac.cmac(key, data)
    de7 = '1205101010'
    seeds = [
        ('0210', {3: '000000', 4: 1250, 7: de7, 11: '000001', 37: 'ABCDEFGHIJKL', 38: 'A1B2C3', 39: '00',
                  41: 'PT000001', 49: '978', 53: ksn, 55: bytes.fromhex('910A00112233445566778899') + bytes(30)}),
        ('0210', {3: '310000', 7: de7, 11: '000002', 39: '00', 41: 'PT000001', 53: ksn,
                  54: '1001978C000000100000', 102: 'ACC-OWNER'}),
        ('0410', {3: '000000', 4: 1250, 7: de7, 11: '000003', 39: '00', 41: 'PT000001', 53: ksn,
                  90: '0200000001' + de7 + '0' * 22}),
        ('0810', {7: de7, 11: '000004', 39: '00', 41: 'PT000001', 53: ksn, 70: '001'}),
        ('0600', {4: 700, 7: de7, 11: '000005', 12: '101510', 13: '1205', 37: 'REQ000000001',
                  42: 'CORNERBAKERY   ', 43: '%-40s' % 'Corner Bakery', 48: 'ORD=A-1', 49: '978', 53: ksn}),
    ]
    texts = {37: 12, 38: 6, 39: 2, 41: 8, 42: 15, 43: 40, 48: 999, 54: 120, 102: 28}
    counts = {}
    unhandled = []
    def handler(loop, ctx):
        unhandled.append(repr(ctx.get('exception')))
    asyncio.get_event_loop().set_exception_handler(handler)
    def tally(k):
        counts[k] = counts.get(k, 0) + 1
    async def main():
        for i in range(count):
            mti, fields = seeds[i % len(seeds)]
            fields = dict(fields)
            remac = random.getrandbits(1)
            if remac:  # fields changed, a good MAC: past the MAC check
                for _ in range(random.randrange(1, 4)):
                    de = random.choice(list(fields))
                    how = random.randrange(4)
                    if how == 0 and de != 53:
                        del fields[de]
                    elif de in texts:
                        fields[de] = random.choice(('', ' ' * texts[de], '9' * texts[de], 'D' * texts[de]))[:texts[de]]
                    elif isinstance(fields[de], bytes):
                        fields[de] = bytes(random.getrandbits(8) for _ in range(random.randrange(0, 9)))
                    else:
                        n = len(str(fields[de])) if not isinstance(fields[de], int) else 12
                        fields[de] = ''.join(random.choice('0919') for _ in range(n))
                try:
                    raw = iso8583.with_mac(mti, fields, mac)
                except iso8583.Iso8583Error:
                    tally('not encodable')
                    continue
            else:
                raw = bytearray(iso8583.with_mac(mti, fields, mac))
                how = random.randrange(5)
                if how == 0:
                    for _ in range(random.randrange(1, 5)):
                        raw[random.randrange(len(raw))] = random.getrandbits(8)
                elif how == 1:
                    raw = raw[:random.randrange(len(raw))]
                elif how == 2:
                    p = random.randrange(len(raw))
                    raw = raw[:p] + bytes(random.getrandbits(8) for _ in range(random.randrange(1, 6))) + raw[p:]
                elif how == 3:
                    raw[4 + random.randrange(16)] ^= 1 << random.randrange(8)
                else:
                    raw = raw + bytes(random.randrange(1, 4))
                raw = bytes(raw)
            # A request of the device's waiting for this answer, as _exchange has it.
            slot = [asyncio.Event(), None, ksn]
            up._pending[(mti, fields.get(11))] = slot
            dropped = up.dropped
            try:
                up._receive(raw)
            except Exception as e:
                unhandled.append(repr(e))
            up._pending.clear()
            if up.dropped > dropped:
                tally('dropped: ' + ('bad MAC' if 'MAC' in up.drop_reason else 'malformed'))
            elif slot[1] is not None:
                tally('answer taken')
            elif mti == '0600':
                tally('pushed')
            else:
                tally('other')
            await asyncio.sleep_ms(0)  # the pushed requests' tasks run
            del up._requests[:]       # the owner takes them
            if not i % 100:
                gc.collect()
        await asyncio.sleep_ms(200)
    asyncio.run(main())
    reasons = up.drop_reason
    return counts, unhandled[:5], len(unhandled), journal.keys(), gc.mem_free(), reasons
"""


def test_fuzzed_bank_messages_are_dropped_with_a_reason_and_nothing_escapes(device, capsys):
    device.exec("import gc\ngc.collect()")
    device.exec(FUZZ)
    counts, first, unhandled, journal, free, reason = device.eval("fuzz(%d, %d)" % (FUZZ_SEED, FUZZ_COUNT),
                                                                  timeout=120)
    with capsys.disabled():
        print("\ndevice ISO 8583 fuzz, seed %d: %d messages: %s; unhandled %d"
              % (FUZZ_SEED, FUZZ_COUNT, ", ".join("%s %d" % kv for kv in sorted(counts.items())), unhandled))
    assert unhandled == 0, first
    assert list(journal) == []  # nothing queued, nothing lost: the fuzz reached no reversal
    assert sum(counts.values()) == FUZZ_COUNT
    # Both ways reached: dropped as malformed, dropped for their MAC, and past the MAC.
    assert counts.get("dropped: malformed", 0) > 100 and counts.get("dropped: bad MAC", 0) > 100, counts
    assert counts.get("answer taken", 0) + counts.get("pushed", 0) > 100, counts
    assert isinstance(reason, str) and reason


@pytest.mark.parametrize("raw, reason", [
    (b"", "DE0: message too short for MTI and bitmap"),
    (b"02\xff0" + bytes(8), "DE0: not a digit"),
    (b"0210\xc0" + bytes(15), "DE2: truncated length"),
    (b"0210\x08" + bytes(7), "DE5: not in the protocol"),
    (b"0210" + bytes(8), "DE53: no MAC key of ours"),  # well-formed, but not for us
])
def test_a_malformed_message_is_dropped_with_its_reason(device, raw, reason):
    device.exec(FUZZ)
    got = device.eval("(lambda up: (up._receive(%r), up.dropped, up.drop_reason))(Uplink(None, {'host': 'x', 'port': 1, "
                      "'serial': 'PT000001'}, journal=Journal('/fuzz-journal')))" % raw)
    assert got == (None, 1, reason), got


# ---- over the real link: a bank that sends malformed frames ------------------------------------

class HostileBank:
    """The bank as the device meets it, gone wrong: a TLS server with the bank's own certificate
    (the device cannot tell it from the bank), relaying each connection to the real bank host as
    the device (with its certificate), that writes inject(connection number, answer)'s bytes to
    the device right after it has relayed the device's sign-on answer (the 0810).

    One event loop, in a thread of its own, serves both ways of every connection, and a socket is
    closed by the loop that reads it. (With a thread per way, one closed the bank's socket while
    the other was still inside OpenSSL's read of it: that read went on with the descriptor's
    number, which the next connection had been given, and took its bytes. The device's sign-on or
    its balance's answer was lost, its connection never closed, and it signed on again after the
    answer timeout over a further connection, one the injection is not made on.)"""

    def __init__(self, bank, inject):
        self.bank, self.inject = bank, inject
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ctx.load_cert_chain(bank.pki / "host.pem", bank.pki / "host.key.pem")
        self.server_ctx.load_verify_locations(bank.pki / "ca.pem")
        self.server_ctx.verify_mode = ssl.CERT_REQUIRED
        files = pki.device_files(bank.pki, fx.SERIAL)
        self.client_ctx = ssl.create_default_context(cafile=str(bank.pki / "ca.pem"))
        self.client_ctx.load_cert_chain(files["cert"], files["key"])
        self.connections = 0
        self._writers = []  # both ends of every connection, cut at close() if still open
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.address = self._server.sockets[0].getsockname()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    async def _relay(self, from_device, to_device):
        self.connections += 1  # counted as accepted, before the handshake
        number = self.connections
        self._writers.append(to_device)
        to_bank = upstream = None
        try:
            await to_device.start_tls(self.server_ctx)
            from_bank, to_bank = await asyncio.open_connection(*self.bank.address, ssl=self.client_ctx,
                                                               server_hostname="localhost")
            self._writers.append(to_bank)
            upstream = asyncio.create_task(_pipe(from_device, to_bank))  # the device's bytes, as they come
            while True:  # the bank's frames to the device, whole, one at a time
                head = await from_bank.readexactly(2)
                body = await from_bank.readexactly(int.from_bytes(head, "big"))
                to_device.write(head + body)
                if body[:4] == b"0810":
                    for raw in self.inject(number, body):
                        to_device.write(raw)
                await to_device.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # either side gone: so is the other
        finally:
            if upstream is not None:
                upstream.cancel()
            for writer in (to_device, to_bank):
                if writer is not None:
                    writer.close()

    def close(self):
        async def stop():
            self._server.close()
            relays = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in relays:
                task.cancel()
            await asyncio.gather(*relays, return_exceptions=True)
            for writer in self._writers:  # a TLS close waits for the peer's close_notify: not now
                writer.transport.abort()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def _pipe(reader, writer):
    try:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    writer.close()  # the device gone: the bank sees it, and the relay's reading of the bank ends


def _frame(body):
    return len(body).to_bytes(2, "big") + body


# What the device is fed after its first sign-on answer: garbage, the answer with a wrong MAC,
# cut short, and with a field the protocol does not have (the last one's reason is kept).
MALFORMED = [
    lambda answer: _frame(bytes(range(40))),
    lambda answer: _frame(answer[:-1] + bytes((answer[-1] ^ 0x01,))),
    lambda answer: _frame(answer[:-3]),
    lambda answer: _frame(answer[:4] + bytes((answer[4] | 0x08,)) + answer[5:]),
]

# On the device (test_uplink's SETUP: `up` on the rig's Wi-Fi): the link's errors watched while
# what the bank sent after the sign-on arrives, then a balance inquiry through the same link.
HOSTILE = """
async def hostile(up):
    errors = []
    for _ in range(60):
        if up.error is not None and str(up.error) not in errors:
            errors.append(str(up.error))
        await asyncio.sleep_ms(10)
    await up.wait_ready(20000)
    a = await up.balance(%r)
    return (a.rc, up.dropped, up.drop_reason, up._sign_ons, up.connected, errors, up.journal.keys())
""" % fx.OWNER


@pytest.fixture
def hostile(handheld, vdevice, bank):
    rig = vdevice.rig
    made = []

    def make(inject):
        made.append(HostileBank(bank, inject))
        rig.call("do", name="wifi", action="target", host=made[-1].address[0], port=made[-1].address[1])
        handheld.exec(SETUP + HOSTILE)
        return made[-1], handheld.eval("go(hostile)", timeout=90)
    try:
        yield make
    finally:
        rig.call("do", name="wifi", action="target", host=bank.address[0], port=bank.address[1])
        for h in made:
            h.close()


def test_malformed_messages_from_the_bank_are_dropped_and_the_link_kept(hostile):
    h, (rc, dropped, reason, sign_ons, connected, errors, journal) = hostile(
        lambda number, answer: [m(answer) for m in MALFORMED] if number == 1 else [])
    # Today: dropped without a count or a reason.
    assert (rc, dropped, reason) == ("00", 4, "DE5: not in the protocol"), (rc, dropped, reason)
    assert (sign_ons, connected, errors, journal) == (1, True, [], []), (sign_ons, connected, errors, journal)
    assert h.connections == 1  # the one connection, kept


def test_a_frame_that_cannot_be_read_closes_the_link_with_a_clear_error_and_it_comes_back(hostile):
    # A length of 0: the stream is out of step, nothing after it can be taken for a frame.
    h, (rc, dropped, reason, sign_ons, connected, errors, journal) = hostile(
        lambda number, answer: [b"\x00\x00" + bytes(30)] if number == 1 else [])
    assert (rc, dropped, reason) == ("00", 1, "DE0: frame of 0 bytes, max 4096"), (rc, dropped, reason)
    # Today: "connection to the bank lost: Iso8583Error(...)".
    assert errors == ["malformed frame from the bank (DE0: frame of 0 bytes, max 4096): connection closed"], errors
    # Closed, signed on again by run(), the journal untouched: the balance went through the second.
    assert (sign_ons, connected, journal) == (2, True, []), (sign_ons, connected, journal)
    # The one it closed and the one it signed on over: no other attempt (one that failed, or a
    # second connection while one was good would be a device the bank sees twice).
    assert h.connections == 2
