"""The PN532 driver (drivers/pn532.py) and the NFC applets (lib/nfc), running on the device
against the rig's PN532 model (tools/rig/pn532.py): over I2C (i2c0 at 0x24, with its IRQ and
RSTPDN lines) and over HSU (uart2).

Each test attaches a fresh PN532 ("pn532" or "pn532-hsu") and detaches it after, as other tests
use the same buses (and both kinds watch the RSTPDN line). The chip's times are scaled down.

Line faults the model does not make itself (garbage and damaged checksums on the line, a lost
ACK) are put on the wire between the model and the driver by a small shim around the real bus
on the device (NoisyI2C, NoisyUart below): every byte still comes from the model; the shim only
damages, prefixes or swallows some, as a noisy line would.
"""

import hashlib
import hmac
import struct
import time

import pytest

FAST = 0.1  # the model's chip and RF times, scaled for the tests

KEY = bytes(range(32))  # the applets' MAC key in these tests
CARD_ID = bytes.fromhex("5054000000000042")
DEVICE_ID = bytes.fromhex("5054000000000007")
TRANSIT_AID = b"\xf0PT-TRANSIT"
CONFIRM_AID = b"\xf0PT-CONFIRM"
ECHO_AID = bytes.fromhex("F0504F434B4554")

COMMON = """
import asyncio, board, os, struct, io
from board import handheld as hw
from drivers import pn532
M = board.buses.machine

def run(coro):
    return asyncio.run(coro)

def attempt(coro):
    # What an operation ends with: ('ok', value), or the error's class name and code.
    try:
        return ('ok', asyncio.run(coro))
    except pn532.NfcError as e:
        return (type(e).__name__, e.code)

class NoisyI2C:
    # The real I2C bus; faults[i] damages the i-th frame read after it is armed (None: intact).
    def __init__(self, i2c):
        self.i2c = i2c
        self.faults = []
    def writeto(self, addr, buf, stop=True):
        return self.i2c.writeto(addr, buf, stop)
    def readfrom_into(self, addr, buf, stop=True):
        self.i2c.readfrom_into(addr, buf, stop)
        if len(buf) > 1 and self.faults:
            fault = self.faults.pop(0)
            if fault is not None:
                fault(buf)

def garbage(n=0):
    # Noise before the frame (a false start code in it, then n more bytes); a frame that no
    # longer fits in the read loses its tail.
    def fault(buf):
        data = bytes(buf)
        buf[1:] = (b"\\x13\\x00\\xff\\x07\\x55" + b"\\xaa" * n + data[1:])[:len(buf) - 1]
    return fault

def flip(i):
    def fault(buf):
        buf[i] ^= 0x01
    return fault

def lost(buf):
    # The frame never reaches the host: the read shows a chip that is not ready.
    for i in range(len(buf)):
        buf[i] = 0

class NoisyUart(io.IOBase):
    # The real UART; what comes from the chip may get noise in front, a flipped byte, or lose
    # bytes, counted from when the fault is armed.
    def __init__(self, uart):
        self.u = uart
        self.noise = b''
        self.flip_at = None
        self.drop = 0
        self.seen = 0
    def arm(self, noise=b'', flip_at=None, drop=0):
        self.noise, self.flip_at, self.drop, self.seen = noise, flip_at, drop, 0
    def init(self, *a, **k):
        return self.u.init(*a, **k)
    def any(self):
        return self.u.any()
    def write(self, b):
        return self.u.write(b)
    def read(self, n=-1):
        data = self.u.read(n)
        if not data:
            return data
        data = bytearray(data)
        if self.flip_at is not None and self.seen <= self.flip_at < self.seen + len(data):
            data[self.flip_at - self.seen] ^= 0x01
            self.flip_at = None
        self.seen += len(data)
        if self.drop:
            k = min(self.drop, len(data))
            self.drop -= k
            data = data[k:]
        if self.noise:
            data = self.noise + data
            self.noise = b''
        return bytes(data) if data else None
    def readinto(self, buf, n=None):
        data = self.read(len(buf) if n is None else n)
        if not data:
            return None
        buf[:len(data)] = data
        return len(data)
    def ioctl(self, req, arg):
        return self.u.ioctl(req, arg)
"""

