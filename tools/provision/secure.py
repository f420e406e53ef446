"""`secure`: Secure Boot v2 and flash encryption (release mode) for one ESP32 from the host,
as ESP-IDF's "enable flash encryption and Secure Boot v2 externally" workflow does it:

  1. the chip: revision 3 or later (Secure Boot v2 on the ESP32 needs ECO3), not yet secured;
  2. the keys: the fleet's Secure Boot v2 signing key (RSA-3072, --signing-key, else one is
     generated: development only) and this unit's own flash-encryption key (generated, 256
     bits; burned, then deleted: in release mode nothing may ever decrypt the flash again;
     or taken with --flash-encryption-key, whose keeper then holds the only copy);
  3. the bootloader and app signed (espsecure sign-data --version 2, RSA-PSS);
  4. every image encrypted for its flash address (espsecure encrypt-flash-data, FLASH_CRYPT_CONFIG 0xF);
  5. eFuses, in this order (espefuse):
       BLOCK1 <- the flash-encryption key (read- and write-protected)
       BLOCK2 <- the SHA-256 of the signing key's public part (burn-key-digest, write-protected)
       -- on a real board the encrypted images are written here (tools.provision flash) --
       FLASH_CRYPT_CONFIG 0xF, FLASH_CRYPT_CNT 0x7F (odd: encryption on; all ones: for good)
       ABS_DONE_1 (Secure Boot v2 on)
       JTAG_DISABLE, DISABLE_DL_ENCRYPT, DISABLE_DL_DECRYPT, DISABLE_DL_CACHE (release mode),
       CONSOLE_DEBUG_DISABLE (no ROM BASIC console)
       UART_DOWNLOAD_DIS last: after it nothing, espefuse included, talks to the ROM again.
     Keys before the bits that make the ROM use them; the download port closed last.

--dry-run-virtual runs it all on espefuse's virtual eFuses (--virt, the state kept in a file
between calls): everything but writing the flash, which virtual eFuses do not have.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from tools.provision import flash
from tools.provision.common import EFUSE, REFUSED, fail, progress, sha256_file

MIN_MAJOR_REVISION = 3
SECURITY_EFUSES = ("WAFER_VERSION_MAJOR", "WAFER_VERSION_MINOR", "MAC", "CODING_SCHEME", "FLASH_CRYPT_CNT",
                   "FLASH_CRYPT_CONFIG", "ABS_DONE_0", "ABS_DONE_1", "JTAG_DISABLE", "DISABLE_DL_ENCRYPT",
                   "DISABLE_DL_DECRYPT", "DISABLE_DL_CACHE", "UART_DOWNLOAD_DIS", "CONSOLE_DEBUG_DISABLE")
# Signed and encrypted, in flash order; the app file system too (its partition is "encrypted").
SIGNED = ("bootloader", "app")
ENCRYPTED = ("bootloader", "partition-table", "app", "vfs")


class Efuses:
    """espefuse on a port, or on virtual eFuses kept in a file."""

    def __init__(self, port=None, virtual_file=None):
        if virtual_file:
            self.target = ["--virt", "--path-efuse-file", str(virtual_file)]
        else:
            self.target = ["--port", port]

    def run(self, *args):
        cmd = [sys.executable, "-m", "espefuse", "--chip", "esp32", *self.target, "--do-not-confirm", *args]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-6:])
            fail(EFUSE, "espefuse %s failed:\n%s" % (" ".join(args[:1]), tail))
        return result.stdout

    def summary(self):
        """{eFuse name: value} of the security-relevant eFuses."""
        out = self.run("summary", "--format", "json")
        try:
            data = json.loads(out[out.index("{"):])
        except ValueError:
            fail(EFUSE, "espefuse summary gave no JSON")
        state = {name: data[name]["value"] for name in SECURITY_EFUSES if name in data}
        for block in ("BLOCK1", "BLOCK2"):  # the keys: their protection, never their contents
            state[block + " protection"] = "%s, %s" % ("readable" if data[block]["readable"] else "read-protected",
                                                       "writeable" if data[block]["writeable"] else "write-protected")
        return state

    def burn(self, *pairs):
        progress("burning " + ", ".join("%s=%s" % (pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)))
        self.run("burn-efuse", *[str(x) for x in pairs])


def espsecure(*args):
    result = subprocess.run([sys.executable, "-m", "espsecure", *[str(a) for a in args]], capture_output=True, text=True)
    if result.returncode:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-6:])
        fail(EFUSE, "espsecure %s failed:\n%s" % (args[0], tail))
    return result.stdout


def check_chip(state):
    major = state.get("WAFER_VERSION_MAJOR", 0)
    if major < MIN_MAJOR_REVISION:
        fail(REFUSED, "chip revision v%s.%s: Secure Boot v2 on the ESP32 needs revision 3 or later "
             "(ESP32-WROOM-32E/ECO3); this chip cannot be secured, set it aside"
             % (major, state.get("WAFER_VERSION_MINOR", 0)))
    if state.get("ABS_DONE_1") or state.get("ABS_DONE_0") or bin(state.get("FLASH_CRYPT_CNT", 0)).count("1") % 2:
        fail(REFUSED, "this chip is already secured (secure boot or flash encryption on): nothing burned")


def keys(keys_dir, signing_key=None, flash_key=None):
    """(signing key, flash-encryption key, whether the flash key is ours to delete): the flash
    key is fresh for every unit unless one is given (whose keeper then holds a copy)."""
    d = Path(keys_dir)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    if signing_key is None:
        signing_key = d / "secure_boot_signing_key.pem"
        if not signing_key.exists():
            progress("generating a Secure Boot v2 signing key (RSA-3072), for development: a fleet's key "
                     "is made once and given with --signing-key")
            espsecure("generate-signing-key", "--version", "2", "--scheme", "rsa3072", signing_key)
            os.chmod(signing_key, 0o600)
    elif not Path(signing_key).is_file():
        fail(EFUSE, "no signing key at %s" % signing_key)
    if flash_key is not None:
        if Path(flash_key).stat().st_size != 32:
            fail(EFUSE, "the flash-encryption key %s is not 256 bits" % flash_key)
        return Path(signing_key), Path(flash_key), False
    flash_key = d / "flash_encryption_key.bin"
    flash_key.unlink(missing_ok=True)
    progress("generating this unit's flash-encryption key")
    espsecure("generate-flash-encryption-key", flash_key)
    os.chmod(flash_key, 0o600)
    return Path(signing_key), flash_key, True


def prepare_images(layout, out_dir, signing_key, flash_key):
    """Signed, then encrypted copies of the images under out_dir/secure; their layout."""
    d = Path(out_dir) / "secure"
    d.mkdir(parents=True, exist_ok=True)
    prepared = {}
    for name in ENCRYPTED:
        if name not in layout:
            continue
        source = Path(layout[name]["file"])
        if name in SIGNED:
            signed = d / (name + ".signed.bin")
            progress("signing the %s (Secure Boot v2, RSA-PSS 3072)" % name)
            espsecure("sign-data", "--version", "2", "--keyfile", signing_key, "--output", signed, source)
            espsecure("verify-signature", "--version", "2", "--keyfile", signing_key, signed)
            source = signed
        encrypted = d / (name + ".encrypted.bin")
        progress("encrypting the %s for 0x%x" % (name, layout[name]["offset"]))
        espsecure("encrypt-flash-data", "--keyfile", flash_key, "--address", layout[name]["offset"],
                  "--output", encrypted, source)
        prepared[name] = dict(layout[name], file=str(encrypted), size=encrypted.stat().st_size,
                              sha256_encrypted=sha256_file(encrypted))
    return prepared


def secure(layout, out_dir, keys_dir, port=None, virtual_file=None, signing_key=None, flash_key=None, audit=None):
    """The whole sequence; returns the eFuse summary after it."""
    efuses = Efuses(port, virtual_file)
    before = efuses.summary()
    progress("chip revision v%s.%s, MAC %s" % (before.get("WAFER_VERSION_MAJOR"), before.get("WAFER_VERSION_MINOR"),
                                               before.get("MAC")))
    if audit is not None:
        audit["mac"] = str(before.get("MAC", "")).split(" ")[0]  # without espefuse's "(CRC ... OK)"
        audit["efuses_before"] = before
    check_chip(before)
    signing_key, flash_key, generated = keys(keys_dir, signing_key, flash_key)
    try:
        prepared = prepare_images(layout, out_dir, signing_key, flash_key)
        digest = Path(keys_dir) / "signing_key_digest.bin"
        espsecure("digest-sbv2-public-key", "--keyfile", signing_key, "--output", digest)
        if audit is not None:
            audit["signing_key_digest"] = digest.read_bytes().hex()  # public: what BLOCK2 holds
            audit["secured_images"] = {k: v["sha256_encrypted"] for k, v in prepared.items()}
        progress("burning the flash-encryption key into BLOCK1 (read- and write-protected)")
        efuses.run("burn-key", "flash_encryption", str(flash_key))
    finally:
        if generated:
            flash_key.unlink(missing_ok=True)  # release mode: no copy of it may survive
    progress("burning the signing key's digest into BLOCK2")
    efuses.run("burn-key-digest", str(signing_key))
    if virtual_file:
        progress("virtual eFuses: no flash to write; the signed, encrypted images are in %s"
                 % (Path(out_dir) / "secure"))
    else:
        flash.write(port, prepared, encrypted=True)
    efuses.burn("FLASH_CRYPT_CONFIG", "0xF", "FLASH_CRYPT_CNT", "0x7F")
    efuses.burn("ABS_DONE_1", 1)
    efuses.burn("JTAG_DISABLE", 1, "DISABLE_DL_ENCRYPT", 1, "DISABLE_DL_DECRYPT", 1, "DISABLE_DL_CACHE", 1,
                "CONSOLE_DEBUG_DISABLE", 1)
    efuses.burn("UART_DOWNLOAD_DIS", 1)
    after = efuses.summary()
    if audit is not None:
        audit["efuses"] = after
    return after
