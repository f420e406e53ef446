"""Signed update packages from the issuer (tools/bank/PROTOCOL.md, "Update packages"), verified
as they stream in, and the installer protocol every kind of package is installed through.

The package (all integers big-endian):

    offset  size  field
    0       4     magic b"PTPK"
    4       1     kind: 1 firmware application image, 2 vfs files, 3 terminal parameters
    5       4     version (u32)
    9       4     security version (u32): a package below the installed one is refused
    13      4     payload length (u32)
    17      32    payload SHA-256
    49      256   RSA-2048 PKCS#1 v1.5 signature, SHA-256, over bytes 0..48 (the header)
    305     ...   payload (payload length bytes)

The signer is the issuer's update-signing key (the bank's, apart from its CA and HSM keys); its
public key is the vault's provisioning item "issuer.update": the modulus (256 bytes) followed by
the public exponent (big-endian, the remaining bytes), put there by tools/provision inject as
the issuer CA is.

Verifying (the signature with pow(), lib/emv's RSA recovery):

    v = package.Verifier(key)          # key: (modulus bytes, exponent int)
    h = v.header(first_305_bytes)      # a Header (kind, version, svn, length, digest);
                                       # raises BadPackage: magic, kind, length, signature
    v.feed(chunk)                      # the payload, in order, any sizes
    v.finish()                         # raises BadPackage unless length and SHA-256 match

Installing: one installer per kind, made fresh for each download (lazy import: only the
kind's module is loaded):

    inst = package.installer_for(kind) # Unsupported for a kind this build does not install
    inst.installed()                   # (version, security version) installed now, ints
    inst.begin(header)                 # checks header.svn (and what else the kind needs)
                                       # BEFORE any write: raises Refused (nothing written)
    inst.write(offset, chunk)          # payload bytes at offset, in order, from 0
    inst.finish()                      # called only after Verifier.finish() passed: switch
                                       # to the new content atomically (a power cut at any
                                       # write leaves old or new); raises Refused if it cannot
    inst.abort()                       # drop whatever was written; the old content stays.
                                       # Safe to call at any point, also after a power cut
                                       # (install() calls it before begin())

Payloads: kind 1 is the application image as written to the OTA slot; kinds 2 and 3 are a
list of sections, each: name length (1 byte), name (ASCII), content length (u32), content. For
kind 2 a section's name is the file's absolute vfs path, its content the file's; for kind 3 see
lib/update/config.py. (tools/bank/updates.py builds all three.)

The kinds' installers: 1 update.ota.Installer, 2 update.files.Installer (ota's), 3
update.config.Installer (pkg's). Each module has a class `Installer()` taking no arguments.

The download (install(), the uplink's 0800/360 records) never holds the package whole: the
first 305 bytes, then records of up to RECORD bytes, each fed to the verifier and written,
then Verifier.finish(), then inst.finish(). Anything wrong (a record missing, the link down, a
bad digest) calls inst.abort(): the next sign-on that offers the package starts it again from 0.
"""

import hashlib

from micropython import const

MAGIC = b"PTPK"
HEADER = const(49)  # the signed part
SIGNATURE = const(256)  # RSA-2048
PREFIX = const(305)  # header and signature: what comes before the payload
RECORD = const(960)  # payload bytes asked for in one 0800/360 (PROTOCOL.md: DE72 holds 999)
FIRMWARE = const(1)
FILES = const(2)
PARAMETERS = const(3)
# EMSA-PKCS1-v1_5 (RFC 8017 9.2) for SHA-256 and a 2048-bit key: 00 01, FF padding, 00, then
# the DigestInfo's DER prefix and the 32-byte hash.
_DIGEST_INFO = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"
# The installers' modules, by kind.
_INSTALLERS = ("update.ota", "update.files", "update.config")


class BadPackage(Exception):
    """Not a package of the issuer's, or not whole: nothing of it may be installed."""


class Refused(Exception):
    """A good package this unit will not install (a lower security version, ...)."""


class Unsupported(Refused):
    """A kind of package this build has no installer for."""


class Header:
    __slots__ = ("kind", "version", "svn", "length", "digest")

    def __init__(self, kind, version, svn, length, digest):
        self.kind = kind
        self.version = version
        self.svn = svn
        self.length = length
        self.digest = digest

    def __repr__(self):
        return "<package kind %d version %d svn %d, %d bytes>" % (self.kind, self.version, self.svn, self.length)


def key_of(item):
    """The (modulus, exponent) of the vault's "issuer.update" item (modulus 256 bytes, then the
    exponent)."""
    return bytes(item[:SIGNATURE]), int.from_bytes(item[SIGNATURE:], "big")


def parse(prefix, key):
    """The Header of a package's first PREFIX bytes, its signature checked with key
    (modulus, exponent); BadPackage otherwise."""
    from emv import OdaFailed
    from emv.oda import recover

    if len(prefix) != PREFIX or prefix[:4] != MAGIC:
        raise BadPackage("not a package (magic)")
    head = bytes(prefix[:HEADER])
    kind = head[4]
    if not FIRMWARE <= kind <= PARAMETERS:
        raise BadPackage("kind %d unknown" % kind)
    try:
        em = recover(key, bytes(prefix[HEADER:]), "signature")
    except OdaFailed as e:
        raise BadPackage(str(e))
    # The expected encoding, compared whole: padding and DigestInfo are not parsed (no room for
    # a lenient parser's forgeries).
    h = hashlib.sha256(head).digest()
    pad = SIGNATURE - 3 - len(_DIGEST_INFO) - len(h)
    if em != b"\x00\x01" + b"\xff" * pad + b"\x00" + _DIGEST_INFO + h:
        raise BadPackage("signature is not the issuer's")
    return Header(kind, int.from_bytes(head[5:9], "big"), int.from_bytes(head[9:13], "big"),
                  int.from_bytes(head[13:17], "big"), head[17:49])


