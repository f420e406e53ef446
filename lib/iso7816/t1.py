"""T=1, the block protocol (ISO/IEC 7816-3 section 11, EMV Book 1 section 9.2.4 / 10).

    t1 = T1(line, ifsc=atr.ifsc, bwi=atr.bwi, cwi=atr.cwi, crc=atr.edc_crc)
    await t1.negotiate_ifsd()          # S(IFS request) with IFSD 254, after the ATR / PPS
    rapdu = await t1.transceive(apdu)

Blocks: NAD PCB LEN INF EDC (LRC: 1 byte XOR; CRC: 2 bytes, see crc16). I-blocks carry the
APDU, chained both ways (M bit) in pieces of at most IFSC (ours to the card) / IFSD bytes;
R-blocks acknowledge a chained I-block or ask for a block again; S-blocks: RESYNCH, IFS,
ABORT, WTX. Timing: the first character of the card's block within BWT (x the WTX multiplier
the card asked for, for that block only), each next one within CWT.

Error handling (ISO 7816-3 11.6.3): a block not received in time, with a bad EDC, a bad LEN or
an unexpected sequence number is answered with an R-block asking for it again; the card asking
for our block again (R-block with N(R) = our N(S)) gets it again. After 3 failed attempts in a
row the interface device resynchronises (S(RESYNCH request), up to 3 times: sequence numbers
back to 0, IFSC back to the ATR's), then sends the command again once; a card that will not
resynchronise is a ProtocolError (the slot then deactivates it). Three silences in a row
(no block within BWT) are CardMute at once, as EMV Book 1 10.6 has it, without resynchronising.

A card's chain is gathered up to MAX_RESPONSE bytes (iso7816): a block that would take the
R-APDU past it is CardOverrun, not acknowledged (a chain without end would otherwise fill the
heap). WTX stretches one block's wait; the total of a command is the slot's (_COMMAND_MS).
"""

from micropython import const

from iso7816 import MAX_RESPONSE, CardMute, CardOverrun, CardRemoved, ProtocolError

PCB_I = const(0x00)
PCB_I_NS = const(0x40)
PCB_I_MORE = const(0x20)
PCB_R = const(0x80)
PCB_S = const(0xC0)
S_RESYNCH = const(0x00)
S_IFS = const(0x01)
S_ABORT = const(0x02)
S_WTX = const(0x03)
S_RESPONSE = const(0x20)
R_OK = const(0)
R_EDC = const(1)
R_OTHER = const(2)

IFSD = const(254)
MAX_ATTEMPTS = const(3)


def lrc(data):
    x = 0
    for b in data:
        x ^= b
    return x


def crc16(data):
    """The T=1 CRC (ISO/IEC 13239 frame check as smart card readers compute it: CRC-16 CCITT,
    bits reflected (polynomial 0x8408), initial 0xFFFF, no final XOR), sent high byte first."""
    v = 0xFFFF
    for b in data:
        v ^= b
        for _ in range(8):
            v = (v >> 1) ^ 0x8408 if v & 1 else v >> 1
    return v


def edc(data, crc=False):
    if crc:
        v = crc16(data)
        return bytes((v >> 8, v & 0xFF))
    return bytes((lrc(data),))


def block(nad, pcb, inf=b"", crc=False):
    """A whole block: prologue, INF, EDC."""
    head = bytes((nad, pcb, len(inf))) + bytes(inf)
    return head + edc(head, crc)


class BadBlock(ProtocolError):
    """A received block failed its checks. `edc`: it was the EDC (else LEN or PCB)."""

    def __init__(self, message, edc=False):
        super().__init__(message)
        self.edc = edc


def check(raw, crc=False):
    """(nad, pcb, inf) of a received block; BadBlock if its EDC or LEN does not check."""
    n = 2 if crc else 1
    if len(raw) < 3 + n or raw[2] == 0xFF or len(raw) != 3 + raw[2] + n:
        raise BadBlock("T=1: bad block length")
    body = raw[:-n]
    if edc(body, crc) != raw[-n:]:
        raise BadBlock("T=1: EDC does not check", True)
    return raw[0], raw[1], bytes(raw[3:-n])


