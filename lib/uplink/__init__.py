"""The bank uplink: one long-lived mutual-TLS connection speaking tools/bank/PROTOCOL.md.

    up = Uplink(vault, {"host": "bank.example", "port": 8583, "serial": "PT000001",
                        "merchant": "PT000001MERCH01", "currency": "978"}, wifi=w)
    asyncio.create_task(up.run())         # connect, sign on, send queued reversals, echo, reconnect
    a = await up.purchase(result, 1250, pin=bytearray(b"1234"))   # a.rc, a.approved, a.icc ...
    a = await up.balance("ACC-1")         # a.balance: (currency, minor units)
    a = await up.transfer("ACC-1", "ACC-2", 500)
    a = await up.give_back("261258870324", 500)   # a void or refund: a.fields[48] "VOID=..."/"REFUND=..."
    a = await up.alias(new=False)         # the payment identifier: a.fields[48] "ALIAS=K7M2QX9P"
    a = await up.advise(fields)           # an offline approval's 0220, as terminal.offline stored it
    stan, de7 = up.next_key()             # a 0200's key (DE11, DE7), for a caller that journals it first
    a = await up.top_up("ACC-1", 2000, card_id, key=(stan, de7))   # then completed(a) or reverse(a)
    req = await up.next_request()         # a pushed 0600, already acknowledged with a 0610
    await up.pay_request(req, account="ACC-1")  or  (req, card=result, pin=...)
    await up.refuse_request(req)
    up.completed(a)                       # the card took the approval (TC): nothing to undo
    await up.reverse(a, REVERSE_NOT_COMPLETED)   # an approved 0200 the card then refused

Every message the device sends takes the next DUKPT KSN (lib/dukpt) and a STAN (stored before
use, lib/uplink/journal), carries the KSN in DE53 and an AES-CMAC under that KSN's MAC key
(lib/aescmac, lib/iso8583.encode_frame, into a send buffer kept for the
Uplink's life). An answer is accepted only with a right MAC under the key
of the KSN it names (its request's, or for a 0600 the device's latest); others are dropped.

A 0200's reversal (0400, its own STAN and DE7, so that a repeat is idempotent at the host) is
queued on flash BEFORE the 0200 is sent and removed when a 0210 with a good MAC arrives;
without one in ANSWER_MS (or when the connection drops) the request raises Unanswered and
the reversal is sent, again after every reconnect and reboot, until a 0410 comes back.
An approved 0200 that the terminal cannot complete (the card's AAC at its second GENERATE AC,
or the card removed before it) is reversed the same way: reverse() queues a new 0400 for it
on flash, then sends it. DE39 in a 0400 says why (REVERSE_UNANSWERED, REVERSE_NOT_COMPLETED).

A card purchase's approval is not the end: the card must still take it (second GENERATE AC
with the ARPC). So a 0210 that approves one does not remove its reversal: the entry is rewritten
"armed" (DE39 06) before the answer is returned, and held (not sent) while this run of the
firmware waits for the card. completed(answer) drops it (the card's TC); reverse(answer) sends
it. A power cut (or a crash) in between leaves it on flash with nobody holding it: the next
boot sends it after its sign-on, as any queued reversal. Its reason is 06, not 68: the answer
came in time with a good MAC (68 says it did not); the terminal could not complete the
transaction with the card (ISO 8583:1993 reason 4007, "card acceptor device unable to
complete transaction"), which is what a power cut before the card's completion is.

The clear PIN (a bytearray the caller owns) is formatted and enciphered (lib/pinblock, format
4 under the message's DUKPT PIN key) at the call, and wiped there, before anything waits.
"""

import errno
import time

import aescmac
import asyncio
import timeouts
import iso8583
import pinblock
from dukpt import Dukpt, Exhausted
from micropython import const
from uplink import tls
from uplink.journal import Journal, JournalFull
from uplink.tls import CertificateError, TlsError, UplinkError

ANSWER_MS = const(15_000)  # PROTOCOL.md: the device waits 15 s for an answer
IDLE_ECHO_MS = const(60_000)  # an echo (0800/301) after this long without traffic
RECONNECT_FIRST_MS = const(1000)
RECONNECT_MAX_MS = const(60_000)

# Processing codes (DE3), POS entry modes (DE22), network management codes (DE70).
PURCHASE = "000000"
BALANCE = "310000"
TRANSFER = "400000"
# The payment identifier (PROTOCOL.md): the live one, or a new one that retires it at once.
ALIAS = "900000"
NEW_ALIAS = "910000"
CONTACT = "051"
CONTACTLESS = "071"
ACCOUNT_ON_FILE = "010"
SIGN_ON = "001"
ECHO = "301"
DOWNLOAD = "360"  # a record of an update package (PROTOCOL.md, "Updates and terminal management")
REVOKED = "62"  # the sign-on's answer to a device the issuer revoked

