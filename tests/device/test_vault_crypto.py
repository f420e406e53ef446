# The vault's primitives against published vectors.
from vault import crypto

from expect import raises


def test_hmac_sha256_rfc4231():
    # RFC 4231 test cases 1 and 2.
    assert crypto.hmac_sha256(b"\x0b" * 20, b"Hi There").hex() == \
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    assert crypto.hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == \
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    # Test case 6: a key longer than the block is hashed first.
    assert crypto.hmac_sha256(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First").hex() == \
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def test_hmac_fed_in_pieces_rfc4231():
    # RFC 4231 test case 2, the message given in three pieces (one empty), as the store's meta is.
    mac = crypto.Hmac(b"Jefe")
    for piece in (b"what do ya ", b"", b"want for nothing?"):
        mac.update(piece)
    assert mac.digest().hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_pbkdf2_sha256_vectors():
    # RFC 7914 section 11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1 (its first 32 bytes).
    assert bytes(crypto.pbkdf2_sha256(b"passwd", b"salt", 1)).hex() == \
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
    # P="password", S="salt", c=1, 2, 4096: the widely published SHA-256 vectors, the same as
    # CPython's hashlib.pbkdf2_hmac gives.
    assert bytes(crypto.pbkdf2_sha256(b"password", b"salt", 1)).hex() == \
        "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
    assert bytes(crypto.pbkdf2_sha256(b"password", b"salt", 2)).hex() == \
        "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"
    assert bytes(crypto.pbkdf2_sha256(b"password", b"salt", 4096)).hex() == \
        "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"


def test_seal_binds_associated_data_and_detects_any_change():
    enc, mac = bytearray(b"e" * 32), bytearray(b"m" * 32)
    sealed = crypto.seal(enc, mac, b"dukpt initial key", b"entry dukpt.ik")
    assert bytes(crypto.unseal(enc, mac, sealed, b"entry dukpt.ik")) == b"dukpt initial key"
    with raises(crypto.TagMismatch):
        crypto.unseal(enc, mac, sealed, b"entry dukpt.ksn")  # renamed
    for i in range(len(sealed)):
        flipped = bytearray(sealed)
        flipped[i] ^= 0x01
        with raises(crypto.TagMismatch):
            crypto.unseal(enc, mac, bytes(flipped), b"entry dukpt.ik")


def test_seal_to_writes_the_sealed_format_in_pieces():
    # The bytes written, piece by piece, are the store's entry format: IV, AES-256-CBC of the
    # PKCS#7-padded plaintext (cryptolib over all of it at once), HMAC-SHA256 of associated data
    # + IV + ciphertext; none of the pieces larger than 64 bytes. Lengths around the piece size
    # and the DUKPT state's (516 bytes).
    import cryptolib

    enc, mac = bytearray(b"e" * 32), bytearray(b"m" * 32)
    for n in (0, 1, 15, 16, 63, 64, 65, 516):
        plain = bytes(i * 7 & 0xFF for i in range(n))
        pieces = []
        tag = crypto.seal_to(lambda piece: pieces.append(bytes(piece)), enc, mac, plain, b"entry x")
        out = b"".join(pieces)
        pad = 16 - n % 16
        body = bytearray(n + pad)
        cryptolib.aes(enc, 2, out[:16]).encrypt(plain + bytes((pad,)) * pad, body)
        assert out == out[:16] + body + crypto.hmac_sha256(mac, b"entry x" + out[:-32]), n
        assert tag == out[-32:] and max(len(p) for p in pieces) <= 64, n
        assert bytes(crypto.unseal(enc, mac, crypto.seal(enc, mac, plain, b"entry x"), b"entry x")) == plain


def test_seal_is_randomized():
    enc, mac = bytearray(32), bytearray(32)
    assert crypto.seal(enc, mac, b"same", b"") != crypto.seal(enc, mac, b"same", b"")


def test_wipe_overwrites():
    key = bytearray(b"secret key material")
    crypto.wipe(key)
    assert key == bytearray(len(key))
