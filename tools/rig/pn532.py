"""NXP PN532 NFC controller (firmware V1.6, PN532/C106), at the wire level, per the PN532 User
Manual UM0701-02, with the cards in its field and a reader for card emulation.

One class for both host interfaces; the port it is given says which:
  "pn532"      I2C at 0x24 (the handheld: I2C0, IRQ on "nfc_irq", RSTPDN on "nfc_reset")
  "pn532-hsu"  HSU, a UART at 115200 8N1 (also on the pty <state>/rig/<name>.tty, for host
               software such as libnfc's nfc-list or Adafruit's library)

Frames (UM0701-02 6.2.1), both directions:
  normal       00 00 FF LEN LCS TFI PD0..PDn DCS 00     LEN = TFI + PDs; LEN + LCS = 0 and
                                                         TFI + PDs + DCS = 0 (mod 256)
  extended     00 00 FF FF FF LENM LENL LCS TFI PD.. DCS 00   (LENM + LENL + LCS = 0)
  ACK          00 00 FF 00 FF 00
  NACK         00 00 FF FF 00 00
  error        00 00 FF 01 FF 7F 81 00 (application level: syntax error)
TFI is D4 host->PN532, D5 PN532->host; the answer's first PD is the command code + 1. The
preamble is optional: the chip syncs on the start code 00 FF. Up to LEN 265 is taken in (an
InDataExchange with 262 bytes of data); longer ones get the error frame. What the model does
with what the host sends:
  * a frame whose LCS or DCS is wrong is dropped: no ACK (the host times out and repeats);
  * a good frame is ACKed ACK_MS after its last byte, then answered when the command is done;
    a TFI other than D4, an unknown command code or malformed parameters get the error frame
    in place of the answer;
  * the host's ACK while a command runs aborts it (no answer); a new command while one runs
    aborts the old one and is taken (so a host may give up on a long InListPassiveTarget);
  * the host's NACK makes the chip send its last answer again.

I2C (UM0701-02 6.2.4): a write is one frame. Every read starts with the status byte, 0x01 when
a frame is ready (then the frame, then 0x00 padding) or 0x00 when not; a read of two bytes or
more takes the ready frame (a NACK brings it back), the ACK first, then the answer. P70_IRQ
(GPIO "nfc_irq", pulled up on the module) is low while a frame is ready and goes high when it is
read; the next frame pulls it low again after IRQ_GAP_MS (0.1), so each frame is a falling edge
(SAMConfiguration's IRQ parameter 0 leaves the line alone). The rig's read path cannot NACK:
while the chip is held in reset a read returns 0xFF bytes, and writes are NACKed.

RSTPDN (GPIO "nfc_reset"; the module pulls it up, so an unconfigured line counts as high): low
= reset/power-down. The chip answers nothing, loses everything (job, targets, registers,
parameters), and releases IRQ; BOOT_MS (10, the model's choice) after it rises it runs again, in
the power-on state. A line that the device configures straight to output-low makes no edge in
the rig's pin bank (an unconfigured line reads 0 there); the model notices it at the next
transfer. IRQ and RSTPDN are the handheld's wiring of its I2C PN532: the HSU kind is a module on
a serial line (a pty for host software) whose own pull-ups hold RSTPDN high and whose IRQ is not
wired, so it touches no GPIO (and never fights the handheld's chip over them). After a detach
the I2C kind releases IRQ at its next event; `set_pin nfc_irq null` does it at once.

Power states (UM0701-02 7.2.11 PowerDown; AN10609 "Low VBat"): from power-on and reset the C106
is in LowVbat: asleep until the host wakes it, and back asleep after each command until a
SAMConfiguration takes it to normal mode. PowerDown (WakeUpEnable: b7 I2C, b5 SPI, b4 HSU, b3
RF level detector) answers, then sleeps until a wake-up source it allowed; a pending
TgInitAsTarget sleeps too (the RF field wakes it). Waking by HSU: the first byte's falling edge
wakes the chip and bytes that arrive within HSU_WAKE_US (200 us, 2.3 characters at 115200)
of it are lost (so the host sends the
manual's preamble, 55 55 00 00 00 ..., before its frame; a bare frame loses its start code and
is not taken). Waking by I2C: the address match wakes it, nothing is lost.

HSU speed: 115200 at power-on; SetSerialBaudRate (0 9600 ... 4 115200 ... 8 1288000) answers at
the old rate and switches the moment the host's ACK has arrived (the rate lasts until the model
is attached again: nothing resets an HSU module here); anything else after the answer (a frame,
a NACK, garbage) drops the change, so a later ACK does not switch. Each byte is judged at the
rate the host sent it at (the port gives it with the bytes; a host such as nfcpy reopens its
port at the new rate while its ACK is still on the wire): bytes at another rate are garbage to
the chip (counted, dropped). Bytes that the pty cannot place before or after the host's change
of rate (tools/rig/pty.py) are read at the chip's rate while a change awaits its ACK. Over I2C
the command is answered and changes nothing.

Commands: Diagnose (0 communication line, 1 ROM, 2 RAM, 4 polling, 5 echo back, 6 card presence,
7 antenna), GetFirmwareVersion (32 01 06 07), GetGeneralStatus, ReadRegister/WriteRegister (a
register file: CIU 0x6301..0x633F with the values the firmware leaves, the SFRs of P3/P7,
anything else reads what was written, default 0; TxControl's RF bits follow the field; the FIFO
keeps what is written), ReadGPIO/WriteGPIO, SetSerialBaudRate, SetParameters (fNADUsed 0x01,
fDIDUsed 0x02, fAutomaticATR_RES 0x04, fAutomaticRATS 0x10, fISO14443-4_PICC 0x20,
fRemovePrePostAmble 0x40; default 0x34), SAMConfiguration, PowerDown, RFConfiguration (1 RF
field, 2 various timings, 4 MaxRtyCOM, 5 MaxRetries, 0x0A..0x0D analog settings), InListPassive
Target (106 kbps type A: Tg, SENS_RES, SEL_RES, NFCID1 length and bytes, and the ATS when
fAutomaticRATS is set and the card's SAK says ISO/IEC 14443-4; 212/424 FeliCa, 106 B and Jewel
find no cards here), InAutoPoll (type A), InDataExchange (ISO-DEP with chaining both ways: MI,
0x40 in the status byte, when the answer is longer than 262 bytes, the host then sends Tg alone
for the rest; MI in the host's Tg byte for data sent in parts), InCommunicateThru (raw frames:
REQA/WUPA with 7 bits in BitFraming, anticollision, select, RATS, HLTA, ISO-DEP blocks),
InDeselect, InRelease, InSelect, TgInitAsTarget, TgGetData, TgSetData, TgSetMetaData,
TgGetInitiatorCommand, TgResponseToInitiator, TgGetTargetStatus. DEP (InJumpForDEP, InATR,
InPSL, TgSetGeneralBytes) answers as with no DEP peer in the field. Status byte: b5..b0 the
error code (UM0701-02 table "Error code list", below), b6 MI, b7 NAD.

Cards (control-API actions): place(kind="iso-dep" | "uid-only", uid=hex, ats=hex, applet="echo",
sak=, process_ms=) puts one card in the field (replacing any), remove(after_ms=0) takes it away.
A card is an ISO/IEC 14443-3 type A state machine (IDLE, READY, ACTIVE, HALT; WUPA wakes a
halted card, which is why a PN532 that polls again finds a card it deselected) with an
ISO/IEC 14443-4 block layer (block numbers, chaining, R(ACK)/R(NAK), S(DESELECT)) in front of
an applet. An applet is any object with process(apdu) -> response data + SW1 SW2 (and, if it
has one, reset(), called when the card loses power; its `contactless` attribute, if it has
one, is set True: a dual-interface card's applet answers as tapped); APPLETS maps names to
factories, one applet per card placed (register_applet adds one). "echo": SELECT by AID answers an FCI and 9000;
INS B0 with Le 00 answers 600 bytes (the chaining test); INS EE answers P1P2 bytes; any other
APDU echoes its data field with 9000. A "uid-only" tag (SAK 00) has no ISO-DEP: no ATS, and
InDataExchange/InCommunicateThru get no answer from it (timeout, 0x01; MIFARE authentication
0x14). A card removed before or during an exchange: timeout (0x01) once the chip gives up.

A reader, for card emulation (the PN532 as the card): reader(apdus=[hex, ...]) brings a reader
into the field; a pending TgInitAsTarget completes (or the next one does at once) with the
reader's activation: mode 0x08 (106 kbps, ISO/IEC 14443-4 PICC, type A framing) and the
reader's RATS (E0 80) as the initiator command, the PN532 having answered anticollision, select
and RATS itself (NFCID1 = 08 + the 3 bytes given, ATS = TL 75 33 92 03 + the historical
bytes). Then each APDU of the script is what a TgGetData returns, and what the device gives with
TgSetData is recorded against it; reader_log() returns [[apdu hex, response hex], ...].
reader_leave() takes the reader away (S(DESELECT), then the field off): a pending or later
TgGetData gets 0x29 (released by the initiator). Without fISO14443-4_PICC (or with a SAK
without 0x20) the host does the ISO-DEP layer itself: TgGetInitiatorCommand gives raw frames
(the I-blocks PCB + APDU) and TgResponseToInitiator answers them (first the ATS to the RATS).

Timing. Wire time is the rig's (HSU paced at the baud rate by the port; I2C by board/sim.py).
The chip's own times, scaled together by timing(scale=...) (tests use a fraction):
  ACK_MS 0.5 after the frame; CMD_MS 1.0 for a command's firmware work; Diagnose ROM test 60,
  RAM test 10 (the model's choices, of the order of a checksum over 40 KB of ROM / a RAM walk).
  RF at 106 kbps (ISO/IEC 14443-2/-3): one bit 128/fc = 9.44 us; a byte on air 9 bits (parity),
  85 us; a frame 1 SOF + 9 x bytes (+ 2 CRC bytes) + 1 EOF bits; REQA/WUPA a 7-bit short frame;
  frame delay time 1172/fc = 86.4 us each way. A 7-byte-UID activation (WUPA, two cascade levels
  of anticollision + select) is 4.5 ms on air; RATS/ATS add 1.1 ms + the card's RATS_MS 1.0;
  a field switched on waits FIELD_GUARD_MS 5 before the first WUPA (ISO/IEC 14443-3). So a SELECT
  of 13 bytes answered with 21 is 3.6 ms on air + the card's 2 ms, and a 600-byte answer
  (3 chained I-blocks of FSD 256 with 2 R(ACK)s) 56 ms.
  A polling attempt that finds nothing costs POLL_ATTEMPT_MS 3 (model's choice); MaxRetries'
  MxRtyPassiveActivation (default 0xFF: forever) says how many.
  ISO-DEP: I-blocks of at most FSC (from the card's ATS; the PN532 asks FSD 256 with RATS E0 80)
  with their R(ACK)s when chained; the card's processing time (PROCESS_MS 2 by default,
  place(process_ms=) per card). A card that does not answer: FWT (from the ATS's FWI; 38.7 ms
  for FWI 7) x 3 (the block and two retries) before the timeout status; a raw frame
  (InCommunicateThru, non-ISO-DEP InDataExchange) that gets no answer: RetryTimeout (RFConfig
  item 2, 51.2 ms by default) x (MaxRtyCOM + 1).
  A reader in card emulation: its frames on air as above, READER_GAP_MS 1 between receiving an
  answer and sending its next APDU.
Not modelled: collisions of several cards (one card at a time), FeliCa/type B/Jewel/DEP
peers, MIFARE Classic memory and Crypto1, the CIU executing its FIFO (registers hold values,
nothing goes on air from them), SAM, S(WTX) frames (a slow card's time is simply added).

The `model` command returns the state: power, field, card, targets, target mode, reader,
counters and the last commands (hex).
"""

