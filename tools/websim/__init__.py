"""The web simulator: the virtual handheld in a browser page (`python -m tools.websim`).

One asyncio process holds the virtual handheld (tools/vdevice's VDevice, with the handheld's
parts attached by the rig as `make run` does) and an aiohttp server on 127.0.0.1 that serves
the page (tools/websim/static: plain HTML/CSS/JS, nothing from elsewhere) and a websocket:

  server -> page  binary: a screen frame, when the ST7789 model's change counter moved (polled
                  every POLL_S): FRAME_HEAD (frame number u32, flags u8 (1 shown, 2 inverted,
                  4 BGR), 3 pad, the server's time in ms f64), then the panel's 240x320 RGB565
                  big-endian pixels, zlib-compressed (the page inflates them with the browser's
                  DecompressionStream). Raw RGB565 + deflate costs 0.7-1.8 ms and ~2 KB a
                  frame; a PNG by the model's rgb_rows() 60-115 ms for as many bytes
                  (python -m tools.websim.bench).
                  text: JSON {"type": "log" | "apdu" | "iso8583" | "state", ...}
  page -> server  JSON {"type": "touch", "action": "touch" | "move" | "release", "x", "y"} at
                  panel coordinates (the page scales them back from its zoom)

Controls are HTTP POSTs to /api/<control>, each one a control-API command run in-process
(the same handlers as the rig's JSON-lines port): cards, fingers, standby key, Wi-Fi, power.
The device's console output (what its REPL prints) is teed to the page; the REPL pty itself is
left alone, for mpremote. Traces never show a PIN (VERIFY data, DE52) and mask PANs (mask.py).

At start (serve), the demo (tools/demo.py): the bank state seeded if it holds no demo yet, and
a handheld whose vault has no owner yet provisioned and personalised (prepare_demo).
"""

import asyncio
import codecs
import json
import socket
import struct
import sys
import time
import zlib
from pathlib import Path

from aiohttp import WSMsgType, web

from tools.vdevice import VDevice

from . import mask

STATIC = Path(__file__).resolve().parent / "static"
POLL_S = 0.02  # screen and trace polling: a frame reaches the page within a poll of its drawing
FRAME_HEAD = struct.Struct("<IB3xd")
SHOWN, INVERTED, BGR = 1, 2, 4
CONSOLE_BACKLOG = 64 * 1024  # console bytes a newly opened page gets
TRACE_BACKLOG = 300  # trace entries a newly opened page gets
STANDBY_PRESS_S = 0.15  # a short press of the standby key
ENROLLED_DEFAULT = "owner-right-index"  # the finger the owner enrols, until the sensor holds one
UNKNOWN_FINGER = "stranger-thumb"


class WebsimError(Exception):
    pass


