"""The test PKI of the bank: an issuer CA, the host's server certificate and one certificate per
device (CN = its serial), all EC P-256 (what the ESP32's mbedTLS handles cheaply for a client
certificate), written as PEM and DER.

Layout under a PKI directory (`<state-dir>/pki` for the host):
    ca.key.pem ca.pem ca.der                the issuer CA (the device gets ca.der)
    host.key.pem host.pem                   the host's server certificate (SAN localhost, 127.0.0.1)
    devices/<serial>.key.pem .key.der .pem .der   a device's key and certificate

A binding certificate (issue_binding) ties a bank account to a device: the device's public key,
subject CN = the account id, serialNumber = the device's serial, OU = the role (owner: the
device may debit it; payee: it may pay to it), signed by the CA. The device keeps it in its
vault with the account's record (vault.bind_account).

    python -m tools.bank.admin pki init [--dir D]
    python -m tools.bank.admin pki device PT000001 [--dir D]
"""

import datetime
import hashlib
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650
SERIAL_LEN = 8


class PkiError(Exception):
    """A PKI file that is missing or would be overwritten, or a bad serial."""


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pocket Terminal test bank"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path, key, der_path=None):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    if der_path is not None:
        fd = os.open(der_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.DER,
                                      serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))


def _write_cert(pem_path, cert, der_path=None):
    Path(pem_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if der_path is not None:
        Path(der_path).write_bytes(cert.public_bytes(serialization.Encoding.DER))


def _builder(subject, issuer, public_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS)))


def init(pki_dir, cn="Pocket Terminal issuer CA"):
    """A new CA and host certificate in pki_dir (an existing CA is never overwritten)."""
    d = Path(pki_dir)
    if (d / "ca.pem").exists():
        raise PkiError("%s already holds a CA" % d)
    (d / "devices").mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(_name(cn), _name(cn), key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    _write_key(d / "ca.key.pem", key)
    _write_cert(d / "ca.pem", cert, d / "ca.der")
    issue_host(d)
    return d


def _ca(d):
    try:
        key = serialization.load_pem_private_key((d / "ca.key.pem").read_bytes(), None)
        cert = x509.load_pem_x509_certificate((d / "ca.pem").read_bytes())
    except FileNotFoundError:
        raise PkiError("no CA in %s: run `python -m tools.bank.admin pki init` first" % d) from None
    return key, cert


def _leaf(d, cn, usage, sans=None):
    ca_key, ca_cert = _ca(d)
    key = ec.generate_private_key(ec.SECP256R1())
    b = (_builder(_name(cn), ca_cert.subject, key.public_key())
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, b.sign(ca_key, hashes.SHA256())


def issue_host(pki_dir, hostnames=("localhost",), addresses=("127.0.0.1",)):
    """The host's server certificate, for the names and addresses it is reached at."""
    d = Path(pki_dir)
    sans = [x509.DNSName(h) for h in hostnames] + [x509.IPAddress(ipaddress.ip_address(a))
                                                   for a in addresses]
    key, cert = _leaf(d, hostnames[0], ExtendedKeyUsageOID.SERVER_AUTH, sans)
    _write_key(d / "host.key.pem", key)
    _write_cert(d / "host.pem", cert)


def check_serial(serial):
    if len(serial) != SERIAL_LEN or not serial.isalnum() or not serial.isascii():
        raise PkiError("a device serial has 8 ASCII letters/digits, e.g. PT000001")
    return serial


def issue_device(pki_dir, serial):
    """A device key and certificate (CN = serial), PEM and DER; returns the certificate paths."""
    d = Path(pki_dir)
    check_serial(serial)
    key, cert = _leaf(d, serial, ExtendedKeyUsageOID.CLIENT_AUTH)
    base = d / "devices" / serial
    base.parent.mkdir(parents=True, exist_ok=True)
    _write_key(base.with_suffix(".key.pem"), key, base.with_suffix(".key.der"))
    _write_cert(base.with_suffix(".pem"), cert, base.with_suffix(".der"))
    return device_files(d, serial)


BINDING_ROLES = ("owner", "payee")


def issue_binding(pki_dir, serial, account_id, role):
    """The DER certificate binding account_id to the device `serial` in `role` (see above)."""
    d = Path(pki_dir)
    check_serial(serial)
    if role not in BINDING_ROLES:
        raise PkiError("a binding's role is owner or payee, not %r" % role)
    try:
        device = x509.load_pem_x509_certificate(device_files(d, serial)["cert"].read_bytes())
    except FileNotFoundError:
        raise PkiError("no certificate for device %s in %s: issue it first" % (serial, d)) from None
    ca_key, ca_cert = _ca(d)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pocket Terminal test bank"),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                         x509.NameAttribute(NameOID.SERIAL_NUMBER, serial),
                         x509.NameAttribute(NameOID.COMMON_NAME, account_id)])
    cert = (_builder(subject, ca_cert.subject, device.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def device_files(pki_dir, serial):
    """{cert, key, cert_der, key_der}: the paths of a device's files."""
    base = Path(pki_dir) / "devices" / serial
    return {"cert": base.with_suffix(".pem"), "key": base.with_suffix(".key.pem"),
            "cert_der": base.with_suffix(".der"), "key_der": base.with_suffix(".key.der")}


def fingerprint(cert_der):
    """The SHA-256 of a certificate's DER, hex: how the ledger pins a device's certificate."""
    return hashlib.sha256(cert_der).hexdigest()


def cert_fingerprint(pem_path):
    cert = x509.load_pem_x509_certificate(Path(pem_path).read_bytes())
    return fingerprint(cert.public_bytes(serialization.Encoding.DER))
