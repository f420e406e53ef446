"""A chip card in the ISO 7816 contact slot, at character level with etu timing (ISO/IEC 7816-3,
EMV Book 1 chapter 8-9).

Attached as "iso7816" on "uart2" (the handheld's card UART). The slot's lines, by the names of
board/handheld.py: "card_io_tx"/"card_io_rx" (one half-duplex I/O line, the UART), "card_clk"
(a PWM/LEDC clock, 1-5 MHz), "card_reset" (RST), "card_vcc_en" (VCC, active high),
"card_detect" (the switch: driven 0 while a card is in, released when it is out).

The line. Every byte the device transmits comes back to it (the I/O line is one wire): the
model echoes each received byte at once, card or no card. The card's characters are 8 data
bits + even parity + 2 stop etu (12 etu), the etu being F/D clock cycles of the CLK the device
actually drives (F=372, D=1 until a PPS: 4 MHz -> 10753 baud). The device's UART must match:
baud within BAUD_TOLERANCE of the card's, and 8 data bits, 2 stop bits, even parity (odd for
an inverse-convention card, whose bits are inverted on the line: the host UART sees odd
parity), else:
  - what the device sends is garbage to the card: counted as parity errors and dropped (T=0,
    PPS), or taken scrambled (T=1: the block fails its EDC and the card answers an R-block);
  - what the card sends reaches the device scrambled.
The parity of the device's UART is known when the device configures the port through the rig
(the model records it); without it, the character length (12 bits) is checked.

Activation (cold reset): VCC on, CLK running, RST low, then RST high: the ATR starts
ATR_DELAY clock cycles (default 4000; ISO/EMV allow 400..40000) after the rising edge. RST low
then high while powered is a warm reset (the ATR again). VCC off, CLK stopped or RST low: the
card is silent and forgets everything (protocol, F/D, sequence numbers, the applet's state).
RST already high when VCC and CLK come up is no reset: the card stays silent.

Convention: direct (TS 3B) or inverse (TS 3F: every byte on the line bit-inverted and sent MSB
first; the model applies it to all it sends and receives, so the device's UART reads TS as 03).

PPS (negotiable mode, the first exchange after the ATR): FF PPS0 [PPS1] [PPS2] [PPS3] PCK.
Accepted (echoed, then the card switches to the new F/D) when PCK is right, T is one the ATR
offers and PPS1 (if present) is the default 11 or the ATR's TA1 F with a D no greater than
TA1's. Anything else is not answered: the card waits for a reset. Without PPS the card runs
the first protocol offered with the default F=372, D=1; with TA2 (specific mode) the TA1
values apply from the ATR on and a PPS is not answered.

T=0 (ISO 7816-3 10.3): the header CLA INS P1 P2 P3; NULL 0x60 procedure bytes first (insert
nulls=N each command, fault nulls for extra ones), ACK = INS (all the data) or ~INS (one byte
at a time: insert ack="ins-bar"), SW1 SW2. Whether P3 is Lc or Le comes from INS (the
applet's T0_OUTGOING set if it has one, else READ BINARY/RECORD, GET DATA, GET CHALLENGE,
GET RESPONSE and the echo applet's EE). Case 2 with Le not the response's length: 6C Lr, the
response kept for the repeat with P3=Lr; case 4 (and case 2 longer than 256): 61 xx, the rest
by GET RESPONSE 00 C0 00 00 xx (a wrong Le there: 6C xx).

T=1 (ISO 7816-3 11): blocks NAD PCB LEN INF EDC, EDC LRC or CRC (TC3 bit 0; CRC-16 as in
openct/pcsc-lite's T=1: reflected 0x8408, initial FFFF, high byte first). IFSC from TA3 (else
32), IFSD from the device's S(IFS request) (else 32). I-blocks with N(S) and chaining (M) both
ways, R-blocks (ACK of a chained block; N(R) with error bits 1 on an EDC/parity error, 2 on
another error: a block longer than IFSC, bad LEN), S(RESYNCH), S(IFS), S(ABORT) answered;
S(WTX request) sent by the card before the answer of a slow command (insert wtx=N or do_wtx).
A block whose characters stop for longer than max(CWT, 50 ms) is dropped.

APDUs go to the applets of tools/rig/pn532.py (APPLETS, register_applet): the same applet
answers over NFC and here; it sees plain APDUs.

Control-API actions:
  insert(atr="emv-t0"|"t1"|"sim"|hex, applet="echo", protocol=None, nulls=0, ack="ins",
         wtx=0, atr_delay=4000)   a card in the slot (the detect switch closes)
  remove()                        out of the slot, mid-command or not: silent, switch open
  fault(kind="parity"|"edc"|"mute"|"nulls"|"wtx"|"chain"|"none", count=1)   the next `count`
         characters the card sends have a bit flipped / blocks it sends have a bad EDC /
         commands (headers, blocks) are not answered (-1: until cleared) / extra NULL bytes
         before the next answer (-1: without end) / S(WTX) requests before the next answers
         (T=1; -1: until cleared) / blocks of filler chained after the next answers (T=1: an
         I-block of IFSD bytes with M set, T=0: 61 FF and 255 bytes to GET RESPONSE; -1: until
         cleared). The last three are the lying card of issue 17: a NULL, WTX or chain without
         end holds a reader that does not bound its command (time, size).
  wtx(n=1)                        the next T=1 command takes n S(WTX) requests
  timing(scale=1.0)               scale the card's processing times (NULL spacing, WTX work)
"""

