"""A simulated terminal in CPython: what the host tests and the load generator talk to the bank
with. It holds a device's TLS key and certificate and its DUKPT initial key, advances its KSN
per message, MACs what it sends and checks the MAC of what it gets, builds PIN blocks (psec,
ISO 9564 format 4) and ARQCs (tools/emvcard/cryptogram.py). It answers pushes (0600) with a
0610 and queues them for the caller.

This is a test terminal on the host's side of the fence: its DUKPT is tools/bank/hsm.py's; the
device's own implementation (lib/dukpt.py) is independent.
"""

import asyncio
import datetime
import ssl
from dataclasses import dataclass

from psec import pinblock

from tools.bank import hsm as dukpt
from tools.bank import wire
from tools.emvcard import cryptogram, tlv


class TerminalError(Exception):
    """No answer in time, a bad MAC on an answer, or the connection is gone."""


@dataclass
class SimCard:
    """A chip card as the terminal sees it after reading it: enough to build a 0200."""
    pan: str
    expiry: str                 # YYMM
    psn: str
    imk: bytes                  # the issuer master key: the card's keys derive from it
    atc: int = 0
    currency: str = "978"
    version: str = cryptogram.VISA_CVN10  # its cryptogram version (tools/emvcard/cryptogram.py)

    def icc_data(self, amount, unpredictable=b"\x12\x34\x56\x78", today=None, cid=0x80):
        """DE55 with a fresh ARQC (cid 0x40: a TC, an offline approval's) (the card's ATC
        advanced): the tags the cryptogram covers."""
        self.atc += 1
        today = today or datetime.date.today()
        tags = {0x9F02: bytes.fromhex("%012d" % amount), 0x9F03: bytes(6), 0x9F1A: bytes.fromhex("0250"),
                0x95: bytes(5), 0x5F2A: bytes.fromhex("0" + self.currency),
                0x9A: bytes.fromhex(today.strftime("%y%m%d")), 0x9C: b"\x00",
                0x9F37: unpredictable, 0x82: bytes.fromhex("3900"),
                0x9F36: self.atc.to_bytes(2, "big"),
                0x9F10: cryptogram.iad(self.version, bytes(cryptogram.CVR_LENGTH[self.version]))}
        tags[0x9F26] = cryptogram.cryptogram(self.imk, self.pan, self.psn, tags)
        tags[0x9F27] = bytes((cid,))
        tags[0x5F34] = bytes.fromhex(self.psn.rjust(2, "0")[-2:])
        return tags

    def check_arpc(self, tags, issuer_auth):
        """True if tag 91 is the issuer's answer to this card's ARQC (method 1: ARPC || ARC,
        method 2: ARPC || CSU, whose approval must be the ARC's)."""
        arc = issuer_auth[8:10] if cryptogram.VERSIONS[self.version][2] == 1 else \
            (b"00" if issuer_auth[5:6] == bytes((cryptogram.CSU_APPROVED,)) else b"05")
        return cryptogram.issuer_auth(self.imk, self.pan, self.psn, tags, arc) == bytes(issuer_auth)