class TeeDevice(VDevice):
    """The virtual handheld, its console output also handed to listeners (the page's log)."""

    def __init__(self, *args, on_console=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_console = on_console

    def _to_host(self, data):
        super()._to_host(data)
        if self.on_console:
            self.on_console(data)


class LogTee:
    """The virtual handheld's own messages (stderr of the device, power cuts): to stderr and the page."""

    def __init__(self, sink):
        self.sink = sink

    def write(self, text):
        sys.stderr.write(text)
        self.sink(text.encode())

    def flush(self):
        sys.stderr.flush()


def card_choices():
    """The personalised test cards ("emv:<profile>", tools/emvcard) and the rig's other applets,
    with the PANs they carry (for masking): {name: [pan, ...]}, in the page's order: the demo
    bank's cards first (a newcomer's first tap pays), then the other profiles (faulty cards for
    trying failures), then the applets that are no bank card."""
    from tools import demo
    from tools.rig.pn532 import APPLETS

    cards = {}
    try:
        import tools.emvcard as emvcard
    except ImportError:
        emvcard = None
    if emvcard is not None:
        known = {profile: i for i, profile in enumerate(demo.CARDS)}
        for profile in sorted(emvcard.profile_names(), key=lambda p: (known.get(p, len(known)), p)):
            cards["emv:" + profile] = sorted(_pans(emvcard.load_profile(profile)))
    for name in sorted(APPLETS):
        cards.setdefault(name, [])
    return cards


def _pans(obj):
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "pan" and isinstance(value, str):
                yield value.rstrip("Ff")
            else:
                yield from _pans(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _pans(value)


class Simulator:
    def __init__(self, image, state_dir, heap, bank=None):
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.device = TeeDevice(image, state_dir, heap, on_console=self._console,
                                log=LogTee(self._console))
        self.rig = self.device.rig
        self.bank = bank  # tools.websim.bank.BankHost or None
        self.sockets = set()
        self.console = bytearray()
        self.traces = []  # JSON-able entries already masked, the last TRACE_BACKLOG
        self.cards = card_choices()
        self.pans = sorted({p for pans in self.cards.values() for p in pans})
        self.frame_seen = None
        self.frame_message = None
        self.frames_sent = 0
        self.frame_bytes = 0
        self.encode_s = 0.0
        self.tasks = []
        self.demo = None  # {"pin": the demo owner's PIN} once the handheld is the demo's

    # ---- the control API, in-process --------------------------------------------------------

    async def call(self, cmd, **args):
        """A control-API command (tools/rig/PROTOCOL.md), run by the rig's own handler."""
        handler = self.rig.commands.get(cmd)
        if handler is None:
            raise WebsimError("no control command %r" % cmd)
        result = handler(**args)
        return await result if asyncio.iscoroutine(result) else result

    def has_model(self, name):
        try:
            self.rig.cmd_model(name)
            return True
        except Exception:
            return False

    # ---- start, stop ------------------------------------------------------------------------

    async def start(self):
        await self.device.start()
        self.device.rig.attach_handheld()
        if self.bank is not None:
            await self.bank.start()
            if self.has_model("wifi") and self.bank.iso_port:
                await self.call("do", name="wifi", action="target", host="127.0.0.1", port=self.bank.iso_port)
        self.tasks = [asyncio.ensure_future(self._pump_frames()), asyncio.ensure_future(self._pump_apdus())]
        if self.bank is not None:
            self.tasks.append(asyncio.ensure_future(self._pump_iso8583()))

    async def close(self):
        for t in self.tasks:
            t.cancel()
        for ws in list(self.sockets):
            await ws.close()
        if self.bank is not None:
            await self.bank.close()
        await self.device.close()

    # ---- what the page is sent ----------------------------------------------------------------

    def _broadcast(self, message):
        for ws in list(self.sockets):
            if not ws.closed:
                asyncio.ensure_future(self._send(ws, message))

    @staticmethod
    async def _send(ws, message):
        try:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_str(message)
        except ConnectionError:
            pass

    def _console(self, data):
        self.console += data
        del self.console[:-CONSOLE_BACKLOG]
        text = self._utf8.decode(data)  # a "€" split across two chunks is kept whole
        if text:
            self._broadcast(json.dumps({"type": "log", "text": text}))

    def _trace(self, entry):
        self.traces = self.traces[-(TRACE_BACKLOG - 1):] + [entry]
        self._broadcast(json.dumps(entry))

    def encode_frame(self, frame):
        """The websocket message for a do_frame(pixels=True) answer."""
        import base64

        started = time.perf_counter()
        flags = ((SHOWN if frame["shown"] else 0) | (INVERTED if frame["inverted"] else 0)
                 | (BGR if frame["bgr"] else 0))
        body = zlib.compress(base64.b64decode(frame["rgb565"]), 6)
        self.encode_s += time.perf_counter() - started
        return FRAME_HEAD.pack(frame["frame"] & 0xFFFFFFFF, flags, time.time() * 1000) + body

    async def _pump_frames(self):
        while True:
            frame = await self.call("do", name="display", action="frame", since=self.frame_seen, pixels=True)
            if "rgb565" in frame:
                self.frame_seen = frame["frame"]
                self.frame_message = self.encode_frame(frame)
                if self.sockets:
                    self.frames_sent += 1
                    self.frame_bytes += len(self.frame_message)
                    self._broadcast(self.frame_message)
            await asyncio.sleep(POLL_S)

    async def _pump_apdus(self):
        since = 0
        while True:
            answer = await self.call("events", since=since)
            since = answer["next"]
            for event in answer["events"]:
                if event["kind"] == "apdu":
                    self._trace({"type": "apdu", "seq": event["seq"], "time": event["time"],
                                 "source": event["source"],
                                 "command": mask.apdu_command(event["command"], self.pans),
                                 "response": mask.mask_text(event["response"], self.pans)})
            await asyncio.sleep(POLL_S * 5)

    async def _pump_iso8583(self):
        since = 0
        while True:
            try:
                answer = await self.bank.trace(since)
            except Exception as e:  # the host went away, or has no trace: say so once, try later
                self.bank.trace_error = str(e) or type(e).__name__
                await asyncio.sleep(2)
                continue
            self.bank.trace_error = None
            since = answer["next"]
            for message in answer["messages"]:
                self._trace({"type": "iso8583", "time": message.get("time"), "dir": message.get("dir"),
                             "mti": message.get("mti"),
                             "fields": mask.iso8583_fields(message.get("fields", {}), self.pans)})
            await asyncio.sleep(POLL_S * 10)

    def state(self):
        """What the page's controls can do here (a control whose part is missing says so)."""
        bank = self.bank
        return {
            "type": "state",
            "cards": list(self.cards),
            "fingers": self._fingers(),
            "wifi": self.has_model("wifi"),
            "bank": None if bank is None else {"merchant_api": bank.merchant_url, "trace": bank.trace_error is None,
                                               "error": bank.error or bank.trace_error},
            "repl": self.device.repl_path,
            "demo": self.demo,
        }

    def _fingers(self):
        library = self.rig.cmd_model("r503")["library"]
        enrolled = sorted({name for name in library.values() if name and name != "?"})
        return {"enrolled": enrolled or [ENROLLED_DEFAULT], "unknown": UNKNOWN_FINGER}

    # ---- controls ---------------------------------------------------------------------------

    async def control(self, name, args):
        if name == "tap_card":
            return await self.call("do", name="nfc", action="place", applet=self._card(args))
        if name == "remove_card":
            return await self.call("do", name="nfc", action="remove")
        if name == "insert_card":
            return await self.call("do", name="card", action="insert", applet=self._card(args))
        if name == "eject_card":
            return await self.call("do", name="card", action="remove")
        if name == "finger":
            finger = args.get("finger") or ENROLLED_DEFAULT
            return await self.call("do", name="r503", action="place", finger=str(finger))
        if name == "lift_finger":
            return await self.call("do", name="r503", action="lift")
        if name == "standby":
            await self.call("set_pin", pin="standby_key", level=0)
            await asyncio.sleep(STANDBY_PRESS_S)
            return await self.call("set_pin", pin="standby_key", level=None)
        if name in ("wifi_on", "wifi_off"):
            if not self.has_model("wifi"):
                raise WebsimError("Wi-Fi is not available: the rig has no access-point model")
            return await self.call("do", name="wifi", action="up" if name == "wifi_on" else "down")
        if name == "power_cut":
            return await self.call("power_cut")
        if name == "merchant":
            if self.bank is None:
                raise WebsimError("no bank host: started with --no-bank, or tools.bank is not there")
            return await self.bank.payment_request(args)
        raise WebsimError("no control %r" % name)

    def _card(self, args):
        card = args.get("card")
        if card not in self.cards:
            raise WebsimError("no card %r; cards: %s" % (card, ", ".join(sorted(self.cards))))
        return card

    # ---- the web server -----------------------------------------------------------------------

    def app(self):
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/stats", self._stats)
        app.router.add_post("/api/{control}", self._control)
        app.router.add_static("/static/", STATIC)
        return app

    async def _index(self, request):
        return web.FileResponse(STATIC / "index.html")

    async def _state(self, request):
        return web.json_response(self.state())

    async def _stats(self, request):
        n = max(1, self.frames_sent)
        return web.json_response({"frames_sent": self.frames_sent, "bytes_per_frame": self.frame_bytes / n,
                                  "encode_ms_per_frame": self.encode_s * 1000 / n, "poll_ms": POLL_S * 1000})

    async def _control(self, request):
        try:
            args = await request.json() if request.can_read_body else {}
            result = await self.control(request.match_info["control"], args)
        except Exception as e:  # the page shows why; the simulator carries on
            return web.json_response({"ok": False, "error": "%s: %s" % (type(e).__name__, e)}, status=400)
        return web.json_response({"ok": True, "result": result})

    async def _ws(self, request):
        ws = web.WebSocketResponse(compress=False, heartbeat=30)  # frames are compressed already
        await ws.prepare(request)
        self.sockets.add(ws)
        try:
            await ws.send_str(json.dumps(self.state()))
            if self.console:
                await ws.send_str(json.dumps({"type": "log", "text": self.console.decode(errors="replace")}))
            for entry in self.traces:
                await ws.send_str(json.dumps(entry))
            if self.frame_message:
                await ws.send_bytes(self.frame_message)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._from_page(json.loads(msg.data))
        finally:
            self.sockets.discard(ws)
        return ws

    async def _from_page(self, message):
        if message.get("type") == "touch" and message.get("action") in ("touch", "move", "release"):
            args = {} if message["action"] == "release" else {"x": int(message["x"]), "y": int(message["y"])}
            try:
                await self.call("do", name="touch", action=message["action"], **args)
            except Exception as e:
                self._broadcast(json.dumps({"type": "error", "text": "touch: %s" % e}))


# Vault states (vault.describe()) of a handheld the demo sets up: no owner yet.
UNSET = ("BLANK", "FACTORY", "WIPED", "PROVISIONED")


async def prepare_demo(sim):
    """The handheld made the demo's if it has no owner yet (tools.demo.personalize over its
    REPL, then a reset: the application starts at its lock screen); sim.demo set when the
    handheld is the demo's. Returns what was done, for the terminal."""
    from tools import demo
    from tools.provision import inject

    def check():
        dev = demo.fresh(sim.device.repl_path)
        try:
            return inject.unit_state(dev)[2]
        finally:
            dev.close()

    state = await asyncio.to_thread(check)  # the loop carries on serving the rig meanwhile
    if state in UNSET:
        await asyncio.to_thread(demo.personalize, sim.device.repl_path, sim.bank.state_dir,
                                reprovision=state == "PROVISIONED")
        done = "the handheld (vault %s) personalised as the demo's" % state
    else:
        done = "the handheld's vault is %s: left as it is" % state
    await sim.call("reset")
    if state in UNSET or state == "PERSONALIZED":
        sim.demo = {"pin": demo.DEMO_PIN}
    return done


def start_over(args):
    """--reset: the bank state and the rig's cards' counters (tools/emvcard keep_in) removed, a
    fresh flash image built."""
    import shutil

    from tools import image

    shutil.rmtree(Path(args.state_dir) / "bank", ignore_errors=True)
    shutil.rmtree(Path(args.state_dir) / "cards", ignore_errors=True)
    image.build(args.image)


async def serve(args):
    """Run until interrupted: print the page's address (and the REPL's)."""
    import signal

    from tools import demo

    from .bank import BankHost

    # The page's port first: a port already taken is said at once, not after the whole start.
    try:
        listener = socket.create_server(("127.0.0.1", args.port))
    except OSError as e:
        raise OSError(e.errno, "the page's port %d on 127.0.0.1 is taken (%s): choose another with --port N"
                      " (make run WEB_PORT=N)" % (args.port, e.strerror)) from None
    if getattr(args, "reset", False):
        await asyncio.to_thread(start_over, args)
    bank = None if args.no_bank else BankHost.if_available(Path(args.state_dir))
    if bank is not None and not demo.seeded(bank.state_dir):
        await asyncio.to_thread(demo.seed, bank.state_dir)
        print("bank state seeded with the demo in %s" % bank.state_dir, flush=True)
    elif bank is not None and (added := await asyncio.to_thread(demo.complete, bank.state_dir)):
        print("bank state %s: merchant credentials added for %s" % (bank.state_dir, ", ".join(added)), flush=True)
    sim = Simulator(args.image, args.state_dir, args.heap, bank)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sim.device.stop)
    runner = None
    try:
        await sim.start()
        if bank is not None and bank.merchant_url:
            print("demo: %s" % await prepare_demo(sim), flush=True)
        runner = web.AppRunner(sim.app(), access_log=None)
        await runner.setup()
        site = web.SockSite(runner, listener)
        await site.start()
        port = listener.getsockname()[1]
        print("REPL on %s" % sim.device.repl_path, flush=True)
        if bank is None:
            print("bank host: not started (%s)" % ("--no-bank" if args.no_bank else "tools.bank is not there"),
                  flush=True)
        if sim.demo:
            print("demo owner PIN: %s (Locked -> PIN)" % sim.demo["pin"], flush=True)
        print("web simulator on http://127.0.0.1:%d/" % port, flush=True)
        await sim.device.exited.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        listener.close()
        await sim.close()
    return sim.device.failure