class _Resync(Exception):
    """Three attempts failed: resynchronise. `mute`: every failure was silence."""

    def __init__(self, mute=False):
        super().__init__()
        self.mute = mute


class T1:
    """T=1 over `line` (see iso7816's docstring)."""

    def __init__(self, line, ifsc=32, bwi=4, cwi=13, crc=False, nad=0):
        self.line = line
        self.atr_ifsc = ifsc
        self.ifsc = ifsc
        self.ifsd = 32
        self.bwi = bwi
        self.cwi = cwi
        self.crc = crc
        self.nad = nad
        self.ns = 0  # N(S) of our next I-block
        self.nr = 0  # N(S) expected of the card's next I-block
        # Statistics, for diagnosis and tests.
        self.retransmissions = 0
        self.resyncs = 0
        self.wtx = 0

    # ---- timing ------------------------------------------------------------------------------

    def bwt_ms(self, multiplier=1):
        # BWT = 11 etu + 2^BWI x 960 x 372 / f (EMV adds D x 960 etu of tolerance).
        line = self.line
        us = 11 * line.etu_us + (1 << self.bwi) * 960 * 372 * 1_000_000 // line.f_clk
        us = us * multiplier + 960 * line.d * line.etu_us
        return line.slack_ms(us)

    def cwt_ms(self):
        return self.line.etu_ms((1 << self.cwi) + 11 + 4)

    # ---- blocks ------------------------------------------------------------------------------

    async def _send(self, raw):
        await self.line.send(raw)

    async def _receive(self, multiplier=1):
        line = self.line
        n = 2 if self.crc else 1
        cwt = self.cwt_ms()
        head = await line.receive(3, self.bwt_ms(multiplier), cwt)  # the first within BWT, the next within CWT
        length = head[2]
        if length == 0xFF:
            await line.drain()
            raise BadBlock("T=1: LEN 0xFF")
        rest = await line.receive(length + n, cwt)
        return check(head + rest, self.crc)

    async def _exchange(self, raw):
        """Send raw; the next valid block from the card (nad, pcb, inf), WTX and the card's
        IFS requests handled, errors answered with R-blocks (at most MAX_ATTEMPTS in all,
        then _Resync)."""
        attempts = 0
        silent = 0
        multiplier = 1
        while True:
            await self._send(raw)
            try:
                nad, pcb, inf = await self._receive(multiplier)
            except CardRemoved:
                raise
            except (CardMute, BadBlock) as e:
                attempts += 1
                if isinstance(e, CardMute):
                    silent += 1
                if attempts >= MAX_ATTEMPTS:
                    raise _Resync(silent == attempts)
                self.retransmissions += 1
                err = R_EDC if isinstance(e, BadBlock) and e.edc else R_OTHER
                if raw[1] & 0x80 == 0 or raw[1] & 0xC0 == PCB_R:
                    # Ask for the card's block again (our I-block, if it was lost, the card
                    # will ask for with an R-block of its own).
                    raw = block(self.nad, PCB_R | (self.nr << 4) | err, b"", self.crc)
                # An S-block request of ours is simply repeated.
                multiplier = 1
                continue
            multiplier = 1
            if pcb & 0xC0 == PCB_S and not pcb & S_RESPONSE:
                kind = pcb & 0x1F
                if kind == S_WTX:
                    self.wtx += 1
                    multiplier = inf[0] if inf and inf[0] else 1
                    raw = block(self.nad, PCB_S | S_RESPONSE | S_WTX, inf, self.crc)
                    continue
                if kind == S_IFS and len(inf) == 1 and 16 <= inf[0] <= 254:
                    self.ifsc = inf[0]
                    raw = block(self.nad, PCB_S | S_RESPONSE | S_IFS, inf, self.crc)
                    continue
                if kind == S_ABORT:
                    await self._send(block(self.nad, PCB_S | S_RESPONSE | S_ABORT, b"", self.crc))
                    raise ProtocolError("T=1: the card aborted the chain")
            return nad, pcb, inf

    def _i_block(self, chunk, more):
        pcb = PCB_I | (self.ns << 6) | (PCB_I_MORE if more else 0)
        return block(self.nad, pcb, chunk, self.crc)

    def _r_block(self, err=R_OK):
        return block(self.nad, PCB_R | (self.nr << 4) | err, b"", self.crc)

    # ---- S-blocks of the interface device ----------------------------------------------------

    async def _s_request(self, kind, inf=b""):
        """An S(request) answered by the matching S(response): its INF. _Resync on failure."""
        nad, pcb, rinf = await self._exchange(block(self.nad, PCB_S | kind, inf, self.crc))
        if pcb != PCB_S | S_RESPONSE | kind:
            raise BadBlock("T=1: S(response 0x%02X) expected, got PCB 0x%02X" % (kind, pcb))
        return rinf

    async def negotiate_ifsd(self, ifsd=IFSD):
        """Tell the card the largest INF we take (S(IFS request)). False if it would not."""
        for _ in range(MAX_ATTEMPTS):
            try:
                inf = await self._s_request(S_IFS, bytes((ifsd,)))
            except (_Resync, BadBlock):
                continue
            if inf == bytes((ifsd,)):
                self.ifsd = ifsd
                return True
        return False

    async def resynchronise(self):
        mute = True
        for _ in range(MAX_ATTEMPTS):
            try:
                await self._s_request(S_RESYNCH)
            except _Resync as e:
                mute = mute and e.mute
                continue
            except BadBlock:
                mute = False
                continue
            self.resyncs += 1
            self.ns = 0
            self.nr = 0
            self.ifsc = self.atr_ifsc
            return
        if mute:
            raise CardMute("T=1: the card does not answer")
        raise ProtocolError("T=1: the card does not resynchronise")

    # ---- APDUs -------------------------------------------------------------------------------

    async def transceive(self, apdu):
        """A C-APDU; the R-APDU. ProtocolError if the exchange cannot be completed."""
        apdu = bytes(apdu)
        for attempt in range(2):
            try:
                return await self._transceive(apdu)
            except _Resync as e:
                if e.mute:
                    # Silence three times over: the card is gone or hung; a resynchronisation
                    # would only add 3 x 3 BWTs of it (EMV deactivates here).
                    raise CardMute("T=1: no block from the card within BWT, three times")
                await self.resynchronise()
        raise ProtocolError("T=1: no valid exchange after resynchronisation")

    async def _transceive(self, apdu):
        pos = 0
        total = len(apdu)
        while True:
            chunk = apdu[pos:pos + self.ifsc]
            more = pos + len(chunk) < total
            raw = self._i_block(chunk, more)
            nad, pcb, inf = await self._exchange(raw)
            attempts = 1
            while True:
                if pcb & 0xC0 == PCB_R:
                    if (pcb >> 4) & 1 != self.ns:
                        if more:
                            break  # the chained block is acknowledged: the next one
                        raise BadBlock("T=1: R-block acknowledging the last block of a chain")
                    # The card asks for our block again.
                    attempts += 1
                    self.retransmissions += 1
                    if attempts > MAX_ATTEMPTS:
                        raise _Resync()
                    nad, pcb, inf = await self._exchange(raw)
                    continue
                if pcb & 0x80 == 0 and not more:
                    if (pcb >> 6) & 1 != self.nr:
                        attempts += 1
                        if attempts > MAX_ATTEMPTS:
                            raise _Resync()
                        nad, pcb, inf = await self._exchange(self._r_block(R_OTHER))
                        continue
                    self.ns ^= 1
                    return await self._receive_chain(pcb, inf)
                raise _Resync()
            self.ns ^= 1
            pos += len(chunk)

    async def _receive_chain(self, pcb, inf):
        """The card's I-block (already valid and in sequence) and its chain: the R-APDU."""
        out = bytearray(inf)
        self.nr ^= 1
        while pcb & PCB_I_MORE:
            nad, pcb, inf = await self._exchange(self._r_block())
            attempts = 1
            while pcb & 0x80 or (pcb >> 6) & 1 != self.nr:
                attempts += 1
                if attempts > MAX_ATTEMPTS:
                    raise _Resync()
                nad, pcb, inf = await self._exchange(self._r_block(R_OTHER))
            if len(out) + len(inf) > MAX_RESPONSE:
                raise CardOverrun("T=1: a chained response over %d bytes" % MAX_RESPONSE)
            out += inf
            self.nr ^= 1
        return bytes(out)
