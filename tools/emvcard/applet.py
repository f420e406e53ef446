"""The EMV card applet of the rig: one class, every card's behaviour from its profile.

process(apdu) -> response data + SW1 SW2, reset() when the card loses power (the rig's
applet interface, tools/rig/pn532.py). What outlives a power cycle (ATC, PIN try counter,
blocked application, last online ATC) is a CardState kept per card name in the rig process,
so removing and inserting a card (or moving it from the slot to the antenna) is the same card;
and, as a card's EEPROM keeps it, in a file when the rig keeps cards (tools/emvcard keep_in):
the card of a later rig process carries on (a bank refuses an ATC it has seen).
The commands and the status words are listed in README.md.
"""

import hashlib
import json
import os
import secrets

from tools.rig.pn532 import EchoApplet  # the rig's APDU parser (short and extended)

from . import cardcrypto as cc
from . import certs
from . import cryptogram as cv
from .perso import icc_master_keys, records_bytes
from .tlv import TlvError, decode, find, split_dol, tlv, tlvs

PSE = b"1PAY.SYS.DDF01"
PPSE = b"2PAY.SYS.DDF01"
PSE_SFI = 1

AAC, TC, ARQC = 0x00, 0x40, 0x80
APPROVED_ARCS = (b"00", b"10", b"11")
UNABLE_ONLINE_OFFLINE = b"Y3"  # the terminal could not go online and asks offline approval

# Card verification results (IAD bytes 5..7), see README.md
CVR1_ISSUER_AUTH_FAILED = 0x08
CVR1_OFFLINE_PIN_DONE = 0x04
CVR1_OFFLINE_PIN_FAILED = 0x02
CVR1_UNABLE_ONLINE = 0x01
CVR2_PTL_EXCEEDED = 0x40
CVR2_VELOCITY = 0x20
CVR2_OVER_OFFLINE_AMOUNT = 0x10
CVR2_APP_BLOCKED = 0x02
CVR3_SCRIPT_FAILED = 0x08
CVR3_CONTACTLESS = 0x01

SW_OK = b"\x90\x00"
CONTACTLESS_KERNELS = ("qvsdc", "mchip")
AIP_CDA = 0x01  # AIP byte 1: CDA supported
CDA_REQUESTED = 0x10  # GENERATE AC P1: a CDA signature requested


class CardError(Exception):
    """A command refused: its status word."""

    def __init__(self, sw, data=b""):
        super().__init__("%04X" % sw)
        self.sw = sw
        self.data = data  # a warning's data (SELECT of a blocked application: FCI + 6283)


class AppState:
    def __init__(self):
        self.atc = 0
        self.last_online_atc = 0
        self.blocked = False


class CardState:
    """What a card keeps across power cycles; path: the file it is kept in (its EEPROM), None
    when it lives in this process only."""

    def __init__(self, profile, path=None):
        self.ptc = profile["pin_try_limit"]
        self.pin = profile["pin"]  # a PIN change script changes it
        self.apps = {}
        for app in profile["apps"]:
            s = self.apps[app["aid"]] = AppState()
            s.blocked = bool(app["blocked"])
        # The card a kept file belongs to: the same applications of the same PAN and PSN (a
        # card personalised again, tools/emvcard, starts afresh).
        self.card = [[a["aid"], a["pan"], a["psn"]] for a in profile["apps"]]
        self.path = path
        self._saved = None
        if path is not None and os.path.isfile(path):
            self._load()

    def _values(self):
        return {"card": self.card, "ptc": self.ptc, "pin": self.pin,
                "apps": {aid: [s.atc, s.last_online_atc, s.blocked] for aid, s in self.apps.items()}}

    def _load(self):
        try:
            with open(self.path) as f:
                kept = json.load(f)
            if kept["card"] != self.card:
                return
            ptc, pin, apps = int(kept["ptc"]), str(kept["pin"]), kept["apps"]
            values = {aid: [int(apps[aid][0]), int(apps[aid][1]), bool(apps[aid][2])] for aid in self.apps}
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            raise ValueError("the kept state of the card in %s does not read (%s): remove the file "
                             "to start the card afresh" % (self.path, e)) from None
        self.ptc, self.pin = ptc, pin
        for aid, (atc, last_online, blocked) in values.items():
            s = self.apps[aid]
            s.atc, s.last_online_atc, s.blocked = atc, last_online, blocked
        self._saved = self._values()

    def save(self):
        """Written to its file when it changed since (a GENERATE AC's ATC, a PIN try...): whole,
        through a rename, so that a rig killed meanwhile leaves the old or the new state."""
        if self.path is None:
            return
        values = self._values()
        if values == self._saved:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(values, f)
        os.replace(tmp, self.path)
        self._saved = values


