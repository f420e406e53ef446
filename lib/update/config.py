"""Terminal parameters from the issuer (packages of kind 3, lib/update/package.py): installed
atomically, read by the terminal.

The payload is a list of sections, each: name length (1 byte), name (ASCII), content length
(u32 big-endian), content. The sections and the files they become:

    capk      /data/capk.json        the CA public keys (lib/emv/capk.py's file)
    terminal  /config/terminal.json  {"aids": [hex...], "floor_limit": minor units,
                                      "contactless_limits": [[rid hex or "", transaction limit,
                                      CVM required limit, floor limit], ...],
                                      "offline_caps": [per payment, total, count]
                                      (terminal.offline),
                                      "bank": {"host", "port"}, "lock": {"max_fails", "delay_ms",
                                      "fp_window_s", "fp_max_fails"}}: the kernel's
                                      (TerminalConfig), the bank's endpoint (over
                                      /config/bank.json's), the issuer's lock policy (into the
                                      vault: apply_policy)
    bank_ca   /config/bank-ca.der    X.509 certificates (DER, one after the other): the CAs
                                      the bank host's certificate may chain to, in place of
                                      the vault's issuer.ca (certificate rotation: the old CA
                                      and the new while the bank moves, then the new alone)

A section left out keeps its file as it is. The installer streams each section into a staging
directory (never whole in RAM), checks what it staged (the CA keys' checksums, the terminal's
JSON), then commits: the version file written in the staging directory (one rename) is the
commit point; the sections are then renamed over their files and the version file last to
VERSION. recover() finishes a commit a power cut left (every section renamed) or drops a
staging that never committed: so a cut at any write leaves the old parameters or the new.

    config.terminal()                    # /config/terminal.json as a dict ({} if none)
    config.kernel("978")                 # the kernel's TerminalConfig with them
    config.installed()                   # (version, security version), (0, 0) if none

Each of these calls recover() first (the terminal's first read of them, link.load() at its
start, does it before anything reads /data/capk.json)."""

import json
import os

from micropython import const

from flashfs import makedirs, remove
from update import BANK_CA

STAGING = "/config/params.new"
VERSION = "/config/params.json"  # {"version": n, "svn": n} of the parameters installed
_COMMIT = "/config/params.new/version"
_SETTLE = "/config/params.new/settle"
TERMINAL = "/config/terminal.json"
_SECTIONS = (("capk", "/data/capk.json"), ("terminal", TERMINAL), ("bank_ca", BANK_CA))
_NAME_MAX = const(16)


def _target(name):
    for n, path in _SECTIONS:
        if n == name:
            return path
    return None


def recover():
    """Finish a committed install a power cut interrupted, or drop an uncommitted one."""
    try:
        os.stat(STAGING)
    except OSError:
        return
    # A write first: a rename out of the staging directory that a power cut interrupted hides
    # its file from listdir() until LittleFS's next write settles the move (rolls it back);
    # listed before, a section not yet moved looked moved (found by test_update_power.py).
    open(_SETTLE, "w").close()
    os.remove(_SETTLE)
    names = os.listdir(STAGING)
    committed = "version" in names
    for name in names:
        if name == "version":
            continue
        staged = STAGING + "/" + name
        target = _target(name)
        if committed and target is not None:
            makedirs(target)
            os.rename(staged, target)
        else:
            os.remove(staged)
    if committed:
        os.rename(_COMMIT, VERSION)
    os.rmdir(STAGING)


