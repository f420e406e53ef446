"""The rig's PN532 model (tools/rig/pn532.py) checked on its own and by independent host software.

- libnfc's nfc-list (Debian package libnfc-bin, installed by `make setup`) and Adafruit's
  CircuitPython PN532 library (CPython, pyserial) talk to the model over HSU, through the pty
  that the rig gives a UART model: attached as "pn532-hsu" on uart2, named "pn532", so the pty
  is <state>/rig/pn532.tty.
- Frames of UM0701-02 on that pty with pyserial, built and parsed here, not by the model's code:
  ACK, NACK, the error frame, LCS/DCS, extended frames, wake-up, chaining, card emulation.
- The I2C side on the model alone in CPython (as tests/host/test_ft6336.py does): the status
  byte, the IRQ line, RSTPDN.

Each test attaches a fresh chip and detaches it after. The model's processing and RF times are
scaled down (`timing`) except where a test needs them; nothing here asserts a duration.
"""

import asyncio
import time

import serial

from pn532fix import ACK, ERROR, NACK, Hsu, answer, cmd, frame, nfc_list, payload, pn532  # noqa: F401 (pn532: the fixture)
from tools.rig.buses import I2cBus, PinBank

IRQ, RSTPDN = 36, 27  # board/handheld.py: PIN_NFC_IRQ, PIN_NFC_RESET


def test_nfc_list_sees_the_card_in_the_field(pn532):
    pn532.do("place", kind="iso-dep", uid="04A1B2C3D4E5F6", ats="0578807002")
    out = nfc_list(pn532)
    assert "1 ISO14443A passive target(s) found:" in out, out
    assert "ISO/IEC 14443A (106 kbps) target:" in out
    assert "ATQA (SENS_RES): 00  44" in out
    assert "UID (NFCID1): 04  a1  b2  c3  d4  e5  f6" in out
    assert "SAK (SEL_RES): 20" in out
    assert "ATS: 78  80  70  02" in out  # libnfc prints the ATS without its length byte

    # A UID-only tag: no ISO-DEP, no ATS.
    pn532.do("place", kind="uid-only", uid="5C3E9A17")
    out = nfc_list(pn532)
    assert "1 ISO14443A passive target(s) found:" in out, out
    assert "ATQA (SENS_RES): 00  04" in out and "UID (NFCID1): 5c  3e  9a  17" in out
    assert "SAK (SEL_RES): 00" in out and "ATS:" not in out

    # An empty field: nothing listed (with -v, the count per modulation: 0).
    pn532.do("remove")
    out = nfc_list(pn532)
    assert "target(s) found" not in out and "UID" not in out, out
    out = nfc_list(pn532, "-v")
    assert "0 ISO14443A passive target(s) found." in out, out
    assert "UID" not in out


# ---- Adafruit's CircuitPython library ----------------------------------------------------------------

def test_adafruit_library_reads_the_uid_and_exchanges_apdus(pn532):
    from adafruit_pn532.adafruit_pn532 import _COMMAND_INDATAEXCHANGE
    from adafruit_pn532.uart import PN532_UART

    pn532.do("place", kind="iso-dep", uid="04A1B2C3D4E5F6")
    with serial.Serial(pn532.tty, 115200, timeout=0.1) as port:
        # The constructor wakes the chip from LowVbat (55 55 00 ... + SAMConfiguration) and asks
        # for the firmware version.
        nfc = PN532_UART(port)
        assert nfc.firmware_version == (0x32, 1, 6, 7)
        nfc.SAM_configuration()
        assert nfc.read_passive_target(timeout=1) == bytes.fromhex("04A1B2C3D4E5F6")

        def exchange(apdu, length=64):
            return bytes(nfc.call_function(_COMMAND_INDATAEXCHANGE, params=b"\x01" + bytes.fromhex(apdu),
                                           response_length=length))

        aid = "A0000000031010"
        got = exchange("00A4040007" + aid + "00")
        assert got[0] == 0x00  # status: success
        assert got[1:3] == b"\x6f\x11" and got[3:5] == b"\x84\x07" and got[5:12].hex().upper() == aid
        assert got[-2:] == b"\x90\x00"
        assert exchange("8001000004DEADBEEF") == b"\x00\xde\xad\xbe\xef\x90\x00"
        assert exchange("80EE00C8", 250)[1:] == bytes(range(200)) + b"\x90\x00"  # INS EE: P1P2 bytes
        assert pn532.state()["card"]["apdus"] == 3

        # Automatic RATS off (SetParameters without fAutomaticRATS): no ATS in the target data,
        # and the card, not activated in ISO-DEP, does not answer an APDU (timeout, 0x01).
        nfc.call_function(0x12, params=[0x04])
        data = bytes(nfc.call_function(0x4A, params=[0x01, 0x00], response_length=32))
        assert data == bytes.fromhex("01" "01" "0044" "20" "07" "04A1B2C3D4E5F6")
        assert exchange("8001000000") == b"\x01"
        nfc.call_function(0x12, params=[0x14])
        data = bytes(nfc.call_function(0x4A, params=[0x01, 0x00], response_length=32))
        assert data == bytes.fromhex("01" "01" "0044" "20" "07" "04A1B2C3D4E5F6" "0578807002")

        # A UID-only tag: found, but nothing to read (MIFARE read: no answer, so None).
        pn532.do("place", kind="uid-only", uid="04C0FFEE123480")
        assert nfc.read_passive_target(timeout=1) == bytes.fromhex("04C0FFEE123480")
        assert nfc.mifare_classic_read_block(4) is None

        # Soft power-down, then the library wakes it again with its preamble.
        assert nfc.power_down() is True
        assert pn532.state()["power"] == "powerdown"
        assert nfc.firmware_version == (0x32, 1, 6, 7)

        pn532.do("remove")
        assert nfc.read_passive_target(timeout=0.3) is None  # polls on until the host gives up