I2C_SETUP = COMMON + """
irq = board.buses.pin(hw.PIN_NFC_IRQ)
rst = board.buses.pin(hw.PIN_NFC_RESET, M.Pin.OUT, value=1)
line = NoisyI2C(board.buses.i2c())
nfc = pn532.PN532(pn532.I2CLink(line, irq=irq), reset=rst)
"""

HSU_SETUP = COMMON + """
try:
    u2
except NameError:
    u2 = M.UART(2, baudrate=115200)
u2.init(baudrate=115200)
line = NoisyUart(u2)
nfc = pn532.PN532(pn532.HsuLink(line))
"""

APPLETS = """
from nfc import Router
from nfc.transit import TransitApplet
from nfc.confirm import ConfirmApplet
KEY = bytes(range(32))
PATH = '/data/transit-test.bin'
for p in (PATH, PATH + '.tmp'):
    try:
        os.remove(p)
    except OSError:
        pass
transit = TransitApplet(KEY, path=PATH, card_id=%r)
transit.credit(1000)
asked = []
answer = [True]
async def owner(merchant, amount, currency):
    asked.append((merchant, amount, currency))
    await asyncio.sleep_ms(30)  # the owner reads the screen and decides
    return answer[0]
confirm = ConfirmApplet(KEY, owner, device_id=%r)
card = Router(transit, confirm)
""" % (CARD_ID, DEVICE_ID)


class Chip:
    def __init__(self, rig, name):
        self.rig = rig
        self.name = name

    def do(self, action, **args):
        return self.rig.call("do", name=self.name, action=action, **args)

    def state(self):
        return self.rig.call("model", name=self.name)


@pytest.fixture
def i2c_chip(vdevice):
    rig = vdevice.rig
    rig.attach("i2c0", "pn532", addr=0x24, name="nfc")
    chip = Chip(rig, "nfc")
    try:
        chip.do("timing", scale=FAST)
        yield chip
    finally:
        rig.detach("nfc")
        rig.set_pin("nfc_irq", None)  # the chip no longer drives its IRQ line


@pytest.fixture
def hsu_chip(vdevice):
    rig = vdevice.rig
    rig.attach("uart2", "pn532-hsu", name="nfc-hsu")
    chip = Chip(rig, "nfc-hsu")
    try:
        chip.do("timing", scale=FAST)
        yield chip
    finally:
        rig.detach("nfc-hsu")


def i2c_driver(device):
    device.exec(I2C_SETUP)
    assert device.eval("run(nfc.begin())") == (0x32, 0x01, 0x06, 0x07)
    return device


def hsu_driver(device):
    device.exec(HSU_SETUP)
    assert device.eval("run(nfc.begin())") == (0x32, 0x01, 0x06, 0x07)
    return device


def apdu(cla, ins, p1, p2, data=b"", le=None):
    out = bytes((cla, ins, p1, p2))
    if data:
        out += bytes((len(data),)) + data
    if le is not None:
        out += bytes((le & 0xFF,))
    return out


def select(aid):
    return apdu(0x00, 0xA4, 0x04, 0x00, aid, 0)


def echo_fci(aid):
    prop = b"\x50\x04ECHO"
    fci = b"\x84" + bytes((len(aid),)) + aid + b"\xa5" + bytes((len(prop),)) + prop
    return b"\x6f" + bytes((len(fci),)) + fci + b"\x90\x00"


def transceive(device, data, timeout_ms=2000):
    return bytes.fromhex(device.eval("run(card.transceive(bytes.fromhex(%r), %d)).hex()" % (data.hex(), timeout_ms)))


