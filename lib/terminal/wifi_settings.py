"""Settings > Wi-Fi: the networks in range, join one with its password, forget the one in use.

    await app.perform(WifiSettings())

The networks come from a scan (wifi.scan), strongest first with their bars. A chosen network is
tried by the running Wi-Fi manager itself (app.link.wifi.reconfigure): the status bar and the
uplink follow it at once. Only a network that took the password is saved (/config/wifi.json);
one that did not is reported with what to do, and the manager goes back to the network it was
on, so a typing mistake never leaves the terminal offline. The password is typed on the secret
keyboard and never shown or printed.
"""

from micropython import const

from terminal import errors
from terminal.app import Operation
from ui.screens import CANCEL, TIMEOUT

WPA2_MIN = const(8)  # a WPA2 passphrase: 8 to 63 characters
WPA2_MAX = const(63)
JOIN_MS = const(25_000)  # the manager's connect timeout, and the attempt it may be finishing


def _bars(n):
    return "•" * n if n else "(weak)"


class WifiSettings(Operation):
    def __init__(self):
        super().__init__()
        self.networks = []
        self.ssid = ""  # the network chosen

    @staticmethod
    def _manager(app):
        link = getattr(app, "link", None)
        if link is not None and link.wifi is not None:
            return link.wifi
        import wifi

        return wifi.Wifi()  # no link (a bench set-up): joined here, saved for the next start

    async def start(self, app):
        import wifi

        app.ui.progress("Wi-Fi", "Looking for networks")
        try:
            self.networks = wifi.scan(self._manager(app).wlan)
        except OSError as e:
            await app.ui.message("Wi-Fi", "The radio could not scan (%s)." % e, remedy="Try again in a moment.",
                                 error=True)
            return None
        current = wifi.load()
        labels = ["%s %s" % (ssid, _bars(wifi.bars(rssi))) for ssid, rssi, _ in self.networks]
        labels.append("Scan again")
        if current is not None:
            labels.append("Forget %s" % current[0])
        answer = await app.ui.menu("Wi-Fi", labels)
        if answer in (CANCEL, TIMEOUT):
            return None
        if answer < len(self.networks):
            self.ssid, _, secured = self.networks[answer]
            return "password" if secured else "open"
        return "start" if answer == len(self.networks) else "forget"

    async def password(self, app):
        from ui import keyboard

        key = await keyboard.text(app.ui, "Password", secret=True, min_len=WPA2_MIN, max_len=WPA2_MAX)
        if key in (CANCEL, TIMEOUT):
            return "start"
        return await self._join(app, key)

    async def open(self, app):
        return await self._join(app, "")

    async def _join(self, app, key):
        import wifi

        manager = self._manager(app)
        ssid = self.ssid
        previous = manager.network
        app.ui.progress("Wi-Fi", "Joining %s" % ssid)
        manager.reconfigure((ssid, key))
        if await manager.settled(JOIN_MS):
            wifi.save(ssid, key)
            await app.ui.message("Connected", "The terminal is on %s." % ssid, timeout_ms=10_000)
            return None
        reason = manager.reason
        manager.reconfigure(previous)
        kind = errors.WRONG_PASSWORD if reason == wifi.WRONG_PASSWORD else errors.NETWORK_NOT_FOUND \
            if reason == wifi.NO_AP else errors.NOT_JOINED
        await errors.show(app.ui, errors.Failure(kind))
        return "start"

    async def forget(self, app):
        import wifi

        current = wifi.load()
        if current is None:
            return "start"
        answer = await app.ui.menu("Forget %s?" % current[0], ["Forget", "Keep"])
        if answer == 0:
            wifi.forget()
            self._manager(app).reconfigure(None)
            await app.ui.message("Forgotten", "The terminal no longer joins %s." % current[0],
                                 remedy="Choose a network to be online again.", timeout_ms=10_000)
        return "start"
