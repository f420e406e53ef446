"""NXP PN532 NFC controller (firmware V1.6, UM0701-02) on I2C or on its HSU (UART).

    import board
    from board import handheld as hw
    from drivers.pn532 import PN532, I2CLink, HsuLink, CardRemoved
    nfc = PN532(I2CLink(board.buses.i2c(), irq=board.buses.pin(hw.PIN_NFC_IRQ)),
                reset=board.buses.pin(hw.PIN_NFC_RESET, M.Pin.OUT, value=1))
    # or PN532(HsuLink(machine.UART(2, baudrate=115200)))
    await nfc.begin()                          # reset, SAMConfiguration, firmware, retries
    card = await nfc.poll(5000)                # a Target, an IsoDep (ISO 14443-4), or None
    rapdu = await card.transceive(b"\\x00\\xa4\\x04\\x00\\x0e2PAY.SYS.DDF01\\x00")
    await card.release()
    n = await nfc.emulate(applet)              # be an ISO 14443-4 card until the reader leaves
    ok, detail = await nfc.self_test()

Frames (UM0701-02 6.2.1), both ways: preamble 00, start code 00 FF, LEN, LCS (LEN + LCS = 0),
TFI (D4 host to PN532, D5 back), PD0..PDn (PD0 the command code; the answer's is one more),
DCS (TFI + PD + DCS = 0), postamble 00. Longer than 255 bytes (TFI included): the extended
frame, LEN and LCS both FF, then LENM LENL LCS (LENM + LENL + LCS = 0); up to 265 bytes. ACK
00 00 FF 00 FF 00, NACK 00 00 FF FF 00 00 (the host asks for the last answer again), and the
error frame 00 00 FF 01 FF 7F 81 00 (the PN532 found the command wrong at the application
level). Everything received is checked: the start code is searched for (bytes before it are
skipped; a start whose LCS fails is a false one and the search goes on past it), a DCS that
fails gets a NACK so the PN532 sends the answer again.

The dialog (6.2.2): a command, the PN532's ACK, then its answer. A command that no ACK follows
is sent again (the manual lets the host resend it; a PN532 that got it takes the new copy in
place of the old); noise where the ACK should be means the command did arrive, so the answer
is awaited; an answer in the ACK's place (the ACK lost) is taken, or asked for again with a
NACK if it came damaged or cut short; an answer that does not come in time is aborted with an
ACK frame (the manual's abort) and is an NfcTimeout. The PN532's status codes (its error
table, 7.1) are typed errors: NfcError and its subclasses below, with the code in `code`.
Counters for diagnosis: resent, nacks, bad_frames, timeouts, aborted (and the link's skipped
and damaged).

Two links behind one interface (send, receive, discard, wire_ms, asleep, describe):
- I2CLink (6.2.4): every read begins with the status byte, bit 0 RDY. Readiness comes from the
  IRQ line (P70_IRQ, low while an answer waits: a falling-edge Pin.irq sets an
  asyncio.ThreadSafeFlag) or, without the line, from polling the status byte. A frame is read
  in one transaction of the expected size; one longer than that is asked for again with a
  NACK and read whole.
- HsuLink (6.2.3): the UART through asyncio streams, 115200 8N1 by default. After a power-down
  (and at power-on, when the PN532 is in LowVbat mode) a command is preceded by the wake-up
  preamble 55 55 00 00 .... set_baud_rate() does SetSerialBaudRate: answer, the host's ACK,
  then both sides at the new rate.

ISO-DEP: InListPassiveTarget at 106 kbps type A gives a Target (Tg, UID, SENS_RES, SEL_RES,
ATS); an ISO 14443-4 one is an IsoDep, whose `transceive(apdu) -> response + SW1 SW2` is the
interface the contact slot offers too. InDataExchange chains both ways: an APDU longer than 262
bytes goes in parts with the MI bit of Tg set, and while the answer's status has MI set the rest
is fetched with further InDataExchange (Tg alone). A timeout status from a card that was there
is CardRemoved.

Card emulation: TgInitAsTarget in ISO 14443-4 PICC mode (SetParameters fISO14443-4_PICC, SEL_RES
with b6 (0x20) set, passive and PICC-only mode, a 3-byte NFCID1t (the PN532 puts 08 first), the
historical bytes of the ATS in Tk); the PN532 answers anticollision, select and RATS itself and
passes on the RATS. Then TgGetData / TgSetData (TgSetMetaData for the parts of a long answer),
each C-APDU handed to an applet's `async process(apdu) -> response`, until the reader releases
the card (status 0x29). On HSU the PN532 sleeps while it waits as a target: aborting that wait
wakes it with the preamble first.
"""

import time

import asyncio
import timeouts
from micropython import const

_ADDR = const(0x24)  # 7-bit I2C address (0x48 write, 0x49 read)
_HSU_BAUD = const(115200)

# ---- frames ----------------------------------------------------------------------------------
_TFI_HOST = const(0xD4)  # host controller -> PN532
_TFI_PN532 = const(0xD5)  # PN532 -> host controller
_MAX_NORMAL = const(255)  # LEN of a normal frame, TFI included
_MAX_FRAME_DATA = const(265)  # an extended frame's LENGTH: TFI and 264 bytes of PD
_EXCHANGE_MAX = const(262)  # DataOut / DataIn of InDataExchange, TgGetData, TgSetData
ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
_APP_ERROR = const(0x7F)  # the error frame's single data byte
WAKE_PREAMBLE = b"\x55\x55" + bytes(14)  # HSU: wakes the PN532 from power-down / LowVbat

# What parse() found.
DATA = const(0)  # an information frame: its TFI and PD bytes
FRAME_ACK = const(1)
FRAME_NACK = const(2)
FRAME_ERROR = const(3)  # the application-level error frame
BAD = const(4)  # a frame whose DCS (or extended LCS) failed
NEED = const(5)  # a frame has begun but is not all there: the value is its size from the start code
NOTHING = const(6)  # no frame start in the bytes

# ---- commands (UM0701-02 chapter 7) ----------------------------------------------------------
_DIAGNOSE = const(0x00)
_GET_FIRMWARE_VERSION = const(0x02)
_GET_GENERAL_STATUS = const(0x04)
_SET_SERIAL_BAUD_RATE = const(0x10)
_SET_PARAMETERS = const(0x12)
_SAM_CONFIGURATION = const(0x14)
_POWER_DOWN = const(0x16)
_RF_CONFIGURATION = const(0x32)
_IN_DATA_EXCHANGE = const(0x40)
_IN_DESELECT = const(0x44)
_IN_LIST_PASSIVE_TARGET = const(0x4A)
_IN_RELEASE = const(0x52)
_TG_GET_DATA = const(0x86)
_TG_INIT_AS_TARGET = const(0x8C)
_TG_SET_DATA = const(0x8E)
_TG_SET_META_DATA = const(0x94)