def exchanges(chip):
    """The InDataExchange commands the chip received, as (Tg, data length)."""
    out = []
    for c in chip.state()["commands"]:
        b = bytes.fromhex(c)
        if b[:2] == b"\xd4\x40":
            out.append((b[2], len(b) - 3))
    return out


# ---- reader mode over I2C ---------------------------------------------------------------------

def test_i2c_detection_lists_an_iso_dep_card(device, i2c_chip):
    dev = i2c_driver(device)
    state = i2c_chip.state()
    assert state["power"] == "normal" and state["sam_mode"] == 1
    assert state["max_retries"]["passive"] == 1 and state["parameters"] == 0x14
    assert dev.eval("run(nfc.poll(100))") is None  # an empty field

    i2c_chip.do("place", kind="iso-dep", uid="04A1B2C3D4E5F6")
    dev.exec("card = run(nfc.poll(1000))")
    assert dev.eval("type(card).__name__") == "IsoDep"
    assert dev.eval("(card.tg, card.uid.hex(), card.sens_res.hex(), card.sel_res, card.ats.hex())") == (
        1, "04a1b2c3d4e5f6", "0044", 0x20, "0578807002")
    assert dev.eval("(card.iso_dep, card.historical_bytes)") == (True, b"")
    assert i2c_chip.state()["targets"] == {"1": {"uid": "04A1B2C3D4E5F6", "iso_dep": True, "deselected": False}}

    # The IRQ line told the driver when to read: the status byte was not polled.
    assert dev.eval("nfc.link.irqs") > 0
    ok, detail = dev.eval("run(nfc.self_test())")
    assert ok, detail
    assert detail == "PN532 v1.6 (ISO 14443A, ISO 14443B, ISO 18092) on I2C 0x24, IRQ"
    assert dev.eval("(nfc.resent, nfc.nacks, nfc.bad_frames, nfc.timeouts)") == (0, 0, 0, 0)


def test_i2c_apdus_with_chaining_both_ways(device, i2c_chip):
    dev = i2c_driver(device)
    i2c_chip.do("place", kind="iso-dep")
    dev.exec("card = run(nfc.poll(1000))")
    assert transceive(dev, select(ECHO_AID)) == echo_fci(ECHO_AID)
    assert transceive(dev, apdu(0x00, 0xCA, 0x00, 0x00, b"hello", 0)) == b"hello\x90\x00"

    # 600 bytes back: more than one InDataExchange answer (262 bytes each) holds, so MI is set
    # in the status and the driver fetches the rest with InDataExchange and Tg alone.
    assert transceive(dev, apdu(0x00, 0xB0, 0x00, 0x00, le=0)) == bytes(i & 0xFF for i in range(600)) + b"\x90\x00"
    assert exchanges(i2c_chip)[-3:] == [(0x01, 5), (0x01, 0), (0x01, 0)]
    # Exactly one byte past a part: 261 bytes + SW = 263.
    assert transceive(dev, apdu(0x00, 0xEE, 0x01, 0x05, le=0)) == bytes(i & 0xFF for i in range(261)) + b"\x90\x00"

    # A 307-byte command (an extended-length APDU): 262 bytes with MI set in Tg, then the rest;
    # its echo (302 bytes) comes back chained as well.
    data = bytes((7 * i) & 0xFF for i in range(300))
    long_apdu = b"\x80\xda\x00\x00\x00" + struct.pack(">H", len(data)) + data
    assert transceive(dev, long_apdu) == data + b"\x90\x00"
    assert exchanges(i2c_chip)[-3:] == [(0x41, 262), (0x01, 45), (0x01, 0)]

    # Deselect: the card sleeps (HALT) but stays listed; the chip wakes and selects it again
    # for the next exchange.
    dev.exec("run(card.deselect())")
    assert i2c_chip.state()["targets"]["1"]["deselected"] is True
    assert transceive(dev, apdu(0x00, 0xCA, 0x00, 0x00, b"again", 0)) == b"again\x90\x00"
    # Release: the chip forgets the card; a new poll finds it again.
    dev.exec("run(card.release())")
    assert i2c_chip.state()["targets"] == {}
    assert dev.eval("run(nfc.poll(500)).uid.hex()") == "04a1b2c3d4e5f6"
    # The RF field off: no card answers; on again: it is found.
    dev.exec("run(nfc.rf_field(False))")
    assert i2c_chip.state()["field"] is False
    dev.exec("run(nfc.rf_field(True))")
    assert i2c_chip.state()["field"] is True
    assert dev.eval("run(nfc.poll(500)).uid.hex()") == "04a1b2c3d4e5f6"