class App:
    """An application's fixed data, decoded once from the profile."""

    def __init__(self, obj):
        self.obj = obj
        self.aid = bytes.fromhex(obj["aid"])
        self.label = obj["label"].encode()
        self.priority = obj["priority"]
        self.pan, self.psn = obj["pan"], obj["psn"]
        self.aip = bytes.fromhex(obj["aip"])
        self.afl = bytes.fromhex(obj["afl"])
        cl = obj["afl_contactless"]
        self.afl_contactless = bytes.fromhex(cl) if cl is not None else None
        # How it pays tapped: "qvsdc" (Visa, Book C-3: the cryptogram in the GPO answer) or
        # "mchip" (Mastercard, Book C-2: the GPO answers AIP and AFL, GENERATE AC follows)
        self.contactless_kernel = obj["contactless_kernel"]
        if self.contactless_kernel not in ((None,) if cl is None else CONTACTLESS_KERNELS):
            raise ValueError("card %s: contactless kernel %r with contactless AFL %r"
                             % (obj["pan"], self.contactless_kernel, cl))
        self.pdol = bytes.fromhex(obj["pdol"])
        self.cdol1 = bytes.fromhex(obj["cdol1"])
        self.cdol2 = bytes.fromhex(obj["cdol2"])
        self.ddol = bytes.fromhex(obj["ddol"]) if obj["ddol"] else None
        self.ctq = bytes.fromhex(obj["ctq"])
        self.icc_key = certs.Key.from_json(obj["icc_key"]) if obj["icc_key"] else None
        self.limits = obj["limits"]
        self.records = records_bytes(obj["records"])
        self.version = obj["cvn"]  # the cryptogram version (tools/emvcard/cryptogram.py)
        if self.version not in cv.VERSIONS:
            raise ValueError("card %s: cryptogram version %r is none of %s"
                             % (obj["pan"], self.version, ", ".join(cv.VERSIONS)))
        self.mk_ac, self.mk_smi, self.mk_smc = icc_master_keys(obj)
        try:  # for the contactless GPO answer; absent when the record is broken on purpose
            self.track2 = find(find(self.records["1.1"], 0x70) or b"", 0x57)
        except TlvError:
            self.track2 = None

    def directory_entry(self):
        return tlv(0x61, tlvs((0x4F, self.aid), (0x50, self.label),
                              (0x87, bytes((self.priority,)))))


