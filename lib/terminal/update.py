"""The owner's side of a firmware update (docs/updates.md): what it is, and when it installs.

The bank offers a firmware package at sign-on (uplink.offered, update.package.follow); the home
menu then shows "Update available" at its top. Only the home menu opens it, so an update never
starts while another operation, a payment above all, is running; a payment request pushed
meanwhile waits for the home menu. Opened, it shows the version and size from the package's
signed header, and installs now or later. Installing, it is critical (a lock waits until it
ends), then the terminal restarts into the new version, which confirms itself once its owner
has unlocked it and its home menu came up (terminal.app's Home: update.ota.confirm), or the
bootloader brings the old one back.
"""

import gc

from terminal.app import Operation


class Update(Operation):
    def __init__(self):
        super().__init__()
        self.head = None
        self.version = 0  # the package's, once its header is read

    async def start(self, app):
        from update import package
        from uplink import UplinkError

        up = app.link.uplink
        pid = up.offered
        if not pid:
            return None
        try:
            prefix = await self.exchange(up.record(pid, 0, package.PREFIX))
            head = package.parse(prefix, package.key_of(app.vault.device_secret("issuer.update")))
            if head.kind != package.FIRMWARE:
                raise package.BadPackage("kind %d, not firmware" % head.kind)
        except (UplinkError, package.BadPackage) as e:
            await app.ui.message("Update not available", "The bank's update could not be read: %s." % e,
                                 remedy="It is offered again at the next connection to your bank.", error=True)
            return None
        self.head, self.version = head, head.version
        answer = await app.ui.message(
            "Update to version %d" % head.version,
            "Firmware from your bank, %d KB. Installing takes a few minutes; the terminal then restarts"
            " and asks for your PIN." % ((head.length + 1023) // 1024), button="Install now", other="Later")
        return "install" if answer == "ok" else None

    async def install(self, app):
        from update import package
        from uplink import UplinkError

        up = app.link.uplink
        head = self.head
        if head is None:  # resumed after a lock: start again from the offer
            return "start"
        pid = up.offered
        key = package.key_of(app.vault.device_secret("issuer.update"))

        shown = [0]

        async def fetch(offset, length):
            # Drawn at every 5 %, not at each record: a 1.6 MB image is ~1,700 records, and a
            # screen's drawing costs time and heap that the download needs.
            done = max(0, offset - package.PREFIX) * 100 // max(1, head.length)
            if done >= shown[0] + 5:
                shown[0] = done
                app.ui.progress("Updating", "Version %d: %d %%" % (head.version, done), done / 100)
            app.session.activity()  # the owner chose to wait: no idle lock for the download
            # Each record's garbage (the 0800/0810, the ~1 KB record) collected before the next:
            # its blocks are then where the next record's go, and the heap does not fragment
            # over the download's ~1,700 records (the steady state's heap ran out without it).
            gc.collect()
            return await up.record(pid, offset, length)

        app.ui.progress("Updating", "Version %d: 0 %%" % head.version, 0)
        try:
            await self.exchange(package.install(fetch, key, package.FIRMWARE))
        except (UplinkError, package.BadPackage, package.Refused) as e:
            await app.ui.message("Update failed", "Version %d was not installed: %s. The terminal runs on as it was."
                                 % (head.version, e), remedy="It is offered again at the next connection to your bank.",
                                 error=True)
            return None
        up.offered = None
        return "installed"

    async def installed(self, app):
        await app.ui.message("Update installed", "Version %d starts now. Unlock the terminal to finish:"
                             " until then, a restart brings the old version back." % self.version,
                             button="Restart", timeout_ms=10_000)
        return "restart"

    async def restart(self, app):
        import board

        board.reset()