# SetParameters flags
_PARAM_NAD_USED = const(0x01)
_PARAM_DID_USED = const(0x02)
_PARAM_AUTO_ATR_RES = const(0x04)
_PARAM_AUTO_RATS = const(0x10)
_PARAM_ISO14443_4_PICC = const(0x20)
_PARAM_REMOVE_PRE_POSTAMBLE = const(0x40)
_DEFAULT_PARAMETERS = const(0x14)  # automatic ATR_RES and RATS: the PN532's own default

# RFConfiguration items
_CFG_RF_FIELD = const(0x01)
_CFG_TIMINGS = const(0x02)
_CFG_MAX_RETRIES = const(0x05)

# PowerDown wake-up sources (WakeUpEnable)
_WAKE_INT0 = const(0x01)
_WAKE_INT1 = const(0x02)
_WAKE_RF = const(0x08)
_WAKE_HSU = const(0x10)
_WAKE_SPI = const(0x20)
_WAKE_GPIO = const(0x40)
_WAKE_I2C = const(0x80)

# SetSerialBaudRate codes
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)

# TgInitAsTarget mode bits
_TG_PASSIVE_ONLY = const(0x01)
_TG_DEP_ONLY = const(0x02)
_TG_PICC_ONLY = const(0x04)

_BRTY_106A = const(0x00)
_SEL_RES_ISO14443_4 = const(0x20)  # SAK bit: ISO/IEC 14443-4 compliant
_MI = const(0x40)  # More Information: bit 6 of Tg (sending) and of the status byte (receiving)
_STATUS_ERROR = const(0x3F)  # bits 5..0 of a status byte: the error code

# ---- timing ----------------------------------------------------------------------------------
_ACK_MS = const(50)  # command sent -> ACK, beyond the wire time
_ANSWER_MS = const(1000)  # ACK -> answer for a plain command
_EXCHANGE_MS = const(1500)  # an InDataExchange with a card (its FWT and the PN532's retries)
_GAP_MS = const(20)  # HSU: silence after a damaged frame start before asking again (NACK)
_POLL_MS = const(2)  # I2C without IRQ: between status reads
_IRQ_WATCHDOG_MS = const(100)  # I2C with IRQ: read the status anyway this often (a missed edge)
_ACK_LOOK_MS = const(1)  # I2C with IRQ: a frame sent, when its ACK is looked for first
_RESET_LOW_MS = const(20)  # RSTPDN low
_RESET_WAKE_MS = const(20)  # RSTPDN high -> the PN532 listens
_WAKE_MS = const(2)  # I2C: between writes to a PN532 that is waking up (it NACKs meanwhile)
_POLL_PAUSE_MS = const(20)  # poll(): between two InListPassiveTarget that found nothing
_RETRIES = const(2)  # a command sent again this often without an ACK
_NACKS = const(3)  # an answer asked for again this often after a damaged frame
_ANSWER_HINT = const(40)  # I2C: bytes read for an answer at first (most answers fit)
_EXCHANGE_HINT = const(72)  # ... for a target's answer (InListPassiveTarget, TgGetData)
# ... for a card's answer to an APDU (InDataExchange): the whole frame of the longest one, an R-APDU
# of 256 bytes and its SW in an extended frame. EMV's answers (an FCI, the GPO's, a record) are
# mostly 70-250 bytes: read by the hint above, each came in a second read after a NACK, a cycle
# of the driver's bytecode (~15 ms on the ESP32) where reading 200 bytes more costs 4.5 ms of wire.
_DATA_HINT = const(8 + 3 + 258 + 2)
_FOREVER_MS = const(0x0FFFFFFF)  # "no timeout" (ticks_add takes less than half the ticks period)
_READ_MAX = const(1 + 8 + _MAX_FRAME_DATA + 2 + 16)  # status, extended frame, some slack
_FRAME_MAX = const(8 + _MAX_FRAME_DATA + 2)  # the longest frame: extended head, data, DCS, postamble


# ---- errors ----------------------------------------------------------------------------------

class NfcError(Exception):
    """Base of the driver's errors. `code`: the PN532's status code, or None."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class NfcTimeout(NfcError):
    """No answer in time: the PN532 (code None: unpowered, unwired, asleep) or a target (0x01).
    `acked`: the PN532 had acknowledged the command (it was busy with it, and was aborted)."""

    acked = False


class NfcNotFound(NfcError):
    """Nothing acknowledges the PN532's I2C address."""


class NfcFrameError(NfcError):
    """Frames from the PN532 kept failing their checks (LCS, DCS), NACKs notwithstanding."""


class NfcProtocolError(NfcError):
    """The RF exchange or the host dialog broke a rule (CRC, parity, framing, format, an
    answer that makes no sense)."""


class NfcApplicationError(NfcProtocolError):
    """The PN532 answered with the error frame: a command wrong at the application level."""


class CardRemoved(NfcError):
    """The card that was being talked to is gone (it stopped answering, or disappeared)."""


class Released(NfcError):
    """As a target: the reader released us (it left, or deselected)."""


class WrongContext(NfcError):
    """A command that the PN532 cannot take now (initiator vs target, no such target)."""


class NfcParameterError(NfcError):
    """A parameter the PN532 refuses (range, format, a buffer too small)."""


class NfcAuthError(NfcError):
    """MIFARE authentication failed."""


class NfcHardwareError(NfcError):
    """Overheating or over-current: the antenna drivers are off."""


# The error table of UM0701-02 (7.1): each status code, its kind (an index into the classes in
# error()), and what it means. Bytes and a tuple of strings are constants in the firmware's
# flash; the table as (code, class, text) tuples was built in the heap at import, 1.3 KB held for
# as long as the driver is (every card flow).
_ERROR_CODES = b"\x01\x02\x03\x04\x05\x06\x07\x09\x0a\x0b\x0d\x0e\x10\x12\x13\x14\x23\x25\x26\x27\x29\x2a\x2b\x2c\x2d\x2e"
_ERROR_KINDS = b"\x00\x01\x01\x01\x01\x01\x02\x01\x01\x01\x03\x02\x02\x01\x01\x04\x01\x05\x05\x05\x06\x07\x07\x01\x03\x01"
_ERROR_TEXTS = (
    "the target has not answered",  # 0x01
    "CRC error",  # 0x02
    "parity error",  # 0x03
    "erroneous bit count during anticollision/select",  # 0x04
    "framing error during a MIFARE operation",  # 0x05
    "abnormal bit collision during bitwise anticollision",  # 0x06
    "communication buffer size insufficient",  # 0x07
    "RF buffer overflow",  # 0x09
    "the counterpart did not switch its RF field on in time",  # 0x0A
    "RF protocol error",  # 0x0B
    "overheating: antenna drivers switched off",  # 0x0D
    "internal buffer overflow",  # 0x0E
    "invalid parameter",  # 0x10
    "DEP: the initiator sent a command the target does not support",  # 0x12
    "the data format does not match the specification",  # 0x13
    "MIFARE authentication error",  # 0x14
    "ISO/IEC 14443-3: UID check byte wrong",  # 0x23
    "DEP: invalid device state for the operation",  # 0x25
    "operation not allowed in this configuration",  # 0x26
    "command not acceptable in the current context",  # 0x27
    "released by the initiator",  # 0x29
    "the card has been exchanged for another one",  # 0x2A
    "the card has disappeared",  # 0x2B
    "NFCID3 mismatch between initiator and target",  # 0x2C
    "over-current",  # 0x2D
    "NAD missing in a DEP frame",  # 0x2E
)