class EmvCard:
    """One card in the rig, from a profile (dict, as tools/emvcard/cards/*.json)."""

    def __init__(self, profile, state):
        self.profile = profile
        self.state = state
        self.apps = [App(a) for a in profile["apps"]]
        self.misbehave = set(profile["misbehave"])
        self.apdus = 0
        # The interface it is powered by: the rig's antenna sets it (tools/rig/pn532.py), as a
        # dual-interface chip knows which of its pads are live. An M/Chip application answers
        # by it; a qVSDC one by the reader's TTQ.
        self.contactless = False
        self.reset()

    def reset(self):
        """Power lost: the session goes, the counters stay."""
        self.selected = None  # "pse", "ppse" or an App
        self.txn = None

    # ---- dispatch ------------------------------------------------------------------------

    def process(self, apdu):
        self.apdus += 1
        if len(apdu) < 4:
            return b"\x67\x00"
        header, data, le = EchoApplet.parse(bytes(apdu))
        cla, ins, p1, p2 = header
        handler = COMMANDS.get((cla, ins))
        if handler is None:
            return b"\x6e\x00" if ins in {i for _, i in COMMANDS} else b"\x6d\x00"
        try:
            return handler(self, header, bytes(data)) + SW_OK
        except CardError as e:
            return e.data + e.sw.to_bytes(2, "big")
        except TlvError:
            return b"\x6a\x80"
        finally:
            self.state.save()  # before the answer leaves the card, as its EEPROM write is

    # ---- selection -----------------------------------------------------------------------

    def select(self, header, name):
        _, _, p1, p2 = header
        if p1 != 0x04 or p2 & 0xFD:
            raise CardError(0x6A86)
        self.txn = None
        if name in (PSE, PPSE) and p2 == 0:
            self.selected = "pse" if name == PSE else "ppse"
            if name == PSE:
                prop = tlvs((0x88, bytes((PSE_SFI,))), (0x5F2D, self.profile["language"].encode()))
            else:
                entries = b"".join(a.directory_entry() for a in self.apps
                                   if a.afl_contactless is not None)
                if not entries:
                    self.selected = None
                    raise CardError(0x6A82)
                prop = tlv(0xBF0C, entries)
            return tlv(0x6F, tlv(0x84, name) + tlv(0xA5, prop))
        matches = [a for a in self.apps if a.aid[:len(name)] == name and name]
        if p2 == 0x02:  # next occurrence
            if isinstance(self.selected, App) and self.selected in matches:
                matches = matches[matches.index(self.selected) + 1:]
        if not matches:
            raise CardError(0x6A82)
        app = self.selected = matches[0]
        pdol = tlv(0x9F38, app.pdol) if app.pdol else b""
        prop = (tlvs((0x50, app.label), (0x87, bytes((app.priority,)))) + pdol
                + tlvs((0x5F2D, self.profile["language"].encode()),
                       (0xBF0C, tlv(0x5F55, b"DE") + tlv(0x42, bytes.fromhex(app.pan[:6])))))
        fci = tlv(0x6F, tlv(0x84, app.aid) + tlv(0xA5, prop))
        if self.state.apps[app.obj["aid"]].blocked:
            raise CardError(0x6283, fci)
        return fci

    def _app(self):
        if not isinstance(self.selected, App):
            raise CardError(0x6985)
        return self.selected, self.state.apps[self.selected.obj["aid"]]

    # ---- records and data ----------------------------------------------------------------

    def read_record(self, header, _data):
        _, _, rec, p2 = header
        if p2 & 0x07 != 0x04 or rec == 0:
            raise CardError(0x6A86)
        sfi = p2 >> 3
        if self.selected == "pse":
            if sfi != PSE_SFI or rec > len(self.apps):
                raise CardError(0x6A83)
            return tlv(0x70, self.apps[rec - 1].directory_entry())
        if not isinstance(self.selected, App):
            raise CardError(0x6A83)
        raw = self.selected.records.get("%d.%d" % (sfi, rec))
        if raw is None:
            raise CardError(0x6A83)
        return raw

    def get_data(self, header, _data):
        tag = (header[2] << 8) | header[3]
        if tag == 0x9F17:
            return tlv(tag, bytes((self.state.ptc,)))
        app, st = self._app()
        if tag == 0x9F36:
            return tlv(tag, st.atc.to_bytes(2, "big"))
        if tag == 0x9F13:
            return tlv(tag, st.last_online_atc.to_bytes(2, "big"))
        raise CardError(0x6A88)

    def get_challenge(self, header, _data):
        return secrets.token_bytes(8)

    # ---- transaction -----------------------------------------------------------------------

    def gpo(self, header, data):
        app, st = self._app()
        if header[2:] != b"\x00\x00":
            raise CardError(0x6A86)
        if self.txn is not None:
            raise CardError(0x6985)
        if st.blocked:
            raise CardError(0x6985)
        pdol_data = tlv_value(data, 0x83)
        try:
            terminal = split_dol(app.pdol, pdol_data)
        except TlvError:
            raise CardError(0x6700) from None
        st.atc = (st.atc + 1) & 0xFFFF
        ttq = terminal.get(0x9F66, b"\x00")
        mchip = app.contactless_kernel == "mchip"
        contactless = self.contactless if mchip else app.afl_contactless is not None and bool(ttq[0] & 0x20)
        self.txn = Txn(st.atc, contactless)
        self.txn.sent = pdol_data  # what a CDA signature's transaction data hash covers
        if not contactless:
            return self._format2(tlvs((0x82, app.aip), (0x94, app.afl)))
        if mchip:  # the records it signs, then GENERATE AC (with CDA) as on contact
            self.txn.cvr[2] |= CVR3_CONTACTLESS
            return self._format2(tlvs((0x82, app.aip), (0x94, app.afl_contactless)))
        return self._contactless_gpo(app, st, terminal)

    def _format2(self, body):
        out = tlv(0x77, body)
        if "gpo-length" in self.misbehave:  # the outer length claims 5 bytes more than follow
            out = out[:1] + bytes((out[1] + 5,)) + out[2:] if out[1] < 0x7B else out
        return out

    def _contactless_gpo(self, app, st, terminal):
        t = self.txn
        t.cvr[2] |= CVR3_CONTACTLESS
        amount = bcd_int(terminal[0x9F02])
        online_required = bool(terminal[0x9F66][1] & 0x80)  # TTQ byte 2 bit 8
        if "decline" in self.misbehave or st.blocked:
            kind = AAC
        elif online_required or amount > app.limits["contactless_offline_amount"]:
            kind = ARQC
        else:
            kind = TC
        t.tags = dict(terminal)
        ac = self._cryptogram(app, st, kind, first=True)
        card_un = secrets.token_bytes(4)
        cad = b"\x01" + card_un + app.ctq  # 9F69, card authentication related data
        items = [(0x82, app.aip), (0x94, app.afl_contactless), (0x57, app.track2),
                 (0x5A, bytes.fromhex(app.pan + "F" * (len(app.pan) % 2))),
                 (0x5F34, bytes.fromhex(app.psn)), (0x9F10, t.iad), (0x9F26, ac),
                 (0x9F27, bytes((kind,))), (0x9F36, st.atc.to_bytes(2, "big")),
                 (0x9F69, cad), (0x9F6C, app.ctq)]
        if app.icc_key is not None:
            dyn = b"\x08" + secrets.token_bytes(8)
            tdd = terminal[0x9F37] + terminal[0x9F02] + terminal[0x5F2A] + cad
            items.append((0x9F4B, certs.signed_dynamic_data(app.icc_key, dyn, tdd)))
        return self._format2(tlvs(*items))

    def verify(self, header, data):
        _, _, p1, p2 = header
        if p1 != 0 or p2 != 0x80:
            raise CardError(0x6A86)
        pin = pin_from_block(data)
        t = self.txn
        if self.state.ptc == 0:
            if t:
                t.cvr[1] |= CVR2_PTL_EXCEEDED
            raise CardError(0x6983)
        if t:
            t.cvr[0] |= CVR1_OFFLINE_PIN_DONE
        if pin == self.state.pin:
            self.state.ptc = self.profile["pin_try_limit"]
            if t:
                t.cvr[0] &= ~CVR1_OFFLINE_PIN_FAILED
            return b""
        self.state.ptc -= 1
        if t:
            t.cvr[0] |= CVR1_OFFLINE_PIN_FAILED
            if self.state.ptc == 0:
                t.cvr[1] |= CVR2_PTL_EXCEEDED
        raise CardError(0x63C0 | self.state.ptc)

    def internal_authenticate(self, header, data):
        app, _ = self._app()
        if app.icc_key is None:
            raise CardError(0x6D00)
        if header[2:] != b"\x00\x00":
            raise CardError(0x6A86)
        dyn = b"\x08" + secrets.token_bytes(8)
        return tlv(0x80, certs.signed_dynamic_data(app.icc_key, dyn, data))

    def generate_ac(self, header, data):
        app, st = self._app()
        t = self.txn
        kind = header[2] & 0xC0
        qvsdc = t is not None and t.contactless and app.contactless_kernel == "qvsdc"
        if t is None or qvsdc or header[3] != 0 or kind == 0xC0:
            raise CardError(0x6985 if kind != 0xC0 else 0x6A86)
        if t.first is None:
            t.tags = split_dol(app.cdol1, data)
            t.sent += data
            t.first = self._first_decision(app, st, kind)
            return self._ac_answer(app, st, t.first, True, header[2] & CDA_REQUESTED)
        if t.first != ARQC or t.second is not None or kind == ARQC:
            raise CardError(0x6985)
        t.tags.update(split_dol(app.cdol2, data))
        t.sent += data
        arc = t.tags.get(0x8A, b"")
        auth = t.tags.get(0x91, b"")
        if t.issuer_auth is None and auth.strip(b"\x00"):
            t.issuer_auth = self._arpc_ok(app, auth)
        if t.issuer_auth is False:
            t.cvr[0] |= CVR1_ISSUER_AUTH_FAILED
        if kind == TC and arc in APPROVED_ARCS and t.issuer_auth is not False \
                and t.issuer_approves is not False and not st.blocked:
            t.second = TC
            st.last_online_atc = st.atc
        elif kind == TC and arc == UNABLE_ONLINE_OFFLINE and not st.blocked \
                and not self._risk(app, st):
            t.cvr[0] |= CVR1_UNABLE_ONLINE
            t.second = TC
        else:
            t.second = AAC
        return self._ac_answer(app, st, t.second, False, header[2] & CDA_REQUESTED)

    def _risk(self, app, st):
        """Card risk management: CVR bits of the limits this transaction exceeds (0: none)."""
        t = self.txn
        bits = 0
        if bcd_int(t.tags.get(0x9F02, b"")) > app.limits["offline_amount"]:
            bits |= CVR2_OVER_OFFLINE_AMOUNT
        if st.atc - st.last_online_atc > app.limits["consecutive_offline"]:
            bits |= CVR2_VELOCITY
        if self.state.ptc == 0:
            bits |= CVR2_PTL_EXCEEDED
        t.cvr[1] |= bits
        return bits

    def _first_decision(self, app, st, asked):
        """Never more than asked: AAC < ARQC < TC; TC only within the card's own limits."""
        risk = self._risk(app, st)
        if asked == AAC or st.blocked or "decline" in self.misbehave:
            return AAC
        if asked == ARQC or risk:
            return ARQC
        return TC

    def _ac_answer(self, app, st, kind, first, cda):
        """77{9F27 9F36 9F26 9F10}; with CDA asked of a CDA card for a TC or an ARQC (EMV Book 2
        6.6.1), 77{9F27 9F36 9F10 9F4B}: the AC inside the SDAD, with the transaction data hash
        code, SHA-1 over the command data sent so far (PDOL, CDOL1, CDOL2) and this answer's
        objects but 9F4B; the SDAD signs the terminal's unpredictable number."""
        t = self.txn
        ac = self._cryptogram(app, st, kind, first)
        head = tlvs((0x9F27, bytes((kind,))), (0x9F36, st.atc.to_bytes(2, "big")))
        if not (cda and kind != AAC and app.aip[0] & AIP_CDA) or "cda-plain-ac" in self.misbehave:
            return tlv(0x77, head + tlvs((0x9F26, ac), (0x9F10, t.iad)))
        body = head + tlv(0x9F10, t.iad)
        tdhc = hashlib.sha1(t.sent + (body if "cda-wrong-hash" not in self.misbehave else head)).digest()
        dyn = b"\x08" + secrets.token_bytes(8) + bytes((kind,)) + ac + tdhc
        return tlv(0x77, body + tlv(0x9F4B, certs.signed_dynamic_data(app.icc_key, dyn, t.tags[0x9F37])))

    def _cryptogram(self, app, st, kind, first):
        t = self.txn
        shift = 4 if first else 6
        t.cvr[0] = (t.cvr[0] & ~(3 << shift)) | ({AAC: 0, TC: 1, ARQC: 2}[kind] << shift)
        if st.blocked:
            t.cvr[1] |= CVR2_APP_BLOCKED
        v = app.version
        # The rig's cards keep one CVR (Visa's bits, above) and lay it out as their version's
        # IAD has it: after its length byte (Visa format 0/1/3), or zero-filled to 5 (format 2)
        # or 6 bytes (M/Chip), whose counters are the offline ones (amount not kept, FF).
        cvr = bytes(t.cvr)
        counters = bytes(6) + bytes((min(255, st.atc - st.last_online_atc), 0xFF))
        cvr = b"\x03" + cvr if cv.CVR_LENGTH[v] == 4 else cvr + bytes(cv.CVR_LENGTH[v] - 3)
        t.iad = cv.iad(v, cvr, counters=counters)
        tags = dict(t.tags)
        tags.update({0x82: app.aip, 0x9F36: st.atc.to_bytes(2, "big")})
        try:
            ac, arpc_key = application_cryptogram(v, app.mk_ac, tags, t.iad)
        except KeyError:
            raise CardError(0x6A80) from None
        if kind == ARQC:
            t.arqc, t.arpc_key = ac, arpc_key
        return ac

    def _arpc_ok(self, app, auth):
        """Whether the issuer authentication data checks, by the card's ARPC method: 1, ARPC
        (8) || ARC; 2, ARPC (4) || CSU (4) || proprietary data (0-8), the CSU saying whether
        the issuer approves (t.issuer_approves)."""
        t = self.txn
        if t.arqc is None or "refuse-arpc" in self.misbehave:
            return False
        if cv.VERSIONS[app.version][2] == 1:
            return len(auth) == 10 and cc.arpc1(t.arpc_key, t.arqc, auth[8:10]) == auth[:8]
        if not 8 <= len(auth) <= 16 or cc.arpc2(t.arpc_key, t.arqc, auth[4:8], auth[8:]) != auth[:4]:
            return False
        t.issuer_approves = bool(auth[5] & cv.CSU_APPROVED)
        return True

    def external_authenticate(self, header, data):
        app, st = self._app()
        t = self.txn
        if t is None or t.arqc is None or t.issuer_auth is not None or t.second is not None:
            raise CardError(0x6985)
        if not 8 <= len(data) <= 16:
            raise CardError(0x6700)
        t.issuer_auth = self._arpc_ok(app, data)
        if not t.issuer_auth:
            t.cvr[0] |= CVR1_ISSUER_AUTH_FAILED
            raise CardError(0x6300)
        return b""

    # ---- issuer scripts (secure messaging for integrity, EMV Book 2 9.2) ------------------

    def _script(self, header, data, mac_len=None):
        """(app, state, plain data) of a script command whose MAC checks, else 6988."""
        app, st = self._app()
        t = self.txn
        if t is None or t.arqc is None:
            raise CardError(0x6985)
        n = mac_len or (len(data) if len(data) <= 8 else 8)
        if not 4 <= n <= len(data):
            raise CardError(0x6700)
        body, mac = data[:-n], data[-n:]
        sk = cc.session_key(app.mk_smi, t.arqc)
        lc = bytes((len(data),))
        if cc.mac3(sk, bytes(header) + lc + st.atc.to_bytes(2, "big") + t.arqc + body, n) != mac:
            t.cvr[2] |= CVR3_SCRIPT_FAILED
            raise CardError(0x6988)
        t.cvr[2] = (t.cvr[2] & 0x0F) | (min(15, (t.cvr[2] >> 4) + 1) << 4)
        return app, st, body

    def application_block(self, header, data):
        _, st, _ = self._script(header, data)
        st.blocked = True
        return b""

    def application_unblock(self, header, data):
        _, st, _ = self._script(header, data)
        st.blocked = False
        return b""

    def pin_change_unblock(self, header, data):
        """P2 00: unblock (try counter reset); P2 02: change to the enciphered PIN block (8
        bytes, 3DES under the SMC session key with R = ARQC), try counter reset too."""
        p2 = header[3]
        if header[2] != 0 or p2 not in (0x00, 0x02):
            raise CardError(0x6A86)
        app, _, body = self._script(header, data, mac_len=(len(data) - 8) if p2 else None)
        if p2 == 0x02:
            if len(body) != 8:
                raise CardError(0x6700)
            sk = cc.session_key(app.mk_smc, self.txn.arqc)
            self.state.pin = pin_from_block(cc.tdes_decrypt(sk, body))
        self.state.ptc = self.profile["pin_try_limit"]
        return b""


