"""The Answer To Reset (ISO/IEC 7816-3 section 8, EMV Book 1 section 8.3).

    from iso7816.atr import parse, decode_inverse
    atr = parse(b"\\x3B\\x68\\x00\\x00...")   # logical bytes (an inverse-convention ATR as 3F ..)
    atr.protocols, atr.F, atr.D, atr.N, atr.ifsc, atr.bwi, atr.cwi, atr.edc_crc

`parse` takes the ATR's logical bytes: TS 3B (direct) or 3F (inverse; its bytes already
decoded, as a reader gives them). `decode_inverse(raw)` turns what a direct-convention UART
received from an inverse-convention card (TS read as 0x03) into logical bytes.

Interface bytes are kept per level as ISO numbers them: `ta[i]`, `tb[i]`, `tc[i]`, `td[i]` for
i = 1, 2, ... (index 0 unused, None where absent). Parameters implied (with their defaults
when absent): Fi/Di and F, D (TA1), N (TC1), specific mode (TA2), WI (TC2, T=0), IFSC (first
TA for T=1), CWI/BWI (first TB for T=1), EDC (first TC for T=1: LRC or CRC).

Policy: as forgiving as pcsc-lite's readers where nothing that sets up the protocol is in doubt,
saying so in `forgiven` (None, or a tuple of notes; diag shows them): no TCK although T=1 or
T=15 is indicated (`tck` None), bytes after the ATR (a T=0 card that sends a TCK anyway), fewer
historical bytes than T0 announces (they only inform; the interface bytes are whole). Strict
where EMV Book 1 (section 8.3, the characters of the ATR) has the terminal reject the ATR: a
TCK that does not check (the bytes that set F, D, N and the protocol may be corrupt), an IFSC
(TA3 for T=1) outside '10'..'FE'; and where nothing can be read (TS, interface bytes cut short,
the reserved WI 0).
"""

from micropython import const

from iso7816 import AtrError

TS_DIRECT = const(0x3B)
TS_INVERSE = const(0x3F)
TS_INVERSE_RAW = const(0x03)  # an inverse-convention TS as a direct-convention UART reads it

# Fi -> F (clock rate conversion integer) and fmax (kHz); 0 = RFU. ISO 7816-3 table 7.
FI_TABLE = (372, 372, 558, 744, 1116, 1488, 1860, 0, 0, 512, 768, 1024, 1536, 2048, 0, 0)
FMAX_KHZ = (4000, 5000, 6000, 8000, 12000, 16000, 20000, 0, 0, 5000, 7500, 10000, 15000, 20000, 0, 0)
# Di -> D (baud rate adjustment integer); 0 = RFU. ISO 7816-3 table 8.
DI_TABLE = (0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0)

MAX_ATR = const(33)  # TS and at most 32 characters


def f_of(fi):
    """F for Fi; AtrError on an RFU value."""
    f = FI_TABLE[fi & 0x0F]
    if not f:
        raise AtrError("Fi=%d is reserved" % fi)
    return f


def d_of(di):
    """D for Di; AtrError on an RFU value."""
    d = DI_TABLE[di & 0x0F]
    if not d:
        raise AtrError("Di=%d is reserved" % di)
    return d


def inverse_byte(b):
    """One character as an inverse-convention card means it: bits reversed and complemented."""
    b = ~b & 0xFF
    r = 0
    for _ in range(8):
        r = (r << 1) | (b & 1)
        b >>= 1
    return r


def decode_inverse(raw):
    """Bytes received in direct convention from an inverse-convention card, as logical bytes."""
    return bytes(inverse_byte(b) for b in raw)


def expected_length(data):
    """How long the ATR starting with `data` is, as far as `data` tells: (length, complete).
    `complete` is False while more bytes are needed to know (the slot reads until it is True)."""
    n = len(data)
    if n < 2:
        return 2, False
    i = 1
    y = data[1] >> 4
    k = data[1] & 0x0F
    tck = False
    while True:
        count = (y & 1) + (y >> 1 & 1) + (y >> 2 & 1) + (y >> 3 & 1)
        if y & 0x08:
            td_at = i + count
            if td_at >= n:
                return td_at + 1, False
            td = data[td_at]
            if td & 0x0F:
                tck = True
            i = td_at
            y = td >> 4
        else:
            i += count
            break
    return i + 1 + k + (1 if tck else 0), True