def test_i2c_card_removed_mid_exchange(device, i2c_chip):
    dev = i2c_driver(device)
    i2c_chip.do("timing", scale=1.0)  # real times: the card takes its 300 ms, time to take it away
    i2c_chip.do("place", kind="iso-dep", process_ms=300)
    dev.exec("card = run(nfc.poll(1000))")
    i2c_chip.do("remove", after_ms=100)
    started = time.monotonic()
    assert dev.eval("attempt(card.transceive(b'\\x00\\xca\\x00\\x00\\x02hi\\x00'))") == ("CardRemoved", 0x01)
    assert time.monotonic() - started < 2
    assert dev.eval("card.present") is False
    # The card object knows: no more exchanges are tried.
    count = len(exchanges(i2c_chip))
    assert dev.eval("attempt(card.transceive(b'\\x00\\xca\\x00\\x00\\x00'))") == ("CardRemoved", None)
    assert len(exchanges(i2c_chip)) == count
    assert dev.eval("run(nfc.poll(100))") is None
    assert dev.eval("issubclass(pn532.CardRemoved, pn532.NfcError)")


def test_i2c_uid_only_tag(device, i2c_chip):
    dev = i2c_driver(device)
    i2c_chip.do("place", kind="uid-only", uid="04C0FFEE123456")
    dev.exec("tag = run(nfc.poll(1000))")
    assert dev.eval("(type(tag).__name__, tag.uid.hex(), tag.sel_res, tag.ats, tag.iso_dep)") == (
        "Target", "04c0ffee123456", 0x00, b"", False)
    assert dev.eval("hasattr(tag, 'transceive')") is False
    # A tag without ISO-DEP does not answer an APDU: the chip's timeout status, typed.
    assert dev.eval("attempt(nfc.in_data_exchange(tag.tg, b'\\x00\\xa4\\x04\\x00\\x00', 1000))") == (
        "NfcTimeout", 0x01)
    dev.exec("run(tag.release())")
    # Released twice: the chip has no such target any more (0x27, wrong context).
    assert dev.eval("attempt(nfc.in_release(1))") == ("WrongContext", 0x27)


def test_i2c_line_faults(device, i2c_chip):
    dev = i2c_driver(device)
    frames = i2c_chip.state()["stats"]["frames"]

    # Noise before the answer, with a false start code in it: skipped, the frame is found.
    dev.exec("line.faults = [None, garbage()]")
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("(nfc.nacks, nfc.link.skipped > 0, nfc.link.damaged)") == (0, True, 1)
    # So much noise that the frame's tail falls off the read: the driver sees the frame
    # incomplete and NACKs; the chip sends its answer again.
    dev.exec("line.faults = [None, garbage(30)]")
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("nfc.nacks") == 1
    assert i2c_chip.state()["stats"]["host_nacks"] == 1
    # Noise in place of the ACK: the command did arrive (something answered), its answer is
    # awaited rather than the command sent twice.
    dev.exec("line.faults = [garbage()]")
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("(nfc.resent, nfc.bad_frames)") == (0, 1)

    # A damaged answer (a data byte flipped: its DCS fails): NACK, and the good copy.
    dev.exec("line.faults = [None, flip(8)]")
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("(nfc.nacks, nfc.bad_frames)") == (2, 2)
    assert i2c_chip.state()["stats"]["host_nacks"] == 2
    assert i2c_chip.state()["stats"]["frames"] == frames + 4  # nothing sent twice so far

    # The ACK and the answer lost: no ACK in time, the command is sent again.
    dev.exec("line.faults = [lost, lost]")
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("(nfc.resent, nfc.timeouts)") == (1, 1)
    assert i2c_chip.state()["stats"]["frames"] == frames + 6

    # A lost ACK alone: the answer that follows, read as an ACK, is cut short; a NACK brings it
    # whole. Nothing is sent twice.
    dev.exec("line.faults = [lost]")
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("(nfc.resent, nfc.nacks)") == (1, 3)

    # An answer that stays damaged: NfcFrameError after the NACKs; then normal service.
    dev.exec("line.faults = [None] + [flip(8)] * 4")
    assert dev.eval("attempt(nfc.firmware_version())") == ("NfcFrameError", None)
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)

    # An exchange with a card through a damaged line still gives the right R-APDU.
    i2c_chip.do("place", kind="iso-dep")
    dev.exec("card = run(nfc.poll(1000))")
    dev.exec("line.faults = [None, garbage()]")  # the first part of a chained answer
    assert transceive(dev, apdu(0x00, 0xB0, 0x00, 0x00, le=0)) == bytes(i & 0xFF for i in range(600)) + b"\x90\x00"


