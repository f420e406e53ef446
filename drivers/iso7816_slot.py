"""The ISO/IEC 7816 contact slot: a chip card on UART2, half-duplex on one I/O line.

    import board
    from drivers.iso7816_slot import Slot, CardRemoved, CardMute
    slot = Slot.from_board(board)                 # the handheld's pins and UART
    await slot.wait_inserted()                    # card-detect switch (IRQ-driven)
    atr = await slot.activate()                   # power, clock, reset, ATR, PPS, T=0 or T=1
    rapdu = await slot.transceive(b"\\x00\\xa4\\x04\\x00\\x0e1PAY.SYS.DDF01\\x00")
    await slot.deactivate()
    ok, detail = await slot.self_test()

Wiring (board/handheld.py): the UART's TX (open drain) and RX on the one I/O line, so every
byte sent comes back and is read, checked and dropped (a mismatch is a collision: the card
drove the line while we sent, ProtocolError); CLK from an LEDC PWM (4 MHz by default); RST;
VCC enable (high: the card is powered); card detect (low: a card is in).

Activation (ISO 7816-3 6.2, EMV Book 1 6.1.2): RST low, VCC on, I/O in reception (input
discarded), CLK on, RST held low for 42000 clocks (ISO >= 400; EMV 40000..45000), RST high;
the ATR's TS within 42001 clocks; each further character within 9600 etu (initial etu
372 / f), the whole ATR within 20160 etu. TS 3B: direct convention; read as 03 by the UART
(3F inverse convention): parity is switched to odd and every character decoded (and encoded on
the way out). Then PPS when TA1 offers another F/D than the default and the card is in
negotiable mode (TA2 absent), at most the card's fmax: accepted, the UART is re-clocked to
baud = f * D / F; refused or broken, the card is reset (cold) and used at the defaults. In
specific mode (TA2), TA1's F/D apply at once unless TA2 says implicit. T=1 is used when it is
offered and T=0 is not first (TD1's protocol is the first offered, as EMV does); for T=1 the
IFSD is negotiated (254).

Deactivation (ISO 7816-3 6.4): RST low, CLK off, I/O low (the UART left alone), VCC off.
A removal is seen by the detect switch's IRQ: the card is deactivated at once, a command in
progress ends in CardRemoved, and the slot is ready for the next card.

Guard time: 12 etu per character by the UART's 8E2 framing (2 etu of guard), plus N etu
(TC1) between the characters we send (N = 255: the minimum, 12 for T=0, 11 for T=1, the
framing gives 12). Before we send, 22 etu (BGT, and T=0's 16) since the card's last character.
Timeouts on the host add SLACK_MS for the scheduler (the virtual handheld).
"""

import time

import asyncio
import timeouts
from micropython import const

from iso7816 import CardAbsent, CardError, CardMute, CardOverrun, CardRemoved, ProtocolError  # noqa: F401
from iso7816 import AtrError  # noqa: F401
from iso7816 import atr as _atr
from iso7816 import pps as _pps

F_CLK = const(4_000_000)
_RST_LOW_CLOCKS = const(42_000)
_TS_CLOCKS = const(42_001)
_ATR_CHAR_ETU = const(9_600)
_ATR_TOTAL_ETU = const(20_160)
_TURNAROUND_ETU = const(22)
# Scheduler slack on top of every timeout (a timer, not the card, is late): 25 ms was exceeded
# on a loaded 2-core host running the rig, and a CWT that expires mid-block makes the driver
# send into the card's answer. A larger slack only detects a truly mute card later.
SLACK_MS = const(60)
_DEBOUNCE_MS = const(20)
_SLICE_MS = const(100)  # a wait's slice, between looks at the detect switch
# The most one command may take, from its first character sent to the R-APDU's last received,
# whatever the card asks for: each WTX stretches one block's wait (up to 255 x BWT: minutes),
# and NULL bytes restart T=0's wait, so without a total a card could hold the terminal for
# ever. 8 s is twice a contact purchase's whole budget (4 s), above the 3 BWTs (4.7 s at BWI 4)
# after which a silent T=1 card is called mute, and far above what any card operation takes (a
# GENERATE AC with RSA: 1-2 s). Past it: CardOverrun, and the card is deactivated.
_COMMAND_MS = const(8000)


