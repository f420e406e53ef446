"""Wi-Fi: the station kept on the configured network, and its state for the status bar.

    w = wifi.Wifi()                       # board.wlan(), the network in /config/wifi.json
    asyncio.create_task(w.run())          # connects, watches, reconnects with backoff
    w.state, w.detail()                   # OFF / CONNECTING / CONNECTED (bars) / FAILED (reason)
    w.on_change = redraw                  # called with the manager on every change
    await w.wait_connected(15_000)
    wifi.scan(w.wlan)                     # [(ssid, rssi, secured)] in range, strongest first
    w.reconfigure(("Cafe", "latte"))      # the running manager leaves for another network
    await w.settled(20_000)               # True once it is on it; else w.reason says why

The network (SSID and password) is a plain config file, not a vault entry: the terminal must
join at boot, before the owner unlocks the vault (a reversal waits to be sent, a pushed request
may come), and the vault's owner entries need the owner's PIN, while its device entries are
only the issuer's provisioning items. The password guards the radio link only: everything
that crosses it is mutual TLS to the bank with DUKPT MACs and PIN encryption, so knowing it
gives nothing of a payment (the ESP-IDF keeps it in clear NVS as well). It is never logged.
"""

import json
import os
import time

import asyncio
import timeouts
from micropython import const

import board

CONFIG = "/config/wifi.json"

OFF = "off"
CONNECTING = "connecting"
CONNECTED = "connected"
FAILED = "failed"

# Why the last attempt failed, for the status bar.
WRONG_PASSWORD = "wrong password"
NO_AP = "network not found"
LOST = "signal lost"
TIMEOUT = "no answer from the network"
REFUSED = "connection refused"
NOT_CONFIGURED = "no network configured"

CONNECT_TIMEOUT_MS = const(15_000)  # association, WPA2 handshake and DHCP
POLL_MS = const(100)  # status polling while associating
WATCH_MS = const(1000)  # link check while connected
BACKOFF_FIRST_MS = const(1000)
BACKOFF_MAX_MS = const(60_000)
# RSSI (dBm) needed for 4, 3, 2 and 1 bars; below the last: 0 bars.
_BARS_DBM = (-55, -67, -75, -85)


def load(path=CONFIG):
    """(ssid, key) from the config file, or None if there is none."""
    try:
        with open(path) as f:
            config = json.load(f)
        return config["ssid"], config.get("key", "")
    except (OSError, ValueError, KeyError):
        return None


def save(ssid, key, path=CONFIG):
    """Store the network, atomically (a new file renamed over the old one)."""
    folder = path.rsplit("/", 1)[0]
    try:
        os.mkdir(folder)
    except OSError:
        pass  # exists
    with open(path + ".tmp", "w") as f:
        json.dump({"ssid": ssid, "key": key}, f)
    os.rename(path + ".tmp", path)


def forget(path=CONFIG):
    """No network any more (the file removed; none there is fine)."""
    try:
        os.remove(path)
    except OSError:
        pass


def scan(wlan=None):
    """The networks in range: [(ssid, rssi, secured)], strongest first, each SSID once (the
    strongest of its access points), hidden ones left out. Blocks while the radio listens (on
    the ESP32 about 2 s)."""
    wlan = wlan or board.wlan()
    wlan.active(True)
    best = {}
    for ssid, _, _, rssi, security, _ in wlan.scan():
        try:
            ssid = ssid.decode()
        except UnicodeError:
            continue  # not a name a person could choose on screen
        if ssid and (ssid not in best or rssi > best[ssid][1]):
            best[ssid] = (ssid, rssi, security != 0)
    return sorted(best.values(), key=lambda n: -n[1])


def bars(rssi):
    """Signal bars 0..4 for an RSSI in dBm."""
    n = 4
    for threshold in _BARS_DBM:
        if rssi >= threshold:
            return n
        n -= 1
    return 0