def test_i2c_without_irq_line_and_errors(device, i2c_chip):
    dev = i2c_driver(device)
    # No IRQ line: readiness by polling the status byte.
    dev.exec("nfc.link.close()\nnfc = pn532.PN532(pn532.I2CLink(board.buses.i2c()), reset=rst)")
    assert dev.eval("run(nfc.begin(reset=False))") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("run(nfc.self_test())")[1].endswith("status polling")
    # A command the chip finds malformed: the error frame, typed.
    assert dev.eval("attempt(nfc.command(0x4A, b'\\x07\\x00'))") == ("NfcApplicationError", None)
    # A command for a target that is not there: its status, typed (0x27 wrong context).
    assert dev.eval("attempt(nfc.in_data_exchange(1, b'\\x00'))") == ("WrongContext", 0x27)
    # Power-down, and the address wakes it (I2C).
    dev.exec("run(nfc.power_down())")
    assert i2c_chip.state()["asleep"] is True
    assert dev.eval("run(nfc.wake())") == (0x32, 0x01, 0x06, 0x07)
    assert i2c_chip.state()["power"] == "normal"
    # Held in reset: nothing acknowledges the address.
    dev.exec("rst(0)")
    try:
        assert dev.eval("attempt(nfc.firmware_version())") == ("NfcNotFound", None)
        ok, detail = dev.eval("run(nfc.self_test())")
        assert not ok and "RSTPDN" in detail
    finally:
        dev.exec("rst(1)")
    # RSTPDN pulsed: the chip starts again in LowVbat mode; begin() brings it back.
    assert dev.eval("run(nfc.begin())") == (0x32, 0x01, 0x06, 0x07)


# ---- HSU --------------------------------------------------------------------------------------

def test_hsu_detection_exchange_and_line_faults(device, hsu_chip):
    dev = hsu_driver(device)
    assert hsu_chip.state()["stats"]["lost_waking"] > 0  # the preamble woke it, the frame got through
    hsu_chip.do("place", kind="iso-dep", uid="08112233")
    dev.exec("card = run(nfc.poll(1000))")
    assert dev.eval("(type(card).__name__, card.uid.hex(), card.sens_res.hex())") == ("IsoDep", "08112233", "0004")
    assert transceive(dev, select(ECHO_AID)) == echo_fci(ECHO_AID)
    assert transceive(dev, apdu(0x00, 0xB0, 0x00, 0x00, le=0)) == bytes(i & 0xFF for i in range(600)) + b"\x90\x00"
    ok, detail = dev.eval("run(nfc.self_test())")
    assert (ok, detail) == (True, "PN532 v1.6 (ISO 14443A, ISO 14443B, ISO 18092) on HSU 115200 baud")

    # Garbage before the ACK, with a false start code in it: skipped.
    dev.exec("line.arm(noise=b'\\x55\\x13\\x00\\xff\\x09\\x01junk')")
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("(nfc.link.damaged, nfc.link.skipped > 0, nfc.nacks, nfc.resent)") == (1, True, 0, 0)
    # A damaged answer (byte 7 after the ACK: the firmware's IC byte): NACK, sent again.
    dev.exec("line.arm(flip_at=6 + 7)")
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("(nfc.nacks, nfc.bad_frames)") == (1, 1)
    assert hsu_chip.state()["stats"]["host_nacks"] == 1
    # Everything of one command lost (its ACK and answer: 6 + 13 bytes): sent again.
    dev.exec("line.arm(drop=6 + 13)")
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("nfc.resent") == 1


