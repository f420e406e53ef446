"""The rig: the CPython side of the virtual handheld's buses, and its control API.

Two loopback TCP servers:
  bus      board/sim.py connects here, one connection per bus object (tools/rig/PROTOCOL.md)
  control  JSON lines, request/response, for tests and tools (tools/rig/client.py)
"""

import ast
import asyncio
import functools
import json
import os
import socket
import struct
import sys
from pathlib import Path

from tools import emvcard

from .buses import I2cBus, PinBank, SpiBus, UartPort
from .models import KINDS, Trace, TracedApplet, model_class
from .pty import PtyHost
from .wifi import WlanRadio

ROOT = Path(__file__).resolve().parent.parent.parent

# Bus-protocol status bytes (board/sim.py has the same table).
OK = 0
NACK = 1
ERROR = 2

PARITY = {0: None, 1: "even", 2: "odd"}
PIN_MODES = {0: "in", 1: "out", 2: "open_drain"}
PULLS = {0: None, 1: "up", 2: "down"}


@functools.lru_cache(maxsize=None)
def pin_names():
    """GPIO numbers by name, read from the handheld's pin map (board/handheld.py, PIN_* consts)."""
    tree = ast.parse((ROOT / "board" / "handheld.py").read_text())
    names = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.startswith("PIN_") and isinstance(node.value, ast.Call)):
            names[node.targets[0].id[4:].lower()] = node.value.args[0].value
    return names


class RigError(Exception):
    pass


# The reference handheld's peripherals that have models: what `make run` attaches.
HANDHELD_PARTS = (
    ("spi1", "st7789", {"cs": "display_cs", "dc": "display_dc", "name": "display"}),
    ("i2c0", "ft6336", {"addr": 0x38, "name": "touch"}),
    ("uart1", "r503", {"name": "r503"}),
    ("i2c0", "pn532", {"addr": 0x24, "name": "nfc"}),
    ("uart2", "iso7816", {"name": "card"}),  # the contact slot, empty until a card is inserted
    ("wlan0", "wifi", {"name": "wifi"}),  # an access point in range, the route to the bank
)