def error(code):
    """The typed error for a PN532 status code (one not in the table is an NfcProtocolError)."""
    i = _ERROR_CODES.find(bytes((code,)))
    if i < 0:
        return NfcProtocolError("PN532: unknown status 0x%02X" % code, code)
    cls = (NfcTimeout, NfcProtocolError, NfcParameterError, NfcHardwareError, NfcAuthError, WrongContext, Released,
           CardRemoved)[_ERROR_KINDS[i]]
    return cls("PN532: %s (0x%02X)" % (_ERROR_TEXTS[i], code), code)


# ---- the frame layer -------------------------------------------------------------------------

def _framed(out, n):
    """Write the frame's head for n bytes of data (TFI and PD) into out, and its DCS and
    postamble from the data already at its place: the frame's length. Normal up to 255 bytes,
    extended above, up to 265."""
    if not 1 <= n <= _MAX_FRAME_DATA:
        raise ValueError("a frame carries 1 to %d bytes, not %d" % (_MAX_FRAME_DATA, n))
    out[0] = out[1] = 0x00
    out[2] = 0xFF
    if n <= _MAX_NORMAL:
        out[3] = n
        out[4] = -n & 0xFF
        body = 5
    else:
        out[3] = out[4] = 0xFF
        out[5] = n >> 8
        out[6] = n & 0xFF
        out[7] = -(out[5] + out[6]) & 0xFF
        body = 8
    # Summed in C (sum of a memoryview): a byte at a time in bytecode was most of a frame's cost.
    out[body + n] = -sum(memoryview(out)[body:body + n]) & 0xFF
    out[body + n + 1] = 0x00
    return body + n + 2


def _body(n):
    """Where a frame's data starts for n bytes of it."""
    return 5 if n <= _MAX_NORMAL else 8


def frame(data):
    """An information frame carrying `data` (TFI and PD bytes): normal up to 255 bytes,
    extended above, up to 265."""
    n = len(data)
    out = bytearray(n + 10 if n > _MAX_NORMAL else n + 7)
    body = _body(n)
    out[body:body + n] = data
    _framed(out, n)
    return out


def command_into(out, code, params=b"", head=-1):
    """The frame of a host command (TFI D4, the command code, head if >= 0, the parameters)
    written into out, a buffer of _FRAME_MAX bytes: the frame's length. The hot path
    (InDataExchange) builds its frames in one buffer this way: the card's command is copied
    once, into the frame, and nothing is allocated."""
    n = 2 + len(params) + (head >= 0)
    body = _body(n)
    out[body] = _TFI_HOST
    out[body + 1] = code
    if head >= 0:
        out[body + 2] = head
    out[body + n - len(params):body + n] = params
    return _framed(out, n)


def command_frame(code, params=b""):
    """The frame of a host command: TFI D4, the command code, its parameters."""
    out = bytearray(_FRAME_MAX)
    return out[:command_into(out, code, params)]


def parse(buf, start=0, end=None):
    """The first frame in buf[start:end]: (kind, value, next, skipped, damaged).

    kind: DATA (value: the TFI and PD bytes), FRAME_ACK, FRAME_NACK, FRAME_ERROR, BAD (a frame
    whose DCS, or extended LCS, fails; next is past it), NEED (a frame has begun at the start
    code but is not all there: value is the number of bytes it needs from the start code's
    first byte; next is that start), NOTHING (no frame start: next is where to go on from).
    next: the index after what was used. skipped: bytes before the frame that were not
    preamble (garbage); damaged: frame starts passed over because their LCS failed (a false
    start in noise, or a frame whose length was damaged on the line)."""
    if end is None:
        end = len(buf)
    i = start
    skipped = 0
    damaged = 0
    while True:
        # The start code 00 FF; the preamble (any number of 00) needs no checking.
        j = buf.find(b"\x00\xff", i, end)
        if j < 0:
            j = end - 1 if end > i else end
            # Keep a last 00: it may begin the start code of bytes still to come.
            keep = j if j < end and buf[j] == 0x00 else end
            return NOTHING, None, keep, skipped + _garbage(buf, i, keep), damaged
        skipped += _garbage(buf, i, j)
        p = j + 2
        if end - p < 2:
            return NEED, 4, j, skipped, damaged
        ln = buf[p]
        lcs = buf[p + 1]
        if ln == 0x00 and lcs == 0xFF:
            return FRAME_ACK, None, _past_postamble(buf, p + 2, end), skipped, damaged
        if ln == 0xFF and lcs == 0x00:
            return FRAME_NACK, None, _past_postamble(buf, p + 2, end), skipped, damaged
        if ln == 0xFF and lcs == 0xFF:
            if end - p < 5:
                return NEED, 7, j, skipped, damaged
            n = buf[p + 2] << 8 | buf[p + 3]
            body = p + 5
            if (buf[p + 2] + buf[p + 3] + buf[p + 4]) & 0xFF or not 0 < n <= _MAX_FRAME_DATA:
                # A damaged extended length: the frame's end is unknown, so it cannot be
                # skipped as a whole; a false start in noise looks the same.
                damaged += 1
                i = j + 1
                continue
        elif (ln + lcs) & 0xFF or ln == 0:
            damaged += 1  # a false start (noise), or a length damaged on the line
            i = j + 1
            continue
        else:
            n = ln
            body = p + 2
        if end - body < n + 1:
            return NEED, body - j + n + 2, j, skipped, damaged
        if (buf[body + n] + sum(memoryview(buf)[body:body + n])) & 0xFF:
            return BAD, None, _past_postamble(buf, body + n + 1, end), skipped, damaged
        if n == 1 and buf[body] == _APP_ERROR:
            return FRAME_ERROR, None, _past_postamble(buf, body + 2, end), skipped, damaged
        return DATA, bytes(memoryview(buf)[body:body + n]), _past_postamble(buf, body + n + 1, end), skipped, damaged