# ---- frames on the HSU ------------------------------------------------------------------------------

def test_frames_ack_nack_error_and_checksums(pn532):
    host = Hsu(pn532.tty)
    try:
        # Power-on is LowVbat: a frame without the wake-up preamble loses its first bytes to the
        # wake-up, so the chip never sees it; with the preamble it is taken.
        host.send(cmd(0x02))
        assert host.nothing()
        host.wake()
        assert pn532.state()["power"] == "normal"

        assert host.call(0x02) == answer(0x03, 0x32, 0x01, 0x06, 0x07)
        host.send(NACK)  # the host missed the answer: the chip sends it again
        assert host.read_frame() == answer(0x03, 0x32, 0x01, 0x06, 0x07)

        good = cmd(0x02)
        bad_lcs = good[:4] + bytes((good[4] ^ 1,)) + good[5:]
        bad_dcs = good[:-2] + bytes((good[-2] ^ 1, 0))
        host.send(bad_lcs)
        assert host.nothing()
        host.send(bad_dcs)
        assert host.nothing()
        assert (pn532.state()["stats"]["bad_lcs"], pn532.state()["stats"]["bad_dcs"]) == (1, 1)

        # Junk before a frame, and a frame without preamble: the start code is what counts.
        host.send(b"\x13\x37\x00" + good[1:])
        assert host.read_frame() == ACK and host.read_frame() == answer(0x03, 0x32, 0x01, 0x06, 0x07)

        # Application-level errors: an unknown command, a wrong TFI, bad parameters.
        assert host.call(0x7E) == ERROR
        host.send(frame(0xD5, 0x02))
        assert host.read_frame() == ACK and host.read_frame() == ERROR
        assert host.call(0x14, 0x09) == ERROR  # SAMConfiguration mode 9
        assert host.call(0x32, 0x05, 0x00) == ERROR  # MaxRetries needs three bytes

        # Diagnose: communication line test echoes; ROM and RAM tests pass.
        assert host.call(0x00, 0x00, b"PN532 model") == answer(0x01, 0x00, b"PN532 model")
        assert host.call(0x00, 0x01) == answer(0x01, 0x00)
        assert host.call(0x00, 0x02) == answer(0x01, 0x00)

        # Extended frames both ways: 262 bytes of line test data make LEN 265 each way.
        blob = bytes(range(256)) + bytes(6)
        sent = cmd(0x00, 0x00, blob)
        assert sent[3:5] == b"\xff\xff"
        got = host.call(0x00, 0x00, blob)
        assert got[3:5] == b"\xff\xff" and got == answer(0x01, 0x00, blob)
        assert host.call(0x00, 0x00, blob + b"\x00") == ERROR  # longer than the chip takes

        # Registers: CIU values the firmware leaves, a stored unknown one, a written one.
        assert payload(host.call(0x06, 0x63, 0x02, 0x63, 0x03, 0x12, 0x34)) == bytes.fromhex("d507" "80" "80" "00")
        assert host.call(0x08, 0x12, 0x34, 0x5A, 0x63, 0x3D, 0x07) == answer(0x09)
        assert payload(host.call(0x06, 0x12, 0x34, 0x63, 0x3D)) == bytes.fromhex("d507" "5a" "07")
    finally:
        host.close()