def test_hsu_power_down_wake_and_a_missing_ack(device, hsu_chip):
    dev = hsu_driver(device)
    dev.exec("run(nfc.power_down())")
    assert hsu_chip.state()["asleep"] is True
    # The driver sends the wake-up preamble first: the frame arrives whole.
    assert dev.eval("run(nfc.wake())") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("nfc.resent") == 0

    # A frame sent to the sleeping chip without the preamble: its first bytes are lost while the
    # chip wakes, so no ACK comes; the driver sends it again, and this time it is taken.
    dev.exec("run(nfc.power_down())")
    lost = hsu_chip.state()["stats"]["lost_waking"]
    dev.exec("nfc.link.asleep = False")  # as if the driver did not know it was asleep
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    assert dev.eval("(nfc.resent, nfc.timeouts)") == (1, 1)
    assert hsu_chip.state()["stats"]["lost_waking"] > lost
    dev.exec("run(nfc.wake())")


def test_hsu_set_serial_baud_rate(device, hsu_chip):
    dev = hsu_driver(device)
    hsu_chip.do("place", kind="iso-dep")
    try:
        dev.exec("run(nfc.set_baud_rate(460800))")
        assert hsu_chip.state()["baud"] == 460800
        assert dev.eval("nfc.link.baudrate") == 460800
        assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
        dev.exec("card = run(nfc.poll(1000))")
        assert transceive(dev, apdu(0x00, 0xB0, 0x00, 0x00, le=0))[-2:] == b"\x90\x00"
    finally:
        dev.exec("run(nfc.set_baud_rate(115200))")
    assert hsu_chip.state()["baud"] == 115200
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    assert hsu_chip.state()["stats"]["line_errors"] == 0


# ---- card emulation ---------------------------------------------------------------------------

def run_reader(device, chip, script, emulate="card", timeout_ms=8000):
    """The rig's reader runs the script against the device emulating `emulate`; returns the
    device's count of APDUs answered and the reader's log [(apdu, response)]."""
    chip.do("reader", apdus=[a.hex() for a in script])
    device.transport.exec_raw_no_follow(
        "print(repr(run(nfc.emulate(%s, timeout_ms=%d, idle_ms=%d))))" % (emulate, timeout_ms, timeout_ms))
    deadline = time.monotonic() + timeout_ms / 1000
    try:
        while len(chip.do("reader_log")) < len(script):
            assert time.monotonic() < deadline, "the reader got %d answers of %d" % (
                len(chip.do("reader_log")), len(script))
            time.sleep(0.02)
    finally:
        log = chip.do("reader_leave")["log"]
        out, err = device.transport.follow(timeout=timeout_ms / 1000 + 5)
    assert not err, err.decode()
    return int(out.strip()), [(bytes.fromhex(a), bytes.fromhex(r)) for a, r in log]


def debit(counter, amount, terminal, nonce, key=KEY, card_id=CARD_ID):
    mac = hmac.new(key, b"PT-DEBIT" + card_id + struct.pack(">III", counter, amount, terminal) + nonce,
                   hashlib.sha256).digest()[:8]
    return apdu(0x80, 0x54, 0x00, 0x00, struct.pack(">II", amount, terminal) + nonce + mac, 0)