APPROVED = "00"
UNKNOWN_ORIGINAL = "25"  # a reversal of a 0200 the host never saw: nothing to undo
# A reversal the bank refuses for good (tools/bank/PROTOCOL.md): 12 past its window, 13 not the
# transaction it names (another amount or currency), 30 a message it cannot read.
REVERSAL_REFUSED = ("12", "13", "30")
CUSTOMER_CANCELLATION = "17"
# Why a 0400 is sent (its DE39, ISO 8583:1987 codes; PROTOCOL.md "Timeouts and reversals").
REVERSE_UNANSWERED = "68"  # response received too late, or not at all, or with a bad MAC
REVERSE_NOT_COMPLETED = "06"  # error: approved, but the terminal could not complete with the card
# Pushed requests waiting for the owner, at most (issue 16): each is a Request in RAM until it is
# paid, refused or expires (up to MAX_LIFE_S), so pushes must not grow the heap without end. A
# terminal on the owner's person has a few open at a time; 8 is a morning's errands unanswered.
# A push beyond is declined at once with a 0620 (REFUSE_FULL): the merchant sees it refused
# instead of waiting for its expiry. (terminal.link's list of them keeps the same cap.)
REQUESTS = const(8)
# DE39 of that 0620: 05 "do not honour", the terminal declining by itself; 17 (customer
# cancellation) would say the owner did. The bank host takes any 0620 as the request refused.
REFUSE_FULL = "05"
# The bank MACs a 0600 under the key of the device's latest KSN as it knows it. Pushes in a burst
# all carry that KSN, while the device's 0610 to the first already takes the next one: so the
# keys of the last few KSNs stay for the 0600s on their way (with one kept, 6 of a burst of 8 were
# dropped). Used keys, of messages already sent; REQUESTS of them covers a full list's burst.
PUSH_KEYS = const(REQUESTS)
# A pushed request's life is counted in ticks_ms, whose differences wrap after 2**29 ms on the
# ESP32 (6.2 days): a longer one is cut to a day.
MAX_LIFE_S = const(86_400)

__all__ = ("Uplink", "Answer", "Request", "UplinkError", "TlsError", "CertificateError", "NotConnected",
           "Refused", "Unanswered", "NeedsProvisioning", "Revoked", "JournalFull")


class NotConnected(UplinkError):
    """No session with the bank (nothing was sent)."""


class Refused(NotConnected):
    """The bank's host turned the connection away: refused, or closed or reset before the
    sign-on's answer (a host that is down behind a proxy or the access point). Nothing was sent."""


class Unanswered(UplinkError):
    """Sent, but no valid answer came in time; a 0200 is being reversed."""


class NeedsProvisioning(UplinkError):
    """The DUKPT transaction counter is exhausted: no message can be sent until the issuer
    injects a new initial key."""


class Revoked(UplinkError):
    """The issuer revoked this terminal: its sign-on is refused (62) for good."""


class Answer:
    """A validated answer: its response code and fields."""

    def __init__(self, mti, fields):
        self.mti = mti
        self.fields = fields
        self.rc = fields.get(39)
        self.original = None  # a reversible 0200's reversal entry (for reverse()), else None

    @property
    def approved(self):
        return self.rc == APPROVED

    @property
    def rrn(self):
        return self.fields.get(37)

    @property
    def auth_code(self):
        return self.fields.get(38)

    @property
    def icc(self):
        """DE55: the issuer's tags for the card (91 ARPC, scripts), or None."""
        return self.fields.get(55)

    @property
    def balance(self):
        """(currency, signed minor units) of the available balance in DE54, or None."""
        de54 = self.fields.get(54)
        if not de54 or len(de54) < 20:
            return None
        amount = int(de54[8:20])
        return de54[4:7], -amount if de54[7] == "D" else amount


class Request:
    """A payment request the bank pushed (0600), received at `arrived` (time.ticks_ms()).

    Its expiry is the bank's: DE13 + DE12 (MMDD hhmmss UTC), by the same clock as its DE7. The
    device has no clock of its own to compare them with, so the request lives for their
    difference from the moment it arrived (a few ms after the bank sent it), by ticks_ms."""

    def __init__(self, fields, arrived):
        self.id = fields.get(37)
        self.amount = int(fields.get(4, "0"))
        self.currency = fields.get(49)
        self.merchant_id = fields.get(42)
        self.merchant = (fields.get(43) or "").rstrip()
        self.order = fields.get(48)  # "ORD=<order number>", sent back as it came
        self.expires = None  # ticks_ms after which it can no longer be paid; None: no expiry given
        if fields.get(7) and fields.get(12) and fields.get(13):
            life = _seconds_until(fields[7], fields[13] + fields[12])
            self.expires = time.ticks_add(arrived, min(life, MAX_LIFE_S) * 1000)

    @property
    def expired(self):
        return self.expires is not None and time.ticks_diff(time.ticks_ms(), self.expires) >= 0

    def __repr__(self):
        return "<Request %s %s %d %s>" % (self.id, self.order, self.amount, self.currency)