class Slot:
    """The contact slot. `line` interface for iso7816.t0/t1: send, receive, drain, etu_us,
    etu_ms, slack_ms, d, f_clk."""

    def __init__(self, uart, clk, reset, vcc, detect, pwm, f_clk=F_CLK, use_pps=True, ifsd=254):
        self._uart = uart
        self._reader = asyncio.StreamReader(uart)
        self._writer = asyncio.StreamWriter(uart, {})
        self._clk_pin = clk
        self._pwm_class = pwm
        self._pwm = None
        self._rst = reset
        self._vcc = vcc
        self._detect = detect
        self.f_clk = f_clk
        self.use_pps = use_pps
        self.ifsd = ifsd
        self._flag = asyncio.ThreadSafeFlag()
        self._lock = asyncio.Lock()
        self._deadline = None  # ticks_ms by which the command in progress must be done
        self._rst.value(0)
        self._vcc.value(0)
        self._reset_line_state()
        self.atr = None
        self.protocol = None
        self._proto = None
        self.active = False
        self.inserted = self._detect.value() == 0
        self.removals = 0
        self.echo_errors = 0
        self.pps_done = False
        self.irq_ok = True
        try:
            self._detect.irq(self._on_detect, self._detect.IRQ_FALLING | self._detect.IRQ_RISING)
        except (AttributeError, OSError, ValueError):
            self.irq_ok = False

    def close(self):
        """Let go of the card-detect interrupt: its handler would keep this driver in the heap
        after the app has let go of it (parts.unload)."""
        if self.irq_ok:
            self._detect.irq(None)

    @classmethod
    def from_board(cls, board, **kw):
        from board import handheld as hw

        m = board.buses.machine
        buses = board.buses
        return cls(buses.card_uart(),
                   clk=buses.pin(hw.PIN_CARD_CLK, m.Pin.OUT, value=0),
                   reset=buses.pin(hw.PIN_CARD_RESET, m.Pin.OUT, value=0),
                   vcc=buses.pin(hw.PIN_CARD_VCC_EN, m.Pin.OUT, value=0),
                   detect=buses.pin(hw.PIN_CARD_DETECT, m.Pin.IN, m.Pin.PULL_UP),
                   pwm=m.PWM, **kw)

    def _reset_line_state(self):
        self.F = 372
        self.D = 1
        self.d = 1
        self.N = 0
        self.inverse = False
        self.etu_us = 372 * 1_000_000 // self.f_clk
        self._last_rx = time.ticks_ms()
        self._uart.init(baudrate=self.f_clk // 372, bits=8, parity=0, stop=2)

    # ---- card detect -------------------------------------------------------------------------

    def _on_detect(self, _pin):
        present = self._detect.value() == 0
        if not present and self.inserted:
            self.removals += 1
            self.inserted = False
            if self.active:
                self._power_off()
        elif present:
            self.inserted = True
        self._flag.set()

    def present(self):
        """A card is in the slot (the switch is closed)."""
        self.inserted = self._detect.value() == 0
        return self.inserted

    async def wait_inserted(self, timeout_ms=None):
        """Until a card is in (True), or timeout_ms passed (False)."""
        return await self._wait_for(True, timeout_ms)

    async def wait_removed(self, timeout_ms=None):
        return await self._wait_for(False, timeout_ms)

    async def _wait_for(self, present, timeout_ms):
        start = time.ticks_ms()
        while True:
            if self.present() == present:
                await asyncio.sleep_ms(_DEBOUNCE_MS)
                if self.present() == present:
                    return True
            left = None if timeout_ms is None else timeout_ms - time.ticks_diff(time.ticks_ms(), start)
            if left is not None and left <= 0:
                return False
            wait = 200 if left is None else min(left, 200)  # also polled: an edge may be lost
            try:
                await timeouts.wait_for_ms(self._flag.wait(), wait)
            except asyncio.TimeoutError:
                pass

    def _check_present(self):
        if not self.present():
            if self.active:
                self._power_off()
            raise CardRemoved("the card was removed")

    # ---- the line (for iso7816.t0 / t1) -------------------------------------------------------

    def slack_ms(self, us):
        return us // 1000 + 1 + SLACK_MS

    def etu_ms(self, etu):
        return self.slack_ms(etu * self.etu_us)

    def _code(self, data):
        if self.inverse:
            return bytes(_atr.inverse_byte(b) for b in data)
        return bytes(data)

    async def _read(self, n, first_ms, char_ms):
        # Waited for in slices, so that a removal (the detect IRQ) ends a long wait (a BWT
        # stretched by WTX) at once rather than when it runs out.
        out = b""
        wait = first_ms
        start = time.ticks_ms()
        uart = self._uart
        while len(out) < n:
            if self._deadline is not None and time.ticks_diff(self._deadline, time.ticks_ms()) <= 0:
                raise CardOverrun("the card took more than %d ms over one command" % _COMMAND_MS)
            # What the UART holds already is taken as it is: a timed wait is a task and a turn
            # of the scheduler, and the characters are mostly there (an echo, the rest of a
            # block read after its wire time): ~40% of a command's bytecode, ~15 ms on the ESP32.
            chunk = uart.read(n - len(out)) if uart.any() else None
            if not chunk:
                left = wait - time.ticks_diff(time.ticks_ms(), start)
                if left <= 0:
                    self._check_present()
                    raise CardMute("no character from the card within %d ms (%d of %d)" % (wait, len(out), n))
                try:
                    chunk = await timeouts.wait_for_ms(self._reader.read(n - len(out)), min(left, _SLICE_MS))
                except asyncio.TimeoutError:
                    if not self.inserted:
                        self._check_present()
                    continue
                if not chunk:
                    raise CardMute("the card line closed")
            out += chunk
            more = n - len(out)
            if more > 1:
                # The rest comes at the line's pace into the UART's buffer (rxbuf 512, a T=1
                # block 258 at most): waited for whole, at 11 etu a character, rather than read
                # as it trickles in, each wake-up a read's bytecode (~40 for a 250-byte answer: most
                # of a contact command's time on the ESP32).
                await asyncio.sleep_ms(min(more * 11 * self.etu_us // 1000, _SLICE_MS))
            wait = char_ms
            start = time.ticks_ms()
        self._last_rx = time.ticks_ms()
        return out

    async def receive(self, n, timeout_ms, char_ms=None):
        """Exactly n characters from the card: the first within timeout_ms, each next one
        within char_ms (default: the same)."""
        return self._code(await self._read(n, timeout_ms, timeout_ms if char_ms is None else char_ms))

    def _discard(self):
        n = self._uart.any()
        while n:
            self._uart.read(n)
            n = self._uart.any()

    async def drain(self):
        """Discard whatever the card sent so far."""
        self._discard()

    async def send(self, data):
        """The characters onto the I/O line, each one's echo read back and checked."""
        self._check_present()
        wait = self.etu_ms(_TURNAROUND_ETU) - SLACK_MS - time.ticks_diff(time.ticks_ms(), self._last_rx)
        if wait > 0:
            await asyncio.sleep_ms(wait)
        raw = self._code(data)
        extra = self.N if self.N != 255 else 0
        if extra:
            pieces = [raw[i:i + 1] for i in range(len(raw))]
        else:
            pieces = [raw]
        for piece in pieces:
            self._writer.write(piece)
            await self._writer.drain()
            echo = await self._read(len(piece), self.etu_ms(12 * len(piece) + 12), self.etu_ms(24))
            if echo != piece:
                self.echo_errors += 1
                raise ProtocolError("I/O line echo %s for %s: a collision" % (echo.hex(), piece.hex()))
            if extra:
                gap_us = extra * self.etu_us
                if gap_us < 2000:
                    time.sleep_us(gap_us)
                else:
                    await asyncio.sleep_ms(gap_us // 1000 + 1)

    # ---- activation --------------------------------------------------------------------------

    def _power_off(self):
        self._rst.value(0)
        if self._pwm is not None:
            self._pwm.deinit()
            self._pwm = None
        self._clk_pin.value(0)
        self._vcc.value(0)
        self.active = False
        self._proto = None

    async def deactivate(self):
        """RST low, CLK off, VCC off (ISO 7816-3 6.4); the slot is ready for the next card."""
        self._power_off()
        self.atr = None
        self.protocol = None
        await asyncio.sleep_ms(10)
        self._discard()
        self._reset_line_state()

    async def _cold_reset(self):
        self._power_off()
        await asyncio.sleep_ms(10)
        self._reset_line_state()
        self._check_present()
        self._vcc.value(1)
        await asyncio.sleep_ms(1)  # VCC stable
        self._discard()  # I/O in reception
        self._pwm = self._pwm_class(self._clk_pin, freq=self.f_clk, duty_u16=32768)
        self.active = True
        await asyncio.sleep_ms(_RST_LOW_CLOCKS * 1000 // self.f_clk + 1)
        self._discard()
        self._rst.value(1)
        return await self._read_atr()

    async def _read_atr(self):
        ts_ms = _TS_CLOCKS * 1000 // self.f_clk + 1 + SLACK_MS
        char_ms = self.etu_ms(_ATR_CHAR_ETU)
        start = time.ticks_ms()
        ts = (await self._read(1, ts_ms, char_ms))[0]
        if ts == _atr.TS_INVERSE_RAW:
            self.inverse = True
            self._uart.init(parity=1)  # the inverse convention's parity is odd on the wire
        elif ts != _atr.TS_DIRECT:
            raise _atr.AtrError("TS 0x%02X: neither convention" % ts)
        data = bytes((_atr.TS_INVERSE if self.inverse else _atr.TS_DIRECT,))
        while True:
            need, complete = _atr.expected_length(data)
            if complete and len(data) >= need:
                break
            if need > _atr.MAX_ATR:
                raise _atr.AtrError("ATR longer than 33 characters")
            more = need - len(data)
            if complete and more == 1:
                # The last character alone: a card that leaves out its TCK (or its last
                # historical byte) is not mute; what came goes to the ATR policy (iso7816.atr).
                try:
                    data += self._code(await self._read(1, char_ms, char_ms))
                except CardMute:
                    break
            else:
                data += self._code(await self._read(more - 1 if complete else more, char_ms, char_ms))
            if time.ticks_diff(time.ticks_ms(), start) > self.etu_ms(_ATR_TOTAL_ETU):
                raise CardMute("ATR longer than 20160 etu")
        return _atr.parse(data)

    def _set_fd(self, F, D):
        self.F = F
        self.D = D
        self.d = D
        self.etu_us = F * 1_000_000 // (D * self.f_clk)
        self._uart.init(baudrate=self.f_clk * D // F)

    async def activate(self):
        """Power the card up and read its ATR; PPS; the protocol chosen. Returns the Atr.
        Raises CardAbsent, CardMute (no ATR), AtrError, CardRemoved."""
        async with self._lock:
            if not self.present():
                raise CardAbsent("no card in the slot")
            try:
                return await self._activate()
            except CardError:
                self._power_off()
                raise

    async def _activate(self):
        atr = await self._cold_reset()
        protocol = atr.protocols[0]
        if protocol not in (0, 1):
            raise ProtocolError("the card offers T=%d only" % protocol)
        self.pps_done = False
        if atr.specific:
            protocol = atr.specific_protocol
            if not atr.specific_implicit and atr.F and atr.D:
                self._set_fd(atr.F, atr.D)
        elif self.use_pps and atr.offers_faster() and atr.F and atr.D and self.f_clk <= atr.fmax_khz * 1000:
            ok = False
            try:
                ok = await self._pps(protocol, atr)
            except (CardMute, ProtocolError):
                ok = False
            if not ok:
                atr = await self._cold_reset()  # refused or broken: reset, the defaults
        self.N = atr.N
        self.atr = atr
        self.protocol = protocol
        if protocol == 1:
            from iso7816.t1 import T1

            self._proto = T1(self, ifsc=atr.ifsc, bwi=atr.bwi, cwi=atr.cwi, crc=atr.edc_crc)
            await self._proto.negotiate_ifsd(self.ifsd)
        else:
            from iso7816.t0 import T0

            self._proto = T0(self, wi=atr.wi)
        return atr

    async def _pps(self, protocol, atr):
        req = _pps.request(protocol, atr.fi, atr.di)
        await self.send(req)
        char_ms = self.etu_ms(_ATR_CHAR_ETU)
        head = await self.receive(2, char_ms, char_ms)
        rest = await self.receive(_pps.response_length(head[1]) - 2, char_ms, char_ms)
        if not _pps.accepted(req, head + rest):
            return True  # PPS1 left out: the defaults, already in use; no reset needed
        await asyncio.sleep_ms(self.etu_ms(_TURNAROUND_ETU) - SLACK_MS)
        self._set_fd(atr.F, atr.D)
        self.pps_done = True
        return True

    # ---- commands ----------------------------------------------------------------------------

    async def transceive(self, apdu):
        """A C-APDU; the R-APDU (data, SW1, SW2). CardRemoved, CardMute, ProtocolError;
        CardOverrun past MAX_RESPONSE bytes or _COMMAND_MS (the card is then deactivated)."""
        async with self._lock:
            if self._proto is None:
                self._check_present()
                raise CardError("the card is not active: activate() first")
            self._deadline = time.ticks_add(time.ticks_ms(), _COMMAND_MS)
            try:
                return await self._proto.transceive(apdu)
            except (CardRemoved, CardOverrun):
                self._power_off()  # overrun: the card is mid-answer, out of step with us
                raise
            except CardError:
                if not self.present():
                    self._power_off()
                    raise CardRemoved("the card was removed")
                raise
            finally:
                self._deadline = None

    async def self_test(self):
        """(ok, detail) for diag: the detect switch, and a card's ATR if one is in."""
        if not self.present():
            return True, "slot empty (detect %s)" % ("irq" if self.irq_ok else "polled")
        if self.active and self.atr is not None:
            return True, "card active, T=%d, ATR %s%s" % (self.protocol, self.atr.raw.hex(), _forgave(self.atr))
        try:
            atr = await self.activate()
        except CardError as e:
            return False, "card in, but: %s: %s" % (type(e).__name__, e)
        detail = "card in, T=%d, F=%d D=%d, ATR %s%s" % (self.protocol, self.F, self.D, atr.raw.hex(), _forgave(atr))
        await self.deactivate()
        return True, detail


def _forgave(atr):
    """What the ATR policy let pass (lib/iso7816/atr.py), for diag: the card works, but is off-spec."""
    return "; forgave: " + ", ".join(atr.forgiven) if atr.forgiven else ""
