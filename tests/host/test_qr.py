"""The firmware's QR encoder (lib/qr.py), run frozen in the board-faithful MicroPython, against
independent encoders: every module of every mask compared with python-qrcode's (lincolnloop
qrcode, the same version, level M, byte mode and mask), and the mask it chooses checked as the
standard's choice by segno's penalty scoring (ISO/IEC 18004 7.8.3) of python-qrcode's eight
symbols. (segno's own symbols are not compared module for module: after a terminator that ends
on a byte boundary it adds a zero byte before the pad codewords, which 7.4.10 does not.)
"""

import random
import subprocess

import qrcode
import segno.encoder
from qrcode.constants import ERROR_CORRECT_M

from tools.vdevice import heap_args, micropython_exe

SEED = 21
# Every length versions 1-3 hold at level M (14, 26, 42 bytes), edges included, and the URIs the
# identifier screen shows.
LENGTHS = (1, 2, 7, 13, 14, 15, 20, 26, 27, 33, 41, 42)

ON_DEVICE = """
import qr, binascii
for data in %r:
    size, m = qr.encode(data)
    print(size, binascii.hexlify(bytes(v & 1 for v in m)).decode())
    version = (size - 17) // 4
    for mask in range(8):
        f = bytearray(size * size)
        qr._functions(f, size, version)
        qr._place(f, size, qr._codewords(data, version))
        qr._mask(f, size, mask)
        qr._format(f, size, mask)
        print(binascii.hexlify(bytes(v & 1 for v in f)).decode())
try:
    qr.encode(bytes(43))
except qr.TooLong:
    print("too long")
"""


def inputs():
    rnd = random.Random(SEED)
    out = [b"pocket:K7M2QX9P", b"pocket:23456789", b"pocket:ZZZZZZZZ", bytes(14), b"\xff" * 42]
    for n in LENGTHS:
        for _ in range(2):
            out.append(bytes(rnd.randrange(256) for _ in range(n)))
    return out


def device_symbols(data_list):
    argv, env = heap_args()
    code = ON_DEVICE % (data_list,)
    out = subprocess.run([micropython_exe(), *argv, "-c", code], cwd="/tmp", capture_output=True, text=True,
                         timeout=600, env=dict(env))
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout.split("\n")


def reference(data, version, mask):
    """python-qrcode's symbol: rows of 0/1."""
    q = qrcode.QRCode(version=version, error_correction=ERROR_CORRECT_M, border=0, mask_pattern=mask)
    q.add_data(qrcode.util.QRData(data, mode=qrcode.util.MODE_8BIT_BYTE))
    q.make(fit=False)
    return [[int(v) for v in row] for row in q.modules]


def rows(hexed, size):
    bits = bytes.fromhex(hexed)
    return [list(bits[y * size:(y + 1) * size]) for y in range(size)]


def format_areas(size):
    """(row, column) of the 30 format information modules."""
    first = [(8, c) for c in (0, 1, 2, 3, 4, 5, 7, 8)] + [(r, 8) for r in (0, 1, 2, 3, 4, 5, 7)]
    return first + [(8, size - 1 - i) for i in range(8)] + [(size - 7 + i, 8) for i in range(7)]


def standard_mask(data, version):
    """The mask 7.8.3 chooses: segno's penalty of each of python-qrcode's symbols, scored as
    the standard says, before the format information (its modules light); the first lowest."""
    scores = []
    for mask in range(8):
        symbol = reference(data, version, mask)
        for r, c in format_areas(len(symbol)):
            symbol[r][c] = 0
        scores.append(segno.encoder.evaluate_mask(tuple(bytearray(row) for row in symbol), len(symbol), len(symbol)))
    return scores.index(min(scores))


def test_every_module_of_every_mask_and_the_mask_chosen_match_independent_encoders():
    data_list = inputs()
    lines = device_symbols(data_list)
    at = 0
    versions = set()
    for data in data_list:
        size, chosen = lines[at].split()
        size = int(size)
        version = (size - 17) // 4
        versions.add(version)
        # The smallest version that holds it: 14, 26, 42 bytes in byte mode at level M.
        assert version == next(v for v, most in ((1, 14), (2, 26), (3, 42)) if len(data) <= most)
        for mask in range(8):
            assert rows(lines[at + 1 + mask], size) == reference(data, version, mask), (data, mask)
        assert rows(chosen, size) == reference(data, version, standard_mask(data, version)), data
        at += 9
    assert versions == {1, 2, 3} and lines[at] == "too long"