def _garbage(buf, i, j):
    # Bytes between frames that are not preamble zeros.
    n = 0
    for k in range(i, j):
        if buf[k]:
            n += 1
    return n


def _past_postamble(buf, i, end):
    return i + 1 if i < end and buf[i] == 0x00 else i


class _Silence(Exception):
    """Nothing (more) came from the PN532 before the deadline."""


def _left(deadline):
    return time.ticks_diff(deadline, time.ticks_ms())


# ---- links -----------------------------------------------------------------------------------

class I2CLink:
    """The PN532 on I2C, its IRQ line on `irq` (None: poll the status byte)."""

    name = "I2C"
    wake_source = _WAKE_I2C

    def __init__(self, i2c, addr=_ADDR, irq=None, poll_ms=_POLL_MS, watchdog_ms=_IRQ_WATCHDOG_MS):
        self._i2c = i2c
        self.addr = addr
        self._irq = irq
        self.poll_ms = poll_ms
        self.watchdog_ms = watchdog_ms
        self._flag = asyncio.ThreadSafeFlag()
        self._buf = bytearray(_READ_MAX)
        self._status = bytearray(1)
        self.irqs = 0
        self._sent = False  # a frame went out since the last wait: its ACK is due
        self.skipped = 0  # garbage bytes skipped before frames
        self.damaged = 0  # frame starts whose LCS failed
        self.asleep = False
        if irq is not None:
            irq.irq(self._on_irq, irq.IRQ_FALLING)

    def _on_irq(self, pin):
        self.irqs += 1
        self._flag.set()

    def close(self):
        if self._irq is not None:
            self._irq.irq(None)

    def describe(self):
        return "I2C 0x%02x, %s" % (self.addr, "IRQ" if self._irq is not None else "status polling")

    def discard(self):
        # A frame still waiting from before (an answer that came after its deadline): read
        # and dropped, so that it is not taken for the next command's ACK.
        irq = self._irq
        if irq is None or irq.value():
            return
        try:
            self._i2c.readfrom_into(self.addr, memoryview(self._buf)[:_READ_MAX])
        except OSError:
            return
        if self._buf[0] & 0x01:
            self.skipped += 1

    def wire_ms(self, nbytes):
        return 1 + nbytes * 9 // 400  # at 400 kHz; the board's bus may be slower: generous

    async def send(self, data):
        # A PN532 in power-down wakes on its address but may NACK the first transfers.
        for attempt in range(6 if self.asleep else 2):
            try:
                self._i2c.writeto(self.addr, data)
                self.asleep = False
                self._sent = True
                return
            except OSError:
                await asyncio.sleep_ms(_WAKE_MS)
        raise NfcNotFound("PN532: nothing acknowledges I2C address 0x%02x (unpowered, RSTPDN low, wiring)"
                          % self.addr)

    def _ready(self):
        try:
            self._i2c.readfrom_into(self.addr, self._status)
        except OSError:
            return False
        return self._status[0] & 0x01

    async def _wait_ready(self, deadline):
        irq = self._irq
        sent, self._sent = self._sent, False
        while True:
            if irq is None:
                if self._ready():
                    return
                left = _left(deadline)
                if left <= 0:
                    raise _Silence()
                await asyncio.sleep_ms(min(left, self.poll_ms))
                continue
            self._flag.clear()
            if irq.value() == 0:
                return  # the read that follows checks the status byte
            if sent:
                # Right after a frame, what comes is its ACK, within a millisecond (the rig: 0.5):
                # looked at once then, and its IRQ waited for only if it is late. A wait_for_ms
                # is a task, an Event and a cancellation: half the driver's bytecode for a card's
                # command.
                sent = False
                await asyncio.sleep_ms(_ACK_LOOK_MS)
                continue
            left = _left(deadline)
            if left <= 0:
                raise _Silence()
            try:
                await timeouts.wait_for_ms(self._flag.wait(), min(left, self.watchdog_ms))
            except asyncio.TimeoutError:
                if self._ready():  # the line did not say so (a missed edge): the status does
                    return

    async def receive(self, deadline, hint):
        """The next frame: (kind, value) as parse() gives them. Raises _Silence at deadline."""
        n = min(1 + max(hint, 6), _READ_MAX)
        while True:
            await self._wait_ready(deadline)
            mv = memoryview(self._buf)[:n]
            try:
                self._i2c.readfrom_into(self.addr, mv)
                ready = self._buf[0] & 0x01
            except OSError:
                ready = 0  # NACKed: not there (reset, asleep) at this moment
            if not ready:
                # Not ready after all (the line and the status disagree).
                if _left(deadline) <= 0:
                    raise _Silence()
                await asyncio.sleep_ms(self.poll_ms)
                continue
            kind, value, _, skipped, damaged = parse(self._buf, 1, n)
            self.skipped += skipped
            self.damaged += damaged
            return kind, value  # NOTHING: all of it noise, or a frame beginning past the read


class HsuLink:
    """The PN532 on its High Speed UART (`uart`: machine.UART, 115200 8N1 at power-on)."""

    name = "HSU"
    wake_source = _WAKE_HSU

    def __init__(self, uart, baudrate=_HSU_BAUD, gap_ms=_GAP_MS):
        self._uart = uart
        self.baudrate = baudrate
        self.gap_ms = gap_ms
        self._reader = asyncio.StreamReader(uart)
        self._writer = asyncio.StreamWriter(uart, {})
        self._rx = bytearray()
        self.skipped = 0
        self.damaged = 0
        self.asleep = True  # at power-on the PN532 is in LowVbat mode: wake it first

    def close(self):
        pass

    def describe(self):
        return "HSU %d baud" % self.baudrate

    def wire_ms(self, nbytes):
        return 1 + nbytes * 10_000 // self.baudrate

    def discard(self):
        self._rx = bytearray()
        uart = self._uart
        n = uart.any()
        while n:
            self.skipped += n
            uart.read(n)
            n = uart.any()

    async def send(self, data):
        if self.asleep:
            # 0x55 0x55 and a long preamble: the PN532 wakes on the first falling edge and
            # is listening again by the time the frame arrives (6.2.3, HSU wake-up).
            self._writer.write(WAKE_PREAMBLE)
            self.asleep = False
        self._writer.write(data)
        await self._writer.drain()

    async def _more(self, ms):
        chunk = await timeouts.wait_for_ms(self._reader.read(300), ms)
        if chunk:
            self._rx.extend(chunk)

    async def receive(self, deadline, hint):
        suspicious = False  # a damaged frame start was passed over: ask again if nothing follows
        while True:
            rx = self._rx
            kind, value, nxt, skipped, damaged = parse(rx)
            self.skipped += skipped
            self.damaged += damaged
            if kind != NOTHING and kind != NEED:
                self._rx = rx[nxt:]
                return kind, value
            if damaged:
                suspicious = True
            if nxt:
                self._rx = rx[nxt:]
            if kind == NEED:
                # A frame has begun: it gets the time its bytes take on the line, whatever the
                # deadline (an answer in the ACK's place at a low baud rate).
                end = time.ticks_add(time.ticks_ms(), self.wire_ms(value) + self.gap_ms)
                if time.ticks_diff(end, deadline) > 0:
                    deadline = end
            left = _left(deadline)
            if left <= 0:
                if suspicious:
                    return NOTHING, None
                raise _Silence()
            wait = min(left, self.gap_ms + self.wire_ms(300)) if suspicious else left
            try:
                await self._more(wait)
            except asyncio.TimeoutError:
                if suspicious:
                    # A frame start with a damaged length, and nothing after it: a frame
                    # broken on the line (or noise). NOTHING: the caller may ask again.
                    self._rx = bytearray()
                    return NOTHING, None
                raise _Silence()

    async def set_baudrate(self, baudrate):
        await asyncio.sleep_ms(self.wire_ms(len(ACK)) + 2)  # the ACK is out of the transmitter
        self._uart.init(baudrate=baudrate)
        self.baudrate = baudrate