def test_initiator_commands_and_chaining(pn532):
    host = Hsu(pn532.tty)
    try:
        host.wake()
        # An empty field with infinite retries (the default): the chip keeps polling; the host's
        # ACK aborts it, and no answer comes.
        host.send(cmd(0x4A, 0x01, 0x00))
        assert host.read_frame() == ACK
        assert host.nothing(0.2)
        host.send(ACK)
        assert host.nothing(0.1) and pn532.state()["job"] is None
        assert pn532.state()["stats"]["aborted"] == 1
        # One try only (MaxRetries: MxRtyPassiveActivation 0): no target.
        assert host.call(0x32, 0x05, 0xFF, 0x01, 0x00) == answer(0x33)
        assert host.call(0x4A, 0x01, 0x00) == answer(0x4B, 0x00)

        pn532.do("place", kind="iso-dep", uid="04A1B2C3D4E5F6")
        target = bytes.fromhex("01" "0044" "20" "07" "04A1B2C3D4E5F6" "0578807002")
        assert host.call(0x4A, 0x01, 0x00) == answer(0x4B, 0x01, target)
        # GetGeneralStatus: no error, no external field, one target (Tg 1, 106 kbps, type A), SAM 0.
        assert host.call(0x04) == answer(0x05, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00)

        # A 600-byte answer comes in parts of 262 with MI (0x40) in the status; the host asks
        # for the rest with the Tg byte alone.
        parts = []
        got = payload(host.call(0x40, 0x01, bytes.fromhex("00B0000000")))
        while True:
            assert got[:2] == b"\xd5\x41"
            parts.append(got[3:])
            if got[2] != 0x40:
                assert got[2] == 0x00
                break
            assert len(got[3:]) == 262
            got = payload(host.call(0x40, 0x01))
        assert [len(p) for p in parts] == [262, 262, 78]
        assert b"".join(parts) == bytes(i & 0xFF for i in range(600)) + b"\x90\x00"

        # The host sends a 300-byte APDU in two parts (MI in the Tg byte); the echo comes back
        # in two parts too.
        data = bytes((7 * i) & 0xFF for i in range(300))
        apdu = bytes.fromhex("8001000000012C") + data  # extended Lc
        assert host.call(0x40, 0x41, apdu[:200]) == answer(0x41, 0x00)
        first = payload(host.call(0x40, 0x01, apdu[200:]))
        assert first[2] == 0x40 and len(first) == 3 + 262
        rest = payload(host.call(0x40, 0x01))
        assert rest[2] == 0x00
        assert first[3:] + rest[3:] == data + b"\x90\x00"

        # Raw frames: an I-block through InCommunicateThru (block number 0 after the exchanges
        # above toggled it back), the card's answer with its PCB.
        got = payload(host.call(0x42, 0x02, bytes.fromhex("80010000021234")))
        assert got == bytes.fromhex("d543" "00" "02" "1234" "9000")

        # InDeselect: the card halted, the target kept; an exchange selects it again by itself.
        assert host.call(0x44, 0x01) == answer(0x45, 0x00)
        assert pn532.state()["card"]["state"] == "halt"
        assert host.call(0x40, 0x01, bytes.fromhex("8001000001AA")) == answer(0x41, 0x00, 0xAA, 0x90, 0x00)
        assert host.call(0x44, 0x00) == answer(0x45, 0x00)
        assert host.call(0x54, 0x01) == answer(0x55, 0x00)  # InSelect
        # InRelease: the target is gone from the list: wrong context (0x27) for an exchange.
        assert host.call(0x52, 0x01) == answer(0x53, 0x00)
        assert host.call(0x40, 0x01, bytes.fromhex("8001000000")) == answer(0x41, 0x27)

        # Diagnose card presence (test 6): present, then taken away.
        assert host.call(0x4A, 0x01, 0x00) == answer(0x4B, 0x01, target)
        assert host.call(0x00, 0x06) == answer(0x01, 0x00)
        pn532.do("remove")
        assert host.call(0x00, 0x06) == answer(0x01, 0x01)
    finally:
        host.close()


def test_card_removed_mid_exchange_times_out(pn532):
    pn532.do("timing", scale=1.0)  # realistic: FWT 38.7 ms x 3 before the chip gives up
    pn532.do("place", kind="iso-dep", process_ms=400)  # a slow card: time to take it away
    host = Hsu(pn532.tty)
    try:
        host.wake()
        assert payload(host.call(0x4A, 0x01, 0x00))[2] == 0x01
        host.send(cmd(0x40, 0x01, bytes.fromhex("00A4040007A000000003101000")))
        assert host.read_frame() == ACK
        pn532.do("remove")
        assert host.read_frame(timeout=2) == answer(0x41, 0x01)  # timeout: the target has not answered
        assert host.call(0x04)[5:8] == bytes.fromhex("d50501")  # GetGeneralStatus: last error 0x01
    finally:
        host.close()


