"""The rig's chip card model (tools/rig/iso7816.py) on its own, in CPython: a fake UART port that
captures what the card puts on the I/O line, and a real PinBank driven as the device drives the
slot's lines (VCC enable, CLK as a PWM clock, RST, the detect switch).

Characters, blocks and ATRs are built and checked here from ISO/IEC 7816-3, not with the
model's own helpers. Without an event loop the model answers at once; the ATR timing test runs
one to measure the delay after RST.
"""

import asyncio
import json

import pytest

from tools.rig.buses import PinBank, UartPort
from tools.rig.iso7816 import ChipCard, crc
from tools.rig.models import KINDS
from tools.rig.pn532 import register_applet

IO, CLK, RST, VCC, DETECT = 16, 5, 18, 19, 4  # board/handheld.py PIN_CARD_*
HZ = 4_000_000

EMV_T0 = bytes.fromhex("3B6800000073C84012009000")
SIM = bytes.fromhex("3F2F008069AF03070352000D0A0E833E9F16")


class FakePort:
    """What the model sees of UartPort: baud, char_bits, configure, send, echo; captures the
    line (the device's bytes echoed and the card's, in the order the device hears them)."""

    kind = "uart"

    def __init__(self):
        self.baud = 10752
        self.char_bits = 12
        self.model = None
        self.line = bytearray()
        self.times = []

    def configure(self, baud, bits, parity, stop):
        self.baud = baud
        self.char_bits = 1 + bits + (parity is not None) + stop

    def send(self, data):
        try:
            self.times.append((asyncio.get_running_loop().time(), bytes(data)))
        except RuntimeError:
            pass
        self.line += data

    echo = send

    def take(self):
        out, self.line = bytes(self.line), bytearray()
        return out


def make():
    port, pins = FakePort(), PinBank()
    card = ChipCard(port)
    card.name = "card"
    card.pins = pins
    port.model = card
    pins.configure(DETECT, "in", "up", None)
    pins.configure(VCC, "out", None, 0)
    pins.configure(RST, "out", None, 0)
    return port, pins, card


def clock(pins, hz):
    pins.pwm[CLK] = (hz, 32768 if hz else 0)
    for w in pins.watchers:
        w(CLK, None)


def activate(pins):
    """Cold reset: VCC on, CLK on, RST low, then high."""
    pins.drive(RST, 0)
    pins.drive(VCC, 1)
    clock(pins, HZ)
    pins.drive(RST, 1)


def inverse(b):
    """The inverse convention: complement every bit, most significant first on the line."""
    out = 0
    for i in range(8):
        if not (b >> i) & 1:
            out |= 0x80 >> i
    return out


def xfer(port, card, data):
    """The device sends data: the echo comes first, then what the card answers."""
    port.take()
    card.receive(bytes(data))
    out = port.take()
    assert out[:len(data)] == bytes(data), "every device byte comes back on the I/O line"
    return out[len(data):]


def atr_t1(ifsc=16, use_crc=False, ta1=None):
    """3B, T0, [TA1], TD1 81 (T=1), TD2 31/71 (TA3 IFSC, TB3 45, [TC3 01 CRC]), TCK."""
    t0 = 0x80 | (0x10 if ta1 is not None else 0)
    body = [t0] + ([ta1] if ta1 is not None else []) + [0x81, 0x71 if use_crc else 0x31, ifsc, 0x45]
    if use_crc:
        body.append(0x01)
    tck = 0
    for b in body:
        tck ^= b
    return bytes([0x3B] + body + [tck])


class SinkApplet:
    """Answers every command with 9000 and no data (ISO case 1 and case 3)."""

    def __init__(self):
        self.seen = []

    def process(self, apdu):
        self.seen.append(bytes(apdu))
        return b"\x90\x00"


register_applet("sink", SinkApplet)


# ---- activation and the ATR -----------------------------------------------------------------------