class Txn:
    """The current transaction (from GPO to the end of the second GENERATE AC)."""

    def __init__(self, atc, contactless):
        self.atc = atc
        self.contactless = contactless
        self.cvr = bytearray(3)
        self.tags = {}
        self.iad = None
        self.first = None
        self.second = None
        self.arqc = None
        self.arpc_key = None
        self.issuer_auth = None  # None: not done, True/False: the ARPC's check
        self.issuer_approves = None  # ARPC method 2: the CSU's decision
        self.sent = b""  # the command data a CDA signature's hash covers


def application_cryptogram(version, mk_ac, tags, iad):
    """(the AC, the ARPC's key) a card of `version` computes with its AC master key over tags
    {tag: value} (cryptogram.ARQC_TAGS; KeyError for a missing one) and its IAD (9F10)."""
    data = b"".join(bytes(tags[tag]) for tag in cv.ARQC_TAGS)
    _, cvr, counters = cv.parse_iad(iad, cv.VERSIONS[version][1])
    atc = bytes(tags[0x9F36])
    if version == cv.VISA_CVN10:  # the ICC master key itself, zero padding, the 4-byte CVR
        return cc.mac3(mk_ac, data + cvr, pad=cc.pad1), mk_ac
    if version in (cv.VISA_CVN18, cv.VISA_CVN22):  # the common session key over the whole IAD;
        sk = cc.session_key(mk_ac, atc + bytes(6))   # ARPC method 2 under it
        return cc.mac3(sk, data + bytes(iad)), sk
    # M/Chip: the session key of R = ATC || 00 00 || UN over the CVR (and, CVN 17, the
    # counters); ARPC method 1 under the ICC master key
    sk = cc.session_key(mk_ac, atc + bytes(2) + bytes(tags[0x9F37]))
    return cc.mac3(sk, data + cvr + (counters if version == cv.MCHIP_CVN17 else b"")), mk_ac


