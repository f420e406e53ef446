"""The EMV kernel (lib/emv/README.md): one transaction over `async transceive(apdu)`, contact
(EMV Book 3) or contactless (the short path, the cryptogram in the GPO answer, as Visa's qVSDC;
or, for a card whose GPO answer has none, M/Chip's GENERATE AC after the records, EMV Book C-2),
then completion after the online answer.

    kernel = Kernel(TerminalConfig(), capk.Store.load(), choose=ui_choose, pin=ui_pin)  # emv.config's
    result = await kernel.transact(slot.transceive, amount=1234)
    final = await kernel.complete(slot.transceive, result, arc=b"00", issuer_auth=de55_91)

Bad card data (malformed TLV, lying lengths, a redundant or missing mandatory object, an
answer that breaks the protocol) ends the transaction: outcome END with the reason. A broken
interface (the card removed, mute) raises the kernel's CardError (sw None): the caller asks
for the card again.
"""

import os

from micropython import const

from emv import (APPLICATION_BLOCKED, APPROVED, DECLINED, END, ONLINE, TRY_ANOTHER_INTERFACE, EmvError, OdaFailed,
                 awaited, risk, tlv)
from emv.apdu import SW_OK, Channel, InterfaceError

_AIP_SDA = const(0x40)
_AIP_DDA = const(0x20)
_AIP_CVM = const(0x10)
_AIP_TRM = const(0x08)
_AIP_ISSUER_AUTH = const(0x04)
_AIP_CDA = const(0x01)
_CAP_ONLINE_PIN = const(0x40)  # terminal capabilities byte 2
_CAP_NO_CVM = const(0x08)
_CAP_SDA = const(0x80)  # terminal capabilities byte 3
_CAP_DDA = const(0x40)
_CAP_CDA = const(0x08)
_P1_CDA = const(0x10)  # GENERATE AC: CDA signature requested
_DEFAULT_DDOL = b"\x9f\x37\x04"  # Book 3 10.3: the terminal's default DDOL
_APPROVE_ARCS = (b"00", b"10", b"11")  # approved, approved (cardholder id), approved (VIP)

# DE55: the ICC data the bank needs (the ARQC's inputs first), in this order, as available.
DE55_TAGS = (0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A, 0x82, 0x9F1A,
             0x9F03, 0x9F33, 0x9F34, 0x9F35, 0x84, 0x9F09, 0x9F1E, 0x5F34)


class Result:
    """A transaction's outcome and what the uplink needs (lib/emv/README.md)."""

    __slots__ = ("outcome", "reason", "icc_data", "pan", "psn", "track2", "expiry", "cryptogram",
                 "tvr", "tsi", "aid", "label", "online_pin", "cvm_results", "commands", "card",
                 "terminal", "contactless", "cvm_required", "cda")

    def __init__(self, contactless):
        self.outcome = END
        self.reason = None  # type: str | None
        self.icc_data = None  # type: bytes | None
        self.pan = None  # type: str | None
        self.psn = None  # type: bytes | None
        self.track2 = None  # type: bytes | None
        self.expiry = None  # type: bytes | None
        self.cryptogram = None  # type: bytes | None
        self.tvr = bytearray(5)
        self.tsi = bytearray(2)
        self.aid = None  # type: bytes | None
        self.label = None  # type: bytes | None
        self.online_pin = False
        self.cvm_results = b"\x3f\x00\x00"
        self.commands = 0  # APDUs sent: the contactless path keeps this small
        self.card = {}  # the card's data objects {tag: value}
        self.terminal = {}  # the terminal's, as last sent to the card
        self.contactless = contactless
        self.cvm_required = False  # contactless: the amount is at or above the CVM required limit
        # CDA: the PDOL's data sent (from the GPO to ODA), then [the ICC public key, the data
        # the GENERATE AC's transaction data hash covers, None] for a card the terminal does CDA
        # with; tapped, [None, that data, the signed records]: the key is recovered after the
        # GENERATE AC, the card done
        self.cda = None