def test_registered_and_detect_switch():
    assert KINDS["iso7816"] == ("uart", "iso7816:ChipCard")
    port, pins, card = make()
    assert pins.level(DETECT) == 1
    card.do_insert(atr="emv-t0")
    assert pins.level(DETECT) == 0
    card.do_remove()
    assert pins.level(DETECT) == 1


def test_atr_only_after_cold_reset_and_warm_reset():
    port, pins, card = make()
    card.do_insert(atr="emv-t0")
    pins.drive(VCC, 1)
    assert port.take() == b""
    clock(pins, HZ)
    assert port.take() == b"" and card.status()["state"] == "reset"
    pins.drive(RST, 1)
    assert port.take() == EMV_T0
    st = card.status()
    assert st["protocol"] is None and st["etu_clocks"] == 372 and abs(st["card_baud"] - 10752.69) < 0.1
    # warm reset: RST low then high while powered
    pins.drive(RST, 0)
    assert port.take() == b""
    pins.drive(RST, 1)
    assert port.take() == EMV_T0
    # clock stopped, VCC off: silent and forgotten; RST high at power-up is no reset
    clock(pins, 0)
    assert card.status()["state"] == "off"
    pins.drive(VCC, 0)
    clock(pins, HZ)
    pins.drive(VCC, 1)
    assert port.take() == b"" and card.status()["state"] == "silent"
    assert xfer(port, card, b"\x00\xa4\x04\x00\x00") == b""
    pins.drive(RST, 0)
    pins.drive(RST, 1)
    assert port.take() == EMV_T0
    assert card.status()["counters"]["atrs"] == 3


def test_atr_timing_window():
    async def run():
        port, pins, card = make()
        card.do_insert(atr="emv-t0", atr_delay=20000)  # 5 ms at 4 MHz
        pins.drive(VCC, 1)
        clock(pins, HZ)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        pins.drive(RST, 1)
        assert port.times == []
        await asyncio.sleep(0.03)
        (t, data), = port.times
        assert data == EMV_T0
        assert 400 / HZ <= t - t0, "no ATR before 400 clocks"
        assert t - t0 >= 20000 / HZ - 0.001
        assert t - t0 < 40000 / HZ + 0.02  # loop latency allowed
        # removed before the ATR: nothing comes
        port.times.clear()
        pins.drive(RST, 0)
        pins.drive(RST, 1)
        card.do_remove()
        await asyncio.sleep(0.01)
        assert port.times == []
    asyncio.run(run())


def test_inverse_convention_line_bytes():
    port, pins, card = make()
    card.do_insert(atr="sim")
    activate(pins)
    line = port.take()
    assert line[0] == 0x03  # TS 3F as a direct-convention UART reads it
    assert line == bytes(inverse(b) for b in SIM)
    assert card.status()["convention"] == "inverse"
    # the device answers in the inverse convention with odd parity (the bits are complemented)
    card.port.configure(10752, 8, "odd", 2)
    header = bytes.fromhex("00A4040007")
    out = xfer(port, card, bytes(inverse(b) for b in header))
    assert out == bytes((inverse(0xA4),))  # ACK
    # with even parity what the device sends is garbage to the card
    card.port.configure(10752, 8, "even", 2)
    assert xfer(port, card, bytes(inverse(b) for b in bytes.fromhex("F0504F434B4554"))) == b""
    assert card.status()["counters"]["parity_errors"] == 7


def test_wrong_baud_or_format_is_garbage():
    port, pins, card = make()
    card.port.configure(115200, 8, None, 1)
    card.do_insert(atr="emv-t0")
    activate(pins)
    assert port.take() not in (EMV_T0, b"")  # the ATR arrives, scrambled
    card.port.configure(10752, 8, None, 1)
    assert xfer(port, card, bytes.fromhex("0070000000")) == b""  # 8N1: parity errors
    card.port.configure(10752, 8, "even", 2)
    assert xfer(port, card, bytes.fromhex("0070000000")) == b"\x90\x00"
    assert card.status()["counters"]["parity_errors"] == 5


# ---- PPS --------------------------------------------------------------------------------------------

