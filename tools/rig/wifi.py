"""The handheld's radio (the ESP32's WLAN) and a Wi-Fi access point model, its only route out.

The radio is a "bus" of its own (`wlan0`): board/sim.py's WLAN opens it with the hello
`wlan 0` and sends request frames (op, JSON payload) answered with JSON:

| op | payload | answer |
|---|---|---|
| `S` | — | scan: `[[ssid, rssi, secured], ...]` of the networks in range (none while the AP is down) |
| `C` | `[ssid, key]` | — (association starts; status() says how it ends, after ASSOCIATE_S) |
| `D` | — | — (disassociated) |
| `Q` | — | `{"status", "ssid", "rssi", "ip", "route"}`: the station as the ESP-IDF reports it, and
        the AP's forwarding address `[host, port]` |

Status values are the ESP-IDF's, as MicroPython's network module exposes them (STAT_*).

The access point is also the device's path to the outside: a TCP forwarder on 127.0.0.1 (its
`route`, fixed for the model's life) to a configured target (the bank host). It listens only
while the AP is up, forwards only for an associated station, and cuts every forwarded
connection when it goes down, so "Wi-Fi off" is real for the device's sockets.

Actions (control API `do`, name `wifi`):
    up / down                       the AP's power
    networks networks=[{"ssid", "password", "rssi"}, ...]   what it radiates (returns them)
    target host=127.0.0.1 port=N    where forwarded connections go (the bank host)
    rssi ssid=.. rssi=-70           a network's signal strength
    cut_after_up                    down as soon as the device's next data has been passed on
                                    (a link lost mid-transaction: the bank got the request, its
                                    answer has nowhere to go)
    latency ms=N                    what comes from the bank held N ms before it is passed on (a
                                    slow or congested route; 0: none)
"""

import asyncio
import json
import socket

from .models import Model

# ESP-IDF station status codes (MicroPython network.STAT_*).
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202

ASSOCIATE_S = 0.3  # association, WPA2 handshake and DHCP, shortened
STATION_IP = "192.168.4.2"
NETMASK = "255.255.255.0"
GATEWAY = "192.168.4.1"

DEFAULT_NETWORKS = ({"ssid": "PocketNet", "password": "correct horse", "rssi": -58},)

OK, ERROR = 0, 2  # the bus protocol's status bytes (rig.py)


class WlanRadio:
    """The ESP32's Wi-Fi radio as a rig bus: at most one access point model "in range"."""

    kind = "wlan"

    def __init__(self, name):
        self.name = name
        self.model = None
        self.requests = 0
        self.alone = STAT_IDLE  # the station's status with no access point in range

    async def request(self, op, payload):
        """One device request -> (status byte, JSON answer bytes)."""
        self.requests += 1
        args = json.loads(payload) if payload else None
        if op == "S":
            answer = self.model.scan() if self.model else []
        elif op == "C":
            self.alone = STAT_NO_AP_FOUND
            answer = self.model.associate(*args) if self.model else None
        elif op == "D":
            self.reset()
            answer = None
        elif op == "Q":
            answer = self.model.station() if self.model else {
                "status": self.alone, "ssid": None, "rssi": None, "ip": None, "route": None}
        else:
            return ERROR, b"unknown op"
        return OK, json.dumps(answer).encode()

    def reset(self):
        """The station leaves (disconnect(), or the device's radio went away: a reboot)."""
        self.alone = STAT_IDLE
        if self.model is not None:
            self.model.disassociate()

    def status(self):
        return {"model": self.model and self.model.name, "requests": self.requests}


