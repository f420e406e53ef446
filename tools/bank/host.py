"""The bank host: what each message does (Bank, synchronous, run in a thread pool) and the TLS
server that carries them (Host, asyncio), per tools/bank/PROTOCOL.md.

Bank.handle(serial, raw) takes a device's message and gives the answer bytes. Order of checks
for a card purchase: MAC (63), card known (14), ARQC (05), expiry (54), PIN tries left (75),
PIN (55, or 75 at the third wrong one), currency (57), funds (51), then 00 with the postings,
an authorization code, an RRN and DE55 tag 91 = ARPC || ARC. The HSM work is done before the
ledger transaction; inside it, the idempotency table is read first: a message already answered
(same DE41 + DE11 + DE7) gets its first answer back and posts nothing.

Trace: the last TRACE_LEN messages in and out (Host.trace), for the web simulator's ISO 8583
view (GET /trace on the merchant API). Nothing in it lets a card be used: the PAN is masked
(first 6, last 4, as the ledger keeps it), track 2 too, the PIN block is never there, the ICC
data only as its list of tags.
"""

import asyncio
import collections
import concurrent.futures
import datetime
import itertools
import logging
import secrets
import ssl
import time
from dataclasses import dataclass, field

from tools.bank import pki, wire
from tools.bank.hsm import HsmError
from tools.bank.ledger import CLEARING, Conflict, mask_pan
from tools.emvcard import tlv

LOG = logging.getLogger("tools.bank")

# DE39
APPROVED, DO_NOT_HONOUR, INVALID_TXN, INVALID_AMOUNT, INVALID_CARD = "00", "05", "12", "13", "14"
CANCELLED, UNKNOWN_ORIGINAL, FORMAT_ERROR, NO_FUNDS, EXPIRED = "17", "25", "30", "51", "54"
WRONG_PIN, NOT_PERMITTED, SECURITY, TRIES_EXCEEDED, MALFUNCTION = "55", "57", "63", "75", "96"
PIN_TRIES = 3
TLS_HANDSHAKE_TIMEOUT = 15

PURCHASE, BALANCE, TRANSFER = "000000", "310000", "400000"
ACCOUNT_ON_FILE = "010"
SIGN_ON, SIGN_OFF, ECHO = "001", "002", "301"
# Fields a 0210/0410/0630 echoes from its request (those present).
ECHOED = ("2", "3", "4", "7", "11", "41", "42", "48", "49", "53", "102", "103")


class Decline(Exception):
    """A message answered with a response code other than 00."""

    def __init__(self, rc):
        super().__init__(rc)
        self.rc = rc


@dataclass
class Outcome:
    """What handle() gives back: the answer (None: nothing to answer) and what the server
    needs to know about the message."""
    answer: bytes = None
    mti: str = ""
    ksn: bytes = None          # the message's KSN, when its MAC was good
    network: str = None        # DE70 of a good 0800
    rc: str = None


def answer_mti(mti):
    return mti[:2] + str(int(mti[2]) + 1) + mti[3]


def new_rrn():
    return "%012d" % secrets.randbelow(10 ** 12)


def ksn_of(doc):
    try:
        ksn = bytes.fromhex(doc.get("53", ""))
    except ValueError:
        return None
    return ksn if len(ksn) == 12 else None


def expired(expiry_yymm, today=None):
    today = today or datetime.date.today()
    return (int(expiry_yymm[:2]), int(expiry_yymm[2:])) < (today.year % 100, today.month)


def order_of(doc):
    de48 = doc.get("48", "")
    return de48[4:] if de48.startswith("ORD=") else None