def pps(*body):
    pck = 0xFF
    for b in body:
        pck ^= b
    return bytes((0xFF,) + body + (pck,))


def test_pps_switches_f_d():
    port, pins, card = make()
    card.do_insert(atr="t1")
    activate(pins)
    assert port.take()[:3] == bytes.fromhex("3BF813")
    req = pps(0x11, 0x13)  # T=1, F=372 D=4
    assert xfer(port, card, req) == req
    st = card.status()
    assert (st["F"], st["D"], st["protocol"], st["etu_clocks"]) == (372, 4, 1, 93)
    assert abs(st["card_baud"] - 43010.75) < 0.1
    card.port.configure(43010, 8, "even", 2)
    # RESYNCH then a command at the new rate
    assert xfer(port, card, blk(0xC0)) == blk(0xE0)
    out = xfer(port, card, blk(0x00, bytes.fromhex("00EE0003")))
    assert out == blk(0x00, bytes.fromhex("0001029000"))


@pytest.mark.parametrize("req", [
    pps(0x11, 0x14),  # D=8: more than TA1 offers
    pps(0x11, 0x13)[:-1] + bytes((pps(0x11, 0x13)[-1] ^ 1,)),  # bad PCK
    pps(0x10, 0x11),  # T=0: not offered by this card
], ids=["d-unsupported", "bad-pck", "t0-not-offered"])
def test_pps_refused_is_not_answered(req):
    port, pins, card = make()
    card.do_insert(atr="t1")
    activate(pins)
    port.take()
    assert xfer(port, card, req) == b""
    assert card.status()["state"] == "silent"
    pins.drive(RST, 0)  # the device falls back: warm reset, no PPS, default F/D
    pins.drive(RST, 1)
    assert port.take()[:2] == b"\x3b\xf8"
    assert xfer(port, card, blk(0xC1, b"\x20")) == blk(0xE1, b"\x20")
    assert card.status()["D"] == 1


# ---- T=0 -------------------------------------------------------------------------------------------

def t0_card(**kw):
    port, pins, card = make()
    card.do_insert(atr="emv-t0", **kw)
    activate(pins)
    assert port.take() == EMV_T0
    return port, pins, card


def test_t0_case1_and_case3():
    port, pins, card = t0_card(applet="sink")
    assert xfer(port, card, bytes.fromhex("0070000000")) == b"\x90\x00"  # case 1
    assert xfer(port, card, bytes.fromhex("00DA000003")) == b"\xda"  # case 3: ACK
    assert xfer(port, card, b"\x01\x02\x03") == b"\x90\x00"
    assert card.applet.seen == [bytes.fromhex("00700000"), bytes.fromhex("00DA000003010203")]


def test_t0_case4_get_response_and_6c():
    port, pins, card = t0_card()
    aid = bytes.fromhex("A0000000031010")
    assert xfer(port, card, bytes.fromhex("00A4040007")) == b"\xa4"
    out = xfer(port, card, aid)
    assert out[0] == 0x61
    n = out[1]
    assert xfer(port, card, bytes((0, 0xC0, 0, 0, n + 2))) == bytes((0x6C, n))  # wrong Le
    out = xfer(port, card, bytes((0, 0xC0, 0, 0, n)))
    assert out[0] == 0xC0 and out[-2:] == b"\x90\x00" and len(out) == n + 3
    assert out[1] == 0x6F and aid in out
    # GET RESPONSE with nothing pending
    assert xfer(port, card, bytes.fromhex("00C0000010")) == b"\x69\x85"


def test_t0_case2_6c_then_repeat():
    port, pins, card = t0_card()
    assert xfer(port, card, bytes.fromhex("00EE000500")) == b"\x6c\x05"  # Le 256, 5 available
    assert xfer(port, card, bytes.fromhex("00EE000505")) == b"\xee" + bytes(range(5)) + b"\x90\x00"
    assert card.applet.apdus == 1  # the repeat is answered from what the card kept
    # a response longer than 256: 256 bytes then 61 xx, the rest by GET RESPONSE
    out = xfer(port, card, bytes.fromhex("00B0000000"))
    assert out[0] == 0xB0 and len(out) == 1 + 256 + 2 and out[-2:] == b"\x61\x00"
    out = xfer(port, card, bytes.fromhex("00C0000000"))
    assert out[-2:] == bytes((0x61, 600 - 512))
    out = xfer(port, card, bytes((0, 0xC0, 0, 0, 600 - 512)))
    assert out[-2:] == b"\x90\x00" and out[1:-2] == bytes(i & 0xFF for i in range(512, 600))


