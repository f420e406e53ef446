"""RSA keys and the EMV certificates and signatures of the test cards (EMV Book 2, 5 and 6).

Every signature is the raw private operation pow(block, d, n) on the formatted block
(header 6A, data, SHA-1, trailer BC); the kernel recovers it with pow(x, e, n).
- Issuer PK certificate, format 02, signed by the CA (Book 2 Table 6)
- Signed static application data, format 03, signed by the issuer (Table 7)
- ICC PK certificate, format 04, signed by the issuer (Table 14)
- Signed dynamic application data, format 05, signed by the ICC (Table 17)
"""

import hashlib
import secrets

from cryptography.hazmat.primitives.asymmetric import rsa

from .tlv import decode


class Key:
    """An RSA key: modulus n, public exponent e, private exponent d (None for a public key)."""

    def __init__(self, n, e, d=None):
        self.n, self.e, self.d = n, e, d

    @property
    def size(self):
        return (self.n.bit_length() + 7) // 8

    @property
    def modulus(self):
        return self.n.to_bytes(self.size, "big")

    @property
    def exponent(self):
        return self.e.to_bytes((self.e.bit_length() + 7) // 8, "big")

    def sign(self, block):
        """The raw private operation on a block as long as the modulus."""
        if len(block) != self.size or block[0] != 0x6A or block[-1] != 0xBC:
            raise ValueError("a signed block is 6A .. BC and as long as the modulus")
        return pow(int.from_bytes(block, "big"), self.d, self.n).to_bytes(self.size, "big")

    def to_json(self, private=True):
        out = {"modulus": self.modulus.hex().upper(), "exponent": self.exponent.hex().upper()}
        if private:
            out["private_exponent"] = "%X" % self.d
        return out

    @classmethod
    def from_json(cls, obj):
        d = obj.get("private_exponent")
        return cls(int(obj["modulus"], 16), int(obj["exponent"], 16), int(d, 16) if d else None)


def _probable_prime(n):
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    r, s = 0, n - 1
    while s % 2 == 0:
        r, s = r + 1, s // 2
    for _ in range(40):
        x = pow(secrets.randbelow(n - 3) + 2, s, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits, e):
    while True:
        p = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if (p - 1) % e and _probable_prime(p):
            return p


def generate(bits, e=3):
    """A new RSA key of `bits` bits. The `cryptography` package makes keys of 1024 bits and
    more; it refuses smaller ones (the 768-bit ICC keys), which are made here from primes
    tested with Miller-Rabin (40 rounds) and then checked by `cryptography` all the same."""
    if bits >= 1024:
        numbers = rsa.generate_private_key(public_exponent=e, key_size=bits).private_numbers()
        return Key(numbers.public_numbers.n, e, numbers.d)
    while True:
        p, q = _prime(bits // 2, e), _prime(bits - bits // 2, e)
        n = p * q
        if p != q and n.bit_length() == bits:
            break
    d = pow(e, -1, (p - 1) * (q - 1))
    rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p),
                          rsa.RSAPublicNumbers(e, n)).private_key()  # raises if inconsistent
    return Key(n, e, d)


def _block(key, body, hashed_tail):
    """6A || body || SHA-1(body || hashed_tail) || BC, body padded with BB to fit the key."""
    room = key.size - 22
    if len(body) > room:
        raise ValueError("data does not fit the key")
    body = body + b"\xbb" * (room - len(body))
    return b"\x6a" + body + hashlib.sha1(body + hashed_tail).digest() + b"\xbc"


def _split_key(subject, room):
    """(leftmost part, remainder) of a public key's modulus for a certificate with `room` bytes."""
    m = subject.modulus
    return m[:room], m[room:]


def issuer_certificate(ca, issuer, issuer_id, expiry, serial):
    """(certificate 90, remainder 92 or b"") for the issuer key. issuer_id: the leftmost 3-8
    PAN digits (padded F to 4 bytes); expiry MMYY; serial 3 bytes."""
    room = ca.size - 36
    part, rest = _split_key(issuer, room)
    body = (b"\x02" + bytes.fromhex(issuer_id.ljust(8, "F")) + bytes.fromhex(expiry) + serial
            + b"\x01\x01" + bytes((issuer.size, len(issuer.exponent))) + part)
    return ca.sign(_block(ca, body, rest + issuer.exponent)), rest


def icc_certificate(issuer, icc, pan, expiry, serial, static_data):
    """(certificate 9F46, remainder 9F48 or b"") for the ICC key over the static data."""
    room = issuer.size - 42
    part, rest = _split_key(icc, room)
    body = (b"\x04" + bytes.fromhex(pan.ljust(20, "F")) + bytes.fromhex(expiry) + serial
            + b"\x01\x01" + bytes((icc.size, len(icc.exponent))) + part)
    return issuer.sign(_block(issuer, body, rest + icc.exponent + static_data)), rest


def signed_static_data(issuer, dac, static_data):
    """SSAD (tag 93), format 03, with the 2-byte data authentication code."""
    return issuer.sign(_block(issuer, b"\x03\x01" + dac, static_data))


def signed_dynamic_data(icc, icc_dynamic_data, terminal_data):
    """SDAD (9F4B), format 05: ICC dynamic data (with its own length byte first) and the
    terminal's dynamic data under the hash."""
    body = b"\x05\x01" + bytes((len(icc_dynamic_data),)) + icc_dynamic_data
    return icc.sign(_block(icc, body, terminal_data))


def static_data(records, afl, aip, tag_list):
    """The static data to be authenticated: the records the AFL marks for ODA (SFI 1-10: the
    value of the 70 template; SFI 11-30: the whole record), then the AIP if 9F4A lists 82."""
    out = b""
    for i in range(0, len(afl), 4):
        sfi, first, _, oda = afl[i] >> 3, afl[i + 1], afl[i + 2], afl[i + 3]
        for rec in range(first, first + oda):
            raw = records["%d.%d" % (sfi, rec)]
            if sfi <= 10:
                (tag, value), = decode(raw)
                if tag != 0x70:
                    raise ValueError("record %d.%d is not a 70 template" % (sfi, rec))
                out += value
            else:
                out += raw
    if tag_list == b"\x82":
        out += aip
    return out