import time

from .buses import readable_at
from .models import Model

ADDR = 0x24
HSU_BAUD = 115200

# ---- frames -----------------------------------------------------------------------------------

ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
HOST_TFI = 0xD4
CHIP_TFI = 0xD5
MAX_LEN = 265  # TFI + the longest command (InDataExchange with 262 bytes of data)
MAX_DATA = 262  # data bytes in one InDataExchange (each direction)


def frame(payload):
    """An information frame around payload (TFI + PD0..PDn): normal, or extended past 255."""
    payload = bytes(payload)
    n = len(payload)
    dcs = (-sum(payload)) & 0xFF
    if n <= 255:
        return b"\x00\x00\xff" + bytes((n, (-n) & 0xFF)) + payload + bytes((dcs, 0))
    hi, lo = n >> 8, n & 0xFF
    return b"\x00\x00\xff\xff\xff" + bytes((hi, lo, (-(hi + lo)) & 0xFF)) + payload + bytes((dcs, 0))


# ---- commands -----------------------------------------------------------------------------------

DIAGNOSE = 0x00
GET_FIRMWARE_VERSION = 0x02
GET_GENERAL_STATUS = 0x04
READ_REGISTER = 0x06
WRITE_REGISTER = 0x08
READ_GPIO = 0x0C
WRITE_GPIO = 0x0E
SET_SERIAL_BAUD_RATE = 0x10
SET_PARAMETERS = 0x12
SAM_CONFIGURATION = 0x14
POWER_DOWN = 0x16
RF_CONFIGURATION = 0x32
IN_DATA_EXCHANGE = 0x40
IN_COMMUNICATE_THRU = 0x42
IN_DESELECT = 0x44
IN_JUMP_FOR_PSL = 0x46
IN_LIST_PASSIVE_TARGET = 0x4A
IN_PSL = 0x4E
IN_ATR = 0x50
IN_RELEASE = 0x52
IN_SELECT = 0x54
IN_JUMP_FOR_DEP = 0x56
RF_REGULATION_TEST = 0x58
IN_AUTO_POLL = 0x60
TG_GET_DATA = 0x86
TG_GET_INITIATOR_COMMAND = 0x88
TG_GET_TARGET_STATUS = 0x8A
TG_INIT_AS_TARGET = 0x8C
TG_SET_DATA = 0x8E
TG_RESPONSE_TO_INITIATOR = 0x90
TG_SET_GENERAL_BYTES = 0x92
TG_SET_META_DATA = 0x94

FIRMWARE = bytes((0x32, 0x01, 0x06, 0x07))  # IC PN532, Ver 1, Rev 6, Support: ISO18092, 14443 A and B

# Status byte error codes (UM0701-02, "Error code list").
E_TIMEOUT = 0x01  # the target has not answered
E_CRC = 0x02
E_PARITY = 0x03
E_BITCOUNT = 0x04
E_FRAMING = 0x05  # MIFARE framing
E_BITCOLL = 0x06
E_SMALLBUF = 0x07  # communication buffer size insufficient
E_BUFOVF = 0x09  # RF buffer overflow
E_RFTIMEOUT = 0x0A  # active mode: the counterpart's field not on in time
E_RFPROTO = 0x0B
E_OVHEAT = 0x0D
E_INBUFOVF = 0x0E  # internal buffer overflow
E_INVPARAM = 0x10  # invalid parameter (range, format, ...)
E_DEPUNKCMD = 0x12
E_INVRXFRAME = 0x13  # DEP, MIFARE or ISO/IEC 14443-4: data format not as specified
E_MFAUTH = 0x14  # MIFARE authentication error
E_BCC = 0x23  # UID check byte wrong
E_DEPINVSTATE = 0x25
E_OPNOTALL = 0x26  # operation not allowed in this configuration
E_CONTEXT = 0x27  # not acceptable in the current context (initiator vs target, unknown Tg, ...)
E_RELEASED = 0x29  # the PN532 as target has been released by its initiator
E_CID = 0x2A  # type B: the card has been exchanged
E_DISCARDED = 0x2B  # type B: the card has disappeared
E_NFCID3 = 0x2C
E_OVCURRENT = 0x2D
E_NADMISSING = 0x2E
MI = 0x40

# SetParameters flags.
P_NAD_USED = 0x01
P_DID_USED = 0x02
P_AUTO_ATR_RES = 0x04
P_AUTO_RATS = 0x10
P_ISO14443_4_PICC = 0x20
P_REMOVE_PRE_POSTAMBLE = 0x40
DEFAULT_PARAMETERS = P_AUTO_ATR_RES | P_AUTO_RATS | P_ISO14443_4_PICC

HSU_RATES = {0: 9600, 1: 19200, 2: 38400, 3: 57600, 4: 115200, 5: 230400, 6: 460800, 7: 921600, 8: 1288000}

# RFConfiguration items and the length of their data.
RF_ITEMS = {0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}

# Registers (PN532 addresses). CIU: the contactless interface unit, 0x6301..0x633F.
CIU_MODE = 0x6301
CIU_TX_MODE = 0x6302
CIU_RX_MODE = 0x6303
CIU_TX_CONTROL = 0x6304
CIU_TX_AUTO = 0x6305
CIU_TX_SEL = 0x6306
CIU_RX_SEL = 0x6307
CIU_RX_THRESHOLD = 0x6308
CIU_DEMOD = 0x6309
CIU_MIF_NFC = 0x630C
CIU_MANUAL_RCV = 0x630D
CIU_GSN_OFF = 0x6313
CIU_MOD_WIDTH = 0x6314
CIU_TX_BIT_PHASE = 0x6315
CIU_RF_CFG = 0x6316
CIU_GSN_ON = 0x6317
CIU_CWGS_P = 0x6318
CIU_MODGS_P = 0x6319
CIU_COMMAND = 0x6331
CIU_COMM_IEN = 0x6332
CIU_COMM_IRQ = 0x6334
CIU_STATUS1 = 0x6337
CIU_STATUS2 = 0x6338
CIU_FIFO_DATA = 0x6339
CIU_FIFO_LEVEL = 0x633A
CIU_WATER_LEVEL = 0x633B
CIU_CONTROL = 0x633C
CIU_BIT_FRAMING = 0x633D
CIU_COLL = 0x633E
SFR_P3 = 0xFFB0
SFR_P7 = 0xFFF7
SFR_P3CFGA = 0xFFFC
SFR_P3CFGB = 0xFFFD
SFR_P7CFGA = 0xFFF4
SFR_P7CFGB = 0xFFF5

REGISTER_DEFAULTS = {
    # What the firmware leaves in the CIU as a type A initiator at 106 kbps with CRC on (libnfc
    # relies on CRC and parity being handled by the chip by default); the analog settings are
    # the PN512 family's reset values.
    CIU_MODE: 0x3F, CIU_TX_MODE: 0x80, CIU_RX_MODE: 0x80, CIU_TX_CONTROL: 0x80, CIU_TX_AUTO: 0x40,
    CIU_TX_SEL: 0x10, CIU_RX_SEL: 0x84, CIU_RX_THRESHOLD: 0x84, CIU_DEMOD: 0x4D, CIU_MIF_NFC: 0x62,
    CIU_MANUAL_RCV: 0x00, CIU_GSN_OFF: 0x88, CIU_MOD_WIDTH: 0x26, CIU_TX_BIT_PHASE: 0x87,
    CIU_RF_CFG: 0x48, CIU_GSN_ON: 0x88, CIU_CWGS_P: 0x20, CIU_MODGS_P: 0x20, CIU_COMMAND: 0x20,
    CIU_COMM_IEN: 0x80, CIU_COMM_IRQ: 0x14, CIU_STATUS1: 0x21, CIU_STATUS2: 0x00,
    CIU_WATER_LEVEL: 0x08, CIU_CONTROL: 0x10, CIU_BIT_FRAMING: 0x00, CIU_COLL: 0x80,
    SFR_P3: 0x3F, SFR_P7: 0x06, SFR_P3CFGA: 0xFF, SFR_P3CFGB: 0x00, SFR_P7CFGA: 0xFF, SFR_P7CFGB: 0x00,
}