def test_t0_nulls_and_ins_bar():
    port, pins, card = t0_card(nulls=2, ack="ins-bar", applet="sink")
    assert xfer(port, card, bytes.fromhex("00DA000002")) == b"\x60\x60\x25"  # ~DA
    assert xfer(port, card, b"\x01") == b"\x25"
    assert xfer(port, card, b"\x02") == b"\x90\x00"
    card.do_fault("nulls", 3)
    assert xfer(port, card, bytes.fromhex("0070000000")) == b"\x60" * 5 + b"\x90\x00"
    assert card.status()["counters"]["nulls"] == 7


def test_t0_nulls_paced_in_time():
    port, pins, card = t0_card(nulls=3)
    card.do_timing(0.1)  # NULLs 2 ms apart

    async def run():
        card.receive(bytes.fromhex("0070000000"))
        await asyncio.sleep(0.05)
        chunks = [d for _, d in port.times if d != bytes.fromhex("0070000000")]
        assert b"".join(chunks) == b"\x60\x60\x60\x90\x00"
        assert port.times[-1][0] - port.times[1][0] >= 0.005
    asyncio.run(run())


def test_t0_faults_mute_parity_and_removal():
    port, pins, card = t0_card(applet="sink")
    card.do_fault("mute", 1)
    assert xfer(port, card, bytes.fromhex("0070000000")) == b""
    assert xfer(port, card, bytes.fromhex("0070000000")) == b"\x90\x00"
    card.do_fault("parity", 1)
    assert xfer(port, card, bytes.fromhex("0070000000")) == b"\x91\x00"
    # removed mid-command: the card is gone, the echo stays, the switch opens
    assert xfer(port, card, bytes.fromhex("00DA000003")) == b"\xda"
    card.do_remove()
    assert pins.level(DETECT) == 1
    assert xfer(port, card, b"\x01\x02\x03") == b""
    assert card.status()["inserted"] is False and card.status()["state"] == "out"


# ---- T=1 -------------------------------------------------------------------------------------------

def lrc(data):
    x = 0
    for b in data:
        x ^= b
    return x


def blk(pcb, inf=b"", nad=0, use_crc=False):
    head = bytes((nad, pcb, len(inf))) + bytes(inf)
    if use_crc:
        return head + crc(head)
    return head + bytes((lrc(head),))


def t1_card(**kw):
    port, pins, card = make()
    atr = kw.pop("atr", None) or atr_t1(**{k: kw.pop(k) for k in ("ifsc", "use_crc") if k in kw})
    card.do_insert(atr=atr.hex(), **kw)
    activate(pins)
    assert port.take() == atr
    return port, pins, card


def test_crc_is_crc16_mcrf4xx():
    assert crc(b"123456789") == bytes.fromhex("6F91")  # the catalogue's check value


def test_t1_apdu_and_card_chaining():
    port, pins, card = t1_card()
    assert card.status()["protocol"] is None
    out = xfer(port, card, blk(0x00, bytes.fromhex("00EE0005")))
    assert out == blk(0x00, bytes(range(5)) + b"\x90\x00")
    # a 42-byte response with IFSD 32: two blocks, the device acknowledges the first
    out = xfer(port, card, blk(0x40, bytes.fromhex("00EE0028")))
    assert out == blk(0x60, bytes(range(32)))  # N(S)=1, M
    out = xfer(port, card, blk(0x80))  # R(N(R)=0)
    assert out == blk(0x00, bytes(range(32, 40)) + b"\x90\x00")
    # S(IFS request) raises IFSD: one block
    assert xfer(port, card, blk(0xC1, b"\xfe")) == blk(0xE1, b"\xfe")
    out = xfer(port, card, blk(0x00, bytes.fromhex("00EE0028")))
    assert out == blk(0x40, bytes(range(40)) + b"\x90\x00")
    assert card.status()["ifsd"] == 254