class _End(Exception):
    """Internal: the transaction ends with this outcome and reason."""

    def __init__(self, outcome, reason):
        super().__init__(reason)
        self.outcome = outcome


def _bcd(n, size):
    s = "%0*d" % (size * 2, n)
    if len(s) != size * 2:
        raise ValueError("%d does not fit n%d" % (n, size * 2))
    return bytes.fromhex(s)


def _today():
    import time
    t = time.localtime()
    return _bcd(t[0] % 100, 1) + _bcd(t[1], 1) + _bcd(t[2], 1)


async def _ending(res, ch, step):
    """Await a step of the transaction (a coroutine); how it ends goes into res: a card's fault
    is END with the reason, an interface failure is raised (InterfaceError) for the caller."""
    try:
        await step
    except _End as e:
        res.outcome, res.reason = e.outcome, str(e)
    except InterfaceError:
        raise
    except EmvError as e:
        res.outcome, res.reason = END, "%s: %s" % (type(e).__name__, e)
    finally:
        res.commands += ch.commands


def _one_template(r, sw, what):
    """(tag, value) of an answer that must be 90 00 and one template (80 or 77)."""
    if sw != SW_OK:
        raise _End(END, "%s: status %04X" % (what, sw))
    objs = tlv.decode(r)
    if len(objs) != 1:
        raise _End(END, "%s: the answer is not one template" % what)
    return objs[0]


def _rank(cid):
    """AAC < ARQC < TC: how far towards approval a cryptogram type goes."""
    t = cid & 0xC0
    return 0 if t == risk.AAC else 1 if t == risk.ARQC else 2 if t == risk.TC else 3


