"""Rollback of the store's meta: guess PINs, then put the meta from before the guesses back
with a flash programmer (the image edited on the host: the newer meta removed, the older one
written under its own name, so that name and seq agree). Before the commit counter, the store
opened with the fail counter as it was: unlimited guesses. Now the older meta's seq is below
the commit counter (vault/store.py) and the store is Tampered: refused on a development unit,
and a production unit stays shut behind its locked screen.

Not detected, by design of what the ESP32 has (SECURITY.md): the whole flash written back, the
counter with the store. The bank's checks (a DUKPT counter that goes back, PIN attempts counted
at its HSM) are the backstop there.
"""

import ast
import shutil

from devicefix import PERSONALIZE, burn_production, edit_flash, meta_name, mounted, read_flash, stays_shut
from tools.device import Device
from tools.vdevice.spawn import VDeviceProcess

GUESS = """
import vault
v = vault.Vault().open()
for guess in (b'000000', b'111111', b'222222'):
    try:
        v.verify_pin(bytearray(guess))
    except vault.WrongPin:
        pass
print(v.meta['fails'])
"""
OPENS = """
import vault
from vault.store import Tampered
try:
    v = vault.Vault().open()
    print(repr(('opens', v.meta['fails'])))
except Tampered as e:
    print(repr(('Tampered', str(e))))
"""


def guessed_then_rolled_back(vd, tmp_path):
    """The unit personalized; a flash image of it after three wrong PINs, with the meta of
    before them put back."""
    before, after = tmp_path / "before.img", tmp_path / "after.img"
    dev = Device(vd.repl)
    try:
        assert dev.exec(PERSONALIZE, timeout=60).strip().splitlines()[-1] == "PERSONALIZED"
        vd.rig.call("snapshot", path=str(before))
        assert dev.exec(GUESS, timeout=60).strip().splitlines()[-1] == "3"
        vd.rig.call("snapshot", path=str(after))
    finally:
        dev.close()
    fs = mounted(bytearray(before.read_bytes()))
    old_name = meta_name(fs)
    old = read_flash(before, "/store/" + old_name)

    def put_back(fs):
        fs.remove("/store/" + meta_name(fs))
        with fs.open("/store/" + old_name, "wb") as f:
            f.write(old)

    edit_flash(after, put_back)
    return after


def test_an_older_meta_put_back_is_detected(firmware_image, tmp_path):
    shutil.copyfile(firmware_image, tmp_path / "flash.img")
    with VDeviceProcess(tmp_path / "flash.img", tmp_path) as vd:
        rolled_back = guessed_then_rolled_back(vd, tmp_path)
        vd.rig.call("restore", path=str(rolled_back))
        vd.wait_booted(after_boots=1)
        dev = Device(vd.repl)
        try:
            got = ast.literal_eval(dev.exec(OPENS).strip().splitlines()[-1])
        finally:
            dev.close()
    assert got == ("Tampered", "store: meta is older than the commit counter (an older meta put back)"), got


def test_an_older_meta_put_back_keeps_a_production_unit_shut(firmware_image, tmp_path):
    shutil.copyfile(firmware_image, tmp_path / "flash.img")
    with VDeviceProcess(tmp_path / "flash.img", tmp_path, bare=False) as vd:
        rolled_back = guessed_then_rolled_back(vd, tmp_path)
        burn_production(vd)
        stays_shut(vd, rolled_back)