def test_t1_device_chaining_and_ifsc():
    port, pins, card = t1_card(ifsc=16)
    apdu = bytes.fromhex("00DA0000") + bytes((30,)) + bytes(range(30))  # 35 bytes
    assert xfer(port, card, blk(0x20, apdu[:16])) == blk(0x90)  # I(0,M) -> R(1)
    assert xfer(port, card, blk(0x60, apdu[16:32])) == blk(0x80)  # I(1,M) -> R(0)
    assert xfer(port, card, blk(0x00, apdu[32:])) == blk(0x00, bytes(range(30)) + b"\x90\x00")
    # a block longer than IFSC: R-block, other error
    assert xfer(port, card, blk(0x40, bytes(20))) == blk(0x92)


def test_t1_edc_errors_and_resynch():
    port, pins, card = t1_card()
    bad = bytearray(blk(0x00, bytes.fromhex("00EE0002")))
    bad[-1] ^= 0xFF
    assert xfer(port, card, bad) == blk(0x81)  # R(0), EDC error
    assert card.status()["counters"]["edc_errors"] == 1
    good = blk(0x00, bytes.fromhex("00EE0002"))
    answer = blk(0x00, b"\x00\x01\x90\x00")
    card.do_fault("edc", 1)
    out = xfer(port, card, good)
    assert out[:-1] == answer[:-1] and out[-1] != answer[-1]
    assert xfer(port, card, blk(0x80)) == answer  # R(0): the card sends it again
    assert xfer(port, card, blk(0xC0)) == blk(0xE0)
    assert xfer(port, card, good) == answer  # sequence numbers back to 0
    assert card.status()["counters"]["resynchs"] == 1
    # a parity error on the card's side of a character: the device's R-block brings it again
    card.do_fault("parity", 1)
    assert xfer(port, card, blk(0x40, bytes.fromhex("00EE0002"))) != blk(0x40, b"\x00\x01\x90\x00")
    assert xfer(port, card, blk(0x90)) == blk(0x40, b"\x00\x01\x90\x00")


def test_t1_wtx():
    port, pins, card = t1_card()
    card.do_wtx(2)
    assert xfer(port, card, blk(0x00, bytes.fromhex("00EE0001"))) == blk(0xC3, b"\x01")
    assert xfer(port, card, blk(0xE3, b"\x01")) == blk(0xC3, b"\x01")
    assert xfer(port, card, blk(0xE3, b"\x01")) == blk(0x00, b"\x00\x90\x00")
    assert card.status()["counters"]["wtx"] == 2


def test_t1_wtx_timed_and_removal_mid_command():
    port, pins, card = t1_card(wtx=1)
    card.do_timing(0.1)

    async def run():
        card.receive(blk(0x00, bytes.fromhex("00EE0001")))
        await asyncio.sleep(0.001)
        assert port.take().endswith(blk(0xC3, b"\x01"))
        card.receive(blk(0xE3, b"\x01"))
        await asyncio.sleep(0.02)
        assert port.take().endswith(blk(0x00, b"\x00\x90\x00"))
        # again, but the card is pulled out while it works
        card.receive(blk(0x40, bytes.fromhex("00EE0001")))
        await asyncio.sleep(0.001)
        port.take()
        card.receive(blk(0xE3, b"\x01"))
        card.do_remove()
        await asyncio.sleep(0.02)
        assert port.take() == blk(0xE3, b"\x01")  # only the echo
        assert pins.level(DETECT) == 1
    asyncio.run(run())