class Bank:
    """Message processing over a ledger and an HSM; thread-safe (one DB connection per thread)."""

    def __init__(self, ledger, hsm):
        self.ledger = ledger
        self.hsm = hsm

    # ---- entry -------------------------------------------------------------------------------

    def handle(self, serial, raw, ikid=None):
        """The Outcome of a message from device serial; ikid (hex): the device's initial key id,
        when registered, which the message's KSN must carry."""
        try:
            doc = wire.decode(raw)
        except wire.WireError as e:
            LOG.warning("%s: undecodable message dropped (%s)", serial, e)
            return Outcome()
        mti = doc["t"]
        out = Outcome(mti=mti)
        ksn = ksn_of(doc)
        if ksn is not None and ikid and ksn[:8].hex().upper() != ikid:
            LOG.warning("%s: KSN of another initial key id", serial)
            ksn = None
        if ksn is None or not wire.mac_ok(raw, doc, lambda d, m: self.hsm.check_mac(ksn, d, m)):
            LOG.warning("%s: %s STAN %s: bad or missing MAC", serial, mti, doc.get("11"))
            if mti in ("0200", "0400", "0620", "0800"):
                out.rc = SECURITY
                out.answer = self._answer(doc, {"39": SECURITY}, ksn)
            return out
        out.ksn = ksn
        if doc.get("41") != serial:
            LOG.warning("%s: message names terminal %r: refused", serial, doc.get("41"))
            out.rc = NOT_PERMITTED
            out.answer = self._answer(doc, {"39": NOT_PERMITTED}, ksn)
            return out
        if mti == "0800":
            out.network = doc.get("70")
            out.rc = APPROVED if out.network in (SIGN_ON, SIGN_OFF, ECHO) else INVALID_TXN
            out.answer = self._answer(doc, {"39": out.rc, "70": doc.get("70", "")}, ksn)
            LOG.info("%s: 0800/%s -> %s", serial, out.network, out.rc)
        elif mti == "0610":
            LOG.info("%s: 0610 for STAN %s: %s", serial, doc.get("11"), doc.get("39"))
        elif mti in ("0200", "0400", "0620"):
            out.answer, out.rc = self._financial(serial, doc, ksn)
        else:
            LOG.warning("%s: MTI %s not handled", serial, mti)
        return out

    def _answer(self, doc, fields, ksn):
        ans = {"t": answer_mti(doc["t"])}
        for k in ECHOED:
            if k in doc:
                ans[k] = doc[k]
        ans.update(fields)
        if ksn is None:
            ans.pop("53", None)
            return wire.encode(ans, None)
        ans["53"] = ksn.hex()
        return wire.encode(ans, lambda data: self.hsm.mac(ksn, data))

    # ---- 0200 / 0400 / 0620 ------------------------------------------------------------------

    def _financial(self, serial, doc, ksn):
        """(answer, rc): idempotent by DE41 + DE11 + DE7."""
        stan, dt = doc.get("11", ""), doc.get("7", "")
        pre = self._prepare(doc, ksn)
        context = ("%s|%s|%s" % (serial, stan, dt)).encode()
        for _ in range(3):
            try:
                with self.ledger.db.transaction():
                    first = self.ledger.answer_for(serial, stan, dt)
                    if first is not None:
                        LOG.info("%s: %s STAN %s repeated: first answer again", serial, doc["t"], stan)
                        return self._again(self.hsm.unseal(first, context), ksn), None
                    rrn = new_rrn()
                    fields = self._apply(serial, doc, pre, rrn)
                    answer = self._answer(doc, fields, ksn)
                    self.ledger.remember_answer(serial, stan, dt, self.hsm.seal(answer, context))
            except Conflict:
                continue        # a concurrent twin won (or an RRN collided): read its answer
            LOG.info("%s: %s/%s STAN %s amount %s%s -> %s", serial, doc["t"], doc.get("3", ""),
                     stan, doc.get("4", "-"), (" card " + pre["masked"]) if pre.get("masked") else "",
                     fields["39"])
            return answer, fields["39"]
        LOG.error("%s: %s STAN %s: ledger conflicts", serial, doc["t"], stan)
        return self._answer(doc, {"39": MALFUNCTION}, ksn), MALFUNCTION

    def _again(self, first, ksn):
        """The first answer for a repeated request, MAC'd under the repeat's KSN: the device
        erased the first request's key when it moved on, so only this one can check it."""
        doc = wire.decode(first)
        doc["53"] = ksn.hex()
        return wire.encode(doc, lambda data: self.hsm.mac(ksn, data))

    def _prepare(self, doc, ksn):
        """The HSM's part of a card purchase, done outside the ledger transaction: the card row,
        whether the ARQC is good and whether the PIN is right. Never holds the PIN."""
        pre = {}
        if doc["t"] != "0200" or doc.get("3") != PURCHASE or doc.get("22") == ACCOUNT_ON_FILE:
            return pre
        pan = doc.get("2", "")
        if not pan.isdigit() or not 12 <= len(pan) <= 19:
            return pre
        card = self.ledger.card_by_hash(self.hsm.pan_hash(pan))
        if card is None:
            return pre
        pre["card"], pre["masked"] = card, card["pan_masked"]
        try:
            tags = dict(tlv.decode(bytes.fromhex(doc.get("55", ""))))
        except ValueError:
            tags = {}
        psn = doc.get("23") or tags.get(0x5F34, b"").hex() or card["psn"]
        pre["tags"], pre["psn"] = tags, psn
        try:
            pre["arqc_ok"] = self.hsm.verify_arqc(card["issuer_key_id"], pan, psn, tags)
        except HsmError as e:
            LOG.error("card %s: %s", card["pan_masked"], e)
            pre["arqc_ok"] = False
        if "52" in doc:
            pre["pin_ok"] = self.hsm.verify_pin(ksn, bytes.fromhex(doc["52"]), pan, card["pvv"])
        pre["pan"] = pan
        return pre

    def _apply(self, serial, doc, pre, rrn):
        """The ledger part, inside the transaction: decide, post, log; the answer's fields."""
        mti, proc = doc["t"], doc.get("3", "")
        log = dict(rrn=rrn, serial=serial, stan=doc.get("11", ""), dt=doc.get("7", ""), mti=mti,
                   amount=0, currency=doc.get("49", "000"))
        fields = {"37": rrn}
        try:
            if mti == "0400":
                log["kind"] = "reversal"
                self._reversal(doc, log)
            elif mti == "0620":
                log["kind"] = "refusal"
                self._refusal(serial, doc, log)
            elif proc == BALANCE:
                log["kind"] = "balance"
                fields["54"] = self._balance(serial, doc, log)
            elif proc == TRANSFER:
                log["kind"] = "transfer"
                self._transfer(serial, doc, log)
            elif proc == PURCHASE and doc.get("22") == ACCOUNT_ON_FILE:
                log["kind"] = "request-payment"
                self._pay_from_account(serial, doc, log)
            elif proc == PURCHASE:
                log["kind"] = "purchase"
                self._card_purchase(serial, doc, pre, log)
            else:
                log["kind"] = "unknown"
                raise Decline(INVALID_TXN)
            rc = APPROVED
        except Decline as d:
            rc = d.rc
        log["rc"] = rc
        if rc == APPROVED and log["kind"] in ("purchase", "request-payment", "transfer"):
            log["auth_code"] = fields["38"] = "%06d" % secrets.randbelow(10 ** 6)
        pending_postings = log.pop("postings", ())
        pending_reverse = log.pop("reverse", None)
        self.ledger.log(**log)
        for account_id, amount in pending_postings:
            self.ledger.post(rrn, account_id, amount)
        if pending_reverse is not None:
            self.ledger.reverse(pending_reverse, rrn)
        if log.get("request_id") and rc == APPROVED and mti == "0200":
            self.ledger.set_request_status(log["request_id"], "paid", rrn)
        if pre.get("arqc_ok"):
            fields["55"] = tlv.tlv(0x91, self.hsm.arpc(
                pre["card"]["issuer_key_id"], pre["pan"], pre["psn"], pre["tags"],
                rc.encode())).hex()
        fields["39"] = rc
        return fields

    # ---- the kinds ---------------------------------------------------------------------------

    def _amount(self, doc):
        a = doc.get("4", "")
        if not a.isdigit() or int(a) <= 0:
            raise Decline(INVALID_AMOUNT)
        return int(a)

    def _move(self, log, from_account, to_account, amount):
        """Debit one account and credit another (51 if the debit is not covered)."""
        if not self.ledger.debit(from_account, amount):
            raise Decline(NO_FUNDS)
        self.ledger.credit(to_account, amount)
        log["postings"] = ((from_account, -amount), (to_account, amount))

    def _owned(self, serial, account_id, currency=None):
        acct = self.ledger.account(account_id) if account_id else None
        if acct is None or self.ledger.binding(serial, account_id) != "owner":
            raise Decline(NOT_PERMITTED)
        if currency is not None and acct["currency"] != currency:
            raise Decline(NOT_PERMITTED)
        return acct

    def _request_for(self, serial, doc, amount):
        """The pushed request a payment names (DE48 ORD=), checked against the payment."""
        order = order_of(doc)
        req = self.ledger.request(serial=serial, order_no=order) if order else None
        if req is None or req["status"] != "pushed":
            raise Decline(INVALID_TXN)
        if req["amount"] != amount or req["currency"] != doc.get("49"):
            raise Decline(INVALID_AMOUNT)
        return req

    def _card_purchase(self, serial, doc, pre, log):
        amount = log["amount"] = self._amount(doc)
        card = pre.get("card")
        if card is None:
            raise Decline(INVALID_CARD)
        log["card_token"], log["account_id"] = card["token"], card["account_id"]
        req = self._request_for(serial, doc, amount) if "48" in doc else None
        if not pre["arqc_ok"] or card["status"] != "active":
            raise Decline(DO_NOT_HONOUR)
        if expired(card["expiry"]):
            raise Decline(EXPIRED)
        if "pin_ok" in pre:
            tries = self.ledger.pin_tries(card["token"])     # now, inside the transaction
            if tries >= PIN_TRIES:
                raise Decline(TRIES_EXCEEDED)
            if not pre["pin_ok"]:
                tries = self.ledger.count_pin_try(card["token"])
                raise Decline(TRIES_EXCEEDED if tries >= PIN_TRIES else WRONG_PIN)
            if tries:
                self.ledger.reset_pin_tries(card["token"])
        if self.ledger.account(card["account_id"])["currency"] != doc.get("49"):
            raise Decline(NOT_PERMITTED)
        if req is not None:
            log["request_id"] = req["id"]
            payee = CLEARING
        else:
            payee = (self.ledger.device(serial) or {}).get("merchant_account") or CLEARING
        self._move(log, card["account_id"], payee, amount)

    def _pay_from_account(self, serial, doc, log):
        amount = log["amount"] = self._amount(doc)
        log["account_id"] = doc.get("102")
        self._owned(serial, doc.get("102"), doc.get("49"))
        req = self._request_for(serial, doc, amount)
        log["request_id"] = req["id"]
        self._move(log, doc["102"], CLEARING, amount)

    def _balance(self, serial, doc, log):
        acct = self._owned(serial, doc.get("102"))
        log["account_id"], log["currency"] = acct["id"], acct["currency"]
        avail = acct["available"]
        return "1002%s%s%012d" % (acct["currency"], "C" if avail >= 0 else "D", abs(avail))

    def _transfer(self, serial, doc, log):
        amount = log["amount"] = self._amount(doc)
        src = self._owned(serial, doc.get("102"), doc.get("49"))
        log["account_id"] = src["id"]
        dst_id = doc.get("103")
        dst = self.ledger.account(dst_id) if dst_id else None
        if dst is None or dst_id == src["id"] or self.ledger.binding(serial, dst_id) is None \
                or dst["currency"] != src["currency"]:
            raise Decline(NOT_PERMITTED)
        self._move(log, src["id"], dst_id, amount)

    def _reversal(self, doc, log):
        log["amount"] = int(doc.get("4", "0") or 0) if doc.get("4", "").isdigit() else 0
        de90 = doc.get("90", "")
        if len(de90) != 42:
            raise Decline(FORMAT_ERROR)
        orig = self.ledger.original(log["serial"], de90[4:10], de90[10:20])
        # DE39 says why (68 no answer, 06 the terminal could not complete with the card): the
        # same undoing for every reason, logged for the acquirer's reconciliation.
        LOG.info("%s: 0400 STAN %s reverses STAN %s (reason %s)", log["serial"], log["stan"], de90[4:10],
                 doc.get("39", "-"))
        if orig is None or de90[:4] != "0200":
            raise Decline(UNKNOWN_ORIGINAL)
        if not orig["reversed"] and orig["rc"] == APPROVED:
            log["reverses"] = log["reverse"] = orig["rrn"]
            if orig["request_id"]:
                self.ledger.set_request_status(orig["request_id"], "pushed", None, only_from="paid")

    def _refusal(self, serial, doc, log):
        req = self.ledger.request(request_id=doc.get("37", ""))
        if req is None or req["device"] != serial:
            raise Decline(INVALID_TXN)
        log["request_id"] = req["id"]
        if not self.ledger.set_request_status(req["id"], "refused"):
            raise Decline(INVALID_TXN)


