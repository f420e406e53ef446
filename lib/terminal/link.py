"""The terminal's way to its bank: Wi-Fi and the uplink, kept running from the start.

    link = Link(vault, ui)              # /config/bank.json and /config/wifi.json
    link.start()                        # tasks: Wi-Fi, the uplink, pushed requests, status bar
    up = await link.ready()             # the Uplink, signed on; else an errors.Failure (NO_NETWORK) says why
    link.requests                       # pushed uplink.Request objects waiting, oldest first
    req = link.fresh()                  # the oldest the owner has not been shown yet, or None
    link.arrivals                       # changes when the list does by itself (pushed, expired)

At most uplink.REQUESTS wait: a push beyond is declined at once (a 0620 with
uplink.REFUSE_FULL) and the owner's list stays as it was. A request leaves the list when it
expires (uplink.Request.expired: the bank's deadline, looked at with the status bar's each
second): the home menu's "Pay requests (N)" and the lock screen's count follow, redrawn by the
app when `arrivals` changes.

Both run whether the owner has unlocked or not: a reversal waits to be sent, a request may be
pushed, and neither needs the owner's keys (DUKPT and TLS use the vault's device entries).
The status bar follows the radio's bars, the bank session and the battery's charge, redrawn
where it changes.

/config/bank.json (written by tools.provision inject once its TLS test signed on):
    {"host": "localhost", "port": 8583, "serial": "PT000001", "merchant": "PT000001", "currency": "978"}
whose host and port the issuer's terminal parameters may replace (update.config, "bank").
No file: no bank ("no bank" on the status bar, every bank flow fails with NoNetwork saying so).
Two waits of the link may be set there too, for a network slower or faster than most (the
tests' bank sets them short): "ready_ms", how long a flow waits for the bank's session before
the owner is told why there is none (READY_MS); "retry_max_ms", the longest wait between two
attempts to reach the bank (uplink.RECONNECT_MAX_MS). Either one not a whole number of ms from
1 to WAIT_MAX_MS: the file is not taken (no bank), as a file without the keys it needs.
"""

import json

import asyncio
from micropython import const

CONFIG = "/config/bank.json"
BATCH = "/batch"  # terminal.offline's advices: looked at here after every sign-on
STATUS_MS = const(1000)  # how often the status bar's Wi-Fi, bank and battery are looked at
READY_MS = const(5000)  # a flow's wait for the bank's session, unless bank.json sets "ready_ms"
WAIT_MAX_MS = const(3_600_000)  # the longest wait bank.json may set: an hour (a small int, ticks_ms's range)


def load(path=CONFIG):
    """The bank's configuration, or None if the terminal has none (or an unreadable one)."""
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    # The issuer's terminal parameters may move the bank (update.config: its endpoint).
    from update import call

    config.update(call("update.config", "terminal").get("bank", {}))
    # The keys Uplink cannot do without; the waits that may be set (module docstring).
    if not all(key in config for key in ("host", "port", "serial")):
        return None
    for key in ("ready_ms", "retry_max_ms"):
        value = config.get(key, 1)
        if type(value) is not int or not 1 <= value <= WAIT_MAX_MS:
            return None
    return config


async def _forward(up):
    # The offline advices after each sign-on (terminal.offline). Its module only when the batch
    # has any, and let go after: imported by the uplink's task, outside any operation, it would
    # stay on the heap through every flow after.
    import os

    try:
        if not os.listdir(BATCH):
            return
    except OSError:
        return  # no folder: never an offline approval
    import parts
    from terminal import offline

    try:
        await offline.forward(up)
    finally:
        parts.unload(("terminal.offline",))