def tlv(tag, value):
    return bytes((tag, len(value))) + value


def test_emulation_transit_debit(device, i2c_chip):
    dev = i2c_driver(device)
    dev.exec(APPLETS)
    nonce = bytes.fromhex("0102030405060708")
    script = [select(TRANSIT_AID), apdu(0x80, 0x5C, 0, 0, le=0), debit(0, 250, 0xA1B2C3D4, nonce),
              apdu(0x80, 0xB2, 0, 0, le=0)]
    n, log = run_reader(dev, i2c_chip, script)
    assert n == 4 and [a for a, _ in log] == script
    (_, fci), (_, balance), (_, receipt), (_, entries) = log
    assert fci == tlv(0x6F, tlv(0x84, TRANSIT_AID) + tlv(0xA5, tlv(0xC0, CARD_ID) + tlv(0xC1, b"\x03\xd2"))) \
        + b"\x90\x00"
    assert balance == struct.pack(">IIH", 1000, 0, 978) + b"\x90\x00"
    # The receipt: new balance, new counter, and the card's MAC over what happened.
    assert receipt[-2:] == b"\x90\x00" and struct.unpack(">II", receipt[:8]) == (750, 1)
    mac = hmac.new(KEY, b"PT-RECEIPT" + CARD_ID + struct.pack(">IIII", 1, 250, 750, 0xA1B2C3D4) + nonce,
                   hashlib.sha256).digest()[:8]
    assert receipt[8:16] == mac
    assert entries == struct.pack(">IIII", 1, 250, 750, 0xA1B2C3D4) + b"\x90\x00"
    # Kept on flash: a new applet reading the file sees the debit.
    assert dev.eval("(TransitApplet(KEY, path=PATH).balance, TransitApplet(KEY, path=PATH).counter)") == (750, 1)
    assert dev.eval("nfc.target_mode") == 0x08  # 106 kbps, ISO 14443-4 PICC

    # A second gate: the same DEBIT replayed is refused (the counter has moved), a MAC made
    # with another key too, and one for more than the balance; nothing changes.
    script = [select(TRANSIT_AID), debit(0, 250, 0xA1B2C3D4, nonce), debit(1, 250, 7, nonce, key=b"k" * 32),
              debit(1, 5000, 7, nonce), apdu(0x80, 0x5C, 0, 0, le=0), apdu(0x80, 0x99, 0, 0, le=0)]
    n, log = run_reader(dev, i2c_chip, script)
    assert n == 6
    assert [r[-2:].hex() for _, r in log] == ["9000", "6982", "6982", "6985", "9000", "6d00"]
    assert log[4][1] == struct.pack(">IIH", 750, 1, 978) + b"\x90\x00"

    # The file altered on the flash: refused, not believed.
    dev.exec("with open(PATH, 'rb') as f:\n    d = bytearray(f.read())\nd[30] ^= 1\n"
             "with open(PATH, 'wb') as f:\n    f.write(d)\n"
             "transit = TransitApplet(KEY, path=PATH)\ncard = Router(transit, confirm)")
    assert dev.eval("transit.broken") == "the transit state on flash does not verify"
    n, log = run_reader(dev, i2c_chip, [select(TRANSIT_AID), apdu(0x80, 0x5C, 0, 0, le=0)])
    assert [r.hex() for _, r in log][1] == "6581"


def prepare(amount, currency, nonce, merchant):
    m = merchant.encode()
    return apdu(0x80, 0x10, 0x00, 0x00, struct.pack(">I", amount) + currency.encode() + nonce + bytes((len(m),)) + m, 0)


