# lib/aescmac on the device: the four examples of RFC 4493 section 4 (they are also
# NIST SP 800-38B's AES-128 examples); the host cross-check against `cryptography` over many
# lengths is tests/host/test_uplink_codec.py.
from aescmac import cmac

KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
M = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710")


def test_rfc4493_examples():
    assert cmac(KEY, b"") == bytes.fromhex("bb1d6929e95937287fa37d129b756746")
    assert cmac(KEY, M[:16]) == bytes.fromhex("070a16b46b4d4144f79bdd9dd04a287c")
    assert cmac(KEY, M[:40]) == bytes.fromhex("dfa66747de9ae63030ca32611497c827")
    assert cmac(KEY, M) == bytes.fromhex("51f0bebf7e3b9d92fc49741779363cfe")


def test_buffers_and_keys():
    # A bytearray key, a memoryview message: the same MAC; another key, another MAC.
    assert cmac(bytearray(KEY), memoryview(bytearray(M))[:40]) == cmac(KEY, M[:40])
    assert cmac(bytes(16), M) != cmac(KEY, M)