class Rig:
    def __init__(self, state_dir):
        self.state_dir = Path(state_dir)
        self.pty_dir = self.state_dir / "rig"
        # The simulated EMV cards keep their counters there, as a card's EEPROM does: a card
        # in the rig started again carries on with its ATC (a bank refuses one it has seen).
        emvcard.keep_in(self.state_dir / "cards")
        self.pins = PinBank()
        self.buses = {}
        self.ptys = {}
        self.pin_names = pin_names()
        self.commands = {}
        self.bus_addr = self.control_addr = None
        self.clients = set()  # open connections, closed with the rig
        self.servers = []
        self.trace = Trace()
        for name in ("ping", "status", "models", "attach", "detach", "pin", "set_pin", "set_adc",
                     "model", "do", "events"):
            self.command(name, getattr(self, "cmd_" + name))
        # A charged battery: 3.9 V, halved by the divider in front of the ADC.
        self.cmd_set_adc("battery_sense", 1.95)

    def command(self, name, handler):
        """Register a control-API command: handler(**args) -> JSON-able result (may be async)."""
        self.commands[name] = handler

    # ---- buses ---------------------------------------------------------------------------

    def bus(self, name):
        """The bus called name (uart1, i2c0, spi1, ...), created on first use."""
        if name not in self.buses:
            kind = name.rstrip("0123456789")
            if kind == "uart":
                self.buses[name] = UartPort(name)
            elif kind == "i2c":
                self.buses[name] = I2cBus(name)
            elif kind == "spi":
                self.buses[name] = SpiBus(name, self.pins)
            elif kind == "wlan":
                self.buses[name] = WlanRadio(name)
            else:
                raise RigError("no bus kind %r (uart<N>, i2c<N>, spi<N>, wlan<N>)" % kind)
        return self.buses[name]

    def gpio(self, pin):
        if isinstance(pin, int):
            return pin
        if isinstance(pin, str) and pin.isdigit():
            return int(pin)
        try:
            return self.pin_names[pin]
        except KeyError:
            raise RigError("no pin %r; names: %s" % (pin, ", ".join(sorted(self.pin_names))))

    async def start(self):
        self.pty_dir.mkdir(parents=True, exist_ok=True)
        bus_server = await asyncio.start_server(self._bus_client, "127.0.0.1", 0)
        control_server = await asyncio.start_server(self._control_client, "127.0.0.1", 0)
        self.servers = [bus_server, control_server]
        self.bus_addr = "127.0.0.1:%d" % bus_server.sockets[0].getsockname()[1]
        self.control_addr = "127.0.0.1:%d" % control_server.sockets[0].getsockname()[1]

    def close(self):
        for s in self.servers:
            s.close()
        for writer in list(self.clients):
            writer.close()
        for host in self.ptys.values():
            host.close()

    # ---- the bus protocol ----------------------------------------------------------------

    async def _bus_client(self, reader, writer):
        self.clients.add(writer)
        # Answers go out at once: the device waits for each (no Nagle delay).
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            hello = (await reader.readline()).decode().split()
            if not hello:
                return
            try:
                if hello[0] == "irq":
                    handler, bus = self._serve_irq, None
                elif hello[0] == "pins":
                    handler, bus = self._serve_pins, None
                elif hello[0] == "control":  # the control API for code on the device (its tests)
                    handler, bus = self._serve_control, None
                else:
                    bus = self.bus(hello[0] + hello[1])
                    handler = getattr(self, "_serve_" + bus.kind)
            except (RigError, IndexError) as e:
                writer.write(("error %s\n" % (e or "bad hello")).encode())
                return
            writer.write(b"ok\n")
            await handler(bus, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            # A model or the rig itself failed: say so, and hang up on the device (it sees the
            # connection end) rather than answer with anything that is not a frame.
            import traceback

            print("rig: %s connection failed:\n%s" % (" ".join(hello), traceback.format_exc()), file=sys.stderr, flush=True)
        finally:
            self.clients.discard(writer)
            writer.close()

    async def _serve_irq(self, _, reader, writer):
        self.pins.irq_writers.add(writer)
        try:
            await reader.read()  # until the device goes away
        finally:
            self.pins.irq_writers.discard(writer)

    @staticmethod
    async def _frames(reader):
        while True:
            head = await reader.readexactly(3)
            yield head[0:1].decode(), await reader.readexactly(struct.unpack(">H", head[1:])[0])

    @staticmethod
    def _reply(writer, status, payload=b""):
        writer.write(struct.pack(">BH", status, len(payload)) + payload)

    async def _serve_uart(self, port, reader, writer):
        port.connect_device(writer)
        try:
            async for op, payload in self._frames(reader):
                if op == "C":
                    baud, bits, parity, stop = struct.unpack(">IBBB", payload)
                    port.configure(baud, bits, PARITY[parity], stop)
                elif op == "D":
                    port.from_host("device", payload)
        finally:
            port.disconnect_device()

    async def _serve_i2c(self, bus, reader, writer):
        async for op, payload in self._frames(reader):
            if op == "F":
                bus.freq = struct.unpack(">I", payload)[0]
                self._reply(writer, OK)
            elif op == "S":
                self._reply(writer, OK, bytes(sorted(bus.devices)))
            elif op == "W":
                acks = bus.write(payload[0], payload[2:], bool(payload[1]))
                if acks is None or acks < len(payload) - 2:
                    self._reply(writer, NACK)
                else:
                    self._reply(writer, OK, struct.pack(">H", acks))
            elif op == "R":
                data = bus.read(payload[0], struct.unpack(">H", payload[2:4])[0])
                self._reply(writer, NACK) if data is None else self._reply(writer, OK, data)
            else:
                self._reply(writer, ERROR, b"unknown op")

    async def _serve_spi(self, bus, reader, writer):
        async for op, payload in self._frames(reader):
            if op == "C":
                bus.baud = struct.unpack(">I", payload)[0]
                self._reply(writer, OK)
            elif op == "T":
                self._reply(writer, OK, bus.transfer(payload))
            elif op == "W":  # a write: MISO is not wanted back
                bus.transfer(payload)
                self._reply(writer, OK)
            else:
                self._reply(writer, ERROR, b"unknown op")

    async def _serve_wlan(self, radio, reader, writer):
        try:
            async for op, payload in self._frames(reader):
                self._reply(writer, *await radio.request(op, payload))
        finally:
            radio.reset()  # the device's radio went away (a reboot): its station leaves

    async def _serve_control(self, _, reader, writer):
        await self._control_client(reader, writer)

    async def _serve_pins(self, _, reader, writer):
        pins = self.pins
        async for op, payload in self._frames(reader):
            n = payload[0]
            if op == "M":
                mode, pull, value = payload[1], payload[2], payload[3]
                pins.configure(n, PIN_MODES[mode], PULLS[pull], None if value == 255 else value)
                self._reply(writer, OK)
            elif op == "V":
                pins.drive(n, payload[1])
                self._reply(writer, OK)
            elif op == "G":
                self._reply(writer, OK, bytes((pins.level(n),)))
            elif op == "I":
                pins.set_trigger(n, payload[1])
                self._reply(writer, OK)
            elif op == "A":
                self._reply(writer, OK, struct.pack(">I", pins.adc_uv.get(n, 0)))
            elif op == "P":
                pins.pwm[n] = struct.unpack(">IH", payload[1:7])
                for watch in pins.watchers:
                    watch(n, None)  # a clock started, changed or stopped
                self._reply(writer, OK)
            else:
                self._reply(writer, ERROR, b"unknown op")

    # ---- the control API -----------------------------------------------------------------

    async def _control_client(self, reader, writer):
        self.clients.add(writer)
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    handler = self.commands.get(request.get("cmd"))
                    if handler is None:
                        raise RigError("unknown command %r; commands: %s"
                                       % (request.get("cmd"), ", ".join(sorted(self.commands))))
                    args = request.get("args") or {}
                    result = handler(**args)
                    if asyncio.iscoroutine(result):
                        result = await result
                    response = {"ok": True, "result": result}
                except Exception as e:  # the caller gets the message; the rig carries on
                    response = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
                writer.write(json.dumps(response).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.clients.discard(writer)
            writer.close()

    def cmd_ping(self):
        return "pong"

    def cmd_status(self):
        return {"buses": {name: bus.status() for name, bus in sorted(self.buses.items())},
                "pins": self.pins.status(), "ptys": {n: h.path for n, h in self.ptys.items()}}

    def cmd_models(self):
        return {kind: {"bus": bus, "about": model_class(kind).__doc__.split("\n")[0]} for kind, (bus, _) in KINDS.items()}

    def cmd_attach(self, bus, model, addr=None, cs=None, dc=None, name=None):
        """Attach a model: UART (one per port, also on a pty), I2C at addr, SPI at chip select cs."""
        if model not in KINDS:
            raise RigError("no model %r; models: %s" % (model, ", ".join(sorted(KINDS))))
        kind, cls = KINDS[model][0], model_class(model)
        port = self.bus(bus)
        if port.kind != kind:
            raise RigError("%s is a %s model, %s is a %s bus" % (model, kind, bus, port.kind))
        instance = cls(port, dc=self.gpio(dc)) if kind == "spi" and dc is not None else cls(port)
        instance.name = name or model
        instance.pins = self.pins
        result = {"name": instance.name}
        if kind == "wlan":
            if port.model is not None:
                raise RigError("%s already has %s in range" % (bus, port.model.name))
            port.model = instance
        elif kind == "uart":
            if port.model is not None:
                raise RigError("%s already has %s attached" % (bus, port.model.name))
            port.model = instance
            host = PtyHost(port, self.pty_dir / (instance.name + ".tty"))
            self.ptys[instance.name] = host
            result["pty"] = host.path
            print("%s (%s on %s) on %s" % (instance.name, model, bus, host.path), flush=True)
        elif kind == "i2c":
            if addr is None:
                raise RigError("an I2C model needs addr")
            addr = int(addr, 0) if isinstance(addr, str) else addr
            if addr in port.devices:
                raise RigError("%s already has a device at 0x%02x" % (bus, addr))
            port.devices[addr] = instance
        else:
            if cs is None:
                raise RigError("an SPI model needs cs (its chip-select pin)")
            port.devices[self.gpio(cs)] = instance
        return result

    def _find(self, name):
        for bus in self.buses.values():
            models = [bus.model] if bus.kind in ("uart", "wlan") else list(bus.devices.values())
            for m in models:
                if m is not None and m.name == name:
                    return bus, m
        raise RigError("no model named %r attached" % name)

    def attach_handheld(self):
        """Attach the reference handheld's peripherals (HANDHELD_PARTS)."""
        return [self.cmd_attach(bus, model, **where)["name"] for bus, model, where in HANDHELD_PARTS]

    def cmd_detach(self, name):
        bus, model = self._find(name)
        if bus.kind == "uart":
            bus.model = None
            self.ptys.pop(name).close()
        elif bus.kind == "wlan":
            bus.model = None
        else:
            bus.devices = {k: m for k, m in bus.devices.items() if m is not model}
        model.detach()
        return None

    def cmd_model(self, name):
        """A model's own state (what it received, its registers, ...)."""
        return self._find(name)[1].status()

    def cmd_do(self, name, action, **args):
        """An action on a model: its do_<action>(**args) (a touch, a finger on the sensor)."""
        model = self._find(name)[1]
        method = getattr(model, "do_" + action, None)
        if method is None:
            actions = sorted(a[3:] for a in dir(model) if a.startswith("do_"))
            raise RigError("%s has no action %r; actions: %s" % (name, action, ", ".join(actions) or "none"))
        result = method(**args)
        self._trace_applets(model)
        return result

    def _trace_applets(self, model):
        # A card just placed in the NFC field (model.card.applet) or in the contact slot
        # (model.applet): its APDUs go to the trace from now on, unnoticed by the applet.
        for holder in (model, getattr(model, "card", None)):
            applet = getattr(holder, "applet", None)
            if applet is not None and not isinstance(applet, TracedApplet):
                holder.applet = TracedApplet(applet, model.name, self.trace)

    def cmd_events(self, since=0):
        """Trace events after number `since`: the APDUs the cards answered ({"next", "lost", "events"})."""
        return self.trace.since(int(since))

    def cmd_pin(self, pin):
        n = self.gpio(pin)
        p = self.pins.pin(n)
        return {"gpio": n, "level": self.pins.level(n), "mode": p.mode, "pull": p.pull, "external": p.external,
                "pwm": self.pins.pwm.get(n)}

    def cmd_set_pin(self, pin, level):
        """Drive a line from outside (a key, a chip); level None releases it."""
        self.pins.set_external(self.gpio(pin), None if level is None else int(bool(level)))
        return self.cmd_pin(pin)

    def cmd_set_adc(self, pin, volts):
        self.pins.adc_uv[self.gpio(pin)] = int(round(volts * 1e6))
        return None

    def write_state(self, extra=None):
        """Record where everything is, for clients: <state_dir>/rig.json."""
        state = {"bus": self.bus_addr, "control": self.control_addr, "pid": os.getpid()}
        state.update(extra or {})
        path = self.state_dir / "rig.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1) + "\n")
        tmp.replace(path)
        return state
