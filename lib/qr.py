"""QR codes (ISO/IEC 18004:2015) for a short text on the screen: byte mode, error correction
level M, versions 1 to 3 (14, 26 or 42 bytes; "pocket:" and an 8-character identifier take
version 2). Only what the identifier screen needs, made when it is drawn and dropped with it:

    size, modules = qr.encode(b"pocket:K7M2QX9P")
    dark = modules[y * size + x] & 1          # row y, column x (bit 1 marks function modules)

The caller draws the quiet zone (4 light modules a side). No table is kept: the symbol is at
most 29 x 29 bytes and the Reed-Solomon tables (512 bytes) are made for the one call. The mask
is the one the standard chooses (7.8.3: the lowest penalty, the first of equals; scored with the
format areas light). tests/host/test_qr.py checks every module of every mask against
python-qrcode and the choice against segno's scoring.
"""

from micropython import const

_DARK = const(1)
_FUNCTION = const(2)  # a module of a function pattern or of the format information: never masked
_FORMAT_MASK = const(0x5412)
_FORMAT_POLY = const(0x537)
_GF_POLY = const(0x11D)
_PAD = b"\xec\x11"
# Level M, one block each (ISO/IEC 18004 table 9): data and error correction codewords of
# versions 1, 2, 3.
_DATA = b"\x10\x1c\x2c"
_ECC = b"\x0a\x10\x1a"


class TooLong(ValueError):
    """The text does not fit version 3 at level M (42 bytes)."""


def encode(data):
    """(size, modules) of the smallest version (1..3) that holds data (bytes): a bytearray of
    size * size modules, row by row, bit 0 set for a dark one."""
    for version in (1, 2, 3):
        if len(data) <= _DATA[version - 1] - 2:  # 4 bits of mode, 8 of count, 4 of terminator
            break
    else:
        raise TooLong("%d bytes: a QR code of version 3-M holds 42" % len(data))
    size = 17 + 4 * version
    modules = bytearray(size * size)
    _functions(modules, size, version)
    _place(modules, size, _codewords(data, version))
    best, lowest = 0, -1
    work = bytearray(modules)  # each mask on a copy: one pass a mask, none to undo it
    for mask in range(8):
        work[:] = modules
        _mask(work, size, mask)
        score = _penalty(work, size)
        if lowest < 0 or score < lowest:
            best, lowest = mask, score
    del work
    _mask(modules, size, best)
    _format(modules, size, best)
    return size, modules


def _codewords(data, version):
    """The data codewords (mode 0100, count, data, terminator, pads), then the error correction's."""
    n, ecc = _DATA[version - 1], _ECC[version - 1]
    out = bytearray(n + ecc)
    prev = len(data)
    out[0] = 0x40 | prev >> 4
    for i in range(len(data)):  # each byte a nibble late: after 4 bits of mode
        out[i + 1] = (prev & 15) << 4 | data[i] >> 4
        prev = data[i]
    out[len(data) + 1] = (prev & 15) << 4  # and the 4 bits of terminator
    for i in range(len(data) + 2, n):
        out[i] = _PAD[(i - len(data)) & 1]
    # GF(256) by its log and antilog tables, for this call only.
    exp, log = bytearray(256), bytearray(256)
    x = 1
    for i in range(255):
        exp[i], log[x] = x, i
        x <<= 1
        if x & 0x100:
            x ^= _GF_POLY
    # The generator's coefficients (the highest, 1, left out), then the remainder of the data.
    gen = bytearray(ecc)
    gen[ecc - 1] = 1
    root = 1
    for i in range(ecc):
        for j in range(ecc):
            gen[j] = exp[(log[gen[j]] + log[root]) % 255] if gen[j] else 0
            if j + 1 < ecc:
                gen[j] ^= gen[j + 1]
        root = exp[i + 1]
    rem = memoryview(out)[n:]
    for i in range(n):
        factor = out[i] ^ rem[0]
        for j in range(ecc - 1):
            rem[j] = rem[j + 1]
        rem[ecc - 1] = 0
        if factor:
            for j in range(ecc):
                if gen[j]:
                    rem[j] ^= exp[(log[gen[j]] + log[factor]) % 255]
    return out


def _functions(m, size, version):
    """Timing, finders with their separators, the alignment pattern (versions 2 and 3), the
    format areas (light until _format) and the dark module."""
    for i in range(size):
        m[6 * size + i] = m[i * size + 6] = _FUNCTION | (i & 1 ^ 1)
    for cx, cy in ((3, 3), (size - 4, 3), (3, size - 4)):
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                x, y = cx + dx, cy + dy
                if 0 <= x < size and 0 <= y < size:
                    d = max(abs(dx), abs(dy))
                    m[y * size + x] = _FUNCTION | (d != 2 and d != 4)
    if version > 1:
        c = size - 7
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                m[(c + dy) * size + c + dx] = _FUNCTION | (max(abs(dx), abs(dy)) != 1)
    _format(m, size, None)


