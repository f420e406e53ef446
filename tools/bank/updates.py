"""The issuer's update packages (tools/bank/PROTOCOL.md, "Updates and terminal management";
the device's side is lib/update): the update-signing key, building and publishing packages,
serving them in records.

The update-signing key is the issuer's, apart from its other keys: RSA-2048 in
<state>/update/key.pem (0600), not in the PKI (pki/: the CA that signs TLS certificates) nor in
the HSM's key file (hsm/: DUKPT, MAC, PIN keys). Its public half goes into every unit at
provisioning, as the vault item "issuer.update" (public_item(): modulus, then exponent).

    updates.init(state)                           the key, made once
    raw = updates.build(kind, version, svn, payload, private_key)
    pid = updates.publish(state, kind, version, svn, payload)   -> "3.7"
    data, size = updates.record(ledger, packages_dir(state), "3.7", offset, length)

Package ids are "<kind>.<version>": a kind's version is published once. The package files are
kept in <state>/update/packages/ (named by id) and the ledger's `packages` table lists them.
"""

import hashlib
import json
import os
import struct
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MAGIC = b"PTPK"
FIRMWARE, FILES, PARAMETERS = 1, 2, 3
KINDS = {"firmware": FIRMWARE, "files": FILES, "params": PARAMETERS}
HEADER = struct.Struct(">4sBIII32s")  # 49 bytes
PREFIX = HEADER.size + 256
PARAMETER_SECTIONS = ("capk", "terminal", "bank_ca")  # lib/update/config.py's


class UpdateError(Exception):
    """A package that cannot be built or published (bad input, a version taken)."""


def key_path(state):
    return Path(state.dir) / "update" / "key.pem"


def init(state):
    """The update-signing key: made once (RSA-2048, e = 65537), kept 0600."""
    path = key_path(state)
    if path.exists():
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    path.with_suffix(".tmp").replace(path)
    return path


def private_key(state):
    return serialization.load_pem_private_key(init(state).read_bytes(), None)


def public_item(key):
    """The vault item "issuer.update" of a (private or public) RSA key: modulus (256 bytes) then
    the public exponent (big-endian, its shortest)."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    n = pub.public_numbers()
    if n.n.bit_length() != 2048:
        raise UpdateError("the update key must be RSA-2048")
    e = n.e.to_bytes((n.e.bit_length() + 7) // 8, "big")
    return n.n.to_bytes(256, "big") + e


def build(kind, version, svn, payload, key):
    """The package: header, signature (PKCS#1 v1.5, SHA-256) over it, payload."""
    if kind not in (FIRMWARE, FILES, PARAMETERS):
        raise UpdateError("kind %r unknown" % kind)
    for what, v in (("version", version), ("security version", svn)):
        if not 0 <= v < 1 << 32:
            raise UpdateError("%s %r is not a u32" % (what, v))
    head = HEADER.pack(MAGIC, kind, version, svn, len(payload), hashlib.sha256(payload).digest())
    return head + key.sign(head, padding.PKCS1v15(), hashes.SHA256()) + payload


def sections(items):
    """A section list payload of (name, bytes) pairs (package.py's docstring)."""
    out = bytearray()
    for name, data in items:
        raw = name.encode("ascii")
        if not 0 < len(raw) < 256:
            raise UpdateError("section name %r" % name)
        out += bytes((len(raw),)) + raw + struct.pack(">I", len(data)) + data
    return bytes(out)


def params_payload(doc, today=None):
    """The kind-3 payload of a parameters document {"capk": [CA keys as /data/capk.json has
    them], "terminal": {...}, "bank_ca": "PEM certificates"} (lib/update/config.py). CA keys past their expiry (YYMMDD, UTC
    today) are revoked: left out, and named in the second value returned."""
    import datetime

    if not isinstance(doc, dict) or not doc or set(doc) - set(PARAMETER_SECTIONS):
        raise UpdateError("parameters are an object of %s" % ", ".join(PARAMETER_SECTIONS))
    today = today or datetime.datetime.now(datetime.timezone.utc).strftime("%y%m%d")
    revoked = []
    items = []
    if "capk" in doc:
        keys = []
        for k in doc["capk"]:
            try:
                expired = _stamp(k["expiry"]) < _stamp(today)
            except (KeyError, TypeError, ValueError):
                raise UpdateError("CA key %r has no expiry YYMMDD" % (k,))
            (revoked if expired else keys).append(k)
        items.append(("capk", json.dumps(keys).encode()))
    if "terminal" in doc:
        if not isinstance(doc["terminal"], dict):
            raise UpdateError("terminal parameters are an object")
        items.append(("terminal", json.dumps(doc["terminal"]).encode()))
    if "bank_ca" in doc:
        from cryptography import x509

        try:
            cas = x509.load_pem_x509_certificates(doc["bank_ca"].encode())
        except (AttributeError, ValueError) as e:
            raise UpdateError("bank_ca is not PEM certificates: %s" % e)
        items.append(("bank_ca", b"".join(c.public_bytes(serialization.Encoding.DER) for c in cas)))
    return sections(items), ["%s/%s" % (k.get("rid"), k.get("index")) for k in revoked]


def _stamp(yymmdd):
    if len(yymmdd) != 6 or not yymmdd.isdigit():
        raise ValueError(yymmdd)
    yy = int(yymmdd[:2])
    return (yy + (1900 if yy >= 50 else 2000)) * 10000 + int(yymmdd[2:])


def files_payload(directory):
    """The kind-2 payload of a directory: every file under it, named by its vfs path ("/" +
    its path relative to the directory)."""
    root = Path(directory)
    if not root.is_dir():
        raise UpdateError("%s is not a directory" % directory)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise UpdateError("%s holds no files" % directory)
    return sections(("/" + p.relative_to(root).as_posix(), p.read_bytes()) for p in files)


def packages_dir(state):
    return Path(state.dir) / "update" / "packages"


def publish(state, kind, version, svn, payload):
    """Sign a package with the update key, keep it, list it in the ledger; its id."""
    raw = build(kind, version, svn, payload, private_key(state))
    pid = "%d.%d" % (kind, version)
    if state.ledger.package(pid) is not None:
        raise UpdateError("package %s is published already: a new one takes a new version" % pid)
    d = packages_dir(state)
    d.mkdir(parents=True, exist_ok=True)
    path = d / (pid + ".ptpk")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)
    state.ledger.add_package(pid, kind, version, svn, len(raw), hashlib.sha256(raw).hexdigest())
    return pid


def record(ledger, directory, pid, offset, length):
    """(bytes of package pid from offset, at most length; its total size); None if unknown."""
    row = ledger.package(pid)
    if row is None:
        return None
    with open(Path(directory) / (pid + ".ptpk"), "rb") as f:
        f.seek(offset)
        return f.read(max(0, min(length, row["size"] - offset))), row["size"]