class Terminal:
    """One simulated device connection. Use: `t = await Terminal.connect(...)`, `await
    t.sign_on()`, `await t.purchase(card, amount, pin=...)`..."""

    def __init__(self, serial, initial_key, initial_key_id, counter=0):
        self.serial = serial
        self.initial_key = initial_key
        self.ikid = bytes(initial_key_id)
        self.counter = counter
        self.stan = 0
        self.pushes = asyncio.Queue()
        self._pending = {}
        self._reader_task = None
        self.reader = self.writer = None

    @staticmethod
    def context(ca, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(ca)
        ctx.load_cert_chain(cert, key)
        return ctx

    async def open(self, host, port, ssl_context, server_hostname="localhost"):
        self.reader, self.writer = await asyncio.open_connection(
            host, port, ssl=ssl_context, server_hostname=server_hostname)
        self._reader_task = asyncio.create_task(self._read_loop())
        return self

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, ssl.SSLError):
                pass
        if self._reader_task is not None:
            self._reader_task.cancel()

    # ---- DUKPT, MAC ----------------------------------------------------------------------------

    def next_ksn(self):
        """The next KSN: the counter advanced, skipping counters with more than 16 one bits."""
        self.counter += 1
        while bin(self.counter).count("1") > 16:
            self.counter += 1
        return self.ikid + self.counter.to_bytes(4, "big")

    def key(self, ksn, usage):
        return dukpt.working_key(self.initial_key, ksn, usage)

    def mac(self, ksn, data):
        return dukpt.aes_cmac(self.key(ksn, dukpt.KEY_USAGE_MAC_BOTH), data)[:dukpt.MAC_LEN]

    # ---- messages --------------------------------------------------------------------------

    def build(self, mti, fields, ksn=None, stan=None, when=None):
        """(raw, doc, ksn): a MAC'd message with the terminal's own DE7, DE11, DE41, DE53."""
        ksn = ksn or self.next_ksn()
        if stan is None:
            self.stan = self.stan % 999999 + 1
            stan = "%06d" % self.stan
        doc = {"t": mti, "7": wire.transmission_time(when), "11": stan, "41": self.serial,
               "53": ksn.hex()}
        doc.update(fields)
        return wire.encode(doc, lambda data: self.mac(ksn, data)), doc, ksn

    async def send_raw(self, raw, answer_mti, stan, timeout=15):
        """Send message bytes, wait for the answer (MTI + STAN), check its MAC; the answer doc."""
        fut = asyncio.get_running_loop().create_future()
        self._pending[(answer_mti, stan)] = fut
        self.writer.write(wire.frame(raw))
        await self.writer.drain()
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TerminalError("no %s for STAN %s in %d s" % (answer_mti, stan, timeout)) from None
        finally:
            self._pending.pop((answer_mti, stan), None)

    async def request(self, mti, fields, **kw):
        raw, doc, _ = self.build(mti, fields, **kw)
        return await self.send_raw(raw, mti[:2] + str(int(mti[2]) + 1) + mti[3], doc["11"])

    async def _read_loop(self):
        try:
            while True:
                raw = await wire.read_frame(self.reader)
                if raw is None:
                    break
                doc = wire.decode(raw)
                ksn = bytes.fromhex(doc.get("53", ""))
                doc["mac_ok"] = len(ksn) == 12 and wire.mac_ok(
                    raw, doc, lambda d, m: self.mac(ksn, d) == m)
                doc["raw"] = raw
                if doc["t"] == "0600":
                    await self._ack_push(doc)
                    continue
                fut = self._pending.get((doc["t"], doc.get("11")))
                if fut is not None and not fut.done():
                    fut.set_result(doc)
        except (ConnectionError, wire.WireError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(TerminalError("connection closed"))

    async def _ack_push(self, doc):
        raw, _, _ = self.build("0610", {"39": "00"}, stan=doc["11"])
        self.writer.write(wire.frame(raw))
        await self.writer.drain()
        await self.pushes.put(doc)

    # ---- the transactions --------------------------------------------------------------------

    async def sign_on(self, code="001"):
        return await self.request("0800", {"70": code})

    def purchase_message(self, card, amount, pin=None, order=None, currency="978", tags=None, mti="0200",
                         stan=None, when=None):
        """(raw, doc, tags) of a 0200 purchase: DE55 with the card's ARQC (a fresh one, or the
        tags given: a cryptogram made for other data), DE52 when pin, DE48 when it pays a pushed
        order. mti 0220: the advice of an offline approval, the card's TC in DE55 (stan and
        when: a resend's, kept from the first). Built, not sent (a test may send it twice, or
        spoil it)."""
        ksn = self.next_ksn()
        tags = tags or card.icc_data(amount, cid=0x40 if mti == "0220" else 0x80)
        now = datetime.datetime.now(datetime.timezone.utc)
        fields = {"2": card.pan, "3": "000000", "4": "%012d" % amount,
                  "12": now.strftime("%H%M%S"), "13": now.strftime("%m%d"), "14": card.expiry,
                  "22": "051", "23": "%03d" % int(card.psn), "42": "POCKETTERMINAL ",
                  "49": currency,
                  "55": tlv.tlvs(*sorted(tags.items())).hex()}
        if pin is not None:
            fields["52"] = pinblock.encipher_pinblock_iso_4(
                self.key(ksn, dukpt.KEY_USAGE_PIN), pin, card.pan).hex()
        if order is not None:
            fields["48"] = "ORD=" + order
        raw, doc, _ = self.build(mti, fields, ksn=ksn, stan=stan, when=when)
        return raw, doc, tags

    async def purchase(self, card, amount, pin=None, order=None, currency="978"):
        """The 0210 of a card purchase; ans['arpc_ok'] tells whether tag 91 checks out."""
        raw, doc, tags = self.purchase_message(card, amount, pin, order, currency)
        ans = await self.send_raw(raw, "0210", doc["11"])
        issuer = dict(tlv.decode(bytes.fromhex(ans.get("55", "")))).get(0x91)
        ans["arpc_ok"] = issuer is not None and card.check_arpc(tags, issuer)
        return ans

    async def advice(self, card, amount, tags=None, stan=None, when=None, currency="978"):
        """The 0230 of an advice (0220) of an offline approval: the card's TC, or the tags
        given; stan and when: a resend of an advice already sent (its DE11 and DE7)."""
        raw, doc, _ = self.purchase_message(card, amount, currency=currency, tags=tags, mti="0220", stan=stan,
                                            when=when)
        ans = await self.send_raw(raw, "0230", doc["11"])
        ans["sent"] = doc
        return ans

    async def balance(self, account):
        return await self.request("0200", {"3": "310000", "102": account})

    async def transfer(self, from_account, to_account, amount, currency="978"):
        return await self.request("0200", {"3": "400000", "4": "%012d" % amount,
                                           "49": currency, "102": from_account, "103": to_account})

    async def pay_request(self, push, account):
        """Pay a pushed request (its 0600 doc) from a bound account."""
        return await self.request("0200", {"3": "000000", "4": push["4"], "22": "010",
                                           "42": push["42"], "48": push["48"], "49": push["49"],
                                           "102": account})

    async def give_back(self, rrn, amount, currency="978", advice=False):
        """The 0210 of a return (200000) of the purchase whose RRN is rrn (advice: of the offline
        purchase whose advice's DE11 + DE7 it is): a void or a refund, as the host's business
        day has it (its DE48 says which)."""
        return await self.request("0200", {"3": "200000", "4": "%012d" % amount,
                                           "48": ("ADVICE=" if advice else "RRN=") + rrn, "49": currency})

    async def top_up(self, account, amount, card="0123456789ABCDEF", currency="978"):
        """The 0210 of a top-up (920000) of transit card `card` (16 hex digits) from account."""
        return await self.request("0200", {"3": "920000", "4": "%012d" % amount, "48": "CARD=" + card,
                                           "49": currency, "102": account})

    async def refuse_request(self, push):
        return await self.request("0620", {"37": push["37"], "39": "17", "48": push["48"]})

    async def reverse(self, original_doc):
        """The 0400 of a 0200 (its doc as built)."""
        de90 = original_doc["t"] + original_doc["11"] + original_doc["7"] + "0" * 22
        return await self.request("0400", {"3": original_doc.get("3", "000000"),
                                           "4": original_doc.get("4", "0" * 12),
                                           "49": original_doc.get("49", "978"), "90": de90})
