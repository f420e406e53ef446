"""The rig's side of each bus: wire timing, addressing and the models attached to it.

A model is the chip at the far end of a bus. What a model implements, by bus kind:
  UART  receive(data)             bytes that arrived from the host (after their wire time);
        it answers through port.send(data), which paces the bytes at the host's baud rate.
  I2C   i2c_write(data, stop) -> number of bytes acknowledged (fewer = NACK at that byte)
        i2c_read(n) -> n bytes
  SPI   spi_transfer(data) -> bytes clocked out on MISO (same length), or None for 0xFF
Models that care about pins (chip select, reset, interrupt lines) are given the PinBank.
"""

import asyncio

# A character on an asynchronous serial line: start bit, data bits, parity bit, stop bits.
def char_bits(bits=8, parity=None, stop=1):
    return 1 + bits + (0 if parity is None else 1) + stop


def readable_at(char_time, baud):
    """Whether a receiver at baud (8N1) reads characters sent with char_time: a UART samples
    each bit mid-way from the start bit's edge, so a few percent of rate error is tolerated, and
    a longer character (8N2, parity) reads too (its extra bits look like idle line)."""
    return 0.97 <= char_time * baud / 10 <= 1.13


class Line:
    """One direction of a serial line: each byte is delivered when its last bit has arrived,
    with the character time it was sent at and, when the sender cannot tell whether its rate
    changed before or after it sent them, the earlier one (deliver(data, char_time, earlier))."""

    def __init__(self, deliver):
        self.deliver = deliver
        self.free_at = 0.0

    def send(self, data, char_time, earlier=None):
        loop = asyncio.get_running_loop()
        start = max(loop.time(), self.free_at)
        # Deliver in chunks of about a millisecond of wire time: a reader sees bytes trickle
        # in as on a real line, without one timer per byte at high rates.
        chunk = max(1, int(0.001 / char_time))
        for i in range(0, len(data), chunk):
            part = data[i:i + chunk]
            loop.call_at(start + (i + len(part)) * char_time, self.deliver, part, char_time, earlier)
        self.free_at = start + len(data) * char_time


class UartPort:
    """A UART between the device and one model, optionally also reachable from a pty."""

    kind = "uart"

    def __init__(self, name):
        self.name = name
        self.baud = 115200
        self.char_bits = char_bits()
        self.model = None
        self.device = None  # asyncio writer of the device's connection
        self.hosts = {}  # host name -> (Line towards it, its char_time function)
        # The model's TX goes to the host that spoke to it last: the device, or host software
        # on the pty. One wire, two connectors; only one is in use at a time.
        self.active = "device"
        self.to_model = Line(self._deliver_to_model)
        # The character time the bytes being delivered to the model were sent at (a host may
        # change its rate while earlier bytes are still on the wire: judged at their own rate),
        # and the earlier rate they may have been sent at instead, or None (see tools/rig/pty.py).
        self.rx_char_time = self.char_time()
        self.rx_earlier = None
        self.received = 0
        self.sent = 0

    def char_time(self):
        return self.char_bits / self.baud

    def configure(self, baud, bits, parity, stop):
        self.baud = baud
        self.char_bits = char_bits(bits, parity, stop)

    def from_host(self, host, data, char_time=None, earlier=None):
        """Bytes a host ("device" or "pty") put on the line, at the rate the host had when it
        sent them (char_time; by default its rate now; earlier: see Line)."""
        self.active = host
        self.to_model.send(data, char_time or self.hosts[host][1](), earlier)

    def _deliver_to_model(self, data, char_time, earlier):
        self.received += len(data)
        self.rx_char_time, self.rx_earlier = char_time, earlier
        if self.model is not None:
            self.model.receive(data)

    def send(self, data):
        """The model's transmitter, towards the active host at its rate (lost if none)."""
        self.sent += len(data)
        if self.active in self.hosts:
            line, char_time = self.hosts[self.active]
            line.send(data, char_time())

    def echo(self, data):
        """Bytes a host sent, heard back by it: on a one-wire half-duplex line (ISO 7816's I/O)
        the sender's receiver sees each character as it puts it on the wire. They arrive here
        after their wire time already, so they go back at once, at the rate they were sent at,
        not paced a second time ahead of the model's answer."""
        if self.active in self.hosts:
            self.hosts[self.active][0].deliver(data, self.rx_char_time, self.rx_earlier)

    def connect_device(self, writer):
        self.device = writer
        self.hosts["device"] = (Line(lambda data, _char_time, _earlier: writer.write(data)), self.char_time)

    def disconnect_device(self):
        self.device = None
        self.hosts.pop("device", None)

    def status(self):
        return {"baud": self.baud, "model": self.model and self.model.name,
                "device_connected": self.device is not None,
                "bytes_to_model": self.received, "bytes_from_model": self.sent}


