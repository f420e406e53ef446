"""Wi-Fi: the station kept on the configured network, and its state for the status bar.

    w = wifi.Wifi()                       # board.wlan(), the network in /config/wifi.json
    asyncio.create_task(w.run())          # connects, watches, reconnects with backoff
    w.state, w.detail()                   # OFF / CONNECTING / CONNECTED (bars) / FAILED (reason)
    w.on_change = redraw                  # called with the manager on every change
    await w.wait_connected(15_000)

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
        self._changed = asyncio.Event()

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

    async def _watch(self):
        # While connected: follow the signal; return when the link is gone.
        while True:
            await asyncio.sleep_ms(WATCH_MS)
            if not self.wlan.isconnected():
                self._set(FAILED, self._failure(self.wlan.status()))
                return
            rssi = self._read_rssi()
            if rssi is not None:
                self._set(CONNECTED, rssi=rssi)

    async def run(self):
        """Keep the station connected: each failure waits twice as long as the one before it
        (from backoff_first_ms up to backoff_max_ms), a success starts the count again."""
        if self.network is None:
            self._set(FAILED, NOT_CONFIGURED)
            return
        while True:
            if await self.connect():
                self.failures = 0
                self.retry_ms = 0
                await self._watch()
                continue  # lost: try again at once, then back off
            self.retry_ms = min(self.backoff_first_ms << min(self.failures, 16), self.backoff_max_ms)
            self.failures += 1
            await asyncio.sleep_ms(self.retry_ms)

    async def wait_connected(self, timeout_ms):
        """True once connected (at once if it is), False after timeout_ms."""
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while self.state != CONNECTED:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for_ms(self._changed.wait(), left)
            except asyncio.TimeoutError:
                return False
        return True

    def off(self):
        """The radio off (the run() task should be cancelled first)."""
        self.wlan.disconnect()
        self.wlan.active(False)
        self._set(OFF)