class AccessPoint(Model):
    """A Wi-Fi access point (WPA2-PSK networks) with a TCP forwarder: the handheld's route out."""

    def __init__(self, radio=None):
        self.radio = radio
        self.up = True
        self.networks = [dict(n) for n in DEFAULT_NETWORKS]
        self.target = None  # (host, port) of the forwarded connections
        self.sta_status = STAT_IDLE
        self.sta_ssid = None
        self.forwarded = set()  # (device side, bank side) writers of each forwarded connection
        self.cut_armed = False
        self.latency_s = 0.0  # what the bank sends is held this long (do_latency)
        self.connections = 0
        self.refused = 0
        self.bytes_up = self.bytes_down = 0
        self._server = None
        self._listener = None
        self.route = None
        self._listen()

    # ---- the radio side -------------------------------------------------------------------

    def _network(self, ssid):
        return next((n for n in self.networks if n["ssid"] == ssid), None) if self.up else None

    def scan(self):
        if not self.up:
            return []
        return [[n["ssid"], n["rssi"], bool(n.get("password"))] for n in self.networks]

    def associate(self, ssid, key):
        self._drop_station(STAT_CONNECTING)
        self.sta_ssid = ssid
        self._later(ASSOCIATE_S, self._associated, ssid, key)

    def _associated(self, ssid, key):
        if self.sta_ssid != ssid or self.sta_status != STAT_CONNECTING:
            return  # disassociated or asked for another network meanwhile
        network = self._network(ssid)
        if network is None:
            self.sta_status = STAT_NO_AP_FOUND
        elif (network.get("password") or "") != (key or ""):
            self.sta_status = STAT_WRONG_PASSWORD
        else:
            self.sta_status = STAT_GOT_IP

    def disassociate(self):
        self._drop_station(STAT_IDLE)
        self.sta_ssid = None

    def _drop_station(self, status):
        self.sta_status = status
        self._cut()

    def station(self):
        network = self._network(self.sta_ssid) if self.sta_status == STAT_GOT_IP else None
        return {"status": self.sta_status, "ssid": self.sta_ssid,
                "rssi": network["rssi"] if network else None,
                "ip": [STATION_IP, NETMASK, GATEWAY, GATEWAY] if network else None,
                "route": list(self.route) if self.route else None}

    # ---- actions -------------------------------------------------------------------------

    def do_down(self):
        """Power off: the station loses its beacon, forwarded connections are cut, none accepted."""
        self.up = False
        if self.sta_status in (STAT_GOT_IP, STAT_CONNECTING):
            self._drop_station(STAT_BEACON_TIMEOUT)
        self._close_listener()
        return self.status()

    def do_up(self):
        self.up = True
        self._listen()
        return self.status()

    def do_networks(self, networks=None):
        if networks is not None:
            self.networks = [{"ssid": n["ssid"], "password": n.get("password") or "", "rssi": int(n.get("rssi", -60))}
                             for n in networks]
            if self.sta_status == STAT_GOT_IP and self._network(self.sta_ssid) is None:
                self._drop_station(STAT_BEACON_TIMEOUT)
        return [{"ssid": n["ssid"], "rssi": n["rssi"], "secured": bool(n["password"])} for n in self.networks]

    def do_rssi(self, ssid, rssi):
        network = next(n for n in self.networks if n["ssid"] == ssid)
        network["rssi"] = int(rssi)
        return self.do_networks()

    def do_target(self, host, port):
        self.target = (host, int(port))
        return self.status()

    # ---- the forwarder -------------------------------------------------------------------

    def _listen(self):
        # The same port across down/up (the route the device was told stays valid).
        if self._listener is not None or self.detached:
            return
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.route[1] if self.route else 0))
        sock.listen(8)
        sock.setblocking(False)
        self._listener = sock
        self.route = sock.getsockname()
        loop = self._loop()
        if loop is not None:
            self._server = loop.create_task(asyncio.start_server(self._forward, sock=sock))

    def _close_listener(self):
        # Closed at once, so that a connect() from now on is refused.
        task, self._server = self._server, None
        if task is not None and task.done():
            task.result().close()  # closes the listening socket too
        elif task is not None:
            task.cancel()  # not serving yet
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def do_cut_after_up(self):
        self.cut_armed = True
        return self.status()

    def do_latency(self, ms):
        self.latency_s = max(0.0, float(ms) / 1000)
        return self.status()

    def _cut(self):
        # The station's end is reset (its link is gone); the bank's sees the connection end.
        for device_side, bank_side in list(self.forwarded):
            device_side.transport.abort()
            bank_side.close()
        self.forwarded.clear()

    async def _forward(self, reader, writer):
        if not self.up or self.sta_status != STAT_GOT_IP or self.target is None:
            self.refused += 1
            writer.transport.abort()  # no route: the connection is reset
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self.refused += 1
            writer.transport.abort()
            return
        self.connections += 1
        pair = (writer, up_writer)
        self.forwarded.add(pair)
        await asyncio.gather(self._pipe(reader, up_writer, "bytes_up"), self._pipe(up_reader, writer, "bytes_down"))
        self.forwarded.discard(pair)

    async def _pipe(self, reader, writer, counter):
        try:
            while data := await reader.read(65536):
                if counter == "bytes_down" and self.latency_s:
                    await asyncio.sleep(self.latency_s)
                setattr(self, counter, getattr(self, counter) + len(data))
                writer.write(data)
                await writer.drain()
                if self.cut_armed and counter == "bytes_up":
                    self.cut_armed = False
                    self.do_down()
            writer.close()  # an orderly end on one side is passed on
        except (ConnectionError, OSError):
            writer.transport.abort()

    def _gone(self):
        super()._gone()
        self._cut()
        self._close_listener()

    def status(self):
        return {"up": self.up, "networks": self.do_networks(), "target": list(self.target) if self.target else None,
                "route": list(self.route) if self.route else None, "station": self.station(),
                "latency_ms": round(self.latency_s * 1000),
                "open": len(self.forwarded), "connections": self.connections, "refused": self.refused,
                "bytes_up": self.bytes_up, "bytes_down": self.bytes_down}