def test_serial_baud_rate_switches_after_the_hosts_ack(pn532):
    host = Hsu(pn532.tty)
    try:
        host.wake()
        assert host.call(0x10, 0x05) == answer(0x11)  # 230400, answered at 115200
        host.send(ACK)
        time.sleep(0.05)  # the ACK on the line at 115200 before the host's UART changes rate
        host.port.baudrate = 230400
        assert host.call(0x02) == answer(0x03, 0x32, 0x01, 0x06, 0x07)
        assert pn532.state()["baud"] == 230400
        host.port.baudrate = 115200  # the old rate is garbage to the chip now
        host.send(cmd(0x02))
        assert host.nothing()
        assert pn532.state()["stats"]["line_errors"] > 0
    finally:
        host.close()


def test_serial_baud_rate_not_acknowledged_is_dropped(pn532):
    """A host that never ACKs the answer (here: it sends its next command instead) keeps the
    chip at its rate, and a later, unrelated ACK does not switch it (it used to, after which
    nfc-list failed until the chip was attached again)."""
    host = Hsu(pn532.tty)
    try:
        host.wake()
        assert host.call(0x10, 0x07) == answer(0x11)  # 921600, answered at 115200: no ACK sent
        assert host.call(0x02) == answer(0x03, 0x32, 0x01, 0x06, 0x07)  # still at 115200
        host.send(ACK)  # an ACK with nothing running: no abort, no switch
        assert host.nothing()
        assert host.call(0x02) == answer(0x03, 0x32, 0x01, 0x06, 0x07)
        state = pn532.state()
        assert state["baud"] == 115200 and state["stats"]["baud_changes_dropped"] == 1
    finally:
        host.close()
    pn532.do("place", kind="iso-dep", uid="04A1B2C3D4E5F6")
    assert "UID (NFCID1): 04  a1  b2  c3  d4  e5  f6" in nfc_list(pn532)


def test_card_emulation_with_a_reader(pn532):
    host = Hsu(pn532.tty)
    select = "00A404000BF0504F434B45545445524D00"
    script = [select, "80CA9F7F00"]
    try:
        host.wake()
        # TgInitAsTarget, PICC only: SENS_RES 0400, NFCID1t (08) 12 34 56, SEL_RES 20 (ISO-DEP),
        # no FeliCa, no NFCID3t, no general bytes, historical bytes "PT".
        params = bytes.fromhex("04" "0400" "123456" "20") + bytes(18) + bytes(10) + b"\x00" + b"\x02PT"
        host.send(cmd(0x8C, params))
        assert host.read_frame() == ACK
        assert host.nothing(0.1)  # waiting for a reader
        assert pn532.state()["target_mode"]["state"] == "waiting"
        pn532.do("reader", apdus=script)
        # Activated by the reader: mode 08 (106 kbps, ISO/IEC 14443-4 PICC), its RATS E0 80.
        assert host.read_frame() == answer(0x8D, 0x08, 0xE0, 0x80)
        assert host.call(0x8A) == answer(0x8B, 0x01, 0x00)  # TgGetTargetStatus: activated
        assert host.call(0x86) == answer(0x87, 0x00, bytes.fromhex(select))
        assert host.call(0x8E, bytes.fromhex("6F0A8408F0504F434B4554469000")) == answer(0x8F, 0x00)
        assert host.call(0x86) == answer(0x87, 0x00, bytes.fromhex("80CA9F7F00"))
        assert host.call(0x8E, b"\x6a\x88") == answer(0x8F, 0x00)
        # The reader has had both answers; it leaves: the next TgGetData says released (0x29).
        host.send(cmd(0x86))
        assert host.read_frame() == ACK
        assert host.nothing(0.1)
        assert pn532.do("reader_log") == [[select, "6F0A8408F0504F434B4554469000"], ["80CA9F7F00", "6A88"]]
        pn532.do("reader_leave")
        assert host.read_frame() == answer(0x87, 0x29)
        assert host.call(0x8A)[5:8] == bytes.fromhex("d58b02")  # no longer activated
    finally:
        host.close()


# ---- the I2C side, on the model alone -----------------------------------------------------------------

def _i2c_chip():
    from tools.rig.pn532 import PN532

    bus, pins = I2cBus("i2c0"), PinBank()
    chip = PN532(bus)
    chip.name = "pn532"
    chip.pins = pins
    bus.devices[0x24] = chip
    chip.do_timing(scale=0.01)
    edges = []
    pins.watchers.append(lambda gpio, level: edges.append(level) if gpio == IRQ else None)
    return bus, pins, chip, edges