def test_t1_crc_edc():
    port, pins, card = t1_card(use_crc=True)
    assert card.status()["edc"] == "crc"
    out = xfer(port, card, blk(0x00, bytes.fromhex("00EE0003"), use_crc=True))
    assert out == blk(0x00, b"\x00\x01\x02\x90\x00", use_crc=True)
    assert xfer(port, card, blk(0x40, bytes.fromhex("00EE0003"))[:-1] + b"\x00\x00") == blk(0x91, use_crc=True)


# ---- specific mode, and on a rig's UART with its wire pacing ------------------------------------------

def test_specific_mode_ta2():
    port, pins, card = make()
    atr = bytes.fromhex("3B90131000")  # TA1 13 (F=372, D=4), TD1 10, TA2 00: T=0 at TA1's values
    card.do_insert(atr=atr.hex(), applet="sink")
    activate(pins)
    assert port.take() == atr  # the ATR itself at the default etu
    st = card.status()
    assert (st["protocol"], st["D"], st["etu_clocks"]) == (0, 4, 93)
    assert xfer(port, card, bytes.fromhex("0070000000")) == b""  # the device still at 10752
    card.port.configure(43010, 8, "even", 2)
    assert xfer(port, card, pps(0x10)) == b""  # no PPS in specific mode
    card.port.configure(10752, 8, "even", 2)
    pins.drive(RST, 0)
    pins.drive(RST, 1)
    assert port.take() == atr
    card.port.configure(43010, 8, "even", 2)
    assert xfer(port, card, bytes.fromhex("0070000000")) == b"\x90\x00"


def card_watchers(pins):
    return sum(1 for w in pins.watchers if isinstance(getattr(w, "__self__", None), ChipCard))


def test_on_a_rig_uart_with_wire_timing(tmp_path):
    from tools.rig.rig import Rig

    async def run():
        rig = Rig(tmp_path)
        rig.pty_dir.mkdir(parents=True, exist_ok=True)
        assert rig.cmd_attach("uart2", "iso7816", name="card")["name"] == "card"
        port = rig.bus("uart2")
        got = []
        loop = asyncio.get_running_loop()

        class Writer:
            def write(self, data):
                got.append((loop.time(), bytes(data)))

        port.connect_device(Writer())
        port.configure(10752, 8, "even", 2)
        pins = rig.pins
        pins.configure(DETECT, "in", "up", None)
        rig.cmd_do("card", "insert", atr="emv-t0")
        assert pins.level(DETECT) == 0
        pins.configure(VCC, "out", None, 1)
        pins.configure(RST, "out", None, 0)
        clock(pins, HZ)
        t0 = loop.time()
        pins.drive(RST, 1)
        await asyncio.sleep(0.05)
        assert b"".join(d for _, d in got) == EMV_T0
        etu = 372 / HZ
        # 12 characters of 12 etu each after the ATR delay (4000 clocks by default)
        assert got[-1][0] - t0 >= 4000 / HZ + 12 * 12 * etu - 0.001
        got.clear()
        card, heard = port.model, []
        receive = card.receive
        card.receive = lambda data: (heard.append(loop.time()), receive(data))
        port.from_host("device", bytes.fromhex("0070000000"))
        await asyncio.sleep(0.05)
        assert b"".join(d for _, d in got) == bytes.fromhex("0070000000") + b"\x90\x00"
        # One I/O line: the device hears each of its characters as the card does, when its last
        # bit is on the wire, not a character time later (the echo paced over the line again,
        # the card's answer queued behind it).
        echoed = [t for t, d in got for _ in d][:5]
        assert max(e - h for e, h in zip(echoed, heard)) < 0.1 * 12 * etu, (echoed, heard)
        st = rig.cmd_model("card")
        json.dumps(st)
        assert st["line_format"] == [8, "even", 2] or st["line_format"] == (8, "even", 2)
        assert st["counters"]["apdus"] == 1 and st["counters"]["echoed"] == 5
        rig.cmd_detach("card")
        pins.drive(RST, 0)  # detached: the model has let go and ignores the line
        assert pins.level(DETECT) == 1 and card_watchers(pins) == 0
        for host in list(rig.ptys.values()):
            host.close()

    asyncio.run(run())
