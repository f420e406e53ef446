"""Update packages (lib/update/package.py) checked on the virtual handheld against packages the
bank builds (tools/bank/updates.py, signed by `cryptography`), with `cryptography` as the oracle
of the signature: what it accepts the device accepts, what it refuses the device refuses; and
the terminal parameters' installer (lib/update/config.py) through install() from a package on
the device's flash, its refusals, and what the kernel then reads.
"""

import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tools import emvcard
from tools.bank import updates
from tools.emvcard import perso

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
LIMITS = [["a000000003", 150000, 8000, 0], ["", 120000, 6000, 0]]

SETUP = """
import asyncio, os
from update import package, config
KEY = package.key_of(bytes.fromhex(%r))
def check(raw):
    v = package.Verifier(KEY)
    try:
        h = v.header(raw[:package.PREFIX])
        for i in range(package.PREFIX, len(raw), 100):
            v.feed(raw[i:i + 100])
        v.finish()
    except package.BadPackage as e:
        return 'bad: ' + str(e)
    return (h.kind, h.version, h.svn, h.length, h.digest)
PKG = '/pkg-test.ptpk'
async def _fetch(offset, length):
    with open(PKG, 'rb') as f:
        f.seek(offset)
        return f.read(length)
def install_file():
    try:
        h = asyncio.run(package.install(_fetch, KEY))
    except (package.BadPackage, package.Refused) as e:
        return '%%s: %%s' %% (type(e).__name__, e)
    return (h.kind, h.version)
def clean():
    for p in ('/config/params.json', '/config/terminal.json', '/data/capk.json'):
        try:
            os.remove(p)
        except OSError:
            pass
    config.recover()
"""


@pytest.fixture(scope="module")
def dev(device):
    device.exec(SETUP % updates.public_item(KEY).hex())
    yield device
    device.exec("clean()")


