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

from tools.bank import alias, pki, updates, wire
from tools.bank.hsm import HsmError
from tools.bank.ledger import CLEARING, TRANSIT, Conflict, mask_pan
from tools.emvcard import tlv

LOG = logging.getLogger("tools.bank")

# DE39
APPROVED, DO_NOT_HONOUR, INVALID_TXN, INVALID_AMOUNT, INVALID_CARD = "00", "05", "12", "13", "14"
CANCELLED, UNKNOWN_ORIGINAL, FORMAT_ERROR, NO_FUNDS, EXPIRED = "17", "25", "30", "51", "54"
DUPLICATE = "94"
WRONG_PIN, NOT_PERMITTED, SECURITY, TRIES_EXCEEDED, MALFUNCTION = "55", "57", "63", "75", "96"
# A revoked device (admin revoke): every request of it answered "restricted card" (62), its
# sign-on first, which tells the device (PROTOCOL.md, "Updates and terminal management").
REVOKED = "62"
NO_RECORD = "25"  # a download of a package the host does not have
PIN_TRIES = 3
TLS_HANDSHAKE_TIMEOUT = 15
# How long after an approval its 0400 still undoes it: the device sends one within seconds
# (15 s without an answer, or the card refusing the ARPC), or after a reconnect or reboot. Later,
# a pushed request's merchant may have delivered: the payment stands (answer 12) and a dispute
# is the way back.
REVERSAL_WINDOW = 600
# A cryptogram's transaction date (9A) against the message's (DE13, else DE7) and the host's own
# UTC date: a day either way, for time zones around midnight.
DATE_SLACK = datetime.timedelta(days=1)
# An advice may come days after its offline approval (the bank away): its TC's date against the
# host's today within this (DE13, the approval's own date, still within DATE_SLACK of 9A).
ADVICE_AGE = datetime.timedelta(days=7)
# The most one offline approval may be (minor units), as the terminals' parameters have it
# (lib/emv/kernel.py TerminalConfig.offline_caps, its first): an advice above it is refused 13.
OFFLINE_CAP = 5000
# Cryptogram types (9F27's top two bits): what a 0200 carries, what an advice does.
TC, ARQC = 0x40, 0x80

PURCHASE, BALANCE, TRANSFER = "000000", "310000", "400000"
# Give an approved purchase back (ISO 8583 transaction type 20, "returns", as jPOS-CMF and the
# acquirers carry a refund), naming it by DE48 "RRN=<its RRN>": the host decides by its business
# day. Bought since the last cut-over: a void (the purchase cancelled whole, its postings undone
# as a 0400 undoes them); before it: a refund (part or all of what is left, the payee's account
# debited). The 0210's DE48 says which: "VOID=<RRN>" or "REFUND=<RRN>". A purchase approved
# offline is named by its advice's DE11 + DE7 instead, "ADVICE=<16 digits>" (the device has no
# RRN for it), and only once this device's advice was posted.
RETURN = "200000"
# The device's payment identifier (tools/bank/alias.py): its live one (one is given at the first
# ask), or a new one in place of it (the old one stops working with this transaction). Codes of
# ISO 8583's private-use range 9x; the answer's DE48 is "ALIAS=<alias>".
ALIAS, NEW_ALIAS = "900000", "910000"
# A top-up of the device's transit card from a bound account (PROTOCOL.md, "Top-up"): the account
# debited, the transit operator's TRANSIT credited; DE48 "CARD=<the card's 16 hex digits>". At
# most TOPUP_MAX at a time: what the card itself holds at most (lib/nfc/transit.py MAX_BALANCE),
# so that a device that lost count of its card's balance still cannot load more than one card.
TOP_UP = "920000"
TOPUP_MAX = 15000
ACCOUNT_ON_FILE = "010"
SIGN_ON, SIGN_OFF, ECHO = "001", "002", "301"
DOWNLOAD = "360"  # a record of an update package (PROTOCOL.md)
RECORD_MAX = 999  # DE72's most bytes
# Fields a 0210/0410/0630 echoes from its request (those present).
ECHOED = ("2", "3", "4", "7", "11", "41", "42", "48", "49", "53", "102", "103")
# The requests the host answers, and the fields PROTOCOL.md says are numeric (pyiso8583 takes any
# ASCII there) or printable text (ans): a message breaking either is a format error (30).
REQUESTS = ("0200", "0220", "0400", "0620", "0800")
NUMERIC = ("2", "3", "4", "7", "11", "12", "13", "14", "22", "23", "49", "70", "90")
TEXT = ("35", "37", "38", "39", "41", "42", "43", "48", "54", "102", "103")


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


