"""The bank HSM (tools/bank/hsm.py) against published numbers and independent implementations:
AES DUKPT against the ANSI X9.24-3-2017 vectors (the standard's B.1 sample and its supplement
test vectors), PIN blocks against psec, ARQC/ARPC against the test cards' own 3DES code
(tools/emvcard/cardcrypto.py), and the PKI's certificates against the ssl module's checks.
"""

import ssl

import pytest
from psec import pinblock

from tools.bank import hsm, pki
from tools.bank.hsm import Hsm
from tools.emvcard import cardcrypto, cryptogram

BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
IKID = bytes.fromhex("1234567890123456")
IK = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")


def ksn(counter):
    return IKID + counter.to_bytes(4, "big")


def test_initial_key_x9_24_3_vector():
    assert hsm.derive_initial_key(BDK, IKID) == IK


# X9.24-3-2017 supplement: the intermediate derivation key of each transaction counter.
@pytest.mark.parametrize("counter, key", [
    (1, "4F21B565BAD9835E112B6465635EAE44"),
    (2, "2F34D68DE10F68D38091A73B9E7C437C"),
    (8, "718EE6CF0B27E53D5F7AF99C4D8146A2"),
    (0x1FFFE, "E21E8C8D347F8561A2BE752DAA85A111"),
    (0x20000, "F7AE9025468A25D37B7249CFFED224C8"),
    (0x20001, "692C8EA4013645135B36497131DF9D2C"),
    (0xFFFE2000, "48E585B694EB0B18D5C35443E163C0BA"),
    (0xFFFF0000, "F6BA59389BD14A9855BE9727E7C52E3C"),
])
def test_derivation_key_vectors(counter, key):
    assert hsm.derivation_key(IK, IKID, counter).hex().upper() == key


# X9.24-3-2017 working keys (AES-128 from the AES-128 BDK).
@pytest.mark.parametrize("counter, usage, key", [
    (1, hsm.KEY_USAGE_PIN, "AF8CB133A78F8DC2D1359F18527593FB"),
    (2, hsm.KEY_USAGE_PIN, "D30BDC73EC9714B000BEC66BDB7B6D09"),
    (8, hsm.KEY_USAGE_PIN, "4D9DF3FBEE3448FC3E676D04320A90F5"),
    (1, hsm.KEY_USAGE_MAC_BOTH, "85675439D18D7F1158BD8E3EAA3D502B"),
    (1, 0x2000, "A2DC23DE6FDE0824A2BC321E08E4B8B7"),      # MAC generation
    (8, 0x2000, "6FD572E5D59E618875F193484F9178FB"),
])
def test_working_key_vectors(counter, usage, key):
    assert hsm.working_key(IK, ksn(counter), usage).hex().upper() == key


def test_bad_ksn_and_counter_are_refused():
    with pytest.raises(hsm.HsmError):
        hsm.working_key(IK, IKID + b"\x00\x00\x01", hsm.KEY_USAGE_PIN)
    with pytest.raises(hsm.HsmError):
        hsm.working_key(IK, ksn(0), hsm.KEY_USAGE_PIN)


@pytest.fixture
def keys(tmp_path):
    return Hsm.create(tmp_path / "keys.json", bdk=BDK)


def test_key_file_is_private_and_never_overwritten(keys, tmp_path):
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(hsm.HsmError):
        Hsm.create(tmp_path / "keys.json")
    assert keys.initial_key(IKID) == IK


def test_pin_verification_with_psec_pin_blocks(keys):
    pan = "4761739001010010"
    pvv = keys.pvv(pan, "1234")
    assert len(pvv) == 4 and pvv.isdigit()
    pin_key = hsm.working_key(IK, ksn(5), hsm.KEY_USAGE_PIN)
    good = pinblock.encipher_pinblock_iso_4(pin_key, "1234", pan)
    bad = pinblock.encipher_pinblock_iso_4(pin_key, "1243", pan)
    assert keys.verify_pin(ksn(5), good, pan, pvv)
    assert not keys.verify_pin(ksn(5), bad, pan, pvv)
    assert not keys.verify_pin(ksn(6), good, pan, pvv)          # another KSN's key
    assert not keys.verify_pin(ksn(5), good, "4761739001010028", pvv)
    assert not keys.verify_pin(ksn(5), bytes(16), pan, pvv)     # garbage: wrong, not an error