# ---- timing (seconds unless named _MS / _US; all chip and RF times scale with timing()) ------

FC = 13.56e6
BIT_S = 128 / FC  # one bit at 106 kbps
FDT_S = 1172 / FC  # frame delay time, PCD->PICC and back
SHORT_FRAME_S = 9 * BIT_S  # SOF + 7 bits + EOF
ACK_MS = 0.5
CMD_MS = 1.0
ROM_TEST_MS = 60.0
RAM_TEST_MS = 10.0
BOOT_MS = 10.0  # RSTPDN released -> answering (model's choice)
IRQ_GAP_MS = 0.1
FIELD_GUARD_MS = 5.0
POLL_ATTEMPT_MS = 3.0
RATS_MS = 1.0  # a card's time to answer RATS
PROCESS_MS = 2.0  # a card's time for an APDU
READER_GAP_MS = 1.0
HSU_WAKE_US = 200  # bytes arriving this soon after the waking byte are lost
FSC_TABLE = (16, 24, 32, 40, 48, 64, 96, 128, 256)
PN532_FSDI = 8  # the PN532's RATS asks FSD 256 (E0 80)
PICC_ATS = bytes((0x75, 0x33, 0x92, 0x03))  # T0 TA TB TC of the PN532 as an ISO-DEP card
PICC_FSC = 64


def frame_s(n, crc=True):
    """Air time of a standard frame of n bytes at 106 kbps (start, 9 bits a byte, end)."""
    return (2 + 9 * (n + (2 if crc else 0))) * BIT_S


def exchange_s(tx, rx, crc=True):
    """A command of tx bytes and its answer of rx bytes, with the frame delay times."""
    return frame_s(tx, crc) + FDT_S + frame_s(rx, crc) + FDT_S


def timeout_code(ms):
    """RFConfiguration's timeout encoding (0: none, n: 100 us x 2^(n-1))."""
    return 0.0 if ms == 0 else 100e-6 * (1 << (ms - 1))


# ---- cards and applets ------------------------------------------------------------------------

class EchoApplet:
    """A test applet: SELECT answers an FCI, B0 with Le 00 answers 600 bytes, EE answers P1P2
    bytes, anything else echoes its data field; all with 9000."""

    AID = bytes.fromhex("F0504F434B4554")  # what a SELECT without data finds

    def __init__(self):
        self.selected = None
        self.apdus = 0

    def reset(self):
        self.selected = None

    @staticmethod
    def parse(apdu):
        """(header, data, le) of a short or extended APDU; le None when absent."""
        header, body = apdu[:4], apdu[4:]
        if not body:
            return header, b"", None
        if body[0] == 0 and len(body) >= 3:  # extended lengths
            if len(body) == 3:
                return header, b"", int.from_bytes(body[1:3], "big") or 65536
            lc = int.from_bytes(body[1:3], "big")
            data = body[3:3 + lc]
            rest = body[3 + lc:]
            return header, data, (int.from_bytes(rest[-2:], "big") or 65536) if rest else None
        if len(body) == 1:
            return header, b"", body[0] or 256
        lc = body[0]
        data = body[1:1 + lc]
        rest = body[1 + lc:]
        return header, data, (rest[0] or 256) if rest else None

    def process(self, apdu):
        self.apdus += 1
        if len(apdu) < 4:
            return b"\x67\x00"
        header, data, le = self.parse(apdu)
        cla, ins, p1, p2 = header
        if ins == 0xA4 and p1 == 0x04:
            aid = data or self.AID
            self.selected = aid
            label = b"ECHO"
            prop = b"\x50" + bytes((len(label),)) + label
            fci = b"\x84" + bytes((len(aid),)) + aid + b"\xa5" + bytes((len(prop),)) + prop
            return b"\x6f" + bytes((len(fci),)) + fci + b"\x90\x00"
        if ins == 0xB0 and le == 256 and len(apdu) == 5:
            return bytes(i & 0xFF for i in range(600)) + b"\x90\x00"
        if ins == 0xEE:
            return bytes(i & 0xFF for i in range((p1 << 8) | p2)) + b"\x90\x00"
        return bytes(data) + b"\x90\x00"


class _Applets(dict):
    """Applet factories by name; "emv:<card>" names resolve to tools.emvcard's card applets,
    imported when first asked for."""

    def __missing__(self, name):
        if isinstance(name, str) and name.startswith("emv:"):
            from tools import emvcard
            emvcard.load_profile(name[4:].split("#", 1)[0])  # KeyError: no such card
            return lambda: emvcard.card_applet(name[4:])
        raise KeyError(name)

    def __contains__(self, name):
        try:
            self[name]
            return True
        except KeyError:
            return False


APPLETS = _Applets(echo=EchoApplet)


def register_applet(name, factory):
    """Make an applet available to place(applet=name): factory() -> object with process(apdu)."""
    APPLETS[name] = factory


DEFAULT_ATS = bytes.fromhex("0578807002")  # TL 05, T0 78 (FSC 256, TA TB TC), TA 80, TB 70 (FWI 7), TC 02


class Card:
    """A type A card: ISO/IEC 14443-3 states, and for an ISO-DEP card the 14443-4 block layer."""

    def __init__(self, kind, uid, ats, applet, sak, process_s):
        self.kind = kind
        self.uid = uid
        self.ats = ats  # with TL, or None (no ISO-DEP)
        self.applet_name = applet
        self.applet = APPLETS[applet]() if ats is not None else None
        if hasattr(self.applet, "contactless"):  # a dual-interface card's applet: it is tapped
            self.applet.contactless = True
        self.sak = sak
        self.process_s = process_s
        self.levels = {4: 1, 7: 2, 10: 3}[len(uid)]
        self.atqa = bytes((0x00, (0x00, 0x04, 0x44, 0x84)[self.levels]))  # as the PN532 reports it
        self.present = True
        self.power_off()

    def power_off(self):
        self.state = "idle"
        self.level = 0
        self.bn = 1  # the PICC's block number starts at 1
        self.rx_chain = b""
        self.tx_pending = b""
        self.last_block = None
        self.fsd = 256
        self.cid = None
        if getattr(self, "applet", None) is not None and hasattr(self.applet, "reset"):
            self.applet.reset()  # the card lost power: its volatile state goes

    # ISO/IEC 14443-3
    def fsc(self):
        if not self.ats or len(self.ats) < 2:
            return 32
        return FSC_TABLE[min(self.ats[1] & 0x0F, 8)]

    def fwt_s(self):
        fwi = 4
        if self.ats and len(self.ats) >= 2 and self.ats[1] & 0x20:
            tb = self.ats[2 + (1 if self.ats[1] & 0x10 else 0)]
            fwi = tb >> 4
        return 256 * 16 / FC * (1 << min(fwi, 14))

    def sfgt_s(self):
        if self.ats and len(self.ats) >= 2 and self.ats[1] & 0x20:
            sfgi = self.ats[2 + (1 if self.ats[1] & 0x10 else 0)] & 0x0F
            if 0 < sfgi < 15:
                return 256 * 16 / FC * (1 << sfgi)
        return 0.0

    def cascade(self, level):
        """The 4 UID bytes (CT first when the UID goes on) of cascade level 1..3."""
        uid = self.uid
        parts = {1: [uid], 2: [b"\x88" + uid[:3], uid[3:]], 3: [b"\x88" + uid[:3], b"\x88" + uid[3:6], uid[6:]]}
        return parts[self.levels][level - 1]

    def sak_at(self, level):
        return 0x04 if level < self.levels else self.sak

    def wake(self, wupa):
        """REQA (wupa False) or WUPA: the ATQA, or None."""
        if self.state == "idle" or (wupa and self.state == "halt"):
            self.state = "ready"
            self.level = 1
            return self.atqa[::-1]  # on air LSB first (44 00); InListPassiveTarget reports 00 44
        if self.state in ("ready", "active", "protocol"):
            self.power_off_soft()
        return None

    def power_off_soft(self):
        # A REQA/WUPA outside IDLE/HALT is an unexpected frame: back to IDLE.
        self.state = "idle"

    def raw(self, frame, tx_bits=0):
        """A frame on air from the reader; the card's answer or None."""
        if not self.present:
            return None
        if tx_bits == 7 and len(frame) == 1 and frame[0] in (0x26, 0x52):
            return self.wake(frame[0] == 0x52)
        if self.state == "ready" and len(frame) >= 2 and frame[0] in (0x93, 0x95, 0x97):
            level = (0x93, 0x95, 0x97).index(frame[0]) + 1
            if level != self.level:
                self.state = "idle"
                return None
            part = self.cascade(level)
            bcc = part[0] ^ part[1] ^ part[2] ^ part[3]
            if frame[1] == 0x20:  # ANTICOLLISION: the whole cascade level
                return part + bytes((bcc,))
            if frame[1] == 0x70 and bytes(frame[2:6]) == part:  # SELECT
                sak = self.sak_at(level)
                if level < self.levels:
                    self.level += 1
                else:
                    self.state = "active"
                return bytes((sak,))
            return None
        if self.state == "active":
            if frame[:2] == b"\x50\x00":  # HLTA: no answer
                self.state = "halt"
                return None
            if frame[0] == 0xE0 and len(frame) >= 2 and self.ats is not None:  # RATS
                self.state = "protocol"
                self.fsd = FSC_TABLE[min(frame[1] >> 4, 8)]
                self.cid = frame[1] & 0x0F
                self.bn = 1
                return self.ats
            self.state = "idle"
            return None
        if self.state == "protocol":
            return self.block(frame)[0]
        return None

    # ISO/IEC 14443-4, the PICC's side
    def block(self, frame):
        """(answer block or None, processing time of the card)."""
        if not self.present or self.state != "protocol" or not frame:
            return None, 0.0
        pcb = frame[0]
        body = frame[2:] if pcb & 0x08 else frame[1:]  # CID present
        if pcb & 0xE2 == 0x02:  # I-block
            self.bn ^= 1
            self.rx_chain += body
            if pcb & 0x10:  # chaining: acknowledge
                return self._send(bytes((0xA2 | self.bn,))), 0.0
            apdu, self.rx_chain = self.rx_chain, b""
            self.tx_pending = self.applet.process(bytes(apdu))
            return self._next(), self.process_s
        if pcb & 0xE6 == 0xA2:  # R-block
            nak = pcb & 0x10
            if (pcb & 1) == self.bn:
                return self.last_block, 0.0  # the reader missed our last block: again
            if nak:
                return self._send(bytes((0xA2 | self.bn,))), 0.0  # presence check: R(ACK)
            self.bn ^= 1
            if self.tx_pending:
                return self._next(), 0.0
            return self.last_block, 0.0
        if pcb & 0xF7 == 0xC2:  # S(DESELECT)
            self.state = "halt"
            return bytes((0xC2,)), 0.0
        return None, 0.0

    def _next(self):
        room = self.fsd - 3
        chunk, self.tx_pending = self.tx_pending[:room], self.tx_pending[room:]
        pcb = (0x12 if self.tx_pending else 0x02) | self.bn
        return self._send(bytes((pcb,)) + chunk)

    def _send(self, block):
        self.last_block = block
        return block

    def status(self):
        return {"kind": self.kind, "uid": self.uid.hex().upper(), "sak": self.sak,
                "atqa": self.atqa.hex(), "ats": self.ats.hex().upper() if self.ats else None,
                "applet": self.applet_name if self.applet else None, "state": self.state,
                "present": self.present, "apdus": getattr(self.applet, "apdus", 0)}