import asyncio

from .models import Model
from .pn532 import APPLETS

F_TABLE = {0: 372, 1: 372, 2: 558, 3: 744, 4: 1116, 5: 1488, 6: 1860, 9: 512, 10: 768, 11: 1024,
           12: 1536, 13: 2048}
D_TABLE = {1: 1, 2: 2, 3: 4, 4: 8, 5: 16, 6: 32, 7: 64, 8: 12, 9: 20}

# Real ATRs (from the pcsc-tools smartcard list).
PRESETS = {
    # A Visa debit card: T=0 only, TB1 00 (no VPP), TC1 00, historical bytes 00 73 C8 40 12 00 90 00.
    "emv-t0": "3B6800000073C84012009000",
    # NXP JCOP 2.4.1: TA1 13 (F=372, D=4), TD1 81 / TD2 31: T=1, TA3 FE (IFSC 254), TB3 45 (BWI 4,
    # CWI 5), historical "JCOPv241", TCK B7.
    "t1": "3BF81300008131FE454A434F5076323431B7",
    # A GSM SIM in the inverse convention: TB1 00, 15 historical bytes, T=0.
    "sim": "3F2F008069AF03070352000D0A0E833E9F16",
}

ATR_DELAY = 4000  # clock cycles from RST rising to the ATR's start bit (ISO: 400..40000)
BAUD_TOLERANCE = 0.04
NULL_MS = 20  # between NULL procedure bytes (scaled by timing)
WTX_MS = 50  # the card's work between WTX requests (scaled)
DEFAULT_OUTGOING = frozenset((0xB0, 0xB1, 0xB2, 0xB3, 0xC0, 0xCA, 0xCB, 0x84, 0xEE))


def _reverse(b):
    return int("{:08b}".format(b)[::-1], 2)


INVERSE = bytes(_reverse(~b & 0xFF) for b in range(256))  # involutive


def lrc(data):
    x = 0
    for b in data:
        x ^= b
    return bytes((x,))


def crc(data):
    v = 0xFFFF
    for b in data:
        v ^= b
        for _ in range(8):
            v = (v >> 1) ^ 0x8408 if v & 1 else v >> 1
    return bytes((v >> 8, v & 0xFF))


def _garble(b):
    return ((b * 37) ^ 0x5A) & 0xFF