def installed():
    recover()
    try:
        with open(VERSION) as f:
            v = json.load(f)
        return int(v["version"]), int(v["svn"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0


def terminal():
    """The issuer's terminal parameters ({} before any): see the module's docstring."""
    recover()
    try:
        with open(TERMINAL) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def apply_policy(vault):
    """The issuer's lock policy of the installed parameters ("lock" in terminal) into the vault
    (vault.issuer_policy): after an install, and at every start, where it finishes one that a
    power cut stopped between the parameters' commit and the vault's. True if it changed any."""
    lock = terminal().get("lock")
    if not lock:
        return False
    from vault import WrongState

    try:
        return vault.issuer_policy(lock)
    except WrongState:  # a unit not provisioned (or wiped): nothing of the issuer's applies
        return False


def bank_cas():
    """The issuer's trust anchors for the bank host (DER certificates), [] when it set none."""
    recover()
    return _certificates(BANK_CA)


def _certificates(path):
    """The DER certificates one after the other in the file at path ([] if there is none)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    cas = []
    while data:
        # A DER SEQUENCE's length: short form, or 1..2 length bytes (a certificate is < 64 KB).
        if data[0] != 0x30 or len(data) < 2:
            raise ValueError("not DER certificates")
        n = data[1]
        if n >= 0x80:
            n &= 0x7F
            if n > 2:
                raise ValueError("not DER certificates")
            size = 2 + n + int.from_bytes(data[2:2 + n], "big")
        else:
            size = 2 + n
        if size > len(data):
            raise ValueError("not DER certificates")
        cas.append(data[:size])
        data = data[size:]
    return cas


def kernel(currency, t=None):
    """The EMV kernel's TerminalConfig: the defaults, the issuer's parameters (t, else the
    installed ones) over them. The kernel's own module is not imported: the card flow imports it
    once this module is let go of (terminal.card)."""
    from emv.config import TerminalConfig

    if t is None:
        t = terminal()
    kw = {}  # type: dict
    kw["currency"] = bytes.fromhex("%04d" % int(currency))
    if "aids" in t:
        kw["aids"] = tuple(bytes.fromhex(a) for a in t["aids"])
    if "floor_limit" in t:
        kw["floor_limit"] = int(t["floor_limit"])
    if "contactless_limits" in t:
        kw["contactless_limits"] = tuple((bytes.fromhex(rid), int(a), int(b), int(c))
                                         for rid, a, b, c in t["contactless_limits"])
    if "offline_caps" in t:  # terminal.offline: per payment, in total, in number waiting
        a, b, c = t["offline_caps"]
        kw["offline_caps"] = (int(a), int(b), int(c))
    return TerminalConfig(**kw)


class Installer:
    """package.installer_for(3): see lib/update/package.py for the protocol."""

    def __init__(self):
        from update.sections import Reader

        self.head = None
        self.sections = Reader(self._open, "parameters", _NAME_MAX)

    def installed(self):
        return installed()

    def begin(self, head):
        recover()
        version, svn = installed()
        if head.svn < svn:
            from update.package import Refused

            raise Refused("parameters of security version %d, below the installed %d" % (head.svn, svn))
        if head.version <= version:
            from update.package import Refused

            raise Refused("parameters version %d, not newer than the installed %d" % (head.version, version))
        self.head = head
        makedirs(STAGING)
        os.mkdir(STAGING)

    def write(self, offset, chunk):
        self.sections.write(chunk)

    def _open(self, name):
        if _target(name) is None or name in self.sections.names:
            from update.package import BadPackage

            raise BadPackage("parameters: section %r unknown or twice" % name)
        return open(STAGING + "/" + name, "wb")

    def finish(self):
        from update.package import BadPackage

        head = self.head
        if head is None or self.sections.cut_short():
            raise BadPackage("parameters: no header, or the last section cut short")
        self._check()
        with open(_COMMIT + ".tmp", "w") as f:
            json.dump({"version": head.version, "svn": head.svn}, f)
        os.rename(_COMMIT + ".tmp", _COMMIT)  # the commit point
        recover()

    def _check(self):
        """What was staged is what the terminal can read: a bad section refuses the package."""
        from emv import CapkError, capk
        from update.package import BadPackage

        seen = self.sections.names
        try:
            if "capk" in seen:
                capk.Store.load(STAGING + "/capk")
            if "bank_ca" in seen:
                import ssl

                cas = _certificates(STAGING + "/bank_ca")
                if not cas:
                    raise ValueError("no bank CA")
                for der in cas:
                    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=der)
            if "terminal" in seen:
                with open(STAGING + "/terminal") as f:
                    t = json.load(f)
                if not isinstance(t, dict):
                    raise ValueError("not an object")
                kernel("978", t)
                if "lock" in t:
                    from vault import issuer_settings

                    issuer_settings(t["lock"])
                bank = t.get("bank", {})
                if not isinstance(bank.get("host", ""), str) or not isinstance(bank.get("port", 0), int):
                    raise ValueError("bank endpoint")
        except (CapkError, ValueError, TypeError, KeyError, OSError) as e:
            raise BadPackage("parameters: %s" % e)

    def abort(self):
        self.sections.close()
        remove(_COMMIT + ".tmp")
        recover()