def test_emulation_confirmation(device, i2c_chip):
    dev = i2c_driver(device)
    dev.exec(APPLETS)
    nonce = bytes.fromhex("a0a1a2a3a4a5a6a7")
    script = [select(CONFIRM_AID), prepare(1250, "EUR", nonce, "Coffee Corner")]
    n, log = run_reader(dev, i2c_chip, script)
    assert n == 2
    assert log[0][1] == tlv(0x6F, tlv(0x84, CONFIRM_AID) + tlv(0xA5, tlv(0xC0, DEVICE_ID))) + b"\x90\x00"
    approval = log[1][1]
    assert approval[-2:] == b"\x90\x00" and approval[:8] == DEVICE_ID
    counter = struct.unpack(">I", approval[8:12])[0]
    assert counter == 1
    # Verified as the shop's terminal would: the MAC covers amount, currency, merchant, nonce.
    m = b"Coffee Corner"
    expected = hmac.new(KEY, b"PT-CONFIRM" + DEVICE_ID + struct.pack(">II", counter, 1250) + b"EUR"
                        + bytes((len(m),)) + m + nonce, hashlib.sha256).digest()[:16]
    assert approval[12:28] == expected and len(approval) == 30
    assert dev.eval("asked") == [("Coffee Corner", 1250, "EUR")]
    # Another amount with the same MAC would not verify.
    assert approval[12:28] != hmac.new(KEY, b"PT-CONFIRM" + DEVICE_ID + struct.pack(">II", counter, 1251) + b"EUR"
                                       + bytes((len(m),)) + m + nonce, hashlib.sha256).digest()[:16]

    # The owner refuses: the refusal status word, no MAC.
    dev.exec("answer[0] = False")
    n, log = run_reader(dev, i2c_chip, [select(CONFIRM_AID), prepare(99999, "USD", nonce, "Mallory Mart")])
    assert n == 2 and log[1][1] == b"\x69\x85"
    assert dev.eval("asked[-1]") == ("Mallory Mart", 99999, "USD")
    # A PREPARE without selecting, and a malformed one.
    n, log = run_reader(dev, i2c_chip, [prepare(1, "EUR", nonce, "x"), select(CONFIRM_AID),
                                        apdu(0x80, 0x10, 0, 0, b"\x00\x00\x00\x01EU", 0)])
    assert [r[-2:].hex() for _, r in log] == ["6986", "9000", "6a80"]


def test_emulation_over_hsu_and_no_reader(device, hsu_chip):
    dev = hsu_driver(device)
    dev.exec(APPLETS)
    # No reader comes: TgInitAsTarget is aborted at the deadline (the chip sleeps meanwhile on
    # HSU: the abort wakes it first), and the chip answers the next command.
    assert dev.eval("run(nfc.emulate(card, timeout_ms=150))") is None
    assert dev.eval("nfc.aborted") == 1
    assert dev.eval("run(nfc.firmware_version())") == (0x32, 0x01, 0x06, 0x07)
    n, log = run_reader(dev, hsu_chip, [select(TRANSIT_AID), apdu(0x80, 0x5C, 0, 0, le=0)])
    assert n == 2 and log[1][1] == struct.pack(">IIH", 1000, 0, 978) + b"\x90\x00"

    # Long APDUs both ways: the reader's 300-byte command reaches the applet whole (TgGetData
    # with MI), and its 400-byte answer goes back in parts (TgSetMetaData, then TgSetData).
    dev.exec("class Big:\n"
             "    async def process(self, apdu):\n"
             "        got.append(len(apdu))\n"
             "        return bytes(i & 0xFF for i in range(400)) + b'\\x90\\x00'\n"
             "got = []\nbig = Big()")
    long_apdu = b"\x80\xda\x00\x00\x00" + struct.pack(">H", 300) + bytes(300)
    n, log = run_reader(dev, hsu_chip, [long_apdu], emulate="big")
    assert n == 1 and dev.eval("got") == [307]
    assert log[0][1] == bytes(i & 0xFF for i in range(400)) + b"\x90\x00"
    commands = [bytes.fromhex(c)[1] for c in hsu_chip.state()["commands"]]
    assert commands[-6:] == [0x8C, 0x86, 0x86, 0x94, 0x8E, 0x86]  # the last TgGetData: released