def ksn_of(doc, ikid=None):
    """The 12-byte KSN of DE53 if it is one (a counter of 1 or more), of the initial key id ikid
    (hex) when given; else None."""
    try:
        ksn = bytes.fromhex(doc.get("53", ""))
    except ValueError:
        return None
    if len(ksn) != 12 or not int.from_bytes(ksn[8:], "big") or (ikid and ksn[:8].hex().upper() != ikid):
        return None
    return ksn


def malformed(doc):
    """Why a decoded message is not what PROTOCOL.md says (None if it is)."""
    for de in NUMERIC:
        if de in doc and not (doc[de].isascii() and doc[de].isdigit()):
            return "DE%s is not numeric" % de
    for de in TEXT:
        if de in doc and not (doc[de].isascii() and doc[de].isprintable()):
            return "DE%s is not printable ASCII" % de
    return None


def _date(yymmdd):
    try:
        return datetime.date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return None


def _near(day, mmdd):
    """True if date day is within DATE_SLACK of month-day mmdd in a year around it."""
    for year in (day.year - 1, day.year, day.year + 1):
        try:
            other = datetime.date(year, int(mmdd[:2]), int(mmdd[2:4]))
        except ValueError:
            continue
        if abs(other - day) <= DATE_SLACK:
            return True
    return False


def cryptogram_mismatch(doc, tags, today=None, kind=ARQC):
    """The response code (13 or 12) if the data the card's cryptogram covers is not this
    message's: amount (9F02 = DE4) and currency (5F2A = DE49) 13; transaction type (9C, DE3),
    date (9A = DE13, else DE7, and the host's today, a day either way), cryptogram type (9F27:
    kind, an ARQC in a 0200, the card asking to go online; a TC in an advice) 12. None if it is."""
    if tags.get(0x9F02) != bytes.fromhex(doc.get("4", "").rjust(12, "0")[-12:]) \
            or tags.get(0x5F2A) != bytes.fromhex("0" + doc.get("49", "000")):
        return INVALID_AMOUNT
    if tags.get(0x9C) != bytes.fromhex(doc.get("3", "")[:2].rjust(2, "0")):
        return INVALID_TXN
    if 0x9F27 in tags and bytes(tags[0x9F27])[:1] and bytes(tags[0x9F27])[0] & 0xC0 != kind:
        return INVALID_TXN
    day = _date(bytes(tags.get(0x9A, b"")).hex())
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    local = doc.get("13") or doc.get("7", "")[:4]
    if day is None or abs(day - today) > (DATE_SLACK if kind == ARQC else ADVICE_AGE) or not _near(day, local):
        return INVALID_TXN
    return None


def expired(expiry_yymm, today=None):
    today = today or datetime.date.today()
    return (int(expiry_yymm[:2]), int(expiry_yymm[2:])) < (today.year % 100, today.month)


def order_of(doc):
    de48 = doc.get("48", "")
    return de48[4:] if de48.startswith("ORD=") else None


def returned_rrn(doc):
    """The RRN a return (200000) names in DE48 "RRN=<12 digits>", or None."""
    de48 = doc.get("48", "")
    rrn = de48[4:]
    return rrn if de48.startswith("RRN=") and len(rrn) == 12 and rrn.isdigit() else None


