"""`flash`: write the images of `image` (or of `secure`) to a board through esptool used as a
library, then verify them (esptool's verify_flash: the flash read back and compared).

The virtual handheld (a pty, e.g. build/vdevice.tty) has no ROM bootloader: its "flash" is the
image file the virtual handheld was started on, which already holds a file system. What
flashing gives a unit there is the firmware's files, so `flash` writes the file tree of the vfs
image through the REPL (tools/device.py, as mpremote does) and verifies each file by the SHA-256
the device computes of what it holds. Through the REPL the vault's /store is left as it is; on a real board the
whole vfs partition is rewritten, store included, which is why `inject` comes after `flash`.
"""

import ast
import hashlib
import os
from pathlib import Path

from tools.device import Device, DeviceError
from tools.provision.common import DEVICE, IMAGE, fail, progress

VERIFY_FILES = """
import hashlib, binascii
def _sha(p):
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        while True:
            b = f.read(1024)
            if not b:
                break
            h.update(b)
    return binascii.hexlify(h.digest()).decode()
print(repr({p: _sha(p) for p in %r}))
"""


def is_virtual(port):
    """A pseudo-terminal: the virtual handheld's REPL, with no ROM bootloader behind it."""
    return os.path.realpath(str(port)).startswith("/dev/pts/")


def write(port, layout, encrypted=False):
    """Write the layout's parts (the merged factory.bin when there is one) and verify them.
    encrypted: images `secure` encrypted on the host, written one by one; the chip then stays in
    its ROM bootloader, for secure to burn the eFuses that switch encryption on: booting before
    that would let the bootloader encrypt the flash a second time."""
    if is_virtual(port):
        return write_virtual(port, layout)
    from esptool import cmds

    parts = [("factory", layout["factory"])] if "factory" in layout and not encrypted else \
        [(n, v) for n, v in sorted(layout.items(), key=lambda kv: kv[1]["offset"]) if n != "factory"]
    pieces = [(v["offset"], v["file"]) for _, v in parts]
    try:
        esp = cmds.detect_chip(port)
    except Exception as e:  # esptool's FatalError, serial errors: no ROM bootloader answered
        fail(DEVICE, "esptool found no ESP32 ROM bootloader on %s: %s" % (port, e))
    with esp:  # closes the port
        try:
            esp = cmds.run_stub(esp)
            cmds.attach_flash(esp)
            progress("writing %s to %s" % (", ".join("%s at 0x%x" % (n, v["offset"]) for n, v in parts), port))
            cmds.write_flash(esp, pieces)
            progress("verifying (flash read back and compared)")
            cmds.verify_flash(esp, pieces)
            cmds.reset_chip(esp, "no-reset" if encrypted else "hard-reset")
        except Exception as e:  # esptool's FatalError and serial errors: the message is what to act on
            fail(IMAGE, "esptool on %s: %s" % (port, e))
    return {n: v["sha256"] for n, v in parts if "sha256" in v}


def write_virtual(port, layout):
    tree = Path(layout["vfs"]["file"]).parent / "fs-handheld"
    if not tree.is_dir():
        fail(IMAGE, "no staged file tree at %s: run `image` again" % tree)
    progress("%s is a virtual handheld: no ROM bootloader; writing the file system's files through its REPL" % port)
    try:
        dev = Device(port)
        try:
            written = dev.deploy(tree)
            progress("verifying %d files by the SHA-256 the device computes" % len(written))
            held = ast.literal_eval(dev.exec(VERIFY_FILES % written, timeout=60).strip())
        finally:
            dev.close()
    except DeviceError as e:
        fail(DEVICE, str(e))
    expected = {p: hashlib.sha256((tree / p.lstrip("/")).read_bytes()).hexdigest() for p in written}
    wrong = sorted(p for p in written if held.get(p) != expected[p])
    if wrong:
        fail(IMAGE, "verify failed: the device holds other contents for %s" % ", ".join(wrong))
    return {"files": len(written), "tree_sha256": hashlib.sha256("".join(expected[p] for p in sorted(expected)).encode()).hexdigest()}
