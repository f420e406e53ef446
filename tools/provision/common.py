"""What every subcommand shares: exit codes, the typed error that carries one, progress lines,
the audit record (JSONL) and the SHA-256 of files."""

import datetime
import getpass
import hashlib
import json
import os
import sys
from pathlib import Path

# Exit codes (python -m tools.provision --help lists them; tools/provision/README.md too).
OK = 0
USAGE = 2  # argparse's own
DEVICE = 3  # the unit or its port cannot be reached, or does not answer as expected
REFUSED = 4  # the unit is in a state that forbids the step (provisioned, personalized, tampered, chip revision)
KEYS = 5  # keys or certificates are missing, wrong or do not match (bank state, CA, device key)
READBACK = 6  # what the unit holds after injection is not what was injected
BANK = 7  # the bank host is unreachable, or refused the unit's TLS test connection
EFUSE = 8  # espefuse/espsecure failed
IMAGE = 9  # building, merging, writing or verifying an image failed

EXIT_CODES = {
    OK: "done",
    USAGE: "bad command line",
    DEVICE: "unit unreachable or not answering (port, REPL, ROM bootloader)",
    REFUSED: "unit refused: already provisioned (use --reprovision), personalized, tampered, or chip revision < 3",
    KEYS: "keys or certificates missing, wrong or not matching",
    READBACK: "read-back check failed: the unit does not hold what was injected",
    BANK: "bank host unreachable, or it refused the unit's TLS test connection",
    EFUSE: "espefuse/espsecure step failed",
    IMAGE: "image build, merge, write or verify failed",
}


class ProvisionError(Exception):
    """A step failed; code is the exit code, the message says what to do (never a secret)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def progress(message):
    print("[provision] " + message, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def operator():
    return os.environ.get("PROVISION_OPERATOR") or getpass.getuser()


class Audit:
    """One JSON line per unit and command, appended when the command ends, whatever its result.
    Only public facts go in: identifiers, hashes, fingerprints, check values, eFuse states."""

    def __init__(self, path, command):
        self.path = Path(path) if path else None
        self.record = {"command": command, "operator": operator(), "start": now()}

    def __setitem__(self, key, value):
        self.record[key] = value

    def finish(self, result, error=None):
        self.record["end"] = now()
        self.record["result"] = result
        if error:
            self.record["error"] = error
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(self.record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


def fail(code, message):
    raise ProvisionError(code, message)


def err(message):
    print("provision: " + message, file=sys.stderr, flush=True)