def test_mac_is_cmac_under_the_mac_both_ways_key(keys):
    from cryptography.hazmat.primitives.cmac import CMAC
    from cryptography.hazmat.primitives.ciphers import algorithms
    c = CMAC(algorithms.AES(bytes.fromhex("85675439D18D7F1158BD8E3EAA3D502B")))
    c.update(b"0800 message")
    expected = c.finalize()[:8]
    assert keys.mac(ksn(1), b"0800 message") == expected
    assert keys.check_mac(ksn(1), b"0800 message", expected)
    assert not keys.check_mac(ksn(2), b"0800 message", keys.mac(ksn(1), b"0800 message"))


def test_arqc_and_arpc_against_the_cards_own_3des(keys):
    imk = bytes.fromhex("F70959962E60613CDBB332C195F814E7")
    pan, psn = "4761739001010010", "01"
    keys.add_issuer_key("bank-a-visa", imk)
    tags = {0x9F02: bytes.fromhex("000000001234"), 0x9F03: bytes(6), 0x9F1A: b"\x02\x50",
            0x95: bytes(5), 0x5F2A: b"\x09\x78", 0x9A: b"\x26\x11\x21", 0x9C: b"\x00",
            0x9F37: b"\xde\xad\xbe\xef", 0x82: b"\x3c\x00", 0x9F36: b"\x00\x07",
            0x9F10: cryptogram.iad(cryptogram.VISA_CVN10, b"\x03\xa0\x00\x00")}
    # Visa CVN 10 as the card computes it: the ICC master key itself, zero padding, the CVR
    # (every version: tests/host/test_cryptogram_versions.py)
    mk = cardcrypto.icc_master_key(imk, pan, psn)
    data = b"".join(tags[t] for t in cryptogram.ARQC_TAGS) + tags[0x9F10][3:7]
    tags[0x9F26] = cardcrypto.mac3(mk, data, pad=cardcrypto.pad1)
    assert keys.verify_arqc("bank-a-visa", pan, psn, tags)
    assert keys.arpc("bank-a-visa", pan, psn, tags, b"00") == \
        cardcrypto.arpc1(mk, tags[0x9F26], b"00") + b"00"
    tags[0x9F02] = bytes.fromhex("000000001235")
    assert not keys.verify_arqc("bank-a-visa", pan, psn, tags)
    with pytest.raises(hsm.HsmError):
        keys.verify_arqc("no-such-key", pan, psn, tags)


def test_sealed_answers_are_bound_to_their_message(keys):
    sealed = keys.seal(b"0210 answer", b"PT000001|000001|1121080000")
    assert b"0210" not in sealed
    assert keys.unseal(sealed, b"PT000001|000001|1121080000") == b"0210 answer"
    with pytest.raises(Exception):
        keys.unseal(sealed, b"PT000001|000002|1121080000")


def test_pki_device_certificate_chains_to_the_ca(tmp_path):
    pki.init(tmp_path)
    files = pki.issue_device(tmp_path, "PT000042")
    from cryptography import x509
    cert = x509.load_der_x509_certificate(files["cert_der"].read_bytes())
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert "CN=PT000042" in cert.subject.rfc4514_string().split(",")
    assert pki.cert_fingerprint(files["cert"]) == pki.fingerprint(files["cert_der"].read_bytes())
    # the server side loads them as the host does
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "host.pem", tmp_path / "host.key.pem")
    with pytest.raises(pki.PkiError):
        pki.issue_device(tmp_path, "TOO-LONG-SERIAL")
    with pytest.raises(pki.PkiError):
        pki.init(tmp_path)