def _seconds_until(sent, until):
    """Seconds from one MMDDhhmmss to another, the later within a year of the earlier (0 if it
    is not later: a request sent already expired)."""
    def stamp(year, t):
        return time.mktime((year, int(t[0:2]), int(t[2:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]), 0, 0))

    start, end = stamp(2000, sent), stamp(2000, until)
    if end < start and until[:4] < sent[:4]:  # over the new year (2000: a leap year for 29 Feb)
        end = stamp(2001, until)
    return max(0, end - start)


def _now():
    """(DE7 MMDDhhmmss UTC, DE12 hhmmss, DE13 MMDD)."""
    t = time.gmtime()
    return ("%02d%02d%02d%02d%02d" % t[1:6], "%02d%02d%02d" % t[3:6], "%02d%02d" % t[1:3])


def _wipe(buf):
    for i in range(len(buf)):
        buf[i] = 0


def _card_fields(result, fields):
    """The card's part of a 0200 from the EMV kernel's result (lib/emv/kernel.Result)."""
    fields[2] = result.pan
    fields[22] = CONTACTLESS if result.contactless else CONTACT
    fields[55] = result.icc_data
    if result.expiry:
        fields[14] = result.expiry.hex()[:4]
    if result.psn:
        fields[23] = "%03d" % int(result.psn.hex())
    if result.track2:
        fields[35] = result.track2.hex().upper().rstrip("F")