class Bank:
    """Message processing over a ledger and an HSM; thread-safe (one DB connection per thread)."""

    def __init__(self, ledger, hsm, reversal_window=REVERSAL_WINDOW, packages=None, offline_cap=OFFLINE_CAP):
        self.ledger = ledger
        self.hsm = hsm
        self.reversal_window = reversal_window
        self.packages = packages  # the update packages' directory (tools/bank/updates.py)
        self.offline_cap = offline_cap

    # ---- entry -------------------------------------------------------------------------------

    def handle(self, serial, raw, ikid=None):
        """The Outcome of a message from device serial; ikid (hex): the device's initial key id,
        when registered, which the message's KSN must carry. Never raises: what cannot be read
        is a format error (30), what fails inside the host a malfunction (96), both answered."""
        try:
            doc = wire.decode(raw)
            if not (doc["t"].isascii() and doc["t"].isdigit()):
                raise wire.WireError("MTI %r is not 4 digits" % doc["t"], doc)
        except wire.WireError as e:
            return self._unreadable(serial, raw, e, ikid)
        mti = doc["t"]
        out = Outcome(mti=mti)
        ksn = ksn_of(doc, ikid)
        try:
            if ksn is None or not wire.mac_ok(raw, doc, lambda d, m: self.hsm.check_mac(ksn, d, m)):
                LOG.warning("%s: %s STAN %s: bad or missing MAC, or a KSN not of the device",
                            serial, mti, doc.get("11"))
                if mti[2] in "02468":
                    out.rc = SECURITY
                    out.answer = self._answer(doc, {"39": SECURITY}, ksn)
                return out
            if not self._fresh(serial, ksn, doc):
                if mti[2] in "02468":
                    out.rc = SECURITY
                    out.answer = self._answer(doc, {"39": SECURITY}, ksn)
                return out
            out.ksn = ksn
            why = malformed(doc) or (None if mti in REQUESTS + ("0610",) else "MTI %s not handled" % mti)
            if why:
                LOG.warning("%s: %s STAN %s: format error: %s", serial, mti, doc.get("11"), why)
                if mti[2] in "02468":
                    out.rc = FORMAT_ERROR
                    out.answer = self._answer(doc, {"39": FORMAT_ERROR}, ksn, echo=False)
                return out
            if doc.get("41") != serial:
                LOG.warning("%s: message names terminal %r: refused", serial, doc.get("41"))
                out.rc = NOT_PERMITTED
                out.answer = self._answer(doc, {"39": NOT_PERMITTED}, ksn)
                return out
            if mti in REQUESTS and (self.ledger.device(serial) or {}).get("status") == "revoked":
                LOG.warning("%s: %s STAN %s: the device is revoked: refused", serial, mti, doc.get("11"))
                out.network = doc.get("70") if mti == "0800" else None
                out.rc = REVOKED
                out.answer = self._answer(doc, {"39": REVOKED, "48": None}, ksn)
                return out
            if mti == "0800":
                out.network = doc.get("70")
                fields = {"39": INVALID_TXN, "48": None}
                if out.network == SIGN_ON:
                    fields = self._sign_on(serial, doc)
                elif out.network == DOWNLOAD:
                    fields = self._download(serial, doc)
                elif out.network in (SIGN_OFF, ECHO):
                    fields["39"] = APPROVED
                out.rc = fields["39"]
                fields["70"] = doc.get("70", "")
                out.answer = self._answer(doc, fields, ksn)
                LOG.info("%s: 0800/%s -> %s", serial, out.network, out.rc)
            elif mti == "0610":
                LOG.info("%s: 0610 for STAN %s: %s", serial, doc.get("11"), doc.get("39"))
            else:
                out.answer, out.rc = self._financial(serial, doc, ksn)
        except Exception:  # a fault of the host's own (its database, a bug): said, not dropped
            LOG.exception("%s: %s STAN %s: system malfunction", serial, mti, doc.get("11"))
            out.rc, out.network = MALFUNCTION, None
            out.answer = self._answer(doc, {"39": MALFUNCTION}, out.ksn, echo=False) \
                if mti[2] in "02468" else None
        return out

    def _fresh(self, serial, ksn, doc):
        """True if the KSN's transaction counter is above every one the device used before under
        its initial key (the device advances it for every message it sends); else logged: the message was played
        again, or the device's store was put back to an earlier copy (rolled back, cloned)."""
        ikid, counter = ksn[:8].hex().upper(), int.from_bytes(ksn[8:], "big")
        if self.ledger.advance_ksn(serial, ikid, counter):
            return True
        LOG.error("%s: %s STAN %s: KSN counter %d used already (the device is at %s): a replay, "
                  "or a rolled-back or cloned device: refused", serial, doc["t"], doc.get("11"),
                  counter, self.ledger.ksn_counter(serial, ikid))
        return False

    def _unreadable(self, serial, raw, error, ikid):
        """A message that does not decode: a format error (30) as the answer of its MTI (0810
        when its MTI cannot be read; none for an answer's MTI, as for any answer). MAC'd under
        its KSN when the fields read before the fault give one and the message's last 8 bytes
        are its MAC under it (an authentic message the device got wrong); else sent without MAC
        or DE53 (the device drops it, as any answer it cannot check)."""
        part = error.partial
        head = bytes(raw[:4])
        mti = part.get("t") or (head.decode() if head.isdigit() else None)
        LOG.warning("%s: %s: format error: %s", serial, mti or "unreadable message", error)
        if mti is not None and not (len(mti) == 4 and mti.isascii() and mti.isdigit()):
            mti = None
        if mti is not None and mti[2] not in "02468":
            return Outcome(mti=mti)
        doc = {"t": mti or "0800", "41": serial}
        if len(part.get("11", "")) == 6 and part["11"].isdigit():
            doc["11"] = part["11"]
        ksn = ksn_of(part, ikid)
        if ksn is not None and not (len(raw) > 8 and self.hsm.check_mac(ksn, bytes(raw[:-8]), bytes(raw[-8:]))
                                    and self._fresh(serial, ksn, doc)):
            ksn = None
        return Outcome(answer=self._answer(doc, {"39": FORMAT_ERROR}, ksn), mti=doc["t"],
                       rc=FORMAT_ERROR)

    def _answer(self, doc, fields, ksn, echo=True):
        """The answer to doc with fields, MAC'd under ksn (None: neither MAC nor DE53). Without
        echo (a message found malformed), only its STAN and terminal id come back."""
        ans = {"t": answer_mti(doc["t"])}
        for k in ECHOED if echo else ("11", "41"):
            if k in doc:
                ans[k] = doc[k]
        for k, v in fields.items():  # None: not echoed
            if v is None:
                ans.pop(k, None)
            else:
                ans[k] = v
        if ksn is None:
            ans.pop("53", None)
            return wire.encode(ans, None)
        ans["53"] = ksn.hex()
        return wire.encode(ans, lambda data: self.hsm.mac(ksn, data))

    # ---- 0800: sign-on's versions, update records ------------------------------------------

    def _sign_on(self, serial, doc):
        """Approved; the versions its DE48 reports recorded (a sign-on without them, of a
        firmware from before updates, is approved and records nothing; one without FILES=, of a
        firmware from before files updates, records the rest and is offered no files), and the
        answer's DE48 names what is newer for it: CFG=<version> of the parameters,
        FILES=<version> of the files, UPD=<package id> of the firmware."""
        reported = _pairs(doc.get("48", ""))
        offer = []
        try:
            fw, svn, cfg = (int(reported[k]) for k in ("FW", "SVN", "CFG"))
            files = int(reported["FILES"]) if "FILES" in reported else None
        except (KeyError, ValueError):
            return {"39": APPROVED, "48": None}
        self.ledger.signed_on(serial, fw, svn, cfg, files)
        for name, kind, has in (("CFG", updates.PARAMETERS, cfg), ("FILES", updates.FILES, files)):
            latest = self.ledger.latest_package(kind)
            if latest and has is not None and latest[1] > has:
                offer.append("%s=%d" % (name, latest[1]))
        latest = self.ledger.latest_package(updates.FIRMWARE)
        if latest and latest[1] > fw:
            offer.append("UPD=" + latest[0])
        return {"39": APPROVED, "48": ";".join(offer) or None}

    def _download(self, serial, doc):
        """A record of an update package: DE48 PKG=<id>;OFF=<offset>;LEN=<length> asks, the
        answer's DE48 PKG=<id>;OFF=<offset>;SIZE=<package size> and DE72 the bytes (fewer than
        asked only at the package's end; none past it)."""
        ask = _pairs(doc.get("48", ""))
        try:
            pid, offset, length = ask["PKG"], int(ask["OFF"]), int(ask["LEN"])
            if offset < 0 or not 0 < length <= RECORD_MAX:
                raise ValueError(length)
        except (KeyError, ValueError):
            return {"39": FORMAT_ERROR, "48": None}
        got = updates.record(self.ledger, self.packages, pid, offset, length) if self.packages else None
        if got is None:
            LOG.warning("%s: download of package %s: no such package", serial, pid)
            return {"39": NO_RECORD, "48": None}
        data, size = got
        fields = {"39": APPROVED, "48": "PKG=%s;OFF=%d;SIZE=%d" % (pid, offset, size)}
        if data:
            fields["72"] = data.hex()
        return fields

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
        if doc["t"] not in ("0200", "0220") or doc.get("3") != PURCHASE or doc.get("22") == ACCOUNT_ON_FILE:
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
        # The PAN sequence number as the card's keys take it: its last two digits.
        psn = (doc.get("23") or tags.get(0x5F34, b"").hex() or card["psn"]).rjust(2, "0")[-2:]
        pre["tags"], pre["psn"] = tags, psn
        try:
            pre["arqc_ok"] = psn.isdigit() and self.hsm.verify_arqc(card["issuer_key_id"], pan, psn, tags)
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
            elif mti == "0220":
                log["kind"] = "offline"
                self._advice(serial, doc, pre, log)
            elif mti == "0620":
                log["kind"] = "refusal"
                self._refusal(serial, doc, log)
            elif proc == BALANCE:
                log["kind"] = "balance"
                fields["54"] = self._balance(serial, doc, log)
            elif proc == TRANSFER:
                log["kind"] = "transfer"
                self._transfer(serial, doc, log)
            elif proc == RETURN:
                log["kind"] = "refund"
                fields["48"] = self._return(serial, doc, log)
            elif proc == TOP_UP:
                log["kind"] = "top-up"
                self._top_up(serial, doc, log)
            elif proc in (ALIAS, NEW_ALIAS):
                log["kind"] = "alias" if proc == ALIAS else "new-alias"
                fields["48"] = "ALIAS=" + self._alias(serial, proc == NEW_ALIAS)
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
        if rc == APPROVED and log["kind"] in ("purchase", "offline", "request-payment", "transfer", "void", "refund",
                                              "top-up"):
            log["auth_code"] = fields["38"] = "%06d" % secrets.randbelow(10 ** 6)
        self._book(log)
        if log.get("request_id") and rc == APPROVED and log["kind"] in ("purchase", "request-payment") \
                and not self.ledger.set_request_status(log["request_id"], "paid", rrn):
            raise Conflict("request %s is no longer pushed" % log["request_id"])  # never: locked
        if pre.get("arqc_ok") and mti == "0200":
            fields["55"] = tlv.tlv(0x91, self.hsm.arpc(
                pre["card"]["issuer_key_id"], pre["pan"], pre["psn"], pre["tags"],
                rc.encode())).hex()
        fields["39"] = rc
        return fields

    def _book(self, log):
        """Log a decided transaction (log: ledger.log's arguments) and do what it leaves
        pending: its postings, the transaction it reverses (a 0400, a void), the purchase it gives
        back (a void, a refund)."""
        rrn = log["rrn"]
        pending_postings = log.pop("postings", ())
        pending_reverse = log.pop("reverse", None)
        pending_return = log.pop("returns", None)
        self.ledger.log(**log)
        for account_id, amount in pending_postings:
            self.ledger.post(rrn, account_id, amount)
        if pending_reverse is not None:
            self.ledger.reverse(pending_reverse, rrn)
        if pending_return is not None:
            self.ledger.add_refund(rrn, *pending_return)

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
        # Locked: a second payment of it (another 0200, another host process) waits for this
        # transaction's end and then finds it paid.
        req = self.ledger.request(serial=serial, order_no=order, lock=True) if order else None
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
        # The cryptogram is the card's own: its ATC is taken (whatever the outcome, the card
        # counted it) and must be new; and the data it covers must be this message's.
        atc = int.from_bytes(pre["tags"][0x9F36], "big")
        if not self.ledger.advance_atc(card["token"], pre["psn"], atc):
            LOG.error("%s: card %s ATC %d seen already: a replayed cryptogram or a cloned card",
                      serial, card["pan_masked"], atc)
            raise Decline(DO_NOT_HONOUR)
        mismatch = cryptogram_mismatch(doc, pre["tags"])
        if mismatch:
            LOG.warning("%s: card %s: the cryptogram's data is not the message's (%s)", serial,
                        card["pan_masked"], mismatch)
            raise Decline(mismatch)
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

    def _advice(self, serial, doc, pre, log):
        """An offline approval told afterwards (0220, PROTOCOL.md "Offline approvals"): the
        card's TC, checked as an ARQC is, posted once per TC. The card's account is debited
        even beyond what it has: the card approved, the issuer carries that risk."""
        amount = log["amount"] = self._amount(doc)
        card = pre.get("card")
        if card is None:
            raise Decline(INVALID_CARD)
        log["card_token"], log["account_id"] = card["token"], card["account_id"]
        if amount > self.offline_cap:
            LOG.warning("%s: advice of %d above the offline cap %d: refused", serial, amount, self.offline_cap)
            raise Decline(INVALID_AMOUNT)
        if not pre["arqc_ok"]:
            LOG.error("%s: card %s: the advice's TC does not verify", serial, card["pan_masked"])
            raise Decline(DO_NOT_HONOUR)
        mismatch = cryptogram_mismatch(doc, pre["tags"], kind=TC)
        if mismatch:
            LOG.warning("%s: card %s: the TC's data is not the advice's (%s)", serial, card["pan_masked"], mismatch)
            raise Decline(mismatch)
        atc = int.from_bytes(pre["tags"][0x9F36], "big")
        if not self.ledger.take_offline_tc(card["token"], pre["psn"], atc):
            LOG.error("%s: card %s: a TC of ATC %d posted already", serial, card["pan_masked"], atc)
            raise Decline(DUPLICATE)
        # Upwards only, as for an ARQC: but a lower one is no replay here (forwarded late).
        self.ledger.advance_atc(card["token"], pre["psn"], atc)
        if card["status"] != "active":
            raise Decline(DO_NOT_HONOUR)
        if expired(card["expiry"]):
            raise Decline(EXPIRED)
        if self.ledger.account(card["account_id"])["currency"] != doc.get("49"):
            raise Decline(NOT_PERMITTED)
        payee = (self.ledger.device(serial) or {}).get("merchant_account") or CLEARING
        self.ledger.credit(card["account_id"], -amount)
        self.ledger.credit(payee, amount)
        log["postings"] = ((card["account_id"], -amount), (payee, amount))

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

    def _top_up(self, serial, doc, log):
        """Load the device's transit card from an account bound to it as its owner's (57 for any
        other, as for a transfer), in its currency, 0 < DE4 <= TOPUP_MAX (13); 51 if not covered."""
        amount = log["amount"] = self._amount(doc)
        card = doc.get("48", "")[5:]
        if not doc.get("48", "").startswith("CARD=") or len(card) != 16 \
                or any(c not in "0123456789ABCDEF" for c in card):
            raise Decline(FORMAT_ERROR)
        src = self._owned(serial, doc.get("102"), doc.get("49"))
        log["account_id"] = src["id"]
        if amount > TOPUP_MAX:
            raise Decline(INVALID_AMOUNT)
        self._move(log, src["id"], TRANSIT, amount)
        LOG.info("%s: top-up of transit card %s: %d from %s", serial, card, amount, src["id"])

    def _return(self, serial, doc, log):
        """A return from the device that made the purchase (its own only: another's is the
        same 12 as one that never was, or 25 named by its advice); the 0210's DE48."""
        amount = log["amount"] = self._amount(doc)
        de48 = doc.get("48", "")
        if de48.startswith("ADVICE="):
            orig = self._advised(serial, de48[7:])
        else:
            orig = self.ledger.transaction(returned_rrn(doc) or "", lock=True)
        if orig is None or orig["serial"] != serial:
            raise Decline(INVALID_TXN)
        self.give_back(orig, amount, doc.get("49"), log)
        return "%s=%s" % (log["kind"].upper(), orig["rrn"])

    def _advised(self, serial, key):
        """The offline purchase a return names by its advice's DE11 + DE7 (key: 16 digits), as
        DE90 names a reversal's original: looked for among this device's transactions only, and
        taken only if posted. Decline 25 for any other: another device's, one never received
        (still in the device's batch), one refused (nothing was paid)."""
        advice = self.ledger.original(serial, key[:6], key[6:]) if len(key) == 16 and key.isdigit() else None
        if advice is None or advice["mti"] != "0220" or advice["rc"] != APPROVED:
            raise Decline(UNKNOWN_ORIGINAL)
        return self.ledger.transaction(advice["rrn"], lock=True)

    def give_back(self, orig, amount, currency, log):
        """Void or refund amount of purchase orig (locked), deciding inside the caller's ledger
        transaction: log["kind"] becomes "void" or "refund" and log what _book does. Decline 12
        for what is not an approved purchase (online, or an offline one's advice posted) standing
        (declined, reversed, voided, a void or refund itself), 13 for an amount beyond what is
        left of it (or, the same business day, not all of it: a void is whole) or another
        currency, 51 when the payee's account no longer covers a refund."""
        if orig["mti"] not in ("0200", "0220") or orig["kind"] not in ("purchase", "request-payment", "offline") \
                or orig["rc"] != APPROVED or orig["reversed"]:
            raise Decline(INVALID_TXN)
        if currency != orig["currency"]:
            raise Decline(INVALID_AMOUNT)
        _, opened = self.ledger.business_day(lock=True)
        left = orig["amount"] - self.ledger.refunded(orig["rrn"])
        if not 0 < amount <= left:
            raise Decline(INVALID_AMOUNT)
        log["account_id"], log["request_id"] = orig["account_id"], orig["request_id"]
        status = None
        if orig["created"] >= opened:
            if amount != orig["amount"]:
                raise Decline(INVALID_AMOUNT)
            log["kind"], log["reverse"], status = "void", orig["rrn"], "voided"
        else:
            posted = self.ledger.posted(orig["rrn"])
            payer = next(a for a, v in posted.items() if v < 0)
            payee = next(a for a, v in posted.items() if v > 0)
            log["kind"] = "refund"
            self._move(log, payee, payer, amount)
            if amount == left:
                status = "refunded"
        log["returns"] = (orig["rrn"], amount)
        if status and orig["request_id"]:
            self.ledger.set_request_status(orig["request_id"], status, orig["rrn"], only_from="paid")
        LOG.info("%s %s of %s: %d of %d", log["serial"], log["kind"], orig["rrn"], amount, orig["amount"])

    def merchant_return(self, merchant_id, req, amount, reference):
        """A merchant API refund (or void) of its paid request req, idempotent by reference:
        {rrn, kind, amount, original, again} (again: the reference's first refund, nothing more
        done); Decline as give_back, or 94 for a reference used for another refund."""
        who = "@" + merchant_id         # a device serial is 8 letters and digits, never this
        for _ in range(3):
            try:
                with self.ledger.db.transaction():
                    orig = self.ledger.transaction(req["rrn"] or "", lock=True)
                    first = self.ledger.refund_by_reference(who, reference)
                    if first is not None:
                        if (first["original"], first["amount"]) != (req["rrn"], amount):
                            raise Decline(DUPLICATE)
                        kind = self.ledger.transaction(first["rrn"])["kind"]
                        return dict(first, kind=kind, again=True)
                    if orig is None or orig["request_id"] != req["id"]:
                        raise Decline(INVALID_TXN)
                    log = dict(rrn=new_rrn(), serial=who, stan=reference, dt="", mti="API",
                               amount=amount, currency=orig["currency"], rc=APPROVED)
                    self.give_back(orig, amount, orig["currency"], log)
                    self._book(log)
            except Conflict:
                continue        # a concurrent twin (or an RRN collision): look again
            return {"rrn": log["rrn"], "kind": log["kind"], "amount": amount, "original": orig["rrn"],
                    "again": False}
        raise Decline(MALFUNCTION)

    def _alias(self, serial, new):
        """The device's live alias; a fresh one if it has none or new is asked (the old one
        retired in the same transaction). A collision with any alias ever issued, or a rotation
        of the same device committed meanwhile, is a Conflict: _financial tries again."""
        current = None if new else self.ledger.alias_of(serial)
        if current is None:
            current = alias.new()
            self.ledger.give_alias(serial, current)
            LOG.info("%s: payment identifier %s", serial, "rotated" if new else "issued")
        return current

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
        if orig is None or de90[:4] != "0200" or orig["mti"] != "0200":
            raise Decline(UNKNOWN_ORIGINAL)
        # For the transaction it names: its amount and currency (the device sends the 0200's).
        if ("4" in doc and int(doc["4"]) != orig["amount"]) \
                or ("49" in doc and doc["49"] != orig["currency"]):
            raise Decline(INVALID_AMOUNT)
        if not orig["reversed"] and orig["rc"] == APPROVED:
            age = (datetime.datetime.now(datetime.timezone.utc)
                   - datetime.datetime.fromisoformat(orig["created"])).total_seconds()
            # A top-up is undone at any age: the device reverses one only while it has not put
            # the value on its card (PROTOCOL.md, "Top-up"), and nobody else can have delivered
            # anything for it; its 0400 may come after a long power cut.
            if age > self.reversal_window and orig["kind"] != "top-up":
                LOG.warning("%s: 0400 STAN %s: %s approved %d s ago, past the %d s window: refused",
                            log["serial"], log["stan"], orig["rrn"], age, self.reversal_window)
                raise Decline(INVALID_TXN)
            if self.ledger.refunded(orig["rrn"]):
                # Refunded in part after a cut-over inside the window: undoing it whole would
                # give the refunded part back twice.
                raise Decline(INVALID_TXN)
            log["reverses"] = log["reverse"] = orig["rrn"]
            if orig["request_id"] and orig["kind"] in ("purchase", "request-payment"):
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


def _pairs(text):
    """{key: value} of a DE48 of key=value pairs separated by ";"."""
    return dict(p.split("=", 1) for p in text.split(";") if "=" in p)


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
        self.bank = Bank(state.ledger, state.hsm, packages=updates.packages_dir(state))
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
        if device["status"] not in ("active", "revoked"):  # a revoked one is told at sign-on
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