# ---- the server --------------------------------------------------------------------------------

TRACE_LEN = 500
PIN_BLOCK_NOT_SHOWN = "(PIN block, not shown)"


def _trace_value(de, value):
    if de == "2":
        return mask_pan(value)
    if de == "35":
        # PAN, separator (D or =), expiry, service code, discretionary data: only the PAN's
        # ends are shown, the rest is starred.
        pan = value[:next((i for i, c in enumerate(value) if not c.isdigit()), len(value))]
        return mask_pan(pan) + "*" * (len(value) - len(pan))
    if de == "52":
        return PIN_BLOCK_NOT_SHOWN
    if de == "55":
        n = len(value) // 2
        try:
            tags = " ".join("%X" % tag for tag, _ in tlv.decode(bytes.fromhex(value)))
        except ValueError:  # tlv.TlvError among them
            return "(%d bytes, not TLV)" % n
        return "(%d bytes) tags %s" % (n, tags)
    return value


def trace_fields(doc):
    """A decoded message's data elements as the trace shows them: {"2": "476173******0010", ...}."""
    return {de: _trace_value(de, value) for de, value in doc.items() if de.isdigit() and de != "1"}


class Trace:
    """The last TRACE_LEN messages, numbered from 0: since(n) gives those from number n on."""

    def __init__(self, size=TRACE_LEN):
        self.messages = collections.deque(maxlen=size)
        self.count = 0

    def record(self, direction, serial, raw):
        entry = {"seq": self.count, "time": time.time(), "dir": direction, "serial": serial}
        try:
            doc = wire.decode(raw)
            entry.update(mti=doc.get("t"), fields=trace_fields(doc))
        except (wire.WireError, KeyError, ValueError) as e:
            # Still shown: a message the host could not read is worth seeing (not its bytes).
            entry.update(mti=None, fields={}, error="%d bytes that do not decode: %s" % (len(raw), e))
        self.messages.append(entry)
        self.count += 1

    def since(self, n):
        return {"next": self.count, "messages": [m for m in self.messages if m["seq"] >= n]}


