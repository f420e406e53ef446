"""Bus plumbing, device side against rig side, for each bus kind (UART, I2C, SPI, Pin, ADC)."""

import time
from pathlib import Path

import pytest
import serial

from tools.device import DeviceExecError
from tools.rig.client import RigClientError


@pytest.fixture
def dev(vdevice, device):
    # The session's connection: the port is opened exclusively, as mpremote opens it.
    return device


@pytest.fixture
def rig(vdevice):
    attached = []
    client = vdevice.rig

    class Rig:
        def attach(self, bus, model, **where):
            result = client.attach(bus, model, **where)
            attached.append(result["name"])
            return result

        def __getattr__(self, name):
            return getattr(client, name)

    yield Rig()
    for name in attached:
        client.detach(name)


def test_uart_transfer_takes_its_wire_time(dev, rig):
    rig.attach("uart1", "loopback")
    baud, n = 9600, 480
    # 8N1: 10 bits a character; through a TX-RX jumper the last byte is back after n of them.
    dev.exec("import board, time\nu = board.buses.fingerprint_uart()\nu.init(baudrate=%d)\n"
             "u.read()\ndata = bytes(i & 0xff for i in range(%d))" % (baud, n))
    out = dev.exec("t = time.ticks_us()\nu.write(data)\ngot = b''\n"
                   "while len(got) < len(data) and time.ticks_diff(time.ticks_us(), t) < 3_000_000:\n"
                   "    got += u.read(len(data) - len(got)) or b''\n"
                   "print(time.ticks_diff(time.ticks_us(), t), got == data)")
    elapsed_us, same = out.split()
    assert same == "True", out
    expected = n * 10 / baud * 1e6
    assert expected * 0.97 < int(elapsed_us) < expected * 1.15, (elapsed_us, expected)


def test_uart_model_is_also_on_its_pty(vdevice, rig):
    pty = rig.attach("uart1", "loopback")["pty"]
    assert (vdevice.state_dir / "rig" / "loopback.tty").resolve() == Path(pty)
    with serial.Serial(str(vdevice.state_dir / "rig" / "loopback.tty"), 19200, timeout=2) as port:
        started = time.monotonic()
        port.write(b"A" * 192)
        echoed = port.read(192)
        elapsed = time.monotonic() - started
    assert echoed == b"A" * 192
    expected = 192 * 10 / 19200  # 0.1 s at the baud rate the host software chose
    assert expected * 0.95 < elapsed < expected + 0.1, elapsed


def test_i2c_reads_and_writes_a_model(dev, rig):
    rig.attach("i2c0", "at24c02", addr=0x50)
    dev.exec("import board\ni2c = board.buses.i2c()")
    assert 0x50 in dev.eval("i2c.scan()")
    dev.exec("i2c.writeto_mem(0x50, 0x10, b'pocket')")
    assert dev.eval("i2c.readfrom_mem(0x50, 0x10, 6)") == b"pocket"
    # The rig's side saw the same: the pointer moved past the six bytes read.
    assert rig.call("model", name="at24c02")["pointer"] == 0x16
    # A page write wraps inside its 8-byte page, as the real chip does.
    dev.exec("i2c.writeto_mem(0x50, 0x06, b'abcd')")
    assert dev.eval("i2c.readfrom_mem(0x50, 0x00, 8)") == b"cd\xff\xff\xff\xffab"


def test_i2c_nack_for_absent_address(dev, rig):
    with pytest.raises(DeviceExecError, match=r"OSError: \[Errno 19\] ENODEV"):
        dev.exec("import board\nboard.buses.i2c().writeto(0x51, b'x')")


def test_spi_carries_dc_and_chip_select(dev, rig):
    rig.attach("spi1", "probe", cs="display_cs", dc="display_dc")
    dev.exec("import board\nfrom board import handheld as h\nspi = board.buses.display_spi()\n"
             "cs = board.buses.pin(h.PIN_DISPLAY_CS, board.buses.machine.Pin.OUT, value=1)\n"
             "dc = board.buses.pin(h.PIN_DISPLAY_DC, board.buses.machine.Pin.OUT, value=0)\n"
             "cs(0); dc(0); spi.write(b'\\x2a'); dc(1); spi.write(b'\\x00\\x10')\n"
             "back = spi.read(2, 0x0f)\ncs(1)\nspi.write(b'\\x99')")
    log = rig.call("model", name="probe")["transfers"]
    # The write with CS high went to nobody; MISO floated high then.
    assert log == [{"dc": 0, "data": "2a"}, {"dc": 1, "data": "0010"}, {"dc": 1, "data": "0f0f"}], log
    assert dev.eval("back") == b"\xf0\xf0"


