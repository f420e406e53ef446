"""A firmware update from the admin CLI to the owner's screens, end to end: published with the
bank's update key (`python -m tools.bank.admin publish firmware`), offered at the sign-on, shown
to the owner (version, size; install now or later) only in the home menu, downloaded over the
real uplink, written to the other OTA slot, the terminal restarted into it on trial, confirmed
when its owner has unlocked it and the home menu came up, and the bank's fleet view showing the
new version (docs/updates.md)."""

import pytest

from terminalfix import terminal  # noqa: F401  (the module's fixture)
from tools.bank import admin
from tools.vdevice import appimage


def LOCKED(screen):
    return screen["title"].startswith("Locked")


def booted(t):
    return (t.tmp / "vdevice" / "vdevice.boot").read_text().split()


def fleet_firmware(t, capsys):
    capsys.readouterr()
    assert admin.main(["--state-dir", str(t.bank.dir), "devices"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    return {row[0]: row[2:4] for row in rows}


@pytest.mark.timeout(240)
def test_owner_sees_installs_and_the_new_image_confirms_itself(terminal, tmp_path, capsys):  # noqa: F811
    t = terminal
    assert booted(t) == ["ota_0", str(appimage.FACTORY_VERSION), str(appimage.FACTORY_SECURE_VERSION), "VALID"]
    image = tmp_path / "micropython.bin"
    image.write_bytes(appimage.build(2, 1, size=6000))
    assert admin.main(["--state-dir", str(t.bank.dir), "publish", "firmware", str(image), "--version", "2",
                       "--svn", "1"]) == 0
    t.restart()  # its next sign-on learns of the package
    t.signed_on()
    t.unlock()
    # Later: nothing happens, the offer stays in the home menu.
    t.choose("Update available")
    offer = t.screen("Update to version 2")
    assert "Firmware from your bank, 6 KB." in offer["text"] and {"Install now", "Later"} <= set(offer["buttons"])
    t.tap("Later")
    t.screen("Pocket Terminal")
    t.choose("Update available")
    t.screen("Update to version 2")
    t.tap("Install now")
    assert t.screen("Updating")["text"].startswith("Version 2: ")
    done = t.screen("Update installed", timeout=60)
    assert "Version 2 starts now" in done["text"]
    t.tap("Restart")
    t.screen(LOCKED, timeout=30)
    assert booted(t) == ["ota_1", "2", "1", "PENDING_VERIFY"]
    # The new image proves itself: unlocked, its home menu up. Valid from now on; the bank sees it.
    home = t.unlock()
    assert "Update available" not in home["buttons"]
    t.restart()
    assert booted(t) == ["ota_1", "2", "1", "VALID"]
    t.signed_on()
    t.screen(LOCKED, timeout=30)
    assert fleet_firmware(t, capsys)["PT000001"] == ["2", "1"]
