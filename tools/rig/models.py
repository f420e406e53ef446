"""Models of the chips at the far end of the buses that the bus plumbing itself needs.

The handheld's own chips (PN532, R503, FT6336U, ST7789, chip cards) get modules of their own
with the issues that bring their drivers; what is here are the instruments a bench has: a
jumper, a small EEPROM, a logic probe.
"""

import asyncio
import collections
import time


class Model:
    """Base of the models. Control-API actions on a model are its do_<action>(**args) methods
    (`{"cmd": "do", "args": {"name": ..., "action": ..., ...}}`).

    The rig hands every model the pin bank after constructing it (model.pins = bank); a model
    that watches or drives lines does its wiring in wire(bank), finding its GPIOs by the
    handheld's pin names with gpio()."""

    name = None
    _pins = None

    @property
    def pins(self):
        return self._pins

    @pins.setter
    def pins(self, bank):
        self._pins = bank
        if bank is not None:
            self.wire(bank)

    def wire(self, bank):
        pass

    # ---- timed behaviour: a model that answers later (processing time, RF time, pulses) ------

    def _loop(self):
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    detached = False

    def detach(self):
        """The rig took the model off its bus: from now on it does nothing (_gone cleans up)."""
        self.detached = True
        self._gone()

    def _attached(self):
        return not self.detached

    def _gone(self):
        """Detached: stop everything scheduled (models that drive lines release them too)."""
        for handle in list(self.__dict__.get("_timers", ())):
            handle.cancel()
        self.__dict__.get("_timers", set()).clear()

    def _later(self, delay, fn, *args):
        """fn(*args) after delay seconds while the model is attached; at once when no event loop
        runs (the model driven directly, as in its own tests). Returns the timer handle."""
        loop = self._loop()
        if loop is None:
            fn(*args)
            return None
        timers = self.__dict__.setdefault("_timers", set())

        def run():
            timers.discard(handle)
            if self._attached():
                fn(*args)
            else:
                self._gone()

        handle = loop.call_later(max(0.0, delay), run)
        timers.add(handle)
        return handle

    @staticmethod
    def gpio(name):
        from .rig import pin_names

        return pin_names()[name]

    def status(self):
        return {}


class Loopback(Model):
    """A jumper from TX to RX: every byte comes back, after its wire time both ways."""

    def __init__(self, port):
        self.port = port

    def receive(self, data):
        self.port.send(data)


class AT24C02(Model):
    """Microchip AT24C02: 256-byte I2C EEPROM, 8-byte pages, one-byte word address.

    A write sets the address pointer with its first byte, then stores bytes that wrap inside
    the 8-byte page; a read returns bytes from the pointer on, wrapping at the end."""

    PAGE = 8

    def __init__(self, port=None):
        self.memory = bytearray(b"\xff" * 256)
        self.pointer = 0

    def i2c_write(self, data, stop):
        if data:
            self.pointer = data[0]
            page = self.pointer & ~(self.PAGE - 1)
            for i, b in enumerate(data[1:]):
                self.memory[page + (self.pointer + i) % self.PAGE] = b
            if len(data) > 1:
                self.pointer = page + (self.pointer + len(data) - 1) % self.PAGE
        return len(data)

    def i2c_read(self, n):
        out = bytes(self.memory[(self.pointer + i) % 256] for i in range(n))
        self.pointer = (self.pointer + n) % 256
        return out

    def status(self):
        return {"pointer": self.pointer}


class SpiProbe(Model):
    """A logic probe on SPI: records each transfer with the level of the DC line (if given),
    and drives MISO with the complement of MOSI so that reads are checkable."""

    def __init__(self, port=None, dc=None):
        self.dc = dc
        self.log = []

    def spi_transfer(self, data):
        dc = self.pins.level(self.dc) if self.dc is not None else None
        self.log.append((dc, data.hex()))
        del self.log[:-64]
        return bytes(b ^ 0xFF for b in data)

    def status(self):
        return {"transfers": [{"dc": dc, "data": h} for dc, h in self.log]}


class Trace:
    """What the models saw, for viewers (the web simulator's APDU trace): a bounded list of
    events numbered from 1; the control API's `events since=N` returns those after N."""

    def __init__(self, size=1000):
        self.events = collections.deque(maxlen=size)
        self.seq = 0

    def add(self, source, kind, **data):
        self.seq += 1
        self.events.append(dict(data, seq=self.seq, time=time.time(), source=source, kind=kind))

    def since(self, n=0):
        events = [e for e in self.events if e["seq"] > n]
        # Events the list no longer holds, when the caller is further behind than its size.
        lost = (events[0]["seq"] - n - 1) if events else 0
        return {"next": self.seq, "lost": lost, "events": events}


class TracedApplet:
    """A card's applet seen through the trace: each APDU and its answer become an "apdu" event
    of source (the model's name); everything else is the applet's own."""

    def __init__(self, applet, source, trace):
        self._applet, self._source, self._trace = applet, source, trace

    def process(self, apdu):
        response = self._applet.process(apdu)
        self._trace.add(self._source, "apdu", command=bytes(apdu).hex(), response=bytes(response).hex())
        return response

    def __getattr__(self, name):
        return getattr(self._applet, name)


# Model kinds the control API can attach: kind -> (bus kind, "module:Class" in tools.rig).
# Each chip's model lives in a module of its own, imported when first attached.
KINDS = {
    "loopback": ("uart", "models:Loopback"),
    "at24c02": ("i2c", "models:AT24C02"),
    "probe": ("spi", "models:SpiProbe"),
    "ft6336": ("i2c", "ft6336:FT6336"),
    "r503": ("uart", "r503:R503"),
    "pn532": ("i2c", "pn532:PN532"),
    "pn532-hsu": ("uart", "pn532:PN532"),
    "st7789": ("spi", "st7789:ST7789"),
    "iso7816": ("uart", "iso7816:ChipCard"),
    "wifi": ("wlan", "wifi:AccessPoint"),
}


def model_class(kind):
    import importlib

    module, cls = KINDS[kind][1].split(":")
    return getattr(importlib.import_module("tools.rig." + module), cls)