def test_pins_both_ways_and_irq(dev, rig):
    dev.exec("import board, time\nkey = board.buses.standby_key()\nedges = []\n"
             "key.irq(lambda p: edges.append(p.value()), trigger=key.IRQ_FALLING)")
    assert dev.eval("key.value()") == 1
    rig.set_pin("standby_key", 0)
    assert dev.eval("key.value()") == 0
    # The edge reaches the handler as a soft IRQ.
    dev.exec("for _ in range(100):\n    if edges: break\n    time.sleep_ms(5)")
    assert dev.eval("edges") == [0]
    rig.set_pin("standby_key", None)  # released: the pull-up wins again
    assert dev.eval("key.value()") == 1
    # The device drives a line; the rig sees it.
    dev.exec("from board import handheld as h\nrst = board.buses.pin(h.PIN_NFC_RESET, board.buses.machine.Pin.OUT, value=0)")
    assert rig.call("pin", pin="nfc_reset")["level"] == 0
    dev.exec("rst(1)")
    assert rig.call("pin", pin="nfc_reset")["level"] == 1


def test_adc_reads_the_voltage_the_rig_sets(dev, rig):
    rig.call("set_adc", pin="battery_sense", volts=1.95)
    assert dev.eval("__import__('board').buses.battery_adc().read_uv()") == 1_950_000


def test_control_api_errors_are_clear(rig):
    with pytest.raises(RigClientError, match="unknown command"):
        rig.call("levitate")
    with pytest.raises(RigClientError, match="is a uart model, i2c0 is a i2c bus"):
        rig.attach("i2c0", "loopback")
    with pytest.raises(RigClientError, match="no pin 'nope'"):
        rig.call("pin", pin="nope")


def test_diag_reports_a_flat_battery(dev, rig):
    rig.call("set_adc", pin="battery_sense", volts=1.5)  # 3.0 V at the cell
    try:
        out = dev.exec("import diag\ndiag.report()")
        assert "battery              FAULT 3000 mV (0%)" in out, out
        assert "-> charge the battery" in out, out
    finally:
        rig.call("set_adc", pin="battery_sense", volts=1.95)
    assert "battery              ok    3900 mV (63%)" in dev.exec("diag.report()")


def test_uart_works_under_asyncio(dev, rig):
    # Drivers are asyncio throughout: the UART must be awaitable as a stream, and a reader
    # must wake when bytes arrive, not by polling.
    rig.attach("uart1", "loopback")
    out = dev.exec(
        "import asyncio, board, time\n"
        "u = board.buses.fingerprint_uart()\nu.init(baudrate=57600)\nu.read()\n"
        "async def main():\n"
        "    reader, writer = asyncio.StreamReader(u), asyncio.StreamWriter(u, {})\n"
        "    writer.write(b'EF01' * 8)\n"
        "    await writer.drain()\n"
        "    t = time.ticks_ms()\n"
        "    got = await asyncio.wait_for_ms(reader.readexactly(32), 1000)\n"
        "    return got, time.ticks_diff(time.ticks_ms(), t)\n"
        "got, ms = asyncio.run(main())\nprint(got == b'EF01' * 8, ms)")
    same, ms = out.split()
    assert same == "True", out
    assert int(ms) < 100, out  # 32 bytes at 57600 baud: 5.6 ms of wire time


def test_i2c_transfer_takes_its_wire_time(dev, rig):
    rig.attach("i2c0", "at24c02", addr=0x50)
    n = 50
    dev.exec("import board, time\ni2c = board.buses.i2c()\ni2c.init(freq=100_000)")
    try:
        us = int(dev.exec("t = time.ticks_us()\nfor _ in range(%d):\n    i2c.writeto(0x50, bytes(17))\n"
                          "print(time.ticks_diff(time.ticks_us(), t))" % n)) / n
    finally:
        dev.exec("i2c.init(freq=400_000)")
    wire = (2 + 9 * 18) / 100_000 * 1e6  # START, address and 17 bytes of 9 clocks, STOP: 1640 us
    assert wire <= us < wire * 1.3, (us, wire)


def test_pwm_clock_reaches_the_rig(dev, vdevice):
    # The contact slot's card clock: LEDC on the ESP32, machine.PWM here.
    dev.exec("import board\nfrom board import handheld as h\n"
             "clk = board.buses.machine.PWM(board.buses.pin(h.PIN_CARD_CLK, board.buses.machine.Pin.OUT), "
             "freq=4_000_000, duty_u16=32768)")
    assert vdevice.rig.call("pin", pin="card_clk")["pwm"] == [4_000_000, 32768]
    dev.exec("clk.freq(1_000_000)")
    assert vdevice.rig.call("pin", pin="card_clk")["pwm"] == [1_000_000, 32768]
    dev.exec("clk.deinit()")
    assert vdevice.rig.call("pin", pin="card_clk")["pwm"] == [0, 0]