class I2cBus:
    kind = "i2c"

    def __init__(self, name):
        self.name = name
        self.freq = 100000
        self.devices = {}

    # The transfer's wire time is spent by the device side (board/sim.py), which knows when the
    # transfer began to the microsecond; an asyncio sleep here would round it up to milliseconds.

    def write(self, addr, data, stop):
        model = self.devices.get(addr)
        if model is None:
            return None
        return model.i2c_write(bytes(data), stop)

    def read(self, addr, n):
        model = self.devices.get(addr)
        if model is None:
            return None
        data = bytes(model.i2c_read(n))
        assert len(data) == n, "%s returned %d bytes for a read of %d" % (model.name, len(data), n)
        return data

    def status(self):
        return {"freq": self.freq, "devices": {"0x%02x" % a: m.name for a, m in sorted(self.devices.items())}}


class SpiBus:
    """SPI: the device whose chip-select pin is low gets the bytes (and the DC line, via pins)."""

    kind = "spi"

    def __init__(self, name, pins):
        self.name = name
        self.pins = pins
        self.baud = 1000000
        self.devices = {}  # chip-select GPIO -> model
        self.bytes = 0

    def transfer(self, data):
        self.bytes += len(data)
        selected = [m for cs, m in self.devices.items() if self.pins.level(cs) == 0]
        if len(selected) != 1:  # nobody (or a bus fight) on MISO: the line floats high
            return b"\xff" * len(data)
        out = selected[0].spi_transfer(bytes(data))
        return b"\xff" * len(data) if out is None else bytes(out)

    def status(self):
        return {"baud": self.baud, "bytes": self.bytes,
                "devices": {"cs=%d" % cs: m.name for cs, m in sorted(self.devices.items())}}


class Pin:
    __slots__ = ("mode", "pull", "out", "external", "trigger")

    def __init__(self):
        self.mode = None  # None (not configured), "in", "out", "open_drain"
        self.pull = None  # None, "up", "down"
        self.out = 0
        self.external = None  # level driven from outside the ESP32 (a key, a chip), or None
        self.trigger = 0  # IRQ_RISING | IRQ_FALLING bits the device asked for


IRQ_FALLING = 1  # machine.Pin.IRQ_FALLING on the ESP32
IRQ_RISING = 2


class PinBank:
    """The GPIOs: what the device drives, what the outside drives, pulls, and edges."""

    def __init__(self):
        self.pins = {}
        self.adc_uv = {}  # GPIO -> microvolts at the ADC input
        self.pwm = {}  # GPIO -> (frequency in Hz, duty out of 65535): a clock the device drives
        self.irq_writers = set()
        self.watchers = []  # callables (gpio, level) for models that watch lines

    def pin(self, n):
        if n not in self.pins:
            self.pins[n] = Pin()
        return self.pins[n]

    def level(self, n):
        p = self.pin(n)
        if p.mode == "out" or (p.mode == "open_drain" and p.out == 0):
            return p.out
        if p.external is not None:
            return p.external
        return 0 if p.pull == "down" else 1 if p.pull == "up" or p.mode == "open_drain" else 0

    def _changing(self, n, change):
        before = self.level(n)
        change(self.pin(n))
        after = self.level(n)
        if after != before:
            self._edge(n, after)

    def _edge(self, n, level):
        trigger = self.pin(n).trigger
        if trigger & (IRQ_RISING if level else IRQ_FALLING):
            for w in list(self.irq_writers):
                w.write(bytes((n, level)))
        for watch in self.watchers:
            watch(n, level)

    def configure(self, n, mode, pull, value):
        def change(p):
            p.mode, p.pull = mode, pull
            if value is not None:
                p.out = value
        self._changing(n, change)

    def drive(self, n, value):
        """The device writes a level."""
        self._changing(n, lambda p: setattr(p, "out", value))

    def set_external(self, n, value):
        """The outside world drives the line (None releases it)."""
        self._changing(n, lambda p: setattr(p, "external", value))

    def set_trigger(self, n, trigger):
        self.pin(n).trigger = trigger

    def status(self):
        return {str(n): {"mode": p.mode, "pull": p.pull, "level": self.level(n), "external": p.external}
                for n, p in sorted(self.pins.items())}