class Atr:
    """The parameters of an ATR (ISO 7816-3 8.2)."""

    def __init__(self, data):
        self.raw = bytes(data)
        if len(data) < 2 or data[0] not in (0x3B, 0x3F):
            raise ValueError("TS must be 3B or 3F: %s" % self.raw.hex())
        self.inverse = data[0] == 0x3F
        y, k, i, n = data[1] >> 4, data[1] & 0x0F, 2, 1
        self.ta, self.tb, self.tc, self.td = {}, {}, {}, {}
        self.protocols = []
        while True:
            for bit, table in ((1, self.ta), (2, self.tb), (4, self.tc), (8, self.td)):
                if y & bit:
                    if i >= len(data):
                        raise ValueError("ATR too short: %s" % self.raw.hex())
                    table[n] = data[i]
                    i += 1
            if n not in self.td:
                break
            self.protocols.append(self.td[n] & 0x0F)
            y = self.td[n] >> 4
            n += 1
        self.historical = bytes(data[i:i + k])
        i += k
        # A TCK, when there is one, must check; a card may leave it out although it offers T=1
        # (off-spec, and in the field: pcsc-tools' list has dozens).
        if any(p != 0 for p in self.protocols) and i < len(data):
            x = 0
            for b in data[1:i + 1]:
                x ^= b
            if x:
                raise ValueError("ATR TCK wrong: %s" % self.raw.hex())
        self.protocol = self.protocols[0] if self.protocols else 0
        ta1 = self.ta.get(1, 0x11)
        self.fi, self.di = F_TABLE.get(ta1 >> 4, 372), D_TABLE.get(ta1 & 0x0F, 1)
        self.ta1 = ta1
        self.specific = 2 in self.ta
        self.n = self.tc.get(1, 0)
        self.ifsc, self.bwi, self.cwi, self.crc = 32, 4, 13, False
        for m, td in sorted(self.td.items()):
            if m >= 2 and td & 0x0F == 1:
                self.ifsc = self.ta.get(m + 1, 32)
                tb = self.tb.get(m + 1, 0x4D)
                self.bwi, self.cwi = tb >> 4, tb & 0x0F
                self.crc = bool(self.tc.get(m + 1, 0) & 1)
                break