class Wifi:
    def __init__(self, wlan=None, network=None, connect_timeout_ms=CONNECT_TIMEOUT_MS,
                 backoff_first_ms=BACKOFF_FIRST_MS, backoff_max_ms=BACKOFF_MAX_MS):
        self.wlan = wlan or board.wlan()
        self.network = network or load()
        self.connect_timeout_ms = connect_timeout_ms
        self.backoff_first_ms = backoff_first_ms
        self.backoff_max_ms = backoff_max_ms
        self.state = OFF
        self.reason = None
        self.rssi = None
        self.failures = 0  # attempts failed in a row
        self.retry_ms = 0  # the wait before the next attempt
        self.on_change = None
        self.running = False  # run() is keeping the station connected
        self._changed = asyncio.Event()
        self._restart = asyncio.Event()  # reconfigure(): leave what run() is doing

    def _set(self, state, reason=None, rssi=None):
        if (state, reason, rssi) == (self.state, self.reason, self.rssi):
            return
        self.state, self.reason, self.rssi = state, reason, rssi
        self._changed.set()
        if self.on_change:
            self.on_change(self)

    def detail(self):
        """What the status bar shows beside the state: bars when connected, why when failed."""
        if self.state == CONNECTED:
            return bars(self.rssi)
        return self.reason

    def _failure(self, status):
        net = board.net
        if status == net.STAT_WRONG_PASSWORD:
            return WRONG_PASSWORD
        if status == net.STAT_NO_AP_FOUND:
            return NO_AP
        if status == net.STAT_BEACON_TIMEOUT:
            return LOST
        return REFUSED

    def _read_rssi(self):
        try:
            return self.wlan.status("rssi")
        except OSError:  # associated no longer
            return None

    async def connect(self):
        """One attempt to join the configured network: True when it has an address."""
        if self.network is None:
            self._set(FAILED, NOT_CONFIGURED)
            return False
        net = board.net
        self._set(CONNECTING)
        self.wlan.active(True)
        self.wlan.connect(*self.network)
        start = time.ticks_ms()
        while True:
            if self._restart.is_set():
                self.wlan.disconnect()  # another network asked for: this attempt is moot
                return False
            status = self.wlan.status()
            if status == net.STAT_GOT_IP:
                self._set(CONNECTED, rssi=self._read_rssi())
                return True
            if status not in (net.STAT_CONNECTING, net.STAT_IDLE):
                break
            if time.ticks_diff(time.ticks_ms(), start) >= self.connect_timeout_ms:
                status = None
                break
            await asyncio.sleep_ms(POLL_MS)
        self.wlan.disconnect()  # stop the radio's own retries: the backoff is ours
        self._set(FAILED, TIMEOUT if status is None else self._failure(status))
        return False

    async def _pause(self, ms):
        """Wait ms, or less if reconfigure() is called meanwhile: True then."""
        try:
            await timeouts.wait_for_ms(self._restart.wait(), ms)
        except asyncio.TimeoutError:
            return False
        return True

    async def _watch(self):
        # While connected: follow the signal; return when the link is gone or another network
        # is asked for.
        while True:
            # Asked for another network as the pause ended (reconfigure() ran before this task
            # resumed): leave, or the next lines would say CONNECTED, and settled() take the
            # network being left for the one asked (a wrong password shown as "Connected").
            if await self._pause(WATCH_MS) or self._restart.is_set():
                self.wlan.disconnect()
                return
            if not self.wlan.isconnected():
                self._set(FAILED, self._failure(self.wlan.status()))
                return
            rssi = self._read_rssi()
            if rssi is not None:
                self._set(CONNECTED, rssi=rssi)

    async def run(self):
        """Keep the station connected: each failure waits twice as long as the one before it
        (from backoff_first_ms up to backoff_max_ms), a success starts the count again.
        Returns when there is no network to join (reconfigure() starts it again)."""
        self.running = True
        try:
            while self.network is not None:
                self._restart.clear()
                if await self.connect():
                    self.failures = 0
                    self.retry_ms = 0
                    await self._watch()
                    continue  # lost or left: try again at once, then back off
                if self._restart.is_set():
                    continue
                self.retry_ms = min(self.backoff_first_ms << min(self.failures, 16), self.backoff_max_ms)
                self.failures += 1
                await self._pause(self.retry_ms)
            self._set(FAILED, NOT_CONFIGURED)
        finally:
            self.running = False

    def reconfigure(self, network):
        """Use another network from now on ((ssid, key), or None for none): run() leaves the one
        it is on (or its backoff) and joins this one at once, counting failures from zero; a
        run() that had ended for want of a network is started again. The state is CONNECTING
        until that first attempt ends (settled())."""
        self.network = network
        self.failures = 0
        self._restart.set()
        if network is None:
            return
        self._set(CONNECTING)
        if not self.running:
            asyncio.create_task(self.run())

    async def settled(self, timeout_ms):
        """After reconfigure(): True once connected, False when the first attempt failed (reason
        says why) or after timeout_ms."""
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while self.state == CONNECTING:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                break
            self._changed.clear()
            try:
                await timeouts.wait_for_ms(self._changed.wait(), left)
            except asyncio.TimeoutError:
                break
        return self.state == CONNECTED

    async def wait_connected(self, timeout_ms):
        """True once connected (at once if it is), False after timeout_ms."""
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while self.state != CONNECTED:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await timeouts.wait_for_ms(self._changed.wait(), left)
            except asyncio.TimeoutError:
                return False
        return True

    def off(self):
        """The radio off (the run() task should be cancelled first)."""
        self.wlan.disconnect()
        self.wlan.active(False)
        self._set(OFF)