class Uplink:
    def __init__(self, vault, config, wifi=None, journal=None, answer_ms=ANSWER_MS, echo_ms=IDLE_ECHO_MS):
        self.vault = vault
        self.host = config["host"]
        self.port = int(config["port"])
        self.serial = config["serial"]
        merchant = config.get("merchant")
        # DE42 is fixed at 15 characters; a configured id may be shorter (the device serial).
        self.merchant = None if merchant is None else "%-15s" % merchant
        self.currency = config.get("currency", "978")
        self.wifi = wifi
        self.journal = journal or Journal()
        self.dukpt = Dukpt(vault)
        self.answer_ms = answer_ms
        self.echo_ms = echo_ms
        # The longest wait between two attempts: the bank's configuration may set it
        # (terminal.link's "retry_max_ms", the tests' bank a short one).
        self.retry_max_ms = config.get("retry_max_ms", RECONNECT_MAX_MS)
        self.connected = False
        # The last attempt's failure (UplinkError), kept through the next attempt until it
        # signs on or fails in its turn (why the link went, for diag and link.ready()); and
        # whether an attempt is under way (link.ready(): what the last one met is not why now).
        self.error = None
        self.connecting = False
        # Messages from the bank dropped unread (malformed, not MAC'd under a key of ours, a wrong
        # MAC), and the last one's reason: an Iso8583Error's text, field numbers and lengths only.
        self.dropped = 0
        self.drop_reason = None
        self.refused_reversals = 0  # 0400s the bank refused for good (REVERSAL_REFUSED): off the queue
        self._ctx = None
        self._writer = None
        self._link_error = None
        self._write_lock = asyncio.Lock()
        self._out = None  # the send buffer (_build), made at the first message
        self._framed = self._raw = None  # the message in it: framed, and without its frame
        self._ready = asyncio.Event()
        self._pending = {}  # (answer MTI, STAN) -> [Event, Answer or None, KSN of the request]
        self._macs = {}  # KSN -> MAC key: for answers to come, and the latest few (for 0600s)
        self._recent = []  # the last PUSH_KEYS KSNs sent, oldest first
        self._last_traffic = time.ticks_ms()
        self._requests = []
        self._request_event = asyncio.Event()
        self._sign_ons = 0
        self._draining = False
        self._drain_again = False
        # Keys of the reversals not to be sent yet: their 0200 awaits its answer, or its approval
        # the card's completion (armed). In RAM only: after a reboot nothing holds them.
        self._held = set()
        # What else waits on flash for the bank, sent after the reversals at every sign-on:
        # coroutine functions of the Uplink (terminal.link adds the offline advices').
        self.after_sign_on = []
        # Set once the last sign-on's offer is followed (update.follow, in a task of its own;
        # None: none was offered), and why the last one offered failed (None: none failed). An
        # Event, not the task: a finished task keeps its coroutine, whose frame keeps what it
        # imported (update.package's old copy, ~2 KB, beside the update flow's own).
        self.update = None
        self.update_error = None
        self.offered = None  # a firmware package's id (UPD=): for update.ota, with the owner's consent

    # ---- the connection ------------------------------------------------------------------

    async def run(self):
        """Keep the session up: connect, sign on, send the queued reversals, serve; after a
        failure try again, each wait twice the one before (RECONNECT_FIRST_MS..retry_max_ms)."""
        failures = 0
        while True:
            if self.wifi is not None:
                while not await self.wifi.wait_connected(RECONNECT_MAX_MS):
                    pass
            sign_ons = self._sign_ons
            try:
                await self.session()
            except NeedsProvisioning as e:
                self.error, self.connecting = e, False
                return  # nothing can be sent any more: trying again would not change that
            except Revoked as e:
                # Asked again at the longest wait only: the issuer may reinstate the terminal
                # (admin reinstate), which then signs on by itself, no restart needed.
                self.error, self.connecting = e, False
                await asyncio.sleep_ms(self.retry_max_ms)
                continue
            except UplinkError as e:
                self.error = e
            self.connecting = False
            # A session that signed on starts the count again.
            failures = 0 if self._sign_ons != sign_ons else failures + 1
            await asyncio.sleep_ms(min(RECONNECT_FIRST_MS << min(failures - 1, 16), self.retry_max_ms) if failures else 0)

    async def session(self):
        """One session: connect, sign on, send queued reversals, then serve until the
        connection ends (NotConnected, CertificateError or TlsError says why)."""
        if self._ctx is None:
            self._ctx = tls.context(self.vault)
        self._link_error = None
        self.connecting = True
        try:
            reader, self._writer = await tls.connect(self._ctx, self.host, self.port)
        except OSError as e:  # no route (the access point's), or a connect() refused at once
            raise (Refused if e.errno == errno.ECONNREFUSED else NotConnected)("cannot reach the bank: %r" % (e,))
        # The TLS handshake happens on the sign-on's first write, made here before the reader
        # runs: mbedTLS gives a refused certificate's reason to the write, not to the read. A
        # guard bounds the sign-on as a whole: a host that accepts and never answers would hold
        # the handshake's write, and the session, for ever.
        receiver = asyncio.create_task(self._read_loop(reader))
        guard = asyncio.create_task(self._sign_on_guard())
        watch = None
        try:
            try:
                answer = await self._exchange("0800", self.sign_on_fields(), wait_ready=False)
            except UplinkError as e:
                if guard.done():  # it closed the connection: the host took it and stayed silent
                    # (whatever the handshake's write then met: mbedTLS may name the closed socket
                    # a TLS error, and a silent bank is not an untrusted one)
                    raise Unanswered("the bank took the connection and did not answer the sign-on")
                if not isinstance(e, (NotConnected, Unanswered)):
                    raise  # the handshake's own refusal (TlsError): its reason as it is
                # Ended before the session: an identity refused (TlsError), else turned away.
                if isinstance(self._link_error, TlsError):
                    raise self._link_error
                raise Refused("connection ended before the sign-on: %s" % (self._link_error or e))
            guard.cancel()  # answered: the session is no longer the sign-on's
            if answer.rc == REVOKED:
                raise Revoked("the issuer revoked this terminal")
            if not answer.approved:
                raise UplinkError("sign-on refused: %s" % answer.rc)
            self.connected = True
            self.connecting = False
            self.error = None
            self._sign_ons += 1
            self._ready.set()
            watch = asyncio.create_task(self._idle_echo())
            await self._send_reversals()
            if answer.fields.get(48) and (self.update is None or self.update.is_set()):
                from update import follow  # only when the bank offers something; let go of after

                self.update = asyncio.Event()
                asyncio.create_task(follow(self, answer.fields[48], self.update))
            for then in self.after_sign_on:
                await then(self)
            await receiver
            raise self._link_error or NotConnected("connection closed")
        finally:
            if watch is not None:
                watch.cancel()
            guard.cancel()
            receiver.cancel()
            self.close()

    def sign_on_fields(self):
        """A sign-on's fields: DE70 001, DE48 the versions installed (PROTOCOL.md)."""
        from update import call

        return {70: SIGN_ON, 48: "FW=%d;SVN=%d;CFG=%d;FILES=%d" % call("update.package", "versions")}

    async def sign_on(self):
        """Sign on again in the session: the bank's fleet view learns the versions now."""
        return await self._exchange("0800", self.sign_on_fields())

    def retrust(self):
        """The issuer's parameters changed: the next session's TLS context is made anew (its
        trust anchors, update.config.bank_cas)."""
        self._ctx = None

    async def record(self, package, offset, length):
        """Bytes of an update package (its id) from offset, at most length (0800/360): the
        answer's DE72, fewer only at the package's end. UplinkError if the bank says no."""
        a = await self._exchange("0800", {70: DOWNLOAD, 48: "PKG=%s;OFF=%d;LEN=%d" % (package, offset, length)})
        if not a.approved:
            raise UplinkError("package %s at %d: the bank answered %s" % (package, offset, a.rc))
        return a.fields.get(72, b"")

    async def _sign_on_guard(self):
        await asyncio.sleep_ms(self.answer_ms)
        self.close()  # the handshake's write then fails (session() says why)

    async def _read_loop(self, reader):
        try:
            while True:
                self._receive(await iso8583.read_frame(reader))
        except Exception as e:  # the connection's end, whatever ended it
            if isinstance(e, iso8583.Iso8583Error):  # a frame length that cannot be: out of step
                self._dropped(e)
                self._link_error = UplinkError("malformed frame from the bank (%s): connection closed" % e)
            else:
                self._link_error = tls.tls_error(e) or NotConnected("connection to the bank lost: %r" % (e,))
            self.close()

    async def _idle_echo(self):
        while True:
            idle = time.ticks_diff(time.ticks_ms(), self._last_traffic)
            if idle >= self.echo_ms:
                try:
                    await self._exchange("0800", {70: ECHO}, wait_ready=False)
                except UplinkError:
                    self.close()  # the bank is gone: the reader ends, run() reconnects
                    return
                idle = 0
            await asyncio.sleep_ms(self.echo_ms - idle)

    def close(self):
        """Drop the connection now (also when the terminal stops: a cancelled run() may never
        get to its own cleanup, and a TLS session left open holds its buffers)."""
        self.connected = False
        self._ready.clear()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
            # MicroPython's close() leaves the socket open (its wait_closed() closes it): the
            # bank must see the end now, not at the next garbage collection.
            sock = getattr(writer, "s", None)
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        for slot in self._pending.values():
            slot[0].set()  # the waiters see no answer: unanswered
        self._pending.clear()

    async def wait_ready(self, timeout_ms):
        """True once signed on (at once if it is)."""
        if self.connected:
            return True
        try:
            await timeouts.wait_for_ms(self._ready.wait(), timeout_ms)
        except asyncio.TimeoutError:
            return False
        return True

    # ---- messages ------------------------------------------------------------------------

    def _receive(self, raw):
        self._last_traffic = time.ticks_ms()
        try:
            mti, fields = iso8583.decode(raw)
            mac_key = self._macs.get(fields.get(53))
            if mac_key is None:
                raise iso8583.BadMac("no MAC key of ours", 53)
            iso8583.check_mac(raw, fields, lambda data: aescmac.cmac(mac_key, data))
        except iso8583.Iso8583Error as e:
            self._dropped(e)  # the link kept; the request it may answer stays unanswered (reversed)
            return
        if mti == "0600":
            asyncio.create_task(self._pushed(fields, self._last_traffic))
            return
        slot = self._pending.get((mti, fields.get(11)))
        if slot is not None:
            slot[1] = Answer(mti, fields)
            slot[0].set()

    def _dropped(self, e):
        self.dropped += 1
        self.drop_reason = str(e)

    async def _pushed(self, fields, arrived):
        # Acknowledged at once (received, not yet decided: the owner answers later, 0200 or 0620).
        de7 = _now()[0]
        try:
            await self._send("0610", {7: de7, 11: fields.get(11), 39: APPROVED}, None)
        except UplinkError:
            pass
        request = Request(fields, arrived)
        if len(self._requests) >= REQUESTS:
            await self.decline_request(request)
            return
        self._requests.append(request)
        self._request_event.set()

    async def decline_request(self, request):
        """Decline a push the terminal has no room for (REQUESTS wait): a 0620 with REFUSE_FULL.
        Not answered in time or not sent, it stays pushed at the bank until its expiry."""
        try:
            await self.refuse_request(request, REFUSE_FULL)
        except UplinkError:
            pass

    async def next_request(self):
        """The next pushed payment request (they wait in order of arrival; at most REQUESTS
        not taken yet: more are declined)."""
        while not self._requests:
            self._request_event.clear()
            await self._request_event.wait()
        return self._requests.pop(0)

    def _forget(self, ksn):
        if ksn not in self._recent and ksn in self._macs:
            _wipe(self._macs.pop(ksn))

    def message(self, mti, fields, pin=None, pan=None):
        """(message, KSN): mti with fields, DE41, the next KSN in DE53, the PIN block in DE52 if
        a PIN is given (wiped here), and the MAC; its MAC key kept for the answer. The message
        is a memoryview of the send buffer: good until the next one is built."""
        ksn, mac_key = self._secure(fields, pin, pan)
        return self._build(mti, fields, ksn, mac_key), ksn

    def _secure(self, fields, pin, pan):
        """(KSN, MAC key): the next DUKPT keys, DE41, DE53 and the PIN block in DE52 (the PIN
        wiped, and the PIN key) before anything can wait."""
        try:
            ksn, pin_key, mac_key = self.dukpt.next_keys()
        except BaseException as e:
            if pin is not None:
                _wipe(pin)
            if isinstance(e, Exhausted):
                raise NeedsProvisioning("DUKPT keys exhausted: the device needs a new initial key")
            raise
        try:
            if pin is not None:
                fields[52] = pinblock.encipher(pin_key, pin, pan)
        finally:
            if pin is not None:
                _wipe(pin)
            _wipe(pin_key)
        fields[41] = self.serial
        fields[53] = ksn
        return ksn, mac_key

    def _build(self, mti, fields, ksn, mac_key):
        """The message, framed and MAC'd in the send buffer (one for the Uplink's life, sized for
        any message: a purchase's 0200 allocates nothing on its way out); its MAC key kept."""
        if self._out is None:
            self._out = bytearray(2 + iso8583.MAX_MESSAGE)
        n = iso8583.encode_frame(self._out, mti, fields, lambda data: aescmac.cmac(mac_key, data))
        self._framed = memoryview(self._out)[:n]
        self._raw = self._framed[2:]
        self._macs[ksn] = mac_key
        self._recent.append(ksn)
        if len(self._recent) > PUSH_KEYS:
            oldest = self._recent.pop(0)
            if not any(slot[2] == oldest for slot in self._pending.values()):
                self._forget(oldest)
        return self._raw

    async def _send(self, mti, fields, pin, pan=None):
        # The send buffer holds one message: built and written in turn. The DUKPT step is taken
        # inside the lock too: the bank refuses a counter lower than one it has seen (63: a
        # rolled-back device), so messages must leave in the order of their KSNs. Outside it,
        # that order held only while nothing between the step and the lock awaited.
        try:
            async with self._write_lock:
                ksn, mac_key = self._secure(fields, pin, pan)
                await self._write(self._build(mti, fields, ksn, mac_key))
        finally:
            if pin is not None:
                _wipe(pin)  # also when cancelled while waiting for the lock (_secure wipes it too)
        return ksn

    async def _write(self, raw):
        """Write raw, the message just built: its frame is the send buffer's. The caller holds
        the write lock (the parameter is for the benchmark's and tests' wrappers to see)."""
        framed = self._framed
        if framed is None or raw is not self._raw:
            raise ValueError("not the message in the send buffer: build it, then write it")
        if self._writer is None:
            raise NotConnected("no connection to the bank")
        self._writer.write(framed)
        await self._writer.drain()
        self._last_traffic = time.ticks_ms()

    async def _exchange(self, mti, fields, pin=None, pan=None, wait_ready=True, reversal=False, arm=False):
        """Send a request and wait for its answer (matched by MTI + 10 and STAN). reversal: a
        0200 whose 0400 is queued before it is sent; arm: an approval of it needs the card's
        completion, its reversal stays queued, armed and held, until completed() or reverse().
        A reversal is refused at once (JournalFull, nothing sent) while the journal is full."""
        if reversal and self.journal.full:
            if pin is not None:
                _wipe(pin)
            raise JournalFull("the reversal journal is full: no new transaction until the bank has its 0400s")
        if wait_ready and not await self.wait_ready(self.answer_ms):
            if pin is not None:
                _wipe(pin)
            raise NotConnected("no session with the bank")
        if 11 not in fields:
            fields[11] = self.journal.next_stan()
        if 7 not in fields:
            fields[7] = _now()[0]
        key, entry = None, {}
        if reversal:
            key = fields[11] + fields[7]
            entry = self._reversal(key, fields, REVERSE_UNANSWERED)
            self._held.add(key)
            self.journal.queue(entry)
        answer_mti = mti[:2] + str(int(mti[2]) + 1) + mti[3]
        slot = [asyncio.Event(), None, None]
        self._pending[(answer_mti, fields[11])] = slot
        try:
            slot[2] = await self._send(mti, fields, pin, pan)
            try:
                await timeouts.wait_for_ms(slot[0].wait(), self.answer_ms)
            except asyncio.TimeoutError:
                pass
        except iso8583.Iso8583Error:
            raise  # a message that cannot be encoded: ours to fix, not the connection's
        except (OSError, ValueError) as e:  # mbedTLS reports a refused certificate as ValueError
            self.close()
            # The handshake goes on in whichever of this write and the reader the bank's answer
            # wakes first: mbedTLS gives a refused certificate's reason to that one alone.
            if isinstance(self._link_error, CertificateError):
                raise self._link_error
            raise tls.tls_error(e) or Unanswered("connection lost while sending: %r" % (e,))
        finally:
            self._pending.pop((answer_mti, fields[11]), None)
            if slot[1] is None:
                self._held.discard(key)
            if slot[2] is not None:
                self._forget(slot[2])
        answer = slot[1]
        if answer is None:
            if reversal:
                asyncio.create_task(self._send_reversals())
            raise Unanswered("no answer to %s STAN %s" % (mti, fields[11]))
        if key is not None:
            if arm and answer.approved:
                # On flash before the answer is acted on: from here a cut reverses it (06).
                entry = dict(entry)
                entry["de39"], entry["armed"] = REVERSE_NOT_COMPLETED, True
                self.journal.queue(entry)
            else:
                self.journal.done(key)
                self._held.discard(key)
            answer.original = entry
        return answer

    # ---- reversals -----------------------------------------------------------------------

    def _reversal(self, key, fields, reason):
        """The journal entry of a 0400 for the 0200 `key` (its STAN + DE7) with these fields:
        a STAN and DE7 of its own, so that the host answers a repeat of it once."""
        return {"key": key, "stan": self.journal.next_stan(), "de7": _now()[0], "de3": fields.get(3),
                "de4": fields.get(4), "de49": fields.get(49), "de90": "0200" + key + "0" * 22, "de39": reason}

    def completed(self, answer):
        """The card completed the approved purchase (its Answer): its armed reversal is dropped.
        Once: a second call, or a reverse() after it, finds nothing to do (ValueError)."""
        original = self._original(answer)
        self.journal.done(original["key"])
        self._held.discard(original["key"])

    def _original(self, answer):
        original, answer.original = answer.original, None  # one fate: completed or reversed
        if original is None:
            raise ValueError("not the answer to a reversible 0200")
        return original

    async def reverse(self, answer, reason=REVERSE_NOT_COMPLETED):
        """Undo an approved 0200 (its Answer, from purchase, pay_request or transfer) that the
        terminal could not complete: a 0400 with DE39 = reason is queued on flash before this
        first waits (in place of the armed one, if any), then sent (and after every reconnect and
        reboot) until a 0410 comes back. A declined answer posted nothing: there is nothing to
        send. Returns once the queue has been tried; a 0400 the bank has not answered yet stays
        queued (never lost)."""
        original = self._original(answer)
        if not answer.approved:
            return
        self.journal.queue(self._reversal(original["key"], {3: original["de3"], 4: original["de4"],
                                                            49: original["de49"]}, reason))
        self._held.discard(original["key"])
        await self._send_reversals()

    async def _send_reversals(self):
        """Each queued 0400, oldest first, until the host answers it 00 (or 25 if it never saw
        the original: nothing to undo; or refuses it for good: REVERSAL_REFUSED). Stops at the
        first one unanswered or answered "not now" (the connection or the host is bad).
        One drain at a time (a 0400 sent twice at once would be answered once); one queued
        while a drain runs is sent by that drain, in a next round."""
        self._drain_again = True
        if self._draining:
            return
        self._draining = True
        try:
            while self._drain_again:
                self._drain_again = False
                if not await self._drain():
                    return
        finally:
            self._draining = False

    async def _drain(self):
        """One round over the queue: True if every 0400 in it was answered."""
        for key in self.journal.keys():  # one entry in RAM at a time, read as it is sent
            if key in self._held:
                continue  # its 0200 still waits for its answer, or its approval for the card
            entry = self.journal.entry(key)
            if entry is None:
                continue  # done meanwhile (its 0200's answer came while an earlier one was sent)
            # Queues written before reasons were sent held only unanswered 0200s.
            fields = {3: entry["de3"], 4: entry["de4"], 7: entry["de7"], 11: entry["stan"], 39: entry.get(
                "de39", REVERSE_UNANSWERED), 49: entry["de49"], 90: entry["de90"]}
            try:
                answer = await self._exchange("0400", fields, wait_ready=False)
            except UplinkError:
                return False
            if answer.rc in REVERSAL_REFUSED:
                # Final: the bank will never undo it (too late, not the transaction it names, a
                # message it cannot read); sent again it would block every reversal behind it.
                # The original stands as the bank has it.
                self.refused_reversals += 1
            elif answer.rc not in (APPROVED, UNKNOWN_ORIGINAL):
                return False  # the host could not do it now (96, 91...): again after the next sign-on
            self.journal.done(key)
        return True

    # ---- the transactions ----------------------------------------------------------------

    async def purchase(self, result, amount, currency=None, pin=None, extra=None):
        """A purchase with a card read by the EMV kernel (its Result): DE55 from it, the online
        PIN enciphered now if given (bytearray, wiped here). The Answer (its DE55 goes back to
        the card); Unanswered if none came (the purchase is then reversed). An approval must be
        followed by completed(answer) or reverse(answer): until then its reversal is armed."""
        fields = {3: PURCHASE, 4: amount, 49: currency or self.currency, 42: self.merchant}
        de7, de12, de13 = _now()
        fields[7], fields[12], fields[13] = de7, de12, de13
        _card_fields(result, fields)
        if extra:
            fields.update(extra)
        return await self._exchange("0200", fields, pin=pin, pan=result.pan, reversal=True, arm=True)

    async def balance(self, account):
        return await self._exchange("0200", {3: BALANCE, 102: account})

    async def alias(self, new=False):
        """The payment identifier the bank maps to this device (the answer's DE48, "ALIAS=<it>"):
        the live one, or (new) a fresh one in its place. No money moves: nothing to reverse."""
        return await self._exchange("0200", {3: NEW_ALIAS if new else ALIAS})

    async def transfer(self, from_account, to_account, amount, currency=None):
        return await self._exchange("0200", {3: TRANSFER, 4: amount, 49: currency or self.currency,
                                             102: from_account, 103: to_account}, reversal=True)

    async def give_back(self, reference, amount, currency=None, advice=False):
        """Give back (part of) an approved purchase or paid request this device made, named by
        its RRN (0200, processing code 200000, DE48 "RRN=<it>"), or an offline purchase (advice)
        by its advice's DE11 + DE7 ("ADVICE=<them>": it has no RRN here). The bank decides by its
        business day and says which in the answer's DE48: "VOID=<rrn>" (the day still open: all
        of it cancelled) or "REFUND=<rrn>" (after its cut-over). Reversed as a transfer is when no
        answer comes (the bank then undoes the void or refund)."""
        # The code inline, not a module constant: the uplink stays resident, this is rarely sent.
        return await self._exchange("0200", {3: "200000", 4: amount, 49: currency or self.currency,
                                             48: ("ADVICE=" if advice else "RRN=") + reference}, reversal=True)

    def next_key(self):
        """(DE11, DE7) for a 0200 still to be sent: its key at the bank (idempotent by DE41 + DE11
        + DE7) and in the reversal journal, for a caller that keeps it on flash before sending."""
        return self.journal.next_stan(), _now()[0]

    async def top_up(self, account, amount, card_id, currency=None, key=None):
        """Load this device's transit card (its id: 8 bytes) from a bound account (0200, processing
        code 920000, DE48 "CARD=<its hex>"). As a card purchase's, an approval's reversal stays
        armed until completed(answer) (the card took the value) or reverse(answer); key: (DE11,
        DE7) from next_key(), else new ones."""
        fields = {3: "920000", 4: amount, 48: "CARD=" + card_id.hex().upper(), 49: currency or self.currency,
                  102: account}
        if key is not None:
            fields[11], fields[7] = key
        return await self._exchange("0200", fields, reversal=True, arm=True)

    async def pay_request(self, request, account=None, card=None, pin=None):
        """Pay a pushed request from a bound account, or with a card (and its PIN)."""
        if card is not None:
            return await self.purchase(card, request.amount, request.currency, pin,
                                       {42: request.merchant_id, 48: request.order})
        if pin is not None:
            _wipe(pin)
        return await self._exchange("0200", {3: PURCHASE, 4: request.amount, 22: ACCOUNT_ON_FILE,
                                             42: request.merchant_id, 48: request.order,
                                             49: request.currency, 102: account}, reversal=True)

    async def advise(self, fields):
        """An advice (0220) of an offline approval (terminal.offline): its fields as stored, DE11
        and DE7 with them (a resend is the same advice to the bank). Nothing to reverse: the
        card approved; the host posts it once however often it comes."""
        return await self._exchange("0220", fields, wait_ready=False)

    async def refuse_request(self, request, reason=CUSTOMER_CANCELLATION):
        """The owner said no (0620, response code 17); or the terminal did (decline_request)."""
        return await self._exchange("0620", {37: request.id, 39: reason, 48: request.order})