class Atr:
    """A parsed ATR. See the module's docstring for the fields."""

    def __init__(self, data):
        data = bytes(data)
        if len(data) < 2:
            raise AtrError("ATR too short (%d bytes)" % len(data))
        if len(data) > MAX_ATR:
            raise AtrError("ATR too long (%d bytes)" % len(data))
        ts = data[0]
        if ts == TS_DIRECT:
            self.inverse = False
        elif ts == TS_INVERSE:
            self.inverse = True
        else:
            raise AtrError("TS 0x%02X is neither 3B nor 3F" % ts)
        self.raw = data
        self.ts = ts
        self.t0 = data[1]
        self.k = data[1] & 0x0F
        ta = [None]
        tb = [None]
        tc = [None]
        td = [None]
        protocols = []
        y = data[1] >> 4
        pos = 2
        level = 0
        while True:
            level += 1
            vals = []
            for bit in (1, 2, 4, 8):
                if y & bit:
                    if pos >= len(data):
                        raise AtrError("ATR ends inside the interface bytes of level %d" % level)
                    vals.append(data[pos])
                    pos += 1
                else:
                    vals.append(None)
            ta.append(vals[0])
            tb.append(vals[1])
            tc.append(vals[2])
            td.append(vals[3])
            if vals[3] is None:
                break
            t = vals[3] & 0x0F
            if t not in protocols:
                protocols.append(t)
            y = vals[3] >> 4
        self.ta = ta
        self.tb = tb
        self.tc = tc
        self.td = td
        self.levels = level
        self.interface_count = pos - 2
        # The offered protocols (T=15 is global parameters, not a protocol); none: T=0.
        self.protocols = [t for t in protocols if t != 15]
        if not protocols:
            self.protocols = [0]
        # TCK: due unless only T=0 is indicated (T=15 counts as another).
        self.has_tck = any(t != 0 for t in protocols)
        n = len(data)
        end = pos + self.k
        forgiven = []
        if end > n:
            forgiven.append("historical bytes: %d of %d" % (n - pos, self.k))
            end = n
        self.historical = data[pos:end]
        self.tck = None
        extra = n - end
        if self.has_tck:
            if extra:
                # EMV Book 1, 8.3 (TCK): a check character that does not check rejects the ATR.
                x = 0
                for b in data[1:end + 1]:
                    x ^= b
                if x:
                    raise AtrError("TCK does not check (XOR of T0..TCK is 0x%02X)" % x)
                self.tck = data[end]
                extra -= 1
            else:
                forgiven.append("no TCK")
        if extra:
            forgiven.append("bytes after the ATR: %d" % extra)
        self.forgiven = tuple(forgiven) or None
        # Global parameters.
        if ta[1] is not None:
            self.fi = ta[1] >> 4
            self.di = ta[1] & 0x0F
        else:
            self.fi = 1
            self.di = 1
        self.F = FI_TABLE[self.fi]  # 0 for an RFU Fi
        self.D = DI_TABLE[self.di]  # 0 for an RFU Di
        self.fmax_khz = FMAX_KHZ[self.fi]
        self.N = tc[1] if tc[1] is not None else 0
        # TA2 present: specific mode (protocol in its low nibble; bit 5 set: implicit F/D).
        ta2 = ta[2] if level >= 2 else None
        self.specific = ta2 is not None
        self.specific_protocol = None
        self.specific_implicit = False
        self.can_change_mode = False
        if ta2 is not None:
            self.specific_protocol = ta2 & 0x0F
            self.specific_implicit = bool(ta2 & 0x10)
            self.can_change_mode = not ta2 & 0x80
        # T=0: WI in TC2 (default 10), when TD1 indicates T=0.
        self.wi = 10
        td1 = td[1]
        tc2 = tc[2] if level >= 2 else None
        if tc2 is not None and td1 is not None and td1 & 0x0F == 0:
            self.wi = tc2
            if tc2 == 0:
                raise AtrError("WI=0 (TC2) is reserved")
        # T=1 parameters: the first TAi/TBi/TCi (i >= 3) after a TD(i-1) indicating T=1.
        ifsc = 32
        self.cwi = 13
        self.bwi = 4
        self.edc_crc = False
        seen = 0
        for i in range(3, level + 1):
            tdp = td[i - 1]
            if tdp is not None and tdp & 0x0F == 1:
                a = ta[i]
                b = tb[i]
                c = tc[i]
                if a is not None and not seen & 1:
                    ifsc = a
                    seen |= 1
                if b is not None and not seen & 2:
                    self.bwi = b >> 4
                    self.cwi = b & 0x0F
                    seen |= 2
                if c is not None and not seen & 4:
                    self.edc_crc = bool(c & 1)
                    seen |= 4
        self.ifsc = ifsc
        # EMV Book 1, 8.3 (TA3): an IFSI of '00' to '0F' or 'FF' rejects the ATR (ISO/IEC 7816-3
        # would take 1..254).
        if 1 in self.protocols and not 16 <= ifsc <= 254:
            raise AtrError("IFSC %d out of 16..254" % ifsc)

    @property
    def negotiable(self):
        return not self.specific

    def offers_faster(self):
        """TA1 asks for other F/D than the default (a PPS can select them)."""
        return self.fi != 1 or self.di != 1

    def __repr__(self):
        return "Atr(%s)" % self.raw.hex()


def parse(data):
    """An Atr from its logical bytes (TS 3B or 3F); AtrError if malformed."""
    return Atr(data)