@dataclass
class Session:
    serial: str
    writer: asyncio.StreamWriter
    signed_on: bool = False
    last_ksn: bytes = None
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, raw):
        async with self.write_lock:
            self.writer.write(wire.frame(raw))
            await self.writer.drain()


class _Accept(asyncio.Protocol):
    """An accepted TCP connection, held unread until the host starts TLS on it (a reader
    attached before would swallow the ClientHello)."""

    def __init__(self, host):
        self.host = host

    def connection_made(self, transport):
        transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self.host._handshake(transport))
        self.host.tasks.add(task)           # held until done: the loop keeps only weak refs
        task.add_done_callback(self.host.tasks.discard)


def server_context(pki_dir):
    """TLS 1.2 or later, the host's certificate, a client certificate required and verified
    against the issuer CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki_dir / "host.pem", pki_dir / "host.key.pem")
    ctx.load_verify_locations(pki_dir / "ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class PushError(Exception):
    """A payment request that cannot be pushed (device not signed on)."""


class Host:
    """The TLS server: one long-lived connection per device, messages handled in a thread pool,
    pushes (0600) to signed-on devices."""

    def __init__(self, state, workers=8):
        self.state = state
        self.bank = Bank(state.ledger, state.hsm)
        self.pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="bank")
        self.sessions = {}
        self.trace = Trace()
        self._stan = itertools.count(secrets.randbelow(900000) + 1)
        self.server = None
        self.tasks = set()

    async def call(self, fn, *args):
        """fn(*args) in the ledger thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def start(self, host="127.0.0.1", port=0):
        # TLS is started per connection (not by start_server) so that a failed handshake (a
        # certificate of another CA, none at all) is logged as the refusal it is
        self._tls = server_context(self.state.pki_dir)
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Accept(self), host, port)
        return self.server.sockets[0].getsockname()[:2]

    async def _handshake(self, transport):
        """TLS on an accepted connection (not read from yet), then the device's session."""
        peer = transport.get_extra_info("peername")
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            tls = await loop.start_tls(transport, protocol, self._tls, server_side=True,
                                       ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        except (ssl.SSLError, OSError, asyncio.TimeoutError) as e:
            LOG.warning("connection from %s refused: TLS handshake: %s", peer, e)
            transport.close()
            return
        protocol.connection_made(tls)
        await self._connection(reader, asyncio.StreamWriter(tls, protocol, reader, loop))

    async def stop(self):
        if self.server is not None:
            self.server.close()
            for s in list(self.sessions.values()):
                s.writer.close()
            await self.server.wait_closed()
        self.pool.shutdown(wait=True)

    async def _identify(self, writer):
        """The serial of a registered, active device whose pinned certificate this is, or None."""
        sslobj = writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj else None
        if not der:
            return None, "no client certificate"
        subject = dict(x[0] for x in sslobj.getpeercert().get("subject", ()))
        serial = subject.get("commonName", "")
        device = await self.call(self.state.ledger.device, serial)
        if device is None:
            return None, "serial %r is not a registered device" % serial
        if device["status"] != "active":
            return None, "device %s is %s" % (serial, device["status"])
        if device["cert_sha256"] != pki.fingerprint(der):
            return None, "device %s presented a certificate other than its registered one" % serial
        return device, None

    async def _connection(self, reader, writer):
        peer = writer.get_extra_info("peername")
        device, why = await self._identify(writer)
        if device is None:
            LOG.warning("connection from %s refused: %s", peer, why)
            writer.close()
            return
        serial = device["serial"]
        old = self.sessions.get(serial)
        if old is not None:
            LOG.info("%s: new connection replaces the old one", serial)
            old.writer.close()
        session = self.sessions[serial] = Session(serial, writer)
        LOG.info("%s: connected from %s", serial, peer)
        try:
            while True:
                raw = await wire.read_frame(reader)
                if raw is None:
                    break
                self.trace.record("in", serial, raw)
                out = await self.call(self.bank.handle, serial, raw, device["ikid"])
                if out.ksn is not None:
                    session.last_ksn = out.ksn
                if out.network == SIGN_ON and out.rc == APPROVED:
                    session.signed_on = True
                elif out.network == SIGN_OFF:
                    session.signed_on = False
                if out.answer is not None:
                    self.trace.record("out", serial, out.answer)
                    await session.send(out.answer)
        except (wire.WireError, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as e:
            LOG.warning("%s: connection dropped: %s", serial, e)
        finally:
            if self.sessions.get(serial) is session:
                del self.sessions[serial]
            writer.close()
            LOG.info("%s: disconnected", serial)

    async def push(self, req):
        """Send a payment request (a ledger row) to its device as a 0600."""
        session = self.sessions.get(req["device"])
        if session is None or not session.signed_on or session.last_ksn is None:
            raise PushError("device %s is not signed on" % req["device"])
        stan = "%06d" % (next(self._stan) % 999999 + 1)
        ksn = session.last_ksn
        # DE12 + DE13: when the request expires (UTC, by the clock of DE7; PROTOCOL.md).
        expires = datetime.datetime.fromisoformat(req["expires"]).astimezone(datetime.timezone.utc)
        doc = {"t": "0600", "4": "%012d" % req["amount"], "7": wire.transmission_time(),
               "12": expires.strftime("%H%M%S"), "13": expires.strftime("%m%d"), "11": stan, "37": req["id"], "42": req["merchant_id"][:15].ljust(15),
               "43": req["merchant"][:40].ljust(40), "48": "ORD=" + req["order"],
               "49": req["currency"], "53": ksn.hex()}
        raw = await self.call(wire.encode, doc, lambda data: self.state.hsm.mac(ksn, data))
        self.trace.record("out", req["device"], raw)
        await session.send(raw)
        LOG.info("%s: 0600 STAN %s pushed request %s", req["device"], stan, req["id"])