class Link:
    def __init__(self, vault, ui, config=None, wifi=None):
        import wifi as wifi_module

        from update import call

        # The issuer's lock policy as its installed parameters say (a power cut may have come
        # between their install and the vault's commit of it).
        call("update.config", "apply_policy", vault)
        self.ui = ui
        self.wifi = wifi or wifi_module.Wifi()
        self.uplink = None
        config = config or load()
        self.ready_ms = READY_MS
        if config is not None:
            from uplink import Uplink

            self.uplink = Uplink(vault, config, wifi=self.wifi)
            self.ready_ms = config.get("ready_ms", READY_MS)
            self.uplink.after_sign_on.append(_forward)
        self._requests = []
        self.arrivals = 0  # pushes and expiries since the start (the app redraws by it)
        self._fresh = []
        self._tasks = []

    def start(self):
        self._tasks = [asyncio.create_task(self.wifi.run()), asyncio.create_task(self._status())]
        if self.uplink is not None:
            # Before the uplink runs: a top-up a cut left unfinished decides here whether its
            # 0400 may go at the sign-on (sent while the card holds the value, it would double it).
            import parts
            from terminal import topup

            topup.recover(self.uplink.vault, self.uplink.journal)
            parts.unload(("terminal.topup",))  # the flow's when the owner asks for it
            self._tasks.append(asyncio.create_task(self.uplink.run()))
            self._tasks.append(asyncio.create_task(self._collect(self.uplink)))

    def stop(self):
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        if self.uplink is not None:
            # At once: after a crash the loop that would run the tasks' cleanup is gone, and
            # the next run's heap needs what the TLS session holds.
            self.uplink.close()

    async def _collect(self, up):
        from uplink import REQUESTS

        while True:
            request = await up.next_request()
            if len(self.requests) >= REQUESTS:
                # The uplink's cap, kept here where they wait: one beyond is declined (a 0620),
                # each in turn, so that a flood of pushes waits in the uplink's list, itself capped.
                await up.decline_request(request)
                continue
            self._requests.append(request)
            self._fresh.append(request)
            self.arrivals += 1

    @property
    def requests(self):
        """The requests waiting to be paid or refused, oldest first (none that has expired)."""
        self._expire()
        return self._requests

    def _expire(self):
        expired = [r for r in self._requests if r.expired]
        for request in expired:
            self.done(request)
        if expired:
            self.arrivals += 1

    def fresh(self):
        """The oldest request pushed since the owner was last shown one (then it is not fresh)."""
        self._expire()
        return self._fresh.pop(0) if self._fresh else None

    @property
    def waiting(self):
        """True while a pushed request has not been shown to the owner."""
        self._expire()
        return bool(self._fresh)

    def done(self, request):
        """A request answered (paid or refused), gone at the bank or expired: off the list."""
        if request in self._requests:
            self._requests.remove(request)
        if request in self._fresh:
            self._fresh.remove(request)

    def _state(self):
        import wifi

        bars = self.wifi.detail() if self.wifi.state == wifi.CONNECTED else None
        up = self.uplink
        if up is None or up.connected:
            return bars, None if up else "no bank"
        from uplink import Revoked  # loaded with the Uplink already

        return bars, "revoked" if isinstance(up.error, Revoked) else "offline"

    async def _status(self):
        import battery

        status = self.ui.status
        while True:
            self._expire()
            bars, bank = self._state()
            try:
                charge = battery.percent(battery.millivolts())
            except OSError:  # the ADC did not answer: the bar says nothing rather than stop
                charge = None
            if (bars, bank, charge) != (status.wifi, status.bank, status.battery):
                status.wifi, status.bank, status.battery = bars, bank, charge
                self.ui.redraw_status()
            await asyncio.sleep_ms(STATUS_MS)

    async def ready(self, timeout_ms=None):
        """The Uplink once signed on (waiting up to timeout_ms for it, None: ready_ms), else the errors.Failure
        that says why, from the Wi-Fi's state and the uplink's last error: NO_NETWORK (no Wi-Fi,
        or no route to the bank), BANK_TIMEOUT (the bank took the connection and never answered,
        or no session yet), BANK_DOWN (its host refused the connection), UNTRUSTED (its
        certificate), NEEDS_SERVICE (keys used up), REVOKED (the issuer revoked the terminal)."""
        from terminal import errors  # with the flows that need it: not on the heap from the start

        up = self.uplink
        if up is None:
            raise errors.Failure(errors.NO_NETWORK, "This terminal is not set up for a bank.",
                                 remedy="Your bank sets it up: bring the terminal to them.")
        if await up.wait_ready(self.ready_ms if timeout_ms is None else timeout_ms):
            return up
        import uplink
        import wifi

        error = up.error
        if isinstance(error, (uplink.NeedsProvisioning, uplink.Revoked)):
            raise errors.failure(error)
        if self.wifi.state != wifi.CONNECTED:  # whatever the last attempt met, this is why now
            raise errors.Failure(errors.NO_NETWORK, "No Wi-Fi: %s." % (self.wifi.reason or "the radio is off"))
        # An attempt under way: what the one before met is not why there is no session now.
        if up.connecting or error is None or isinstance(error, uplink.Unanswered):  # or a silent bank
            raise errors.Failure(errors.BANK_TIMEOUT, "The bank did not answer in time; nothing was sent.")
        if isinstance(error, (uplink.TlsError, uplink.Refused)):
            raise errors.failure(error)
        raise errors.Failure(errors.NO_NETWORK, "The bank cannot be reached from this network.",
                             remedy="Try again in a moment; if it persists, check Settings > Wi-Fi.")