# ---- targets ---------------------------------------------------------------------------------

class Target:
    """A card listed by InListPassiveTarget (106 kbps type A)."""

    def __init__(self, nfc, tg, sens_res, sel_res, uid, ats):
        self.nfc = nfc
        self.tg = tg  # the PN532's number for it (1 or 2)
        self.sens_res = sens_res  # SENS_RES (ATQA), 2 bytes as the PN532 gives them
        self.sel_res = sel_res  # SEL_RES (SAK)
        self.uid = uid  # NFCID1: 4, 7 or 10 bytes
        self.ats = ats  # the ATS, TL byte first (b"" when the card is not ISO 14443-4)
        self.present = True

    @property
    def iso_dep(self):
        return bool(self.sel_res & _SEL_RES_ISO14443_4) and len(self.ats) > 0

    @property
    def historical_bytes(self):
        ats = self.ats
        if len(ats) < 2:
            return b""
        t0 = ats[1]
        i = 2 + ((t0 >> 4) & 1) + ((t0 >> 5) & 1) + ((t0 >> 6) & 1)
        return ats[i:]

    def __repr__(self):
        return "<%s tg=%d uid=%s atqa=%s sak=%02x ats=%s>" % (
            type(self).__name__, self.tg, self.uid.hex(), self.sens_res.hex(), self.sel_res, self.ats.hex())

    async def release(self):
        """InRelease: the PN532 forgets the card (it may stay in the field)."""
        self.present = False
        await self.nfc.in_release(self.tg)

    async def deselect(self):
        """InDeselect: the card is put to sleep but stays listed."""
        await self.nfc.in_deselect(self.tg)


class IsoDep(Target):
    """An ISO/IEC 14443-4 card: APDUs through InDataExchange (the PN532 runs the block protocol)."""

    async def transceive(self, apdu, timeout_ms=_EXCHANGE_MS):
        """Send a C-APDU; the R-APDU (data and SW1 SW2). Raises CardRemoved when the card has
        left the field, NfcProtocolError for an RF error or an answer shorter than a status word."""
        if not self.present:
            raise CardRemoved("the card has left the field")
        try:
            rapdu = await self.nfc.in_data_exchange(self.tg, apdu, timeout_ms)
        except CardRemoved:
            self.present = False
            raise
        except NfcTimeout as e:
            if e.code != 0x01:
                raise
            # An ISO-DEP card answers every block (or asks for more time): silence from one
            # that was there means it has left the field.
            self.present = False
            raise CardRemoved("the card stopped answering: removed from the field", e.code)
        if len(rapdu) < 2:
            raise NfcProtocolError("R-APDU of %d bytes: no status word" % len(rapdu))
        return rapdu


# ---- the controller --------------------------------------------------------------------------