class Target:
    """A target in the PN532's list (InListPassiveTarget / InAutoPoll)."""

    def __init__(self, tg, card, iso_dep):
        self.tg = tg
        self.card = card
        self.iso_dep = iso_dep
        self.deselected = False
        self.bn = 0  # the PCD's block number
        self.rest = b""  # an answer's part not yet given (MI)
        self.tx_chain = b""  # the host's data sent with MI so far

    def data(self):
        c = self.card
        out = bytes((self.tg,)) + c.atqa + bytes((c.sak, len(c.uid))) + c.uid
        if self.iso_dep:
            out += c.ats
        return out


class _Job:
    __slots__ = ("cmd", "done", "timers", "data")

    def __init__(self, cmd):
        self.cmd = cmd
        self.done = False
        self.timers = []
        self.data = None


class Reader:
    """An external reader for card emulation: a script of APDUs."""

    def __init__(self, apdus, rats):
        self.script = [bytes.fromhex(a) for a in apdus]
        self.rats = rats
        self.log = []
        self.state = "field"  # field, activated, waiting (an APDU out, no answer yet), gone
        self.current = None  # the APDU waiting for its answer
        self.raw_stage = None  # non-PICC: "rats", then "apdu"
        self.bn = 0


class PN532(Model):
    """NXP PN532 NFC controller (I2C at 0x24 or HSU), with a card in its field and a reader."""

    def __init__(self, port=None):
        self.port = port
        self.hsu = getattr(port, "kind", "i2c") == "uart"
        self._pins = None
        self.irq_gpio = self.reset_gpio = None
        self.scale = 1.0
        self.card = None
        self.reader = None
        self._timers = set()
        self.stats = {"frames": 0, "acks_sent": 0, "host_acks": 0, "host_nacks": 0, "bad_lcs": 0,
                      "bad_dcs": 0, "error_frames": 0, "aborted": 0, "line_errors": 0, "lost_waking": 0,
                      "reads": 0, "nacked": 0, "skipped": 0, "baud_changes_dropped": 0}
        self.log = []
        self.in_reset = False
        self.booting_until = 0.0
        self._power_on()

    # ---- state ------------------------------------------------------------------------------

    def _power_on(self):
        self.power = "lowvbat"  # the C106's start-up mode
        self.asleep = True
        self.wake_mask = 0xFF
        self.wake_until = None
        self.baud = HSU_BAUD
        self.pending_baud = None
        self.rx = bytearray()
        self.outq = []  # I2C: frames ready for the host
        self.last_answer = None
        self.job = None
        self.regs = dict(REGISTER_DEFAULTS)
        self.fifo = bytearray()
        self.parameters = DEFAULT_PARAMETERS
        self.sam_mode = 0x01
        self.use_irq = True
        self.field = False
        self.field_on_at = 0.0
        self.timings = {"atr_res": 0x0B, "retry": 0x0A}
        self.max_rty_com = 0x00
        self.max_retries = {"atr": 0xFF, "psl": 0x01, "passive": 0xFF}
        self.targets = {}
        self.last_error = 0
        self.tg = None  # target mode: dict(config), or None
        self.tg_state = "free"
        self.tg_queue = []  # what the reader sent that the host has not taken: (kind, bytes)
        self.tg_meta = b""
        self.tg_waiter = None  # the job of a pending TgInitAsTarget / TgGetData / ...
        if self.card is not None:
            self.card.power_off()

    def _now(self):
        loop = self._loop()
        return loop.time() if loop is not None else time.monotonic()

    def _s(self, ms):
        return ms / 1000 * self.scale

    # ---- wiring -----------------------------------------------------------------------------

    def wire(self, bank):
        if self.hsu:
            return  # a module on a serial line: its own pull-ups hold RSTPDN high, IRQ unused
        self.irq_gpio = self.gpio("nfc_irq")
        self.reset_gpio = self.gpio("nfc_reset")
        bank.watchers.append(self._watch)
        self._sync_reset()
        self._irq()

    def _gone(self):
        for h in list(self._timers):
            h.cancel()
        self._timers.clear()
        if self._pins is not None:
            if self._watch in self._pins.watchers:
                self._pins.watchers.remove(self._watch)
            if self.irq_gpio is not None and not self.hsu:
                self._pins.set_external(self.irq_gpio, None)

    def _watch(self, gpio, level):
        if not self._attached():
            self._gone()
            return
        if gpio == self.reset_gpio:
            self._sync_reset()

    def _reset_asserted(self):
        p = self._pins.pin(self.reset_gpio)
        if p.external == 0:
            return True
        return p.mode in ("out", "open_drain") and p.out == 0

    def _sync_reset(self):
        if self._pins is None or self.reset_gpio is None:
            return
        asserted = self._reset_asserted()
        if asserted and not self.in_reset:
            self.in_reset = True
            self._abort_job()
            for h in list(self._timers):
                h.cancel()
            self._timers.clear()
            self._power_on()
            self._field(False)
            if self.reader is not None and self.reader.state != "gone":
                self.reader.state = "field"
            self._irq()
        elif not asserted and self.in_reset:
            self.in_reset = False
            self.booting_until = self._now() + self._s(BOOT_MS)

    def _running(self):
        """Powered, out of reset and booted (asleep or not)."""
        self._sync_reset()
        return not self.in_reset and self._now() >= self.booting_until and self._attached()

    def _irq(self):
        """Drive P70_IRQ: low while a frame waits to be read (I2C), else released (pulled up)."""
        if self._pins is None or self.irq_gpio is None or self.hsu:
            return
        low = bool(self.outq) and self.use_irq and not self.in_reset
        self._pins.set_external(self.irq_gpio, 0 if low else 1)

    # ---- HSU --------------------------------------------------------------------------------

    def receive(self, data):
        if not self._running():
            self.stats["skipped"] += len(data)
            return
        # Judged at the rate the host sent them at (a host may reopen its port at a new rate
        # while its ACK to SetSerialBaudRate is still on the wire, as nfcpy does). Bytes the pty
        # cannot place before or after the host's change of rate are read at the chip's own
        # rate while a change awaits its ACK: the host that just asked for it is taken to have
        # ACKed it at the old rate (one that switched first would not be caught here).
        port = self.port  # a UartPort: only HSU bytes come here
        ct = port.rx_char_time
        if not readable_at(ct, self.baud) and not (
                self.pending_baud is not None and port.rx_earlier is not None
                and readable_at(port.rx_earlier, self.baud)):
            self.stats["line_errors"] += len(data)
            self._drop_pending_baud()
            return
        now = self._now()
        arrivals = [now - (len(data) - 1 - i) * ct for i in range(len(data))]
        if self.asleep:
            if not self._may_wake(0x10):
                self.stats["skipped"] += len(data)
                return
            self._wake()
            self.wake_until = arrivals[0] + HSU_WAKE_US / 1e6
        if self.wake_until is not None:
            keep = bytes(b for b, t in zip(data, arrivals) if t >= self.wake_until - 1e-9)
            self.stats["lost_waking"] += len(data) - len(keep)
            if arrivals[-1] >= self.wake_until - 1e-9:
                self.wake_until = None
            data = keep
        self.rx += data
        self._parse()

    def _wake(self):
        self.asleep = False
        if self.power == "powerdown":
            self.power = "normal"  # PowerDown ends with the wake-up; LowVbat needs SAMConfiguration

    def _may_wake(self, source):
        if self.power == "lowvbat" or self.tg_waiter is not None:
            return True
        return bool(self.wake_mask & source)

    # ---- I2C --------------------------------------------------------------------------------

    def i2c_write(self, data, stop):
        if not self._running():
            self.stats["nacked"] += 1
            return None
        if self.asleep:
            if not self._may_wake(0x80):
                self.stats["nacked"] += 1
                return None
            self._wake()  # the address match wakes it; clock stretching covers the rest
        self.rx = bytearray(data)
        self._parse()
        self.rx = bytearray()
        return len(data)

    def i2c_read(self, n):
        if not self._running():
            return b"\xff" * n
        self.stats["reads"] += 1
        if not self.outq:
            return bytes(n)
        head = self.outq[0]
        out = (b"\x01" + head + bytes(n))[:n]
        if n > 1:
            self.outq.pop(0)
            self._irq()
            if self.outq and self.use_irq:
                self._pins_high_then_low()
        return out

    def _pins_high_then_low(self):
        # The line went high with the read; the next frame pulls it low a moment later.
        if self._pins is None or self.hsu:
            return
        self._pins.set_external(self.irq_gpio, 1)
        self._later(IRQ_GAP_MS / 1000, self._irq)

    # ---- frames from the host ---------------------------------------------------------------

    def _parse(self):
        rx = self.rx
        while True:
            start = rx.find(b"\x00\xff")
            if start < 0:
                keep = 1 if rx.endswith(b"\x00") else 0
                del rx[:len(rx) - keep]
                return
            del rx[:start]
            if len(rx) < 4:
                return
            length, lcs = rx[2], rx[3]
            if length == 0x00 and lcs == 0xFF:
                del rx[:4]
                self._host_ack()
                continue
            if length == 0xFF and lcs == 0x00:
                del rx[:4]
                self._host_nack()
                continue
            if length == 0xFF and lcs == 0xFF:  # extended
                if len(rx) < 7:
                    return
                hi, lo, elcs = rx[4], rx[5], rx[6]
                if (hi + lo + elcs) & 0xFF:
                    self.stats["bad_lcs"] += 1
                    del rx[:2]
                    continue
                length, head = (hi << 8) | lo, 7
            else:
                if (length + lcs) & 0xFF:
                    self.stats["bad_lcs"] += 1
                    del rx[:2]
                    continue
                head = 4
            if len(rx) < head + length + 1:
                return
            payload = bytes(rx[head:head + length])
            dcs = rx[head + length]
            del rx[:head + length + 1]
            if (sum(payload) + dcs) & 0xFF:
                self.stats["bad_dcs"] += 1
                continue
            self._frame(payload)

    def _host_ack(self):
        self.stats["host_acks"] += 1
        if self.pending_baud is not None:
            # The new rate from the ACK's last byte on (UM0701-02 7.2.8: after the host's ACK).
            self.baud, self.pending_baud = self.pending_baud, None
            return
        if self.job is not None:
            self.stats["aborted"] += 1
            self._abort_job()
            self.outq = [f for f in self.outq if f == ACK]
            self._irq()
            self._after_command(None)

    def _drop_pending_baud(self):
        """Anything but the ACK after SetSerialBaudRate's answer: the host did not take the
        change, so the chip stays at its rate (a later, unrelated ACK must not switch it)."""
        if self.pending_baud is not None:
            self.pending_baud = None
            self.stats["baud_changes_dropped"] += 1

    def _host_nack(self):
        self.stats["host_nacks"] += 1
        self._drop_pending_baud()
        if self.last_answer is not None:
            self._emit(self.last_answer)

    def _frame(self, payload):
        self.stats["frames"] += 1
        self._drop_pending_baud()
        self.log.append(payload.hex())
        del self.log[:-24]
        if self.job is not None:
            self.stats["aborted"] += 1
            self._abort_job()
        if self.outq:  # answers the host never read are dropped with a new command
            self.outq = []
            self._irq()
        self._later(self._s(ACK_MS), self._send_ack)
        job = _Job(payload[1] if len(payload) > 1 else None)
        self.job = job
        if len(payload) < 2 or payload[0] != HOST_TFI or len(payload) > MAX_LEN:
            self._error(job)
            return
        handler = getattr(self, "_cmd_%02x" % payload[1], None)
        if handler is None:
            self._error(job)
            return
        try:
            handler(job, payload[2:])
        except _Syntax:
            self._error(job)

    def _send_ack(self):
        self.stats["acks_sent"] += 1
        self._emit(ACK)

    def _emit(self, data):
        if self.hsu:
            self.port.send(data)
        else:
            self.outq.append(data)
            if len(self.outq) == 1:
                self._irq()

    # ---- jobs -------------------------------------------------------------------------------

    def _abort_job(self):
        job = self.job
        if job is None:
            return
        job.done = True
        for h in job.timers:
            if h is not None:
                h.cancel()
                self._timers.discard(h)
        self.job = None
        if self.tg_waiter is job:
            self.tg_waiter = None

    def _answer(self, job, data, delay=None, then=None):
        """The command's answer (D5, code + 1, data) after delay (default CMD_MS)."""
        delay = self._s(CMD_MS) if delay is None else delay
        delay = max(delay, self._s(ACK_MS) + 1e-4)

        def done():
            if job.done or self.job is not job:
                return
            job.done = True
            self.job = None
            answer = frame(bytes((CHIP_TFI, job.cmd + 1)) + bytes(data))
            self.last_answer = answer
            self._emit(answer)
            if then is not None:
                then()
            self._after_command(job.cmd)

        job.timers.append(self._later(delay, done))

    def _error(self, job):
        def done():
            if job.done or self.job is not job:
                return
            job.done = True
            self.job = None
            self.stats["error_frames"] += 1
            self.last_answer = ERROR_FRAME
            self._emit(ERROR_FRAME)
            self._after_command(job.cmd)

        job.timers.append(self._later(max(self._s(CMD_MS), self._s(ACK_MS) + 1e-4), done))

    def _after_command(self, cmd):
        if self.power == "lowvbat" and cmd != SAM_CONFIGURATION:
            self.asleep = True  # still in LowVbat: back to sleep until SAMConfiguration
        elif self.power == "powerdown":
            self.asleep = True

    def _status(self, job, code, data=b"", delay=None, mi=False):
        self.last_error = code
        self._answer(job, bytes((code | (MI if mi else 0),)) + bytes(data), delay)

    # ---- field and cards ----------------------------------------------------------------------

    def _field(self, on):
        if on and not self.field:
            self.field_on_at = self._now()
        self.field = on
        self.regs[CIU_TX_CONTROL] = (self.regs.get(CIU_TX_CONTROL, 0x80) & ~0x03) | (0x03 if on else 0)
        if not on and self.card is not None:
            self.card.power_off()

    def _field_up(self):
        """Switch the field on if off; the time before the first frame may go out."""
        if not self.field:
            self._field(True)
            return self._s(FIELD_GUARD_MS)
        return max(0.0, self.field_on_at + self._s(FIELD_GUARD_MS) - self._now())

    def _card(self, raw=False):
        """The card that hears the PN532 now (present, field on). The firmware sets the CIU up
        for a target's modulation itself; a raw frame (InCommunicateThru) goes out as the CIU
        registers say, and only type A framing at 106 kbps reaches a type A card."""
        c = self.card
        if c is None or not c.present or not self.field:
            return None
        if raw and (self.regs.get(CIU_TX_MODE, 0) & 0x73 or self.regs.get(CIU_RX_MODE, 0) & 0x73):
            return None
        return c

    def _ciu_for(self, brty):
        """What the firmware writes to TxMode/RxMode before polling (CRC on; framing, speed)."""
        mode = {0x00: 0x80, 0x01: 0x92, 0x02: 0xA2, 0x03: 0x83, 0x04: 0x80}.get(brty, 0x80)
        self.regs[CIU_TX_MODE] = self.regs[CIU_RX_MODE] = mode
        self.regs[CIU_BIT_FRAMING] = 0x00

    def _activate(self, card, auto_rats):
        """WUPA, anticollision and select, RATS: (iso_dep, air time) or None."""
        t = SHORT_FRAME_S + FDT_S + frame_s(2, crc=False) + FDT_S
        if card.raw(b"\x52", tx_bits=7) is None:
            return None
        for level in range(1, card.levels + 1):
            sel = (0x93, 0x95, 0x97)[level - 1]
            part = card.raw(bytes((sel, 0x20)))
            if part is None:
                return None
            t += exchange_s(2, 5, crc=False)
            sak = card.raw(bytes((sel, 0x70)) + part[:4])
            t += exchange_s(7, 1)
            if sak is None:
                return None
        t *= self.scale
        iso_dep = False
        if auto_rats and card.sak & 0x20 and card.ats is not None:
            ats = card.raw(bytes((0xE0, PN532_FSDI << 4)))
            if ats is not None:
                iso_dep = True
                t += exchange_s(2, len(ats)) * self.scale + self._s(RATS_MS) + card.sfgt_s() * self.scale
        return iso_dep, t

    def _no_answer_s(self, target):
        if target is not None and target.iso_dep:
            return 3 * target.card.fwt_s() * self.scale
        return timeout_code(self.timings["retry"]) * (self.max_rty_com + 1) * self.scale

    # ---- commands -----------------------------------------------------------------------------

    def _cmd_00(self, job, p):  # Diagnose
        if not p:
            raise _Syntax
        test = p[0]
        if test == 0x00:
            self._answer(job, p)
        elif test == 0x01:
            self._answer(job, b"\x00", self._s(ROM_TEST_MS))
        elif test == 0x02:
            self._answer(job, b"\x00", self._s(RAM_TEST_MS))
        elif test == 0x04:
            self._answer(job, b"\x02", self._s(CMD_MS) + 2 * self._s(POLL_ATTEMPT_MS))  # no FeliCa peer
        elif test == 0x05:
            pass  # echo back: the chip echoes RF frames until the host sends another command
        elif test == 0x06:
            target = self._first_target()
            card = self._card()
            if target is None:
                self._answer(job, bytes((E_CONTEXT,)))
                return
            if card is not target.card or target.deselected:
                self._answer(job, bytes((E_TIMEOUT,)), self._no_answer_s(target))
                return
            if target.iso_dep:
                answer = card.block(bytes((0xB2 | target.bn,)))[0]
            else:
                answer = card.atqa if card.state == "active" else None
            if answer is None:
                self._answer(job, bytes((E_TIMEOUT,)), self._no_answer_s(target))
            else:
                self._answer(job, b"\x00", self._s(CMD_MS) + exchange_s(1, 1) * self.scale)
        elif test == 0x07:
            self._answer(job, b"\x00", self._s(CMD_MS) + self._s(POLL_ATTEMPT_MS))
        else:
            raise _Syntax

    def _cmd_02(self, job, p):  # GetFirmwareVersion
        self._answer(job, FIRMWARE)

    def _cmd_04(self, job, p):  # GetGeneralStatus
        out = bytes((self.last_error, 1 if self._reader_field() else 0))
        listed = [t for t in self.targets.values() if not t.deselected] if self.tg is None else []
        out += bytes((len(listed),))
        for t in listed:
            out += bytes((t.tg, 0x00, 0x00, 0x00))  # BrRx, BrTx 106 kbps; type A / MIFARE
        out += b"\x00"  # SAM status
        self._answer(job, out)

    def _cmd_06(self, job, p):  # ReadRegister
        if not p or len(p) % 2:
            raise _Syntax
        out = bytearray()
        for i in range(0, len(p), 2):
            out.append(self._read_reg((p[i] << 8) | p[i + 1]))
        self._answer(job, out)

    def _cmd_08(self, job, p):  # WriteRegister
        if not p or len(p) % 3:
            raise _Syntax
        for i in range(0, len(p), 3):
            self._write_reg((p[i] << 8) | p[i + 1], p[i + 2])
        self._answer(job, b"")

    def _read_reg(self, addr):
        if addr == CIU_FIFO_DATA:
            if self.fifo:
                return self.fifo.pop(0)
            return 0
        if addr == CIU_FIFO_LEVEL:
            return len(self.fifo) & 0x7F
        return self.regs.get(addr, 0)

    def _write_reg(self, addr, value):
        if addr == CIU_FIFO_DATA:
            if len(self.fifo) < 64:
                self.fifo.append(value)
            return
        if addr == CIU_FIFO_LEVEL:
            if value & 0x80:
                self.fifo.clear()
            return
        if addr == CIU_TX_CONTROL:
            self.regs[addr] = value
            self._field(bool(value & 0x03))
            return
        self.regs[addr] = value

    def _cmd_0c(self, job, p):  # ReadGPIO
        self._answer(job, bytes((self.regs[SFR_P3], self.regs[SFR_P7], 0x00)))

    def _cmd_0e(self, job, p):  # WriteGPIO
        if len(p) < 1:
            raise _Syntax
        if p[0] & 0x80:
            self.regs[SFR_P3] = p[0] & 0x3F
        if len(p) > 1 and p[1] & 0x80:
            self.regs[SFR_P7] = p[1] & 0x06
        self._answer(job, b"")

    def _cmd_10(self, job, p):  # SetSerialBaudRate
        if len(p) != 1 or p[0] not in HSU_RATES:
            raise _Syntax

        def switch_after_ack():
            if self.hsu:
                self.pending_baud = HSU_RATES[p[0]]

        self._answer(job, b"", then=switch_after_ack)

    def _cmd_12(self, job, p):  # SetParameters
        if len(p) != 1:
            raise _Syntax
        self.parameters = p[0]
        self._answer(job, b"")

    def _cmd_14(self, job, p):  # SAMConfiguration
        if not p or p[0] not in (1, 2, 3, 4) or (p[0] == 2 and len(p) < 2) or len(p) > 3:
            raise _Syntax
        self.sam_mode = p[0]
        if len(p) > 2:
            self.use_irq = bool(p[2])

        def normal():
            self.power = "normal"
            self.asleep = False
            self._irq()

        self._answer(job, b"", then=normal)

    def _cmd_16(self, job, p):  # PowerDown
        if not 1 <= len(p) <= 2:
            raise _Syntax
        mask = p[0]

        def sleep():
            self._field(False)
            self.targets.clear()
            self.power = "powerdown"
            self.wake_mask = mask

        self._answer(job, b"\x00", then=sleep)

    def _cmd_32(self, job, p):  # RFConfiguration
        if not p or RF_ITEMS.get(p[0]) != len(p) - 1:
            raise _Syntax
        item, data = p[0], p[1:]
        delay = None
        if item == 0x01:  # b0 RF on, b1 AutoRFCA
            if data[0] & 0x01:
                delay = self._s(CMD_MS) + (0.0 if self.field else self._s(FIELD_GUARD_MS))
                self._field(True)
            else:
                self._field(False)
        elif item == 0x02:
            self.timings = {"atr_res": data[1], "retry": data[2]}
        elif item == 0x04:
            self.max_rty_com = data[0]
        elif item == 0x05:
            self.max_retries = {"atr": data[0], "psl": data[1], "passive": data[2]}
        self._answer(job, b"", delay)

    # ---- initiator ----------------------------------------------------------------------------

    def _first_target(self):
        return self.targets[min(self.targets)] if self.targets else None

    def _cmd_4a(self, job, p):  # InListPassiveTarget
        if len(p) < 2 or p[0] not in (1, 2) or p[1] > 4:
            raise _Syntax
        brty, init = p[1], bytes(p[2:])
        self.tg = None
        self._ciu_for(brty)
        guard = self._field_up() + (self._release_targets(0, forget=True) or 0.0)
        job.data = {"attempts": 0}
        job.timers.append(self._later(guard + self._s(CMD_MS), self._poll, job, brty, init))

    def _poll(self, job, brty, init):
        if job.done or self.job is not job:
            return
        card = self._card() if brty == 0x00 else None
        if card is not None and init and init != card.uid:
            card = None
        found = self._activate(card, bool(self.parameters & P_AUTO_RATS)) if card is not None else None
        if found is not None:
            iso_dep, t = found
            target = Target(1, card, iso_dep)
            self.targets[1] = target
            self._answer(job, b"\x01" + target.data(), t + self._s(CMD_MS))
            return
        job.data["attempts"] += 1
        retries = self.max_retries["passive"]
        if retries != 0xFF and job.data["attempts"] > retries:
            self._answer(job, b"\x00", 0.0)
            return
        job.timers.append(self._later(self._s(POLL_ATTEMPT_MS), self._poll, job, brty, init))

    def _cmd_60(self, job, p):  # InAutoPoll: PollNr, Period (x 150 ms), Type1..
        if len(p) < 3:
            raise _Syntax
        poll_nr, period, types = p[0], p[1], bytes(p[2:])
        if not 1 <= period <= 0x0F:
            raise _Syntax
        self.tg = None
        self._ciu_for(0x00)
        guard = self._field_up() + (self._release_targets(0, forget=True) or 0.0)
        job.data = {"polls": 0}
        job.timers.append(self._later(guard + self._s(CMD_MS), self._auto_poll, job, poll_nr, period, types))

    def _auto_poll(self, job, poll_nr, period, types):
        if job.done or self.job is not job:
            return
        card = self._card()
        for t in types:
            if t not in (0x00, 0x10, 0x20) or card is None:
                continue
            if t == 0x20 and not (card.sak & 0x20 and card.ats is not None):
                continue
            found = self._activate(card, t == 0x20 or (t == 0x00 and bool(self.parameters & P_AUTO_RATS)))
            if found is None:
                continue
            iso_dep, air = found
            target = Target(1, card, iso_dep)
            self.targets[1] = target
            data = target.data()
            self._answer(job, bytes((1, t, len(data))) + data, air + self._s(CMD_MS))
            return
        job.data["polls"] += 1
        if poll_nr != 0xFF and job.data["polls"] >= poll_nr:
            self._answer(job, b"\x00", 0.0)
            return
        job.timers.append(self._later(self._s(period * 150), self._auto_poll, job, poll_nr, period, types))

    def _target(self, job, tg):
        target = self.targets.get(tg & 0x3F) if tg & 0x3F else None
        if self.tg is not None or target is None:
            self._status(job, E_CONTEXT)
            return None
        return target

    def _reselect(self, target):
        """InSelect's work on a deselected target: (ok, air time)."""
        card = self._card()
        if card is not target.card:
            return False, self._no_answer_s(None)
        found = self._activate(card, target.iso_dep)
        if found is None or found[0] != target.iso_dep:
            return False, self._no_answer_s(None)
        target.deselected = False
        target.bn = 0
        return True, found[1]

    def _cmd_40(self, job, p):  # InDataExchange
        if not p:
            raise _Syntax
        tg, data = p[0], bytes(p[1:])
        target = self._target(job, tg)
        if target is None:
            return
        t = self._s(CMD_MS)
        if not data and target.rest:  # the host asks for the rest of an answer (MI)
            self._give(job, target, target.rest, t + len(target.rest) * 1e-6)
            return
        target.rest = b""
        if target.deselected:
            ok, air = self._reselect(target)
            t += air
            if not ok:
                self._status(job, E_TIMEOUT, delay=t)
                return
        if tg & MI:  # the host sends more: this part goes on air as chained I-blocks
            target.tx_chain += data
            if len(target.tx_chain) > 4096:
                target.tx_chain = b""
                self._status(job, E_INBUFOVF)
                return
            self._status(job, 0, delay=t + len(data) * 9 * BIT_S * self.scale)
            return
        message, target.tx_chain = target.tx_chain + data, b""
        if target.iso_dep:
            answer, air = self._iso_dep(target, message)
        else:
            answer, air = self._raw_exchange(target, message)
        if answer is None:
            code = E_MFAUTH if (not target.iso_dep and message[:1] in (b"\x60", b"\x61")) else E_TIMEOUT
            self._status(job, code, delay=t + air)
            return
        self._exchange_result(job, target, answer, t + air)

    def _exchange_result(self, job, target, answer, delay):
        card = target.card

        def check():
            # A card taken away during the exchange: its answer never arrives.
            if job.done or self.job is not job:
                return
            if not card.present or self._card() is not card:
                self._status(job, E_TIMEOUT, delay=self._no_answer_s(target))
                return
            self._give(job, target, answer, 0.0)

        job.timers.append(self._later(delay, check))

    def _give(self, job, target, answer, delay):
        part, target.rest = answer[:MAX_DATA], answer[MAX_DATA:]
        self._status(job, 0, part, delay=delay, mi=bool(target.rest))

    def _iso_dep(self, target, message):
        """The PN532's ISO-DEP layer as PCD: (answer or None, air time incl. the card's)."""
        card = self._card()
        if card is not target.card:
            return None, self._no_answer_s(target)
        fsc = card.fsc() - 3
        chunks = [message[i:i + fsc] for i in range(0, len(message), fsc)] or [b""]
        t = 0.0
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            block = bytes(((0x02 if last else 0x12) | target.bn,)) + chunk
            reply, proc = card.block(block)
            if reply is None:
                return None, t + self._no_answer_s(target)
            t += (exchange_s(len(block), len(reply)) + proc) * self.scale
            if not last:
                if reply[0] & 0xF6 != 0xA2:
                    return None, t
                target.bn ^= 1
        answer = b""
        while True:
            if reply[0] & 0xE2 != 0x02:
                return None, t
            answer += reply[1:]
            target.bn ^= 1
            if not reply[0] & 0x10:
                return answer, t
            ack = bytes((0xA2 | target.bn,))
            reply, proc = card.block(ack)
            if reply is None:
                return None, t + self._no_answer_s(target)
            t += exchange_s(1, len(reply)) * self.scale

    def _raw_exchange(self, target, message):
        card = self._card()
        if card is not target.card or not message:
            return None, self._no_answer_s(target)
        answer = card.raw(message)
        if answer is None:
            return None, self._no_answer_s(target)
        return answer, exchange_s(len(message), len(answer)) * self.scale

    def _cmd_42(self, job, p):  # InCommunicateThru
        data = bytes(p)  # nothing to send: the chip only listens (a tag-talks-first barcode)
        bits = self.regs.get(CIU_BIT_FRAMING, 0) & 0x07
        crc = bool(self.regs.get(CIU_TX_MODE, 0) & 0x80)
        t = self._field_up() + self._s(CMD_MS)
        card = self._card(raw=True)
        answer = card.raw(data, tx_bits=bits) if card is not None and data else None
        if answer is None:
            self._status(job, E_TIMEOUT, delay=t + self._no_answer_s(None))
            return
        if card.state == "protocol" and data[0] & 0xE2 == 0x02 and not data[0] & 0x10:
            t += card.process_s * self.scale
        self._exchange_result_raw(job, card, answer, t + exchange_s(len(data), len(answer), crc) * self.scale)

    def _exchange_result_raw(self, job, card, answer, delay):
        def check():
            if job.done or self.job is not job:
                return
            if not card.present:
                self._status(job, E_TIMEOUT, delay=self._no_answer_s(None))
                return
            self._status(job, 0, answer, delay=0.0)

        job.timers.append(self._later(delay, check))

    def _release_targets(self, tg, forget):
        if tg == 0:
            chosen = list(self.targets.values())
        elif tg in self.targets:
            chosen = [self.targets[tg]]
        else:
            return None
        t = 0.0
        for target in chosen:
            card = self._card()
            if card is target.card and not target.deselected:
                if target.iso_dep:
                    card.block(bytes((0xC2,)))
                    t += exchange_s(1, 1) * self.scale
                else:
                    card.raw(b"\x50\x00")
                    t += (frame_s(2) + FDT_S) * self.scale
            target.deselected = True
            if forget:
                del self.targets[target.tg]
        return t

    def _cmd_44(self, job, p):  # InDeselect
        if len(p) != 1:
            raise _Syntax
        if self.tg is not None:
            self._status(job, E_CONTEXT)
            return
        t = self._release_targets(p[0], forget=False)
        if t is None:
            self._status(job, E_CONTEXT)
        else:
            self._status(job, 0, delay=self._s(CMD_MS) + t)

    def _cmd_52(self, job, p):  # InRelease
        if len(p) != 1:
            raise _Syntax
        if self.tg is not None:  # in target mode: stop being a target
            self._leave_target_mode()
            self._status(job, 0)
            return
        t = self._release_targets(p[0], forget=True)
        if t is None:
            self._status(job, E_CONTEXT)
        else:
            self._status(job, 0, delay=self._s(CMD_MS) + t)

    def _cmd_54(self, job, p):  # InSelect
        if len(p) != 1:
            raise _Syntax
        target = self._target(job, p[0])
        if target is None:
            return
        if not target.deselected:
            self._status(job, 0)
            return
        ok, air = self._reselect(target)
        self._status(job, 0 if ok else E_TIMEOUT, delay=self._s(CMD_MS) + air)

    def _cmd_56(self, job, p):  # InJumpForDEP: no DEP peer answers
        if len(p) < 3:
            raise _Syntax
        self._field_up()
        self._status(job, E_TIMEOUT, delay=self._s(CMD_MS) + timeout_code(self.timings["atr_res"]) * self.scale)

    def _cmd_46(self, job, p):  # InJumpForPSL
        self._cmd_56(job, p)

    def _cmd_50(self, job, p):  # InATR
        self._status(job, E_CONTEXT)

    def _cmd_4e(self, job, p):  # InPSL
        self._status(job, E_CONTEXT)

    def _cmd_58(self, job, p):  # RFRegulationTest: transmits until the next command, no answer
        if len(p) != 1:
            raise _Syntax
        self._field(True)

    # ---- target (card emulation) --------------------------------------------------------------

    def _reader_field(self):
        return self.reader is not None and self.reader.state != "gone"

    def _cmd_8c(self, job, p):  # TgInitAsTarget
        if len(p) < 35:
            raise _Syntax
        mode = p[0]
        mifare = bytes(p[1:7])
        rest = bytes(p[35:])
        gt = b""
        tk = b""
        if rest:
            n = rest[0]
            gt, rest = rest[1:1 + n], rest[1 + n:]
            if rest:
                m = rest[0]
                tk = rest[1:1 + m]
        self.targets.clear()
        self._field(False)
        self.tg = {"mode": mode, "sens_res": mifare[0:2], "nfcid1": b"\x08" + mifare[2:5], "sel_res": mifare[5],
                   "gt": gt, "tk": tk,
                   "picc": bool(self.parameters & P_ISO14443_4_PICC) and bool(mifare[5] & 0x20) and not mode & 0x02}
        self.tg_state = "waiting"
        self.tg_queue = []
        self.tg_meta = b""
        self.tg_waiter = job
        if self.hsu:
            self.asleep = True  # the PN532 powers down until the RF field wakes it
        if self._reader_field() and not mode & 0x02:
            job.timers.append(self._later(self._s(CMD_MS), self._reader_activates))

    def _reader_activates(self):
        job, reader = self.tg_waiter, self.reader
        if (job is None or job.done or self.job is not job or job.cmd != TG_INIT_AS_TARGET
                or not self._reader_field() or self.tg["mode"] & 0x02):
            return  # (mode DEP only: this reader speaks ISO-DEP, not DEP; the target waits on)
        cfg = self.tg
        # The reader's field, WUPA, anticollision, select (the PN532 answers), RATS.
        air = self._s(FIELD_GUARD_MS) + (SHORT_FRAME_S + FDT_S + frame_s(2, crc=False) + FDT_S
                                          + exchange_s(2, 5, crc=False) + exchange_s(7, 1)) * self.scale
        reader.state = "activated"
        self.tg_state = "activated"
        self.asleep = False
        rats = reader.rats
        if cfg["picc"]:
            ats = bytes((len(PICC_ATS) + len(cfg["tk"]) + 1,)) + PICC_ATS + cfg["tk"]
            air += exchange_s(len(rats), len(ats)) * self.scale
            mode = 0x08
            reader.raw_stage = None
            self._later(air + self._s(READER_GAP_MS), self._reader_next)
        else:
            air += frame_s(len(rats)) * self.scale
            mode = 0x00
            reader.raw_stage = "rats"
        self.tg_waiter = None
        self._answer(job, bytes((mode,)) + rats, air)

    def _reader_next(self):
        """The reader sends its next APDU (if any) once it has its previous answer."""
        reader = self.reader
        if reader is None or reader.state != "activated" or reader.current is not None:
            return
        if not reader.script:
            return
        apdu = reader.script.pop(0)
        reader.current = apdu
        blocks = max(1, -(-len(apdu) // (PICC_FSC - 3)))
        air = (frame_s(len(apdu) + blocks) + blocks * FDT_S) * self.scale
        if self.tg is not None and not self.tg["picc"]:
            pcb = 0x02 | reader.bn
            self._later(air, self._deliver, ("raw", bytes((pcb,)) + apdu))
        else:
            self._later(air, self._deliver, ("apdu", apdu))

    def _deliver(self, item):
        if self.tg is None or self.tg_state != "activated":
            return
        self.tg_queue.append(item)
        self._serve_target()

    def _serve_target(self):
        """Give what the reader sent to a waiting TgGetData / TgGetInitiatorCommand."""
        job = self.tg_waiter
        if job is None or job.done or self.job is not job:
            return
        if self.tg_state == "released":
            self.tg_waiter = None
            self._status(job, E_RELEASED, delay=0.0)
            return
        if not self.tg_queue:
            return
        kind, data = self.tg_queue[0]
        if (job.cmd == TG_GET_DATA) != (kind == "apdu"):
            return
        self.tg_queue.pop(0)
        self.tg_waiter = None
        part, rest = data[:MAX_DATA], data[MAX_DATA:]
        if rest:
            self.tg_queue.insert(0, (kind, rest))
        self._status(job, 0, part, delay=0.0, mi=bool(rest))

    def _tg_wait(self, job, want_apdu):
        if self.tg is None or self.tg_state in ("free", "waiting"):
            self._status(job, E_CONTEXT)
            return
        if want_apdu and not self.tg["picc"]:
            self._status(job, E_CONTEXT)
            return
        self.tg_waiter = job
        job.timers.append(self._later(self._s(CMD_MS) / 2, self._serve_target))

    def _cmd_86(self, job, p):  # TgGetData
        self._tg_wait(job, True)

    def _cmd_88(self, job, p):  # TgGetInitiatorCommand
        self._tg_wait(job, False)

    def _reader_answer(self, data):
        reader = self.reader
        if reader is None or reader.current is None:
            return
        reader.log.append([reader.current.hex().upper(), bytes(data).hex().upper()])
        reader.current = None
        self._later(self._s(READER_GAP_MS), self._reader_next)

    def _cmd_8e(self, job, p):  # TgSetData
        if self.tg is None or self.tg_state != "activated" or not self.tg["picc"]:
            self._status(job, E_RELEASED if self.tg_state == "released" else E_CONTEXT)
            return
        data, self.tg_meta = self.tg_meta + bytes(p), b""
        if self.reader is None or self.reader.current is None:
            self._status(job, E_CONTEXT)
            return
        blocks = max(1, -(-len(data) // (PICC_FSC - 3)))
        air = (frame_s(len(data) + blocks) + blocks * (FDT_S + frame_s(1))) * self.scale
        self._status(job, 0, delay=self._s(CMD_MS) + air)
        self._later(self._s(CMD_MS) + air, self._reader_answer, data)

    def _cmd_94(self, job, p):  # TgSetMetaData: a part of the answer, more to come
        if self.tg is None or self.tg_state != "activated":
            self._status(job, E_RELEASED if self.tg_state == "released" else E_CONTEXT)
            return
        self.tg_meta += bytes(p)
        self._status(job, 0, delay=self._s(CMD_MS) + frame_s(len(p)) * self.scale)

    def _cmd_90(self, job, p):  # TgResponseToInitiator (raw)
        reader = self.reader
        if self.tg is None or self.tg_state != "activated" or reader is None:
            self._status(job, E_RELEASED if self.tg_state == "released" else E_CONTEXT)
            return
        data = bytes(p)
        air = self._s(CMD_MS) + frame_s(len(data)) * self.scale
        self._status(job, 0, delay=air)
        if reader.raw_stage == "rats":
            reader.raw_stage = "apdu"
            self._later(air + self._s(READER_GAP_MS), self._reader_next)
        elif reader.raw_stage == "apdu" and data:
            reader.bn ^= 1
            self._later(air, self._reader_answer, data[1:])

    def _cmd_8a(self, job, p):  # TgGetTargetStatus
        state = {"free": 0x00, "waiting": 0x00, "activated": 0x01, "released": 0x02}[self.tg_state]
        self._answer(job, bytes((state, 0x00)))

    def _cmd_92(self, job, p):  # TgSetGeneralBytes: DEP only
        self._status(job, E_CONTEXT)

    def _leave_target_mode(self):
        self.tg = None
        self.tg_state = "free"
        self.tg_queue = []
        self.tg_waiter = None

    # ---- control-API actions ------------------------------------------------------------------

    def do_place(self, kind="iso-dep", uid=None, ats=None, applet="echo", sak=None, process_ms=None):
        """Put a card in the field (replacing any): kind "iso-dep" (SAK 20, ATS, an applet) or
        "uid-only" (SAK 00, no ISO-DEP). uid: 4, 7 or 10 bytes hex; ats: hex, with or without
        its TL byte (default 05 78 80 70 02); process_ms: the card's time per APDU."""
        if kind not in ("iso-dep", "uid-only"):
            raise ValueError("kind must be 'iso-dep' or 'uid-only'")
        uid = bytes.fromhex(uid) if uid else bytes.fromhex("04A1B2C3D4E5F6" if kind == "iso-dep" else "04C0FFEE123480")
        if len(uid) not in (4, 7, 10) or uid[0] == 0x88:
            raise ValueError("a UID has 4, 7 or 10 bytes and does not start with 88 (the cascade tag)")
        if kind == "iso-dep":
            if applet not in APPLETS:
                raise ValueError("no applet %r; applets: %s" % (applet, ", ".join(sorted(APPLETS))))
            ats = bytes.fromhex(ats) if ats else DEFAULT_ATS
            if not ats or ats[0] != len(ats):
                ats = bytes((len(ats) + 1,)) + ats
            sak = 0x20 if sak is None else int(sak)
        else:
            ats = None
            sak = 0x00 if sak is None else int(sak)
        if self.card is not None:
            self.card.present = False
        self.card = Card(kind, uid, ats, applet, sak, self._card_process_s(process_ms))
        return self.status()["card"]

    def _card_process_s(self, process_ms):
        return (PROCESS_MS if process_ms is None else float(process_ms)) / 1000

    def do_remove(self, after_ms=0):
        """Take the card out of the field (now, or after after_ms)."""
        def remove():
            if self.card is not None:
                self.card.present = False
                self.card = None

        if after_ms:
            self._later(float(after_ms) / 1000, remove)
        else:
            remove()
        return {"card": None if after_ms == 0 else "leaving"}

    def do_reader(self, apdus=(), rats="E080"):
        """A reader comes into the field with a script of APDUs (hex strings) for the device as
        the card; a pending TgInitAsTarget completes."""
        self.reader = Reader(list(apdus), bytes.fromhex(rats))
        if self.tg_waiter is not None and self.tg_waiter.cmd == TG_INIT_AS_TARGET:
            self._later(self._s(CMD_MS), self._reader_activates)
        return {"reader": "in field", "apdus": len(self.reader.script)}

    def do_reader_log(self):
        """[[APDU hex, the device's answer hex], ...] of the current (or last) reader."""
        return [] if self.reader is None else [list(x) for x in self.reader.log]

    def do_reader_leave(self):
        """The reader deselects and takes its field away: the device's TgGetData gets 0x29."""
        reader = self.reader
        if reader is None:
            return {"reader": None}
        reader.state = "gone"
        if self.tg is not None and self.tg_state in ("activated",):
            self.tg_state = "released"
            self._serve_target()
        elif self.tg is not None and self.tg_state == "waiting":
            pass  # never activated: TgInitAsTarget goes on waiting
        return {"reader": "gone", "log": self.do_reader_log()}

    def do_timing(self, scale=1.0):
        """Scale the chip's processing and RF times (1.0 realistic; tests use a fraction)."""
        self.scale = max(0.0, float(scale))
        return {"scale": self.scale}

    def status(self):
        self._sync_reset()
        return {
            "interface": "hsu" if self.hsu else "i2c",
            "power": "reset" if self.in_reset else ("booting" if self._now() < self.booting_until else self.power),
            "asleep": self.asleep, "baud": self.baud if self.hsu else None,
            "field": self.field, "parameters": self.parameters, "sam_mode": self.sam_mode,
            "max_retries": dict(self.max_retries), "max_rty_com": self.max_rty_com,
            "card": self.card.status() if self.card is not None else None,
            "targets": {str(t.tg): {"uid": t.card.uid.hex().upper(), "iso_dep": t.iso_dep,
                                    "deselected": t.deselected} for t in self.targets.values()},
            "target_mode": None if self.tg is None else {
                "state": self.tg_state, "picc": self.tg["picc"], "nfcid1": self.tg["nfcid1"].hex().upper(),
                "sel_res": self.tg["sel_res"]},
            "reader": None if self.reader is None else {"state": self.reader.state,
                                                        "left": len(self.reader.script),
                                                        "log": self.do_reader_log()},
            "job": None if self.job is None else "%02x" % (self.job.cmd or 0),
            "irq": None if (self._pins is None or self.hsu) else self._pins.level(self.irq_gpio),
            "frames_waiting": len(self.outq), "stats": dict(self.stats), "commands": list(self.log),
            "timing_scale": self.scale,
        }


class _Syntax(Exception):
    """Malformed parameters: the syntax error frame."""