class Kernel:
    def __init__(self, config, capk, choose=None, pin=None):
        self.config = config
        self.capk = capk
        # Both may be coroutine functions (emv.awaited): the terminal asks on its async screens.
        self.choose = choose  # labels -> index (None: declined)
        self.pin = pin  # tries left (None: unknown) -> bytearray of digits (empty: not entered)

    # ---- the transaction -------------------------------------------------------------------

    async def transact(self, transceive, amount, other=0, txn_type=risk.PURCHASE, contactless=False,
                       date=None, done=None):
        """Run a transaction: a Result whose outcome is APPROVED, DECLINED, ONLINE (go online
        with result.icc_data), TRY_ANOTHER_INTERFACE or END (result.reason says why). done: a
        coroutine function, awaited once a tapped card on the short path has answered its last
        command, before fDDA and the decision: the caller releases the card and may let go of
        its reader then (the kernel holds no reference to transceive after it)."""
        res = Result(contactless)
        ch = Channel(transceive)
        del transceive  # the channel's alone: dropped there when done
        cfg = self.config
        d = res.terminal
        d[0x9F02] = _bcd(amount, 6)
        d[0x9F03] = _bcd(other, 6)
        d[0x9F1A] = cfg.country
        d[0x5F2A] = cfg.currency
        d[0x9A] = date or _today()
        d[0x9C] = bytes((txn_type,))
        d[0x9F37] = os.urandom(4)
        d[0x9F35] = cfg.terminal_type
        d[0x9F33] = cfg.capabilities
        d[0x9F40] = cfg.additional
        d[0x9F09] = cfg.app_version
        d[0x9F1E] = cfg.ifd_serial
        if contactless:
            d[0x9F66] = cfg.ttq
        await _ending(res, ch, self._run(ch, res, amount, txn_type, done))
        return res

    async def _run(self, ch, res, amount, txn_type, done):
        from emv import select
        cfg = self.config
        if res.contactless:
            cands = await select.from_ppse(ch, cfg.aids)
            if not cands:
                raise _End(TRY_ANOTHER_INTERFACE, "no contactless application")
        else:
            cands = await select.from_pse(ch, cfg.aids)
            if not cands:
                cands = await select.from_aid_list(ch, cfg.aids)
        if not cands:
            raise _End(END, "no application in common with the card")
        cands = select.order(cands)
        while True:
            picked = await select.final(ch, cands, self.choose, res.contactless)
            if picked is None:
                if cands:
                    raise _End(END, "cardholder declined")
                raise _End(END, APPLICATION_BLOCKED if ch.sw == select.SW_BLOCKED else "no application left")
            cand, fci = picked
            res.aid, res.label = cand.aid, cand.label
            if res.contactless:
                self._preprocess(res, amount)
            gpo = await self._gpo(ch, res, fci)
            if gpo is not None:
                break
            cands.remove(cand)  # 6985: conditions of use not satisfied, back to selection
        card = res.card
        card[0x84] = cand.aid
        # Selection is done: its module and candidates are not held through the rest of the
        # transaction (the terminal lets go of emv.select when the card asks for its PIN).
        del select, cands, cand, picked
        tlv.flatten(gpo, card)
        aip, afl = card.get(0x82), card.get(0x94)
        if aip is None or len(aip) != 2 or afl is None:
            raise _End(END, "GPO answer without AIP or AFL")
        records = await self._read_records(ch, card, afl, res.contactless)
        self._card_data(res)
        if res.contactless:
            await self._contactless(ch, res, records, amount, txn_type, done)
        else:
            await self._full(ch, res, records, amount, txn_type)

    async def _gpo(self, ch, res, fci):
        """The GPO answer as TLV (format 1 turned into 82 and 94), or None for 6985."""
        pdol = tlv.find(fci, 0x9F38)
        data = self._dol(res, pdol) if pdol else b""
        r, sw = await ch.send(0x80, 0xA8, 0x00, 0x00, b"\x83" + bytes((len(data),)) + data)
        if sw == 0x6985:
            return None
        if res.contactless and sw in (0x6984, 0x6986):
            raise _End(TRY_ANOTHER_INTERFACE, "the card asks for another interface (%04X)" % sw)
        tag, v = _one_template(r, sw, "GET PROCESSING OPTIONS")
        res.cda = data  # CDA's hash covers it: kept until ODA knows whether it is CDA
        if tag == 0x80:
            if len(v) < 6 or (len(v) - 2) % 4:
                raise _End(END, "GPO format 1 of %d bytes" % len(v))
            return tlv.encode(0x82, v[:2]) + tlv.encode(0x94, v[2:])
        if tag != 0x77:
            raise _End(END, "GPO answer template %X" % tag)
        return v

    def _dol(self, res, dol):
        """A DOL's data from the terminal's values (TVR, TSI, CVM results as they are now) and
        the card's; the terminal's values sent are kept (the cryptogram covers them)."""
        d = res.terminal
        d[0x95] = bytes(res.tvr)
        d[0x9B] = bytes(res.tsi)
        d[0x9F34] = res.cvm_results
        entries = tlv.parse_dol(dol)
        values = {}
        for tag, _ in entries:
            v = d.get(tag)
            values[tag] = v if v is not None else res.card.get(tag)
        return tlv.build_dol(entries, values)

    async def _read_records(self, ch, card, afl, again):
        """READ RECORD over the AFL: the records for ODA [(sfi, record), ...]. again: a record
        may repeat an object of the GPO answer with the same value (the contactless short path
        sends PAN and track 2 early); any other repetition ends the transaction.

        The records are read first and parsed after the last one, as EMV kernels do: nothing
        read depends on what a record holds, and on the contactless path the card may leave
        once it has answered its last READ RECORD, so its time in the field is the commands'."""
        if not afl or len(afl) % 4:
            raise _End(END, "AFL of %d bytes" % len(afl))
        read = []  # (sfi, record number, whether ODA signs it, the record)
        for i in range(0, len(afl), 4):
            sfi, first, last, n_oda = afl[i] >> 3, afl[i + 1], afl[i + 2], afl[i + 3]
            if not 1 <= sfi <= 30 or afl[i] & 7 or first == 0 or last < first or n_oda > last - first + 1:
                raise _End(END, "AFL entry %s" % bytes(afl[i:i + 4]).hex())
            for n in range(first, last + 1):
                rec, sw = await ch.read_record(sfi, n)
                if sw != SW_OK:
                    raise _End(END, "READ RECORD %d of SFI %d: status %04X" % (n, sfi, sw))
                read.append((sfi, n, n - first < n_oda, rec))
        oda = []
        for sfi, n, signed, rec in read:
            if sfi <= 10:
                objs = tlv.decode(rec)
                if len(objs) != 1 or objs[0][0] != 0x70:
                    raise _End(END, "record %d of SFI %d is not a 70 template" % (n, sfi))
            if again:
                for tag, v in tlv.flatten(rec).items():
                    if card.setdefault(tag, v) != v:
                        raise _End(END, "record %d of SFI %d contradicts the GPO answer on %X" % (n, sfi, tag))
            else:
                tlv.flatten(rec, card)  # a redundant object is TlvError: the transaction ends
            if signed:
                oda.append((sfi, bytes(rec)))
        return oda

    def _card_data(self, res):
        card = res.card
        for tag in (0x5A, 0x5F24):
            if tag not in card:
                raise _End(END, "mandatory data object %X missing" % tag)
        pan = card[0x5A].hex()
        res.pan = pan.rstrip("f")
        if not res.pan.isdigit() or not 12 <= len(res.pan) <= 19:
            raise _End(END, "PAN is not 12 to 19 digits")
        res.psn = card.get(0x5F34)
        res.track2 = card.get(0x57)
        res.expiry = card[0x5F24]

    # ---- contact, and M/Chip tapped ----------------------------------------------------------

    async def _full(self, ch, res, records, amount, txn_type):
        """Book 3's path: ODA, restrictions, CVM, risk management, TAA, GENERATE AC. Tapped (a
        card whose GPO answer had no cryptogram: M/Chip, Book C-2): CDA or no ODA, checked once
        the card has answered GENERATE AC and may have left (C-2 S910.1-7); the CVM online PIN
        from the CVM required limit, else none (an offline PIN is the slot's); the reader's
        contactless floor limit; no GET DATA for velocity: the card's time in the field."""
        cfg, card, tvr = self.config, res.card, res.tvr
        tapped = res.contactless
        for tag in (0x8C,) if tapped else (0x8C, 0x8D):
            if tag not in card:
                raise _End(END, "mandatory data object %X missing" % tag)
        await self._oda(ch, res, records)
        if not tapped:
            # ODA is done with the signed records (a tapped card's CDA needs them after GENERATE
            # AC: res.cda): not kept through the offline PIN's pad, the contact flows' peak.
            records.clear()
        risk.restrictions(tvr, card, cfg, res.terminal[0x9A], txn_type)
        aip = card[0x82]
        if aip[0] & _AIP_CVM:
            from emv import cvm
            caps = cfg.capabilities[1]
            if tapped:
                caps = (caps & _CAP_ONLINE_PIN if res.cvm_required else 0) | _CAP_NO_CVM
            ctx = cvm.Context(amount, txn_type, card.get(0x9F42) == cfg.currency,
                              cfg.terminal_type[0] & 0x0F >= 4, caps)
            res.cvm_results = await cvm.process(card.get(0x8E), ctx, tvr,
                                                lambda m: self._verify(ch, res, m))
            risk.mark(res.tsi, risk.TSI_CVM)
        if not tapped:
            risk.terminal_risk(tvr, amount, cfg, os.urandom(1)[0] % 99 + 1)
            if card.get(0x9F14) and card.get(0x9F23):
                risk.velocity(tvr, card, await ch.get_data(0x9F36), await ch.get_data(0x9F13))
        elif res.terminal[0x9F66][1] & 0x80:  # above the floor limit, as pre-processing found (TTQ)
            risk.mark(tvr, risk.FLOOR_LIMIT_EXCEEDED)
        risk.mark(res.tsi, risk.TSI_TERMINAL_RISK)
        p1 = risk.action(tvr, card, cfg, cfg.online)
        await self._generate_ac(ch, res, p1, card[0x8C])
        risk.mark(res.tsi, risk.TSI_CARD_RISK)

    async def _verify(self, ch, res, method):
        """Perform a CVM the terminal supports: True when verified (online PIN: entered later)."""
        from emv import cvm
        if method == cvm.ONLINE_PIN:
            if not self.config.online:
                return False
            res.online_pin = True
            risk.mark(res.tvr, risk.ONLINE_PIN_ENTERED)
            return True
        tries = await ch.get_data(0x9F17)
        left = tries[0] if tries else None
        if left == 0:
            risk.mark(res.tvr, risk.PIN_TRY_LIMIT)
            return False
        while True:
            digits = await awaited(self.pin(left)) if self.pin else None
            if not digits:
                risk.mark(res.tvr, risk.PIN_NOT_ENTERED)
                return False
            try:
                block = cvm.pin_block(digits)
            finally:
                for i in range(len(digits)):
                    digits[i] = 0
            try:
                _, sw = await ch.send(0x00, 0x20, 0x00, 0x80, block, le=False)
            finally:
                for i in range(8):
                    block[i] = 0
            if sw == SW_OK:
                return True
            if sw & 0xFFF0 == 0x63C0 and sw & 0x0F:
                left = sw & 0x0F  # wrong PIN, tries left: ask again
                continue
            if sw & 0xFFF0 == 0x63C0 or sw in (0x6983, 0x6984):
                risk.mark(res.tvr, risk.PIN_TRY_LIMIT)
            return False

    async def _oda(self, ch, res, records):
        """CDA, DDA or SDA as the AIP and this terminal allow (Book 3 10.3); only the TVR tells.
        CDA: the keys are recovered here (tapped: after GENERATE AC), the signature checked at
        GENERATE AC (res.cda). A tapped card has CDA or no ODA (Book C-2)."""
        card, tvr = res.card, res.tvr
        aip, caps = card[0x82][0], self.config.capabilities[2]
        pdol_data, res.cda = res.cda, None
        if aip & _AIP_CDA and caps & _CAP_CDA:
            failed = risk.CDA_FAILED
        elif res.contactless:
            failed = None
        elif aip & _AIP_DDA and caps & _CAP_DDA:
            failed = risk.DDA_FAILED
        elif aip & _AIP_SDA and caps & _CAP_SDA:
            failed = risk.SDA_FAILED
        else:
            failed = None
        if failed is None:
            risk.mark(tvr, risk.ODA_NOT_PERFORMED)
            return
        risk.mark(res.tsi, risk.TSI_ODA)
        need = (0x8F, 0x90, 0x9F32) + ((0x93,) if failed == risk.SDA_FAILED else (0x9F46, 0x9F47))
        for tag in need:
            if tag not in card:
                risk.mark(tvr, risk.ICC_DATA_MISSING)
                risk.mark(tvr, failed)
                return
        if res.contactless:  # CDA: the keys too once the card has answered (its time in the field)
            res.cda = [None, pdol_data or b"", records]
            return
        from emv import oda
        try:
            if failed == risk.SDA_FAILED:
                card[0x9F45] = oda.verify_sda(self._issuer_key(res), card[0x93],
                                              oda.static_pieces(records, card[0x82], card.get(0x9F4A)))
                return
            icc = self._icc_key(res, records)
            if failed == risk.CDA_FAILED:
                res.cda = [icc, pdol_data or b"", None]
                return
            ddol = card.get(0x9F49) or _DEFAULT_DDOL
            data = self._dol(res, ddol)
            r = await ch.ok(0x00, 0x88, 0x00, 0x00, data)
            sdad = tlv.find(r, 0x9F4B) if r and r[0] == 0x77 else tlv.find(r, 0x80)
            if sdad is None:
                raise OdaFailed("INTERNAL AUTHENTICATE answer without a signature")
            dyn = oda.verify_dda(icc, sdad, data)
            card[0x9F4C] = dyn[1:1 + dyn[0]] if dyn else b""
        except OdaFailed as e:
            res.reason = "ODA: %s" % e
            risk.mark(tvr, failed)

    def _issuer_key(self, res):
        from emv import oda
        card = res.card
        today = res.terminal[0x9A].hex()
        ca = self.capk.get(res.aid[:5], card[0x8F][0] if len(card[0x8F]) == 1 else -1, today)
        # A transaction's one CA key is read: the file a held store keeps open (capk.Store.hold)
        # is closed now, its blocks (~0.8 KB, made before the card's data) free for the RSA work
        # that follows at the payment's fullest heap, where a steady unit's heap had no hole for
        # pow()'s 290 bytes. (A later get() would open the file again.)
        self.capk.close()
        return oda.recover_issuer_key(ca, card[0x90], card.get(0x92), card[0x9F32], card[0x5A], today)

    def _icc_key(self, res, records):
        """The ICC public key (Book 2 6.4) over the signed records' static data: OdaFailed,
        KeyError for a missing 9F46 or 9F47."""
        from emv import oda
        card = res.card
        static = oda.static_pieces(records, card[0x82], card.get(0x9F4A))
        return oda.recover_icc_key(self._issuer_key(res), card[0x9F46], card.get(0x9F48), card[0x9F47], static,
                                   card[0x5A], res.terminal[0x9A].hex())

    async def _generate_ac(self, ch, res, p1, cdol):
        """GENERATE AC asking for p1 (AAC, TC, ARQC), with CDA's signature for a TC or an ARQC
        from a card the terminal does CDA with; the outcome from the card's CID."""
        data = self._dol(res, cdol)
        cda = res.cda if p1 != risk.AAC else None
        r, sw = await ch.send(0x80, 0xAE, p1 | _P1_CDA if cda else p1, 0x00, data)
        tag, v = _one_template(r, sw, "GENERATE AC")
        card = res.card
        if tag == 0x80:
            if len(v) < 11:
                raise _End(END, "GENERATE AC format 1 of %d bytes" % len(v))
            got = {0x9F27: v[0:1], 0x9F36: v[1:3], 0x9F26: v[3:11]}
            if len(v) > 11:
                got[0x9F10] = v[11:]
        elif tag == 0x77:
            got = tlv.flatten(v)
        else:
            raise _End(END, "GENERATE AC answer template %X" % tag)
        # CDA: a TC or an ARQC must come signed, its AC inside the signature (an AAC needs none)
        if cda and (0x9F4B in got or (got.get(0x9F27) or b"\x00")[0] & 0xC0 != risk.AAC):
            cda[1] += data
            from emv import cda as signed
            try:
                if cda[0] is None:  # tapped: the card is done, the keys now (Book C-2 S910.1)
                    cda[0] = self._icc_key(res, cda[2])
                got[0x9F26] = signed.verify(cda[0], cda[1], v, got, res.terminal[0x9F37])
            except OdaFailed as e:
                risk.mark(res.tvr, risk.CDA_FAILED)
                res.cda = None
                # Book 2 6.6.2: a cryptogram whose signature fails is not the card's: declined
                # offline, never sent online nor taken as an approval
                raise _End(DECLINED, "CDA failed: %s" % e)
        for t in (0x9F27, 0x9F36, 0x9F26):
            if t not in got or len(got[t]) != (1, 2, 8)[(0x9F27, 0x9F36, 0x9F26).index(t)]:
                raise _End(END, "GENERATE AC answer without a valid %X" % t)
        card.update(got)
        self._decide(res, got[0x9F27][0], p1)

    def _decide(self, res, cid, asked):
        if _rank(cid) > _rank(asked) or _rank(cid) == 3:
            raise _End(END, "the card answered cryptogram %02X to a request for %02X" % (cid, asked))
        res.cryptogram = res.card[0x9F26]
        t = cid & 0xC0
        res.outcome = APPROVED if t == risk.TC else ONLINE if t == risk.ARQC else DECLINED
        if res.outcome == DECLINED and res.reason is None:
            res.reason = "declined by the card (AAC)"
        res.icc_data = self.icc_data(res)

    def icc_data(self, res):
        """DE55: the DE55_TAGS the transaction has, BER-TLV, the terminal's values as sent."""
        out = bytearray()
        for tag in DE55_TAGS:
            v = res.terminal.get(tag)
            if v is None:
                v = res.card.get(tag)
            if v is not None:
                out += tlv.encode(tag, v)
        return bytes(out)

    # ---- contactless -----------------------------------------------------------------------

    def _preprocess(self, res, amount):
        """EMV Book A 3.1.1 for the application picked, before its GPO: the scheme's limits
        against the amount, told to the card in the TTQ (9F66, in the PDOL data)."""
        for rid, limit, cvm, floor in self.config.contactless_limits:
            if res.aid.startswith(rid):
                break
        else:  # a scheme the terminal has no limits for: not contactless
            raise _End(TRY_ANOTHER_INTERFACE, "no contactless limits for this scheme")
        if amount >= limit:
            raise _End(TRY_ANOTHER_INTERFACE, "%d is at or above the contactless limit %d" % (amount, limit))
        ttq = bytearray(self.config.ttq)
        if amount >= cvm:
            ttq[1] |= 0x40  # CVM required
            res.cvm_required = True
        if amount > floor:
            ttq[1] |= 0x80  # online cryptogram required
        res.terminal[0x9F66] = bytes(ttq)

    async def _contactless(self, ch, res, records, amount, txn_type, done):
        """The short path: after the last READ RECORD the card may leave, ODA and the decision
        need no card (done). A GPO answer without a cryptogram: GENERATE AC asks for it (M/Chip)."""
        card, tvr = res.card, res.tvr
        if 0x9F26 not in card:
            await self._full(ch, res, records, amount, txn_type)
            return
        if done is not None:
            ch.close()
            await done()
        res.cda = None  # the short path's cryptogram came in the GPO answer: fDDA, no CDA
        for t in (0x9F27, 0x9F36):
            if t not in card:
                raise _End(END, "GPO answer without %X: not a short-path card" % t)
        cid = card[0x9F27][0]
        ctq = card.get(0x9F6C) or b"\x00\x00"
        # The cryptogram already covers the TVR sent in the PDOL: what follows changes only the
        # terminal's own view (result.tvr), not DE55's 95.
        if 0x9F4B in card and card[0x82][0] & _AIP_DDA:
            risk.mark(res.tsi, risk.TSI_ODA)
            from emv import oda
            try:
                icc = self._icc_key(res, records)
                d = res.terminal
                oda.verify_dda(icc, card[0x9F4B], oda.fdda_terminal_data(d[0x9F37], d[0x9F02], d[0x5F2A],
                                                                           card.get(0x9F69) or b""))
            except (OdaFailed, KeyError) as e:
                res.reason = "fDDA: %s" % (e if isinstance(e, OdaFailed) else "data %X missing" % e.args[0])
                risk.mark(tvr, risk.DDA_FAILED)
                if cid & 0xC0 == risk.TC:
                    if ctq[0] & 0x10:
                        raise _End(TRY_ANOTHER_INTERFACE, res.reason)
                    raise _End(DECLINED, res.reason)
        else:
            risk.mark(tvr, risk.ODA_NOT_PERFORMED)
            if cid & 0xC0 == risk.TC:
                raise _End(DECLINED, "an offline approval without fDDA")
        risk.restrictions(tvr, card, self.config, res.terminal[0x9A], txn_type)
        if risk.marked(tvr, risk.EXPIRED) and cid & 0xC0 == risk.TC:
            raise _End(DECLINED, "application expired")
        # The cardholder verified: online PIN when the card asks for it, or when the amount
        # needs a CVM and the card did none itself (CTQ byte 2 bit 8: consumer device CVM).
        cdcvm = len(ctq) > 1 and ctq[1] & 0x80
        if res.cvm_required and not cdcvm and not ctq[0] & 0x80 and cid & 0xC0 == risk.TC:
            raise _End(DECLINED, "an offline approval without the CVM the amount needs")
        if cid & 0xC0 == risk.ARQC and (ctq[0] & 0x80 or (res.cvm_required and not cdcvm)):
            res.online_pin = True
            res.cvm_results = b"\x02\x00\x00"
        self._decide(res, cid, risk.TC)

    # ---- completion ------------------------------------------------------------------------

    async def complete(self, transceive, res, arc, issuer_auth=None, scripts=None):
        """After the online answer (arc: the 2-character response code 8A as bytes; None: the
        terminal could not go online): issuer authentication, scripts, the second GENERATE AC.
        res is updated and returned: APPROVED or DECLINED (END for a card fault)."""
        if res.outcome != ONLINE:
            raise ValueError("complete() is for an ONLINE result")
        if res.contactless:
            # The card has left: the issuer's answer is the decision (no second GENERATE AC).
            res.outcome = APPROVED if arc in _APPROVE_ARCS else DECLINED
            if res.outcome == DECLINED:
                res.reason = "unable to go online" if arc is None else "declined by the issuer (%s)" % arc.decode()
            return res
        ch = Channel(transceive)
        await _ending(res, ch, self._complete(ch, res, arc, issuer_auth, scripts))
        return res

    async def _complete(self, ch, res, arc, issuer_auth, scripts):
        card, cfg = res.card, self.config
        if arc is None:
            p1 = risk.default_action(res.tvr, card, cfg)
            arc = b"Y3" if p1 == risk.TC else b"Z3"
        else:
            p1 = risk.TC if arc in _APPROVE_ARCS else risk.AAC
            if issuer_auth and card[0x82][0] & _AIP_ISSUER_AUTH:
                # 91 as the card's ARPC method has it (EMV Book 2 8.2): method 1, ARPC (8) ||
                # ARC (2); method 2, ARPC (4) || CSU (4) || proprietary data (0-8). The card
                # checks it; one of neither length is not sent (Book 3 6.5.4: 8 to 16 bytes).
                risk.mark(res.tsi, risk.TSI_ISSUER_AUTH)
                sw = 0
                if 8 <= len(issuer_auth) <= 16:
                    _, sw = await ch.send(0x00, 0x82, 0x00, 0x00, issuer_auth, le=False)
                if sw != SW_OK:
                    risk.mark(res.tvr, risk.ISSUER_AUTH_FAILED)
        res.terminal[0x8A] = arc
        if issuer_auth:
            res.terminal[0x91] = issuer_auth
        await self._scripts(ch, res, scripts, 0x71, risk.SCRIPT_FAILED_BEFORE)
        res.reason = None
        await self._generate_ac(ch, res, p1, card[0x8D])
        if res.outcome == DECLINED and arc in (b"Y3", b"Z3"):  # no issuer said anything
            res.reason = "unable to go online: %s offline (%s)" % (
                "the card declined" if p1 == risk.TC else "declined", arc.decode())
        elif res.outcome == DECLINED and p1 == risk.TC:
            res.reason = "the card declined after the issuer approved"
        elif res.outcome == DECLINED:
            res.reason = "declined by the issuer (%s)" % arc.decode()
        await self._scripts(ch, res, scripts, 0x72, risk.SCRIPT_FAILED_AFTER)

    async def _scripts(self, ch, res, scripts, template, failed):
        """Issuer scripts of one template (71 before the second GENERATE AC, 72 after): each
        command (86) sent in turn; the first that fails ends its script (Book 3 10.10)."""
        if not scripts:
            return
        for tag, body in tlv.decode(scripts):
            if tag != template:
                continue
            risk.mark(res.tsi, risk.TSI_SCRIPT)
            for t, cmd in tlv.decode(body):
                if t != 0x86:
                    continue
                if len(cmd) < 4:
                    risk.mark(res.tvr, failed)
                    break
                _, sw = await ch.raw(cmd)
                if sw >> 8 not in (0x90, 0x62, 0x63):
                    risk.mark(res.tvr, failed)
                    break