class PN532:
    """The PN532 behind a link (I2CLink or HsuLink); its RSTPDN line on `reset` if wired."""

    def __init__(self, link, reset=None, retries=_RETRIES, ack_ms=_ACK_MS, answer_ms=_ANSWER_MS,
                 reset_low_ms=_RESET_LOW_MS, reset_wake_ms=_RESET_WAKE_MS, passive_retries=1):
        self.link = link
        self._rst = reset
        self.retries = retries
        self.ack_ms = ack_ms
        self.answer_ms = answer_ms
        self.reset_low_ms = reset_low_ms
        self.reset_wake_ms = reset_wake_ms
        self.passive_retries = passive_retries
        self._lock = asyncio.Lock()
        # Every command's frame is built here: one command at a time (the lock), sent whole
        # (I2C writes it, HSU's stream copies it) before the next is built.
        self._out = bytearray(_FRAME_MAX)
        self.firmware = None  # (ic, version, revision, support) after begin()
        self.parameters = _DEFAULT_PARAMETERS
        self.target_mode = None  # the mode byte of the last TgInitAsTarget
        # Line statistics for diagnosis.
        self.resent = 0  # commands sent again (no ACK)
        self.nacks = 0  # NACKs sent for damaged answers
        self.bad_frames = 0  # frames that failed their checks
        self.timeouts = 0  # ACKs or answers that never came
        self.aborted = 0  # commands aborted with an ACK
        if reset is not None:
            reset.init(mode=reset.OUT, value=1)

    def close(self):
        """Let go of the link's IRQ line: the handler would keep this driver in the heap after
        the app has let go of it (parts.unload)."""
        self.link.close()

    # ---- the dialog --------------------------------------------------------------------------

    async def command(self, code, params=b"", timeout_ms=None, hint=_ANSWER_HINT):
        """Send a command, wait for its ACK and answer; the answer's bytes after the answer code.
        Raises NfcTimeout, NfcFrameError, NfcApplicationError, NfcNotFound."""
        async with self._lock:
            return await self._command(code, params, self.answer_ms if timeout_ms is None else timeout_ms, hint)

    async def _command(self, code, params, timeout_ms, hint, head=-1):
        link = self.link
        out = memoryview(self._out)[:command_into(self._out, code, params, head)]
        wire = link.wire_ms(len(out)) + (link.wire_ms(len(WAKE_PREAMBLE)) if link.asleep else 0)
        for attempt in range(self.retries + 1):
            if attempt:
                self.resent += 1
            link.discard()
            await link.send(out)
            ack_deadline = time.ticks_add(time.ticks_ms(), wire + link.wire_ms(len(ACK)) + self.ack_ms)
            try:
                kind, value = await link.receive(ack_deadline, len(ACK))
            except _Silence:
                self.timeouts += 1
                continue  # no ACK: the command again (6.2.2)
            clean = True
            nacked = 0
            if kind == DATA and _answers(value, code):
                return value[2:]  # the ACK was lost on the way, the answer was not
            if kind == FRAME_ERROR:
                raise NfcApplicationError("PN532: error frame: command 0x%02X refused" % code)
            if kind == BAD or (kind == NEED and value > 4):
                # An information frame in the ACK's place, cut short (I2C: read as an ACK) or
                # damaged: the ACK was lost and this is the answer. Ask for it again.
                if kind == BAD:
                    self.bad_frames += 1
                else:
                    hint = max(hint, value + 8)
                self.nacks += 1
                nacked = 1
                await link.send(NACK)
                clean = False
            elif kind != FRAME_ACK:
                # Noise in the ACK's place: something answered, so the command did arrive; its
                # answer will follow.
                self.bad_frames += 1
                clean = False
            deadline = time.ticks_add(time.ticks_ms(), timeout_ms + link.wire_ms(_MAX_FRAME_DATA + 10))
            try:
                return await self._answer(code, deadline, hint, nacked)
            except _Silence:
                self.timeouts += 1
                await self._abort()
                if clean or attempt >= self.retries:
                    e = NfcTimeout("PN532: no answer to command 0x%02X within %d ms" % (code, timeout_ms))
                    e.acked = True
                    raise e
        raise NfcTimeout("PN532: no ACK to command 0x%02X (%d tries): unpowered, asleep or unwired"
                         % (code, self.retries + 1))

    async def _answer(self, code, deadline, hint, nacks=0):
        link = self.link
        while True:
            kind, value = await link.receive(deadline, hint)
            if kind == DATA:
                if _answers(value, code):
                    return value[2:]
                continue  # a late answer to something else, or a frame of ours echoed
            if kind == FRAME_ERROR:
                raise NfcApplicationError("PN532: error frame: command 0x%02X refused" % code)
            if kind == FRAME_ACK or kind == FRAME_NACK:
                continue  # a second ACK (the command was resent): the answer is still to come
            # A damaged answer (BAD), one longer than what was read (NEED), noise and no frame
            # (NOTHING, I2C): ask again, and read it whole.
            if kind == BAD:
                self.bad_frames += 1
            if nacks >= _NACKS:
                raise NfcFrameError("PN532: the answer to command 0x%02X stays damaged after %d NACKs"
                                    % (code, nacks))
            nacks += 1
            self.nacks += 1
            if kind == NEED:
                hint = max(hint, value + 8)
            elif kind == NOTHING:
                hint = _READ_MAX - 1
            await link.send(NACK)

    async def _abort(self):
        # An ACK frame from the host aborts what the PN532 is doing (6.2.1.3). On HSU a PN532
        # waiting as a target sleeps until the field wakes it: the preamble wakes it first.
        self.aborted += 1
        if isinstance(self.link, HsuLink):
            self.link.asleep = True
        try:
            await self.link.send(ACK)
        except NfcError:
            pass
        await asyncio.sleep_ms(1)
        self.link.discard()

    async def _status(self, code, params=b"", timeout_ms=None):
        """A command whose answer is a status byte: raises the typed error when it is not 0."""
        answer = await self.command(code, params, timeout_ms)
        if not answer:
            raise NfcProtocolError("PN532: answer to 0x%02X without its status byte" % code)
        if answer[0] & _STATUS_ERROR:
            raise error(answer[0] & _STATUS_ERROR)
        return answer

    # ---- set-up ------------------------------------------------------------------------------

    async def hard_reset(self):
        """Pulse RSTPDN (if wired): the PN532 restarts, in LowVbat mode until SAMConfiguration."""
        rst = self._rst
        if rst is None:
            return False
        rst(0)
        await asyncio.sleep_ms(self.reset_low_ms)
        rst(1)
        await asyncio.sleep_ms(self.reset_wake_ms)
        self.link.asleep = True
        return True

    async def begin(self, reset=True):
        """Reset (if RSTPDN is wired), leave LowVbat mode with SAMConfiguration (normal mode),
        read the firmware version, set the passive activation retries. Returns the firmware:
        (IC, version, revision, support)."""
        if reset:
            await self.hard_reset()
        await self.sam_configuration()
        fw = await self.firmware_version()
        if fw[0] != 0x32:
            raise NfcProtocolError("not a PN532: IC 0x%02X" % fw[0])
        await self.set_parameters(_DEFAULT_PARAMETERS)
        await self.set_max_retries(passive=self.passive_retries)
        return fw

    async def firmware_version(self):
        """GetFirmwareVersion: (IC 0x32, version, revision, support bits: 1 ISO A, 2 ISO B, 4 ISO 18092)."""
        answer = await self.command(_GET_FIRMWARE_VERSION)
        if len(answer) < 4:
            raise NfcProtocolError("PN532: short firmware version")
        self.firmware = (answer[0], answer[1], answer[2], answer[3])
        return self.firmware

    async def sam_configuration(self, mode=0x01, timeout=0x14, irq=True):
        """SAMConfiguration: normal mode (no SAM), the virtual-card timeout (x 50 ms), use P70_IRQ."""
        await self.command(_SAM_CONFIGURATION, bytes((mode, timeout, 1 if irq else 0)))

    async def set_parameters(self, flags):
        """SetParameters: PARAM_* flags."""
        await self.command(_SET_PARAMETERS, bytes((flags,)))
        self.parameters = flags

    async def rf_field(self, on=True, auto_rfca=False):
        """RFConfiguration item 1: the RF field on or off."""
        await self.command(_RF_CONFIGURATION, bytes((_CFG_RF_FIELD, (1 if on else 0) | (2 if auto_rfca else 0))))

    async def set_max_retries(self, atr=0xFF, psl=0x01, passive=0xFF):
        """RFConfiguration item 5 (MaxRetries): ATR_REQ, PSL_REQ and passive activation retries
        (0xFF: forever; 0: once)."""
        await self.command(_RF_CONFIGURATION, bytes((_CFG_MAX_RETRIES, atr, psl, passive)))
        self.passive_retries = passive

    async def set_timings(self, atr_res=0x0B, retry=0x0A):
        """RFConfiguration item 2: ATR_RES timeout and the timeout of non-DEP exchanges (codes of
        the manual's table: 0x0A = 51.2 ms, 0x0B = 102.4 ms, ...)."""
        await self.command(_RF_CONFIGURATION, bytes((_CFG_TIMINGS, 0x00, atr_res, retry)))

    async def diagnose(self, test, data=b"", timeout_ms=None):
        """Diagnose: the test's answer bytes (0x00: communication line test, echoing data)."""
        return await self.command(_DIAGNOSE, bytes((test,)) + bytes(data), timeout_ms)

    async def general_status(self):
        """GetGeneralStatus: the raw answer (Err, Field, NbTg, Tg data..., SAM status)."""
        return await self.command(_GET_GENERAL_STATUS)

    async def power_down(self, wake=None, irq=False):
        """PowerDown: sleep until the link (or the given WAKE_* sources) wakes it. The next
        command wakes it: a preamble on HSU, the address on I2C."""
        sources = self.link.wake_source if wake is None else wake
        params = bytes((sources, 1)) if irq else bytes((sources,))
        answer = await self.command(_POWER_DOWN, params)
        if answer and answer[0] & _STATUS_ERROR:
            raise error(answer[0] & _STATUS_ERROR)
        self.link.asleep = True

    async def wake(self):
        """Wake from power-down (or LowVbat): SAMConfiguration back to normal mode, then the
        firmware version (which it returns) shows that it answers."""
        self.link.asleep = True
        await self.sam_configuration()
        return await self.firmware_version()

    async def set_baud_rate(self, baudrate):
        """SetSerialBaudRate (HSU only): the answer, the host's ACK, then both at the new rate."""
        if not isinstance(self.link, HsuLink):
            raise ValueError("SetSerialBaudRate is for the HSU link")
        if baudrate not in BAUD_RATES:
            raise ValueError("the PN532's rates: %s" % ", ".join(str(b) for b in BAUD_RATES))
        link = self.link
        async with self._lock:
            await self._command(_SET_SERIAL_BAUD_RATE, bytes((BAUD_RATES.index(baudrate),)), self.answer_ms,
                                _ANSWER_HINT)
            # The PN532 changes its rate once the host has acknowledged the answer.
            await link.send(ACK)
            await link.set_baudrate(baudrate)

    # ---- reader ------------------------------------------------------------------------------

    async def list_passive_target(self, max_targets=1, uid=None, timeout_ms=None):
        """InListPassiveTarget at 106 kbps type A: the Targets (IsoDep for ISO 14443-4 cards)
        found in the field; [] if none within the MaxRetries. With a timeout beyond which the
        PN532 is still looking (MaxRetries 0xFF), the command is aborted and [] returned."""
        params = bytes((max_targets, _BRTY_106A)) + (bytes(uid) if uid else b"")
        try:
            answer = await self.command(_IN_LIST_PASSIVE_TARGET, params, timeout_ms, hint=_EXCHANGE_HINT)
        except NfcTimeout as e:
            if e.acked:
                return []  # still searching at the deadline: aborted
            raise
        return self._targets(answer)

    def _targets(self, answer):
        if not answer:
            raise NfcProtocolError("InListPassiveTarget: empty answer")
        found = []
        i = 1
        try:
            for _ in range(answer[0]):
                tg = answer[i]
                sens_res = bytes(answer[i + 1:i + 3])
                sel_res = answer[i + 3]
                n = answer[i + 4]
                uid = bytes(answer[i + 5:i + 5 + n])
                if len(uid) != n:
                    raise IndexError
                i += 5 + n
                ats = b""
                if sel_res & _SEL_RES_ISO14443_4 and i < len(answer):
                    tl = answer[i]
                    ats = bytes(answer[i:i + tl])
                    if tl < 1 or len(ats) != tl:
                        raise IndexError
                    i += tl
                cls = IsoDep if ats and sel_res & _SEL_RES_ISO14443_4 else Target
                found.append(cls(self, tg, sens_res, sel_res, uid, ats))
        except IndexError:
            raise NfcProtocolError("InListPassiveTarget: target data cut short: %s" % bytes(answer).hex())
        return found

    async def poll(self, timeout_ms=5000, pause_ms=_POLL_PAUSE_MS):
        """Wait up to timeout_ms for a card in the field: a Target (IsoDep for ISO 14443-4), or
        None."""
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while True:
            left = _left(deadline)
            targets = await self.list_passive_target(1, timeout_ms=max(left, 50))
            if targets:
                return targets[0]
            left = _left(deadline)
            if left <= 0:
                return None
            await asyncio.sleep_ms(min(left, pause_ms))

    async def in_data_exchange(self, tg, data, timeout_ms=_EXCHANGE_MS):
        """InDataExchange with chaining both ways: data longer than 262 bytes goes in parts
        with MI set in Tg; while the answer's status has MI, the rest is fetched (InDataExchange
        with Tg alone). The target's silence is NfcTimeout (code 0x01): IsoDep.transceive
        makes it CardRemoved."""
        async with self._lock:
            n = len(data)
            if n <= _EXCHANGE_MAX:  # one part: the command goes into the frame as it is
                answer = await self._exchange_part(tg, data, timeout_ms)
            else:
                data = memoryview(data)
                pos = 0
                while True:
                    part = data[pos:pos + _EXCHANGE_MAX]
                    pos += len(part)
                    answer = await self._exchange_part((tg | _MI) if pos < n else tg, part, timeout_ms)
                    if pos >= n:
                        break
                    if answer[0] & _MI:
                        raise NfcProtocolError("InDataExchange: the card answered a chained part with data")
            if not answer[0] & _MI:
                return answer[1:]
            chunks = [answer[1:]]
            while answer[0] & _MI:
                answer = await self._exchange_part(tg, b"", timeout_ms)
                chunks.append(answer[1:])
            return b"".join(chunks)

    async def _exchange_part(self, tg, part, timeout_ms):
        answer = await self._command(_IN_DATA_EXCHANGE, part, timeout_ms, _DATA_HINT, tg)
        if not answer:
            raise NfcProtocolError("InDataExchange: answer without its status byte")
        code = answer[0] & _STATUS_ERROR
        if code:
            raise error(code)
        return answer

    async def in_release(self, tg=0):
        """InRelease: target tg (0: all) released."""
        await self._status(_IN_RELEASE, bytes((tg,)))

    async def in_deselect(self, tg=0):
        """InDeselect: target tg (0: all) deselected, kept listed."""
        await self._status(_IN_DESELECT, bytes((tg,)))

    # ---- card emulation ----------------------------------------------------------------------

    async def init_as_target(self, uid=b"\x12\x34\x56", sens_res=b"\x04\x00", sel_res=_SEL_RES_ISO14443_4,
                             historical=b"", timeout_ms=None):
        """TgInitAsTarget as an ISO 14443-4 PICC (106 kbps type A): waits for a reader to
        activate us (RATS answered by the PN532). (mode byte, the initiator's first command),
        or None when no reader came within timeout_ms (the command is aborted).

        uid: NFCID1t, 3 bytes (the PN532 puts 0x08 before them: a random UID); sens_res: the
        ATQA as sent (LSB first, 04 00); sel_res: the SAK, bit 6 (0x20) for ISO 14443-4;
        historical: the ATS's historical bytes (Tk)."""
        if len(uid) != 3 or len(sens_res) != 2 or not sel_res & _SEL_RES_ISO14443_4:
            raise ValueError("an ISO 14443-4 PICC needs a 3-byte NFCID1t, 2-byte SENS_RES, SEL_RES with 0x20")
        if not self.parameters & _PARAM_ISO14443_4_PICC:
            await self.set_parameters(self.parameters | _PARAM_ISO14443_4_PICC)
        params = bytearray()
        params.append(_TG_PASSIVE_ONLY | _TG_PICC_ONLY)
        params.extend(sens_res)
        params.extend(uid)
        params.append(sel_res)
        params.extend(bytes(18))  # FeliCaParams: NFCID2t, PAD, system code (not used)
        params.extend(bytes(10))  # NFCID3t (not used: no DEP)
        params.append(0)  # no general bytes
        params.append(len(historical))
        params.extend(historical)
        wait = _FOREVER_MS if timeout_ms is None else min(timeout_ms, _FOREVER_MS)
        try:
            answer = await self.command(_TG_INIT_AS_TARGET, bytes(params), wait, hint=_EXCHANGE_HINT)
        except NfcTimeout as e:
            if e.acked and timeout_ms is not None:
                return None  # no reader came: aborted
            raise
        if not answer:
            raise NfcProtocolError("TgInitAsTarget: answer without its mode byte")
        self.target_mode = answer[0]
        return answer[0], answer[1:]

    async def get_data(self, timeout_ms=None):
        """TgGetData: the initiator's next data (chained parts joined). Raises Released when
        the reader has left."""
        async with self._lock:
            chunks = []
            while True:
                answer = await self._command(_TG_GET_DATA, b"", self.answer_ms if timeout_ms is None else timeout_ms,
                                             _EXCHANGE_HINT)
                if not answer:
                    raise NfcProtocolError("TgGetData: answer without its status byte")
                if answer[0] & _STATUS_ERROR:
                    raise error(answer[0] & _STATUS_ERROR)
                chunks.append(answer[1:])
                if not answer[0] & _MI:
                    return b"".join(chunks)

    async def set_data(self, data):
        """TgSetData (TgSetMetaData for the parts before the last of a chained answer)."""
        data = bytes(data)
        async with self._lock:
            pos = 0
            while True:
                part = data[pos:pos + _EXCHANGE_MAX]
                pos += len(part)
                last = pos >= len(data)
                answer = await self._command(_TG_SET_DATA if last else _TG_SET_META_DATA, part, self.answer_ms,
                                             _ANSWER_HINT)
                if not answer:
                    raise NfcProtocolError("TgSetData: answer without its status byte")
                if answer[0] & _STATUS_ERROR:
                    raise error(answer[0] & _STATUS_ERROR)
                if last:
                    return

    async def emulate(self, applet, timeout_ms=None, idle_ms=10000, uid=b"\x12\x34\x56", historical=b"",
                      sens_res=b"\x04\x00", sel_res=_SEL_RES_ISO14443_4):
        """Be an ISO 14443-4 card: wait up to timeout_ms (None: for ever) for a reader, then hand
        each C-APDU to `applet.process(apdu)` and send back what it returns, until the reader
        releases us. Returns how many APDUs were answered, or None when no reader came.
        Raises NfcTimeout when the reader goes quiet for idle_ms without leaving."""
        activated = await self.init_as_target(uid, sens_res, sel_res, historical, timeout_ms)
        if activated is None:
            return None
        _, first = activated
        # In PICC mode the PN532 has answered the RATS itself; what it passes on is that RATS
        # (E0 xx), or already the first APDU.
        pending = first if len(first) >= 4 and not (len(first) == 2 and first[0] == 0xE0) else None
        answered = 0
        try:
            while True:
                try:
                    apdu = pending if pending is not None else await self.get_data(idle_ms)
                    pending = None
                    try:
                        rapdu = await applet.process(apdu)
                    except Exception:
                        rapdu = b"\x6f\x00"  # the applet failed: "no precise diagnosis", never a crash
                    await self.set_data(rapdu)
                except Released:
                    return answered
                answered += 1
        finally:
            reset = getattr(applet, "reset", None)
            if reset is not None:
                reset()  # the reader has gone: nothing stays selected

    # ---- diagnosis ---------------------------------------------------------------------------

    async def self_test(self):
        """(ok, detail) for diag: the PN532 answers, is a PN532, echoes a line test intact."""
        try:
            fw = await self.firmware_version()
        except NfcNotFound:
            return False, "no I2C acknowledge at 0x%02x: unpowered, RSTPDN held low, or unwired" % (
                getattr(self.link, "addr", _ADDR))
        except NfcTimeout:
            return False, "no answer on %s: unpowered, asleep, unwired or wrong mode (I2C/HSU) switches" % (
                self.link.describe())
        except NfcError as e:
            return False, "firmware version unreadable: %s" % e
        if fw[0] != 0x32:
            return False, "answers, but is not a PN532 (IC 0x%02X)" % fw[0]
        probe = b"\x00\x55\xaa\xff\x01PN532"
        try:
            echo = await self.diagnose(0x00, probe)
        except NfcError as e:
            return False, "PN532 v%d.%d: line test failed: %s" % (fw[1], fw[2], e)
        if bytes(echo) != b"\x00" + probe:
            return False, "PN532 v%d.%d: line test echoed %s" % (fw[1], fw[2], bytes(echo).hex())
        return True, "PN532 v%d.%d (%s) on %s" % (fw[1], fw[2], _support(fw[3]), self.link.describe())


def _answers(value, code):
    return len(value) >= 2 and value[0] == _TFI_PN532 and value[1] == code + 1


def _support(bits):
    names = []
    if bits & 1:
        names.append("ISO 14443A")
    if bits & 2:
        names.append("ISO 14443B")
    if bits & 4:
        names.append("ISO 18092")
    return ", ".join(names) or "no protocols"


def frame_bytes(code, params=b""):
    """A command's frame as bytes (for tests and tools)."""
    return bytes(command_frame(code, params))


def answer_frame(code, data=b""):
    """The frame of an answer from the PN532 (TFI D5, code + 1): for the frame tests."""
    return bytes(frame(bytes((_TFI_PN532, code + 1)) + bytes(data)))