class Verifier:
    """A package's signature at header(), its payload's length and SHA-256 as it streams."""

    def __init__(self, key):
        self.key = key
        self.head = None
        self._hash = None
        self.seen = 0

    def header(self, prefix):
        self.head = parse(prefix, self.key)
        self._hash = hashlib.sha256()
        self.seen = 0
        return self.head

    def _read(self):
        if self.head is None or self._hash is None:
            raise BadPackage("payload before its header")
        return self.head, self._hash

    def feed(self, chunk):
        head, h = self._read()
        self.seen += len(chunk)
        if self.seen > head.length:
            raise BadPackage("payload longer than its header says")
        h.update(chunk)

    def finish(self):
        head, h = self._read()
        if self.seen != head.length:
            raise BadPackage("payload %d bytes of %d" % (self.seen, head.length))
        if h.digest() != head.digest:
            raise BadPackage("payload SHA-256 differs from the signed one")


def installer_for(kind):
    """A new installer of this kind of package (its module imported now)."""
    if not FIRMWARE <= kind <= PARAMETERS:
        raise Unsupported("kind %d unknown" % kind)
    try:
        module = __import__(_INSTALLERS[kind - 1], None, None, ("Installer",))
    except ImportError:
        raise Unsupported("this firmware installs no packages of kind %d" % kind)
    return module.Installer()


async def install(fetch, key, expect_kind=None):
    """Download, verify and install one package: `await fetch(offset, length)` gives the
    package's bytes from offset (at most length; fewer only at its end). Returns its Header once
    installed; BadPackage, Refused (or the fetch's error) and nothing installed otherwise."""
    v = Verifier(key)
    prefix = await fetch(0, PREFIX)
    head = v.header(prefix)
    if expect_kind is not None and head.kind != expect_kind:
        raise BadPackage("kind %d, not the %d offered" % (head.kind, expect_kind))
    inst = installer_for(head.kind)
    inst.abort()  # what a download cut short (power, link) left
    inst.begin(head)
    try:
        done = 0
        while done < head.length:
            chunk = await fetch(PREFIX + done, min(RECORD, head.length - done))
            if not chunk:
                raise BadPackage("package ends at %d of %d bytes" % (done, head.length))
            v.feed(chunk)
            inst.write(done, chunk)
            done += len(chunk)
        v.finish()
        inst.finish()
    except BaseException:
        inst.abort()
        raise
    return head


def versions():
    """(firmware version, security version, parameters version, files version) as sign-on
    reports them."""
    from update.files import installed

    try:
        fw, svn = installer_for(FIRMWARE).installed()
    except Unsupported:
        fw = svn = 0
    return fw, svn, installer_for(PARAMETERS).installed()[0], installed()[0]


# What a sign-on's answer names (PROTOCOL.md) that installs at once, by kind. Files install at
# once like parameters, not with the owner's consent like firmware: they are the issuer's (its
# tables, its texts, under its signature and security version), which the owner cannot judge
# and must not be able to keep stale by answering "Later"; and nothing restarts: the set
# switches in finish() with no await between its renames, so a flow (a payment above all) never
# sees a mix and is never cut. A module already imported runs on until the next start.
_AT_ONCE = (("CFG", PARAMETERS), ("FILES", FILES))


async def follow(up, offer):
    """Act on what a sign-on's answer offers (its DE48, PROTOCOL.md): newer terminal parameters
    (CFG=<version>) and files (FILES=<version>) are downloaded and installed at once, then the
    bank told (a sign-on again); a firmware package (UPD=<id>) is left in up.offered for the
    owner's consent (update.ota). A failure is kept in up.update_error (the next sign-on offers
    the package again)."""
    pairs = dict(p.split("=", 1) for p in offer.split(";") if "=" in p)
    up.offered = pairs.get("UPD")
    tried = installed = False
    error = None
    for name, kind in _AT_ONCE:
        version = pairs.get(name, "")
        if not version.isdigit() or int(version) <= installer_for(kind).installed()[0]:
            continue
        tried = True
        pid = "%d.%s" % (kind, version)

        async def fetch(offset, length, pid=pid):
            return await up.record(pid, offset, length)

        try:
            await install(fetch, key_of(up.vault.device_secret("issuer.update")), kind)
            installed = True
            if kind == PARAMETERS:
                from update.config import apply_policy

                apply_policy(up.vault)
                up.retrust()
        except Exception as e:  # BadPackage, Refused, the link's UplinkError: nothing installed
            error = e
    if tried:
        up.update_error = error
    if installed:
        try:
            await up.sign_on()
        except Exception as e:  # the link's: the bank learns the versions at the next sign-on
            up.update_error = up.update_error or e