def oracle(raw):
    """cryptography's verdict on a package's signature over its header."""
    try:
        KEY.public_key().verify(raw[49:305], raw[:49], padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def params(version, svn=0, terminal=None, capk=None):
    doc = {"terminal": terminal or {"contactless_limits": LIMITS, "floor_limit": 0}}
    if capk is not None:
        doc["capk"] = capk
    return updates.build(3, version, svn, updates.params_payload(doc)[0], KEY)


def test_a_package_of_the_issuers_passes_with_its_header_read(dev):
    payload = bytes(range(256)) * 9
    raw = updates.build(1, 7, 2, payload, KEY)
    assert oracle(raw)
    assert dev.eval("check(%r)" % raw) == (1, 7, 2, len(payload), hashlib.sha256(payload).digest())


@pytest.mark.parametrize("change", ["other signer", "header byte", "signature byte", "payload byte",
                                    "payload cut", "payload longer", "magic"])
def test_what_the_oracle_refuses_or_the_digest_betrays_is_refused(dev, change):
    payload = b"parameters " * 40
    raw = bytearray(updates.build(3, 2, 1, payload, KEY))
    if change == "other signer":
        raw = bytearray(updates.build(3, 2, 1, payload, OTHER))
    elif change == "header byte":
        raw[10] ^= 1  # the security version
    elif change == "signature byte":
        raw[200] ^= 0x40
    elif change == "payload byte":
        raw[-5] ^= 1
    elif change == "payload cut":
        raw = raw[:-1]
    elif change == "payload longer":
        raw += b"x"
    elif change == "magic":
        raw[0:4] = b"PTPX"
    said = dev.eval("check(%r)" % bytes(raw))
    assert said.startswith("bad: "), said
    if change in ("other signer", "header byte", "signature byte"):
        assert not oracle(bytes(raw))  # the oracle agrees the signature is not the issuer's


def test_a_forged_encoding_with_room_for_garbage_is_refused_as_the_oracle_refuses_it(dev):
    # Bleichenbacher's 2006 forgery works on verifiers that parse the padding and stop after the
    # hash: an encoding with fewer FF bytes and garbage after the digest. Signed here with the
    # issuer's own private key (raw RSA), so only the encoding is wrong.
    raw = bytearray(updates.build(3, 3, 0, b"p", KEY))
    digest = hashlib.sha256(bytes(raw[:49])).digest()
    info = bytes.fromhex("3031300d060960864801650304020105000420")
    em = b"\x00\x01" + b"\xff" * 8 + b"\x00" + info + digest
    em += b"\x42" * (256 - len(em))
    n = KEY.private_numbers()
    raw[49:305] = pow(int.from_bytes(em, "big"), n.d, n.public_numbers.n).to_bytes(256, "big")
    assert not oracle(bytes(raw))
    assert dev.eval("check(%r)" % bytes(raw)) == "bad: signature is not the issuer's"


def test_parameters_install_and_the_kernel_takes_their_limits_and_ca_keys(dev):
    dev.exec("clean()")
    assert dev.eval("config.installed()") == (0, 0)
    keys = perso.capk_entries(emvcard.CARDS_DIR)
    expired = dict(keys[0], index="EE", expiry="240101")
    expired["checksum"] = perso.capk_entry(dict(expired))["checksum"]
    dev.write_file("/pkg-test.ptpk", params(1, 1, capk=keys + [expired]))
    assert dev.eval("install_file()") == (3, 1)
    assert dev.eval("config.installed()") == (1, 1)
    assert dev.eval("[list(l) for l in config.kernel('978').contactless_limits]") == [
        [bytes.fromhex(r), a, b, c] for r, a, b, c in LIMITS]
    # The kernel's CA keys are the package's, the expired one revoked by the bank (left out).
    dev.exec("from emv import capk")
    assert dev.eval("len(capk.Store.load())") == len(keys)
    k = keys[0]
    assert dev.eval("capk.Store.load().get(bytes.fromhex(%r), %d, '260101').modulus.hex()"
                    % (k["rid"], int(k["index"], 16))) == k["modulus"].lower()
    assert "params.new" not in dev.eval("os.listdir('/config')")  # nothing left staged


@pytest.mark.parametrize("case,why", [
    ((1, 1), "Refused: parameters version 1, not newer than the installed 1"),
    ((2, 0), "Refused: parameters of security version 0, below the installed 1"),
])
def test_an_older_or_lower_security_version_is_refused_before_any_write(dev, case, why):
    dev.exec("clean()")
    dev.write_file("/pkg-test.ptpk", params(1, 1))
    assert dev.eval("install_file()") == (3, 1)
    dev.write_file("/pkg-test.ptpk", params(*case, terminal={"floor_limit": 5}))
    assert dev.eval("install_file()") == why
    assert dev.eval("config.installed()") == (1, 1)
    assert dev.eval("config.terminal()")["contactless_limits"] == LIMITS


def test_the_issuers_lock_policy_at_its_bounds(dev):
    dev.exec("from vault import issuer_settings\n"
             "def settings(s):\n"
             "    try:\n"
             "        issuer_settings(s)\n"
             "        return 'ok'\n"
             "    except ValueError as e:\n"
             "        return str(e)\n")
    for key, low, high in (("max_fails", 4, 20), ("delay_ms", 0, 60000), ("fp_window_s", 0, 30 * 86400),
                           ("fp_max_fails", 1, 10)):
        assert dev.eval("settings(%r)" % {key: low}) == dev.eval("settings(%r)" % {key: high}) == "ok"
        for value in (low - 1, high + 1, str(low), None):
            assert dev.eval("settings(%r)" % {key: value}).startswith("lock policy %s=" % key), (key, value)
    assert dev.eval("settings({'idle_s': 30})") == "no issuer lock policy setting idle_s"  # the owner's
    assert dev.eval("settings([])") == "the lock policy is an object"


@pytest.mark.parametrize("payload,why", [
    (updates.params_payload({"terminal": {"contactless_limits": [["zz", 1, 2, 3]]}})[0], "BadPackage: parameters: "),
    (updates.params_payload({"capk": [{"rid": "A000000003", "index": "92", "modulus": "00", "exponent": "03",
                                       "expiry": "491231", "checksum": "00" * 20}]})[0],
     "BadPackage: parameters: CA key "),
    (updates.sections([("bank_ca", b"\x30\x03abc")]), "BadPackage: parameters: invalid cert"),
    (updates.sections([("bank_ca", b"\x30\x82\x10\x00")]), "BadPackage: parameters: not DER certificates"),
    (updates.sections([("firmware", b"x")]), "BadPackage: parameters: section 'firmware' unknown"),
    (updates.sections([("terminal", b"{}"), ("terminal", b"{}")]),
     "BadPackage: parameters: section 'terminal' unknown or twice"),
    # update.sections, as the files' reader: refused at the name's length, not found cut short at the end
    (updates.sections([("x" * 17, b"{}")]), "BadPackage: parameters: a name longer than 16"),
    (updates.sections([("terminal", b"{}")])[:-1], "BadPackage: parameters: no header, or the last section cut"),
], ids=["limits", "ca-key", "bank-ca", "bank-ca-length", "section", "section-twice", "name-too-long", "cut"])
def test_parameters_the_terminal_cannot_read_are_refused_and_the_old_ones_stay(dev, payload, why):
    dev.exec("clean()")
    dev.write_file("/pkg-test.ptpk", params(1))
    assert dev.eval("install_file()") == (3, 1)
    dev.write_file("/pkg-test.ptpk", updates.build(3, 2, 0, payload, KEY))
    assert dev.eval("install_file()").startswith(why)
    assert dev.eval("config.installed()") == (1, 0)
    assert dev.eval("config.terminal()")["contactless_limits"] == LIMITS