def _format(m, size, mask):
    """The format information (level M, the mask) twice, or (mask None) its areas reserved
    light; and the dark module."""
    bits = 0
    if mask is not None:
        rem = mask  # level M's two bits are 00
        for _ in range(10):
            rem = (rem << 1) ^ ((rem >> 9) * _FORMAT_POLY)
        bits = (mask << 10 | rem) ^ _FORMAT_MASK
    for i in range(15):
        bit = _FUNCTION | (bits >> i & 1)
        # Beside the top-left finder: down column 8, then left along row 8.
        if i < 6:
            m[i * size + 8] = bit
        elif i < 8:
            m[(i + 1) * size + 8] = bit
        elif i == 8:
            m[8 * size + 7] = bit
        else:
            m[8 * size + 14 - i] = bit
        # Again: along row 8 from the right edge, then up column 8 from the bottom.
        if i < 8:
            m[8 * size + size - 1 - i] = bit
        else:
            m[(size - 15 + i) * size + 8] = bit
    m[(size - 8) * size + 8] = _FUNCTION | _DARK


def _place(m, size, codewords):
    """The codewords' bits in the two-column zigzag from the bottom right (7.7.3); the
    remainder bits stay light."""
    i, total = 0, len(codewords) * 8
    right = size - 1
    while right >= 1:
        if right == 6:
            right = 5  # the vertical timing pattern's column is skipped
        upward = not (right + 1) & 2
        for vert in range(size):
            y = size - 1 - vert if upward else vert
            for x in range(right, right - 2, -1):
                if not m[y * size + x] & _FUNCTION and i < total:
                    m[y * size + x] = codewords[i >> 3] >> (7 - (i & 7)) & 1
                    i += 1
        right -= 2


def _mask(m, size, mask):
    """XOR data mask pattern `mask` (7.8.2) over the modules that are not function modules."""
    for y in range(size):
        row = y * size
        for x in range(size):
            if m[row + x] & _FUNCTION:
                continue
            if mask == 0:
                flip = (x + y) % 2 == 0
            elif mask == 1:
                flip = y % 2 == 0
            elif mask == 2:
                flip = x % 3 == 0
            elif mask == 3:
                flip = (x + y) % 3 == 0
            elif mask == 4:
                flip = (x // 3 + y // 2) % 2 == 0
            elif mask == 5:
                flip = x * y % 2 + x * y % 3 == 0
            elif mask == 6:
                flip = (x * y % 2 + x * y % 3) % 2 == 0
            else:
                flip = ((x + y) % 2 + x * y % 3) % 2 == 0
            if flip:
                m[row + x] ^= _DARK


def _penalty(m, size):
    """The penalty score (7.8.3.1: N1 = 3, N2 = 3, N3 = 40, N4 = 10) of the symbol as masked,
    the format areas light."""
    score = dark = 0
    line = bytearray(size)  # the row, then the column, being scored
    for i in range(size):
        score += _line(m, size, i * size, 1, line) + _line(m, size, i, size, line)
        row = i * size
        for j in range(size):
            v = m[row + j] & _DARK
            dark += v
            if i and j and v == m[row + j - 1] & _DARK == m[row - size + j] & _DARK == m[row - size + j - 1] & _DARK:
                score += 3
    return score + 10 * (abs(dark * 20 - size * size * 10) // (size * size))


def _line(m, size, start, step, line):
    """N1 and N3 of the row or column from module `start` by `step` (copied into line)."""
    score, run, prev = 0, 0, -1
    for j in range(size):
        v = line[j] = m[start + j * step] & _DARK
        if v == prev:
            run += 1
        else:
            if run >= 5:
                score += run - 2
            run, prev = 1, v
    if run >= 5:
        score += run - 2
    return score + _finder_like(line, size)


def _finder_like(line, size):
    """N3 of a row or column: each dark-light-dark-dark-dark-light-dark with four light modules
    (or the edge) on one side; the next is looked for past it."""
    count, at = 0, _find(line, size, 0)
    while at >= 0:
        after = at + 7
        if at == 0 or at == size - 7 or _light(line, max(at - 4, 0), at) or _light(line, after, min(after + 4, size)):
            count += 40
        else:
            after = at + 4
        at = _find(line, size, after)
    return count


def _light(line, start, end):
    for at in range(start, end):
        if line[at]:
            return False
    return True


def _find(line, size, start):
    for at in range(start, size - 6):
        if line[at] and not line[at + 1] and line[at + 2] and line[at + 3] and line[at + 4] \
                and not line[at + 5] and line[at + 6]:
            return at
    return -1