def test_i2c_status_byte_irq_and_reset():
    async def run():
        bus, pins, chip, edges = _i2c_chip()
        assert pins.level(IRQ) == 1  # released: the module's pull-up
        assert bus.read(0x24, 4) == b"\x00\x00\x00\x00"  # not ready
        # LowVbat at power-on: over I2C the address match wakes the chip, nothing is lost.
        assert bus.write(0x24, cmd(0x14, 0x01), True) == len(cmd(0x14, 0x01))
        await asyncio.sleep(0.01)
        assert pins.level(IRQ) == 0  # a frame is ready
        assert bus.read(0x24, 1) == b"\x01" and pins.level(IRQ) == 0  # the status alone takes nothing
        assert bus.read(0x24, 7) == b"\x01" + ACK
        await asyncio.sleep(0.01)
        assert bus.read(0x24, 12) == b"\x01" + answer(0x15) + b"\x00\x00"  # padded after the frame
        assert pins.level(IRQ) == 1 and bus.read(0x24, 2) == b"\x00\x00"
        assert edges == [0, 1, 0, 1]  # each frame a falling edge, released when read

        bus.write(0x24, cmd(0x02), True)
        await asyncio.sleep(0.01)
        assert bus.read(0x24, 7) == b"\x01" + ACK
        await asyncio.sleep(0.01)
        firmware = answer(0x03, 0x32, 0x01, 0x06, 0x07)
        assert bus.read(0x24, 1 + len(firmware)) == b"\x01" + firmware
        bus.write(0x24, NACK, True)  # read it again
        assert bus.read(0x24, 1 + len(firmware)) == b"\x01" + firmware

        # A bad checksum: no ACK, nothing ready.
        bad = bytearray(cmd(0x02))
        bad[-2] ^= 0xFF
        bus.write(0x24, bytes(bad), True)
        await asyncio.sleep(0.01)
        assert bus.read(0x24, 7) == bytes(7) and pins.level(IRQ) == 1

        # SetParameters changed, then RSTPDN low: no answers (address NACK; reads float high),
        # IRQ released, state lost; after the line rises and the chip boots it answers again.
        bus.write(0x24, cmd(0x12, 0x00), True)
        await asyncio.sleep(0.01)
        bus.read(0x24, 7)
        await asyncio.sleep(0.01)
        assert bus.read(0x24, 10) == b"\x01" + answer(0x13)
        assert chip.status()["parameters"] == 0x00
        pins.configure(RSTPDN, "out", None, 0)
        assert chip.status()["power"] == "reset"
        assert bus.write(0x24, cmd(0x02), True) is None
        assert bus.read(0x24, 3) == b"\xff\xff\xff" and pins.level(IRQ) == 1
        pins.drive(RSTPDN, 1)
        await asyncio.sleep(0.01)
        assert chip.status()["power"] == "lowvbat" and chip.status()["parameters"] == 0x34
        bus.write(0x24, cmd(0x02), True)
        await asyncio.sleep(0.01)
        assert bus.read(0x24, 7) == b"\x01" + ACK

    asyncio.run(run())


def test_i2c_list_and_exchange_with_irq():
    async def run():
        bus, pins, chip, edges = _i2c_chip()
        chip.do_place(kind="iso-dep", uid="04A1B2C3D4E5F6")

        async def call(*data, n=300):
            bus.write(0x24, cmd(*data), True)
            for _ in range(200):
                await asyncio.sleep(0.001)
                if pins.level(IRQ) == 0:
                    break
            assert bus.read(0x24, 7) == b"\x01" + ACK
            for _ in range(200):
                await asyncio.sleep(0.001)
                if pins.level(IRQ) == 0:
                    break
            got = bus.read(0x24, n)
            assert got[0] == 0x01
            return got[1:]

        assert (await call(0x14, 0x01)).startswith(answer(0x15))
        got = await call(0x4A, 0x01, 0x00)
        assert payload(got) == bytes.fromhex("d54b01" "01" "0044" "20" "07" "04A1B2C3D4E5F6" "0578807002")
        got = await call(0x40, 0x01, bytes.fromhex("00A4040000"))
        assert payload(got)[:3] == b"\xd5\x41\x00" and payload(got)[-2:] == b"\x90\x00"
        chip.do_remove()
        got = await call(0x40, 0x01, bytes.fromhex("00A4040000"))
        assert payload(got) == b"\xd5\x41\x01"

    asyncio.run(run())