class ChipCard(Model):
    """A chip card in the ISO 7816 contact slot: ATR, PPS, T=0 and T=1 at character level."""

    def __init__(self, port=None):
        self.port = port
        self.scale = 1.0
        self.card = None  # dict of the inserted card's settings, or None
        self.applet = None
        self.faults = {"parity": 0, "edc": 0, "mute": 0, "nulls": 0, "wtx": 0, "chain": 0}
        self.wtx_next = 0
        self.line_format = None  # (bits, parity, stop) as the device configured the port
        self.counters = dict.fromkeys(
            ("atrs", "pps", "apdus", "echoed", "chars_in", "chars_out", "parity_errors", "edc_errors",
             "r_blocks", "s_blocks", "wtx", "nulls", "resynchs", "ignored"), 0)
        self.gen = 0
        self.state = "out"
        self._timers = set()
        self._wrap_configure()
        self._forget()

    # ---- wiring and the line ------------------------------------------------------------------

    def _wrap_configure(self):
        port, model = self.port, self
        configure = getattr(port, "configure", None)
        if configure is None or getattr(configure, "_iso7816", False):
            return

        def wrapped(baud, bits, parity, stop):
            model.line_format = (bits, parity, stop)
            return configure(baud, bits, parity, stop)

        wrapped._iso7816 = True
        port.configure = wrapped

    def wire(self, bank):
        self.io_gpio = self.gpio("card_io_rx")
        self.clk_gpio = self.gpio("card_clk")
        self.rst_gpio = self.gpio("card_reset")
        self.vcc_gpio = self.gpio("card_vcc_en")
        self.detect_gpio = self.gpio("card_detect")
        bank.watchers.append(self._watch)
        self._sync()

    def _gone(self):
        """Detached: no more timers, no watching, the detect switch released."""
        self._cancel()
        if self._pins is not None:
            if self._watch in self._pins.watchers:
                self._pins.watchers.remove(self._watch)
            if self.card is not None:
                self._pins.set_external(self.detect_gpio, None)

    def _watch(self, gpio, level):
        if not self._attached():
            self._gone()
            return
        if gpio in (self.clk_gpio, self.rst_gpio, self.vcc_gpio):
            self._sync()

    def _loop(self):
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def _later(self, delay, fn, *args):
        """fn(*args) after delay seconds, unless the card lost its state meanwhile; at once when
        no event loop runs (the model driven directly)."""
        gen = self.gen
        loop = self._loop()
        if loop is None:
            fn(*args)
            return

        def run():
            self._timers.discard(handle)
            if not self._attached():
                self._gone()
            elif gen == self.gen:
                fn(*args)

        handle = loop.call_later(max(0.0, delay), run)
        self._timers.add(handle)

    def _cancel(self):
        for h in list(self._timers):
            h.cancel()
        self._timers.clear()

    def clock_hz(self):
        if self._pins is None:
            return 0
        freq, duty = self._pins.pwm.get(self.clk_gpio, (0, 0))
        return freq if duty else 0

    def card_baud(self):
        hz = self.clock_hz()
        return hz * self.d / self.f if hz else 0

    def _line_ok(self, receiving):
        """Whether the device's UART matches the card's character timing (and format)."""
        want = self.card_baud()
        baud = getattr(self.port, "baud", want)
        if not want or abs(baud - want) > BAUD_TOLERANCE * want:
            return False
        if not receiving:
            return True
        if self.line_format is not None:
            bits, parity, stop = self.line_format
            min_stop = 1 if (self.protocol == 1 and self.atr and self.atr.n == 255) else 2
            want_parity = "odd" if (self.atr and self.atr.inverse) else "even"
            return bits == 8 and parity in (want_parity, {"even": 1, "odd": 2}[want_parity]) and stop >= min_stop
        return getattr(self.port, "char_bits", 12) >= 12 or (self.protocol == 1 and self.atr and self.atr.n == 255)

    def _send(self, data):
        """Characters from the card onto the I/O line."""
        if self.state in ("out", "off", "reset"):
            return
        out = bytearray(data)
        for i in range(len(out)):
            if self.faults["parity"]:
                self.faults["parity"] -= 1
                out[i] ^= 0x01
        if self.atr is not None and self.atr.inverse:
            out = bytearray(INVERSE[b] for b in out)
        if not self._line_ok(receiving=False):
            out = bytearray(_garble(b) for b in out)
        self.counters["chars_out"] += len(out)
        self.port.send(bytes(out))

    def receive(self, data):
        """Bytes the device put on the I/O line: they come back to it (the echo), and reach the
        card if one is active."""
        self.port.echo(bytes(data))
        self.counters["echoed"] += len(data)
        if self.state not in ("ready", "pps", "t0", "t1", "wait"):
            return
        ok = self._line_ok(receiving=True)
        for b in data:
            self.counters["chars_in"] += 1
            if self.atr.inverse:
                b = INVERSE[b]
            if not ok:
                self.counters["parity_errors"] += 1
                if self.state == "t1":
                    self._t1_char(_garble(b), bad=True)
                continue
            self._char(b)
            if self.state in ("out", "off", "reset", "silent"):
                return

    # ---- activation ---------------------------------------------------------------------------

    def _forget(self):
        self.gen += 1
        self._cancel()
        self.atr = self.card and Atr(self.card["atr"])
        self.f, self.d = 372, 1  # the ATR is always at the default etu
        self.protocol = None
        self.rx = bytearray()
        self.t0 = None
        self.pending = None  # T=0: the response kept for GET RESPONSE / a 6C repeat
        self.t1 = None
        if self.applet is not None and hasattr(self.applet, "reset"):
            self.applet.reset()

    def _sync(self):
        if self._pins is None:
            return
        powered = self._pins.level(self.vcc_gpio) == 1
        clk = self.clock_hz() > 0
        rst = self._pins.level(self.rst_gpio)
        if self.card is None:
            return
        if not (powered and clk):
            if self.state != "off":
                self.state = "off"
                self._forget()
            return
        if rst == 0:
            if self.state != "reset":
                self.state = "reset"
                self._forget()
            return
        if self.state == "reset":  # RST rose while powered and clocked: cold or warm reset
            self.state = "atr"
            self._forget()
            self._later(self.card["atr_delay"] / self.clock_hz(), self._send_atr)
        elif self.state in ("off", "out"):
            self.state = "silent"  # RST high already when power came: no reset

    def _send_atr(self):
        self.counters["atrs"] += 1
        self._send(self.atr.raw)
        self.state = "ready"
        if self.atr.specific:  # TA2: the mode is set; TA1's F/D unless TA2 says implicit values
            ta2 = self.atr.ta[2]
            if not ta2 & 0x10:
                self.f, self.d = self.atr.fi, self.atr.di
            self.protocol = ta2 & 0x0F
            self._start_protocol()

    def _start_protocol(self):
        if self.card.get("protocol") is not None and not self.atr.specific:
            self.protocol = self.card["protocol"]
        self.state = "t1" if self.protocol == 1 else "t0"
        self.rx = bytearray()
        if self.protocol == 1:
            self.t1 = {"ifsd": 32, "card_ns": 0, "expect_ns": 0, "apdu": bytearray(), "chain": [],
                       "last": None, "wtx": 0, "response": None, "last_char": None}

    def _char(self, b):
        if self.state == "ready":
            if b == 0xFF:
                self.state = "pps"
                self.rx = bytearray((b,))
                return
            self.protocol = self.atr.protocol
            self._start_protocol()
        if self.state == "pps":
            self.rx.append(b)
            self._pps()
        elif self.state == "t0":
            self._t0_char(b)
        elif self.state == "t1":
            self._t1_char(b)
        else:
            self.counters["ignored"] += 1

    # ---- PPS ----------------------------------------------------------------------------------

    def _pps(self):
        rx = self.rx
        if len(rx) < 2:
            return
        pps0 = rx[1]
        need = 3 + bin(pps0 & 0x70).count("1")
        if len(rx) < need:
            return
        x = 0
        for b in rx:
            x ^= b
        t = pps0 & 0x0F
        ok = x == 0 and not self.atr.specific and t in (self.atr.protocols or [0])
        f, d = 372, 1
        if ok and pps0 & 0x10:
            pps1 = rx[2]
            fi, di = pps1 >> 4, pps1 & 0x0F
            if pps1 == 0x11 or (fi == self.atr.ta1 >> 4 and di in D_TABLE and D_TABLE[di] <= self.atr.di
                                and F_TABLE.get(fi) == self.atr.fi):
                f, d = F_TABLE.get(fi, 372), D_TABLE[di]
            else:
                ok = False
        if not ok:
            self.state = "silent"  # not answered: the device resets the card
            return
        self.counters["pps"] += 1
        self._send(bytes(rx))
        self.f, self.d = f, d  # from the next character on
        self.protocol = t
        self._start_protocol()

    # ---- T=0 ----------------------------------------------------------------------------------

    def _fault(self, kind):
        """Whether fault `kind` acts now (one of its count used; -1 lasts until cleared)."""
        if self.faults[kind] > 0:
            self.faults[kind] -= 1
            return True
        return self.faults[kind] < 0

    def _t0_char(self, b):
        t0 = self.t0
        if t0 is None:
            self.rx.append(b)
            if len(self.rx) < 5:
                return
            header, self.rx = bytes(self.rx), bytearray()
            if self._fault("mute"):
                self.counters["ignored"] += 1
                return
            self._t0_header(header)
        elif t0["want"] > 0:
            t0["data"].append(b)
            t0["want"] -= 1
            if t0["one"] and len(t0["data"]) < t0["lc"]:
                t0["want"] = 0
                self._t0_procedure(bytes((t0["ins"] ^ 0xFF,)), self._t0_one_more)
            elif len(t0["data"]) == t0["lc"]:
                self._t0_run()
        else:
            self.counters["ignored"] += 1  # the card is working: not listening

    def _t0_one_more(self):
        self.t0["want"] = 1

    def _outgoing(self, ins):
        return ins in getattr(self.applet, "T0_OUTGOING", DEFAULT_OUTGOING)

    def _t0_procedure(self, data, then=None):
        """Send NULL bytes if any are due, then data; then() after."""
        nulls = self.faults["nulls"]
        self.faults["nulls"] = 0
        nulls += self.card["nulls"] if self.t0 and self.t0.get("first") else 0
        if self.t0:
            self.t0["first"] = False

        def step(left):
            if left:
                self.counters["nulls"] += 1
                self._send(b"\x60")
                self._later(NULL_MS / 1000 * self.scale, step, left - 1 if left > 0 else -1)
            else:
                self._send(data)
                if then is not None:
                    then()

        step(nulls)

    def _t0_header(self, header):
        cla, ins, p1, p2, p3 = header
        self.t0 = {"header": header, "ins": ins, "data": bytearray(), "want": 0, "lc": 0,
                   "one": self.card["ack"] == "ins-bar", "first": True}
        if ins & 0xF0 in (0x60, 0x90):
            self._t0_finish(b"\x6d\x00")
            return
        if cla == 0xFF:
            self._t0_finish(b"\x6e\x00")
            return
        if ins == 0xC0 and self.pending is None:
            self._t0_finish(b"\x69\x85")
            return
        if self._outgoing(ins):
            le = p3 or 256
            if ins == 0xC0:
                self._t0_send_out(le)
                return
            pending = self.pending
            if pending is not None and pending[0] == header[:4] and len(pending[1]) == le:
                self._t0_send_out(le)  # the repeat after 6C xx
                return
            self.pending = None
            self.counters["apdus"] += 1
            response = bytes(self.applet.process(header))
            data, sw = response[:-2], response[-2:]
            if not data:
                self._t0_finish(sw)
                return
            self.pending = [header[:4], data, sw]
            if len(data) < le or (len(data) > le and len(data) <= 256):
                self._t0_finish(bytes((0x6C, len(data) & 0xFF)))
                return
            self._t0_send_out(le)
            return
        self.pending = None
        if p3 == 0:  # case 1
            self._t0_run()
            return
        self.t0["lc"] = p3
        self._t0_procedure(bytes((ins ^ 0xFF,)) if self.t0["one"] else bytes((ins,)), self._t0_data)

    def _t0_data(self):
        self.t0["want"] = 1 if self.t0["one"] else self.t0["lc"]

    def _t0_run(self):
        t0 = self.t0
        header = t0["header"]
        apdu = header[:4] + (bytes((t0["lc"],)) + bytes(t0["data"]) if t0["lc"] else b"")
        self.counters["apdus"] += 1
        response = bytes(self.applet.process(apdu))
        data, sw = response[:-2], response[-2:]
        if data:  # case 4: the data waits for GET RESPONSE
            self.pending = [b"\x00\xc0\x00\x00", data, sw]
            self._t0_finish(bytes((0x61, len(data) & 0xFF if len(data) < 256 else 0)))
        else:
            self._t0_finish(sw)

    def _t0_send_out(self, le):
        """ACK, Le bytes of the pending response, then its SW or 61 xx for the rest."""
        _, data, sw = self.pending
        if le > len(data):
            self._t0_finish(bytes((0x6C, len(data) & 0xFF)))
            return
        part, rest = data[:le], data[le:]
        if not rest and self._fault("chain"):
            rest = bytes(range(255))  # "61 FF": more, and more
        if rest:
            self.pending = [b"\x00\xc0\x00\x00", rest, sw]
            tail = bytes((0x61, len(rest) if len(rest) < 256 else 0))
        else:
            self.pending = None
            tail = sw
        self._t0_procedure(bytes((self.t0["ins"],)) + part + tail, self._t0_done)

    def _t0_finish(self, sw):
        self._t0_procedure(sw, self._t0_done)

    def _t0_done(self):
        self.t0 = None
        self.rx = bytearray()

    # ---- T=1 ----------------------------------------------------------------------------------

    def _edc(self, data):
        return crc(data) if self.atr.crc else lrc(data)

    def _t1_send(self, pcb, inf=b"", remember=True):
        t1 = self.t1
        nad = t1.get("nad", 0)
        nad = ((nad & 0x07) << 4) | ((nad >> 4) & 0x07)
        block = bytes((nad, pcb, len(inf))) + bytes(inf)
        edc = self._edc(block)
        if self.faults["edc"]:
            self.faults["edc"] -= 1
            edc = bytes(b ^ 0x5A for b in edc)
        if remember:
            t1["last"] = (pcb, bytes(inf))
        self._send(block + edc)

    def _t1_char(self, b, bad=False):
        t1 = self.t1
        loop = self._loop()
        now = loop.time() if loop is not None else None
        if now is not None and t1["last_char"] is not None and self.rx:
            etu = self.f / self.d / max(1, self.clock_hz())
            if now - t1["last_char"] > max((11 + (1 << self.atr.cwi)) * etu, 0.05):
                self.rx = bytearray()
        t1["last_char"] = now
        if not self.rx:
            t1["bad"] = False
        t1["bad"] = t1["bad"] or bad
        self.rx.append(b)
        edc_len = 2 if self.atr.crc else 1
        if len(self.rx) < 3 or len(self.rx) < 3 + self.rx[2] + edc_len:
            return
        block, self.rx = bytes(self.rx), bytearray()
        if self.state != "t1":
            return
        if self._fault("mute"):
            self.counters["ignored"] += 1
            return
        body, edc = block[:-edc_len], block[-edc_len:]
        if t1["bad"] or self._edc(body) != edc:
            self.counters["edc_errors"] += 1
            self._t1_r(1)
            return
        nad, pcb, n = body[0], body[1], body[2]
        inf = body[3:]
        t1["nad"] = nad
        if n == 0xFF:
            self._t1_r(2)
        elif pcb & 0x80 == 0:
            self._t1_i(pcb, inf)
        elif pcb & 0xC0 == 0x80:
            self._t1_rblock(pcb)
        else:
            self._t1_s(pcb, inf)

    def _t1_r(self, err):
        self.counters["r_blocks"] += 1
        self._t1_send(0x80 | (self.t1["expect_ns"] << 4) | err, remember=False)

    def _t1_i(self, pcb, inf):
        t1 = self.t1
        ns, more = (pcb >> 6) & 1, (pcb >> 5) & 1
        if len(inf) > self.atr.ifsc:
            self._t1_r(2)
            return
        if ns != t1["expect_ns"]:
            if t1["last"] is not None:  # the device did not get our answer: again
                self._t1_send(*t1["last"])
            else:
                self._t1_r(2)
            return
        t1["expect_ns"] ^= 1
        if t1["chain"]:  # an I-block acknowledges our last chained one... only if we were done
            t1["chain"] = []
        t1["apdu"] += inf
        if more:
            self.counters["r_blocks"] += 1
            self._t1_send(0x80 | (t1["expect_ns"] << 4))
            return
        apdu, t1["apdu"] = bytes(t1["apdu"]), bytearray()
        self.counters["apdus"] += 1
        t1["response"] = bytes(self.applet.process(apdu))
        t1["wtx"] = self.wtx_next or self.card["wtx"]
        self.wtx_next = 0
        self._t1_work()

    def _t1_work(self):
        t1 = self.t1
        if t1["wtx"] > 0 or self._fault("wtx"):
            t1["wtx"] = max(0, t1["wtx"] - 1)
            self.counters["wtx"] += 1
            self.counters["s_blocks"] += 1
            self._t1_send(0xC3, b"\x01")
            t1["awaiting_wtx"] = True
            return
        response, t1["response"] = t1["response"], None
        chunks = [response[i:i + t1["ifsd"]] for i in range(0, len(response), t1["ifsd"])] or [b""]
        t1["chain"] = chunks
        self._t1_next_chunk()

    def _t1_next_chunk(self):
        t1 = self.t1
        chunk = t1["chain"].pop(0)
        if not t1["chain"] and self._fault("chain"):
            t1["chain"].append(bytes(i & 0xFF for i in range(t1["ifsd"])))  # one block more
        more = 1 if t1["chain"] else 0
        pcb = (t1["card_ns"] << 6) | (more << 5)
        t1["card_ns"] ^= 1
        self._t1_send(pcb, chunk)

    def _t1_rblock(self, pcb):
        t1 = self.t1
        nr = (pcb >> 4) & 1
        last = t1["last"]
        if last is not None and last[0] & 0x80 == 0 and last[0] & 0x20 and nr == t1["card_ns"] and t1["chain"]:
            self._t1_next_chunk()  # the device acknowledged our chained block
        elif last is not None:
            self._t1_send(*last)  # it asks for our last block again
        else:
            self._t1_r(2)

    def _t1_s(self, pcb, inf):
        t1 = self.t1
        kind = pcb & 0x3F
        self.counters["s_blocks"] += 1
        if kind == 0x00:  # RESYNCH request
            self.counters["resynchs"] += 1
            t1.update(card_ns=0, expect_ns=0, ifsd=32, apdu=bytearray(), chain=[], last=None)
            self._t1_send(0xE0, remember=False)
        elif kind == 0x01 and len(inf) == 1 and 0 < inf[0] < 0xFF:  # IFS request
            t1["ifsd"] = inf[0]
            self._t1_send(0xE1, inf)
        elif kind == 0x02:  # ABORT request
            t1.update(apdu=bytearray(), chain=[])
            self._t1_send(0xE2)
        elif kind == 0x23 and t1.get("awaiting_wtx"):  # WTX response
            t1["awaiting_wtx"] = False
            self._later(WTX_MS / 1000 * self.scale, self._t1_work)
        else:
            self._t1_r(2)

    # ---- control-API actions ------------------------------------------------------------------

    def do_insert(self, atr="emv-t0", applet="echo", protocol=None, nulls=0, ack="ins", wtx=0,
                  atr_delay=ATR_DELAY):
        """A card in the slot: atr a preset name or hex; the detect switch closes."""
        raw = bytes.fromhex(PRESETS.get(atr, atr).replace(" ", "").replace(":", ""))
        Atr(raw)  # checks it
        if applet not in APPLETS:
            raise ValueError("no applet %r; applets: %s" % (applet, ", ".join(sorted(APPLETS))))
        if ack not in ("ins", "ins-bar"):
            raise ValueError("ack is 'ins' or 'ins-bar'")
        if isinstance(protocol, str):
            protocol = int(protocol.upper().replace("T=", ""))
        if not 400 <= atr_delay <= 40000:
            raise ValueError("atr_delay is 400..40000 clock cycles")
        self.do_remove()
        self.card = {"atr": raw, "preset": atr if atr in PRESETS else None, "applet": applet,
                     "protocol": protocol, "nulls": int(nulls), "ack": ack, "wtx": int(wtx),
                     "atr_delay": int(atr_delay)}
        self.applet = APPLETS[applet]()
        self.state = "off"
        self._forget()
        if self._pins is not None:
            self._pins.set_external(self.detect_gpio, 0)
            self._sync()
        return self.status()

    def do_remove(self):
        """The card out of the slot (mid-command or not): silent, the detect switch opens."""
        self.card = None
        self.applet = None
        self.state = "out"
        self._forget()
        if self._pins is not None:
            self._pins.set_external(self.detect_gpio, None)
        return None

    def do_fault(self, kind="parity", count=1):
        if kind == "none":
            self.faults = dict.fromkeys(self.faults, 0)
        elif kind in self.faults:
            self.faults[kind] = int(count)
        else:
            raise ValueError("fault kinds: parity, edc, mute, nulls, wtx, chain, none")
        return dict(self.faults)

    def do_wtx(self, n=1):
        self.wtx_next = int(n)
        return None

    def do_timing(self, scale=1.0):
        self.scale = float(scale)
        return None

    def status(self):
        hz = self.clock_hz()
        pins = self._pins
        return {
            "inserted": self.card is not None,
            "powered": bool(pins and pins.level(self.vcc_gpio) == 1),
            "clock_hz": hz,
            "rst": pins.level(self.rst_gpio) if pins else None,
            "state": self.state,
            "atr": self.card and self.card["atr"].hex(),
            "preset": self.card and self.card["preset"],
            "applet": self.card and self.card["applet"],
            "convention": None if self.atr is None else ("inverse" if self.atr.inverse else "direct"),
            "protocol": self.protocol,
            "F": self.f, "D": self.d,
            "etu_clocks": self.f / self.d,
            "etu_us": (self.f / self.d / hz * 1e6) if hz else None,
            "card_baud": self.card_baud(),
            "device_baud": getattr(self.port, "baud", None),
            "line_format": self.line_format,
            "extra_guard": self.atr.n if self.atr else None,
            "ifsc": self.atr.ifsc if self.atr else None,
            "ifsd": self.t1["ifsd"] if self.t1 else None,
            "edc": None if self.atr is None else ("crc" if self.atr.crc else "lrc"),
            "faults": dict(self.faults),
            "timing_scale": self.scale,
            "counters": dict(self.counters),
        }