def tlv_value(data, tag):
    """The value of the single object `tag` that a command's data must be."""
    items = decode(data)
    if len(items) != 1 or items[0][0] != tag:
        raise CardError(0x6A80)
    return items[0][1]


def bcd_int(b):
    s = bytes(b).hex()
    return int(s) if s.isdigit() else 0


def pin_from_block(block):
    """The PIN digits of a PIN block format 2 (EMV Book 3 6.5.12): 2N PP.. F..F, 8 bytes."""
    h = bytes(block).hex().upper()
    n = int(h[1], 16) if len(h) == 16 and h[0] == "2" else 0
    pin = h[2:2 + n]
    if not 4 <= n <= 12 or not pin.isdigit() or h[2 + n:] != "F" * (14 - n):
        raise CardError(0x6A80)
    return pin


COMMANDS = {
    (0x00, 0xA4): EmvCard.select,
    (0x00, 0xB2): EmvCard.read_record,
    (0x80, 0xCA): EmvCard.get_data,
    (0x00, 0x84): EmvCard.get_challenge,
    (0x80, 0xA8): EmvCard.gpo,
    (0x00, 0x20): EmvCard.verify,
    (0x00, 0x88): EmvCard.internal_authenticate,
    (0x80, 0xAE): EmvCard.generate_ac,
    (0x00, 0x82): EmvCard.external_authenticate,
    (0x84, 0x1E): EmvCard.application_block,
    (0x84, 0x18): EmvCard.application_unblock,
    (0x84, 0x24): EmvCard.pin_change_unblock,
}
