"""Fuzz the EMV kernel's parsers inside MicroPython: `python -m tools.emvfuzz [--count N] [--seed S]`.

The CPython side only starts the MicroPython unix port (the venv's `micropython`, lib/ on its
path, the device's 256 KB heap) on this same file, which then runs the loop:

- generate a valid BER-TLV tree (real and random tags of 1 to 3 bytes, nested templates, values
  of 0 to 300 bytes so lengths take the short, 81 and 82 forms);
- mutate it (bit flips, truncation, a length byte set to a lie or to a bad form, insertions,
  a duplicated slice, a byte run set to 00/FF/80);
- feed it to tlv.decode/flatten/find/parse_dol/build_dol, and to oda's functions: certificates
  and signatures are formatted blocks opened with exponent 1 (pow(x, 1, n) == x), so a mutated
  block reaches every check after the RSA step (lengths, hash, PAN, expiry, remainder,
  padding), plus records for static_pieces.

Every input must end in a result or an EmvError subclass (TlvError, OdaFailed...). Anything else
(IndexError, MemoryError, a recursion error...) is a crash: the input's hex and the traceback
are printed and the exit status is 1. At the end: "emvfuzz: N inputs, 0 crashes, ... in X s".
"""

import sys

DEFAULT_COUNT = 20000
# A fixed heap with room for the parsers' bytecode, which run() loads from source (lib may be
# another tree's); the board keeps it frozen in flash.
HEAP = "256K"


def main(argv):
    """CPython: run the loop in MicroPython; return its exit status."""
    proc = run(*_options(argv))
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode


def run(count=DEFAULT_COUNT, seed=1, lib=None, timeout=600):
    """The fuzz loop in a MicroPython process, lib (default: this tree's lib/) first on its
    path; the CompletedProcess (text output)."""
    import os
    import subprocess
    from pathlib import Path

    from tools.vdevice import heap_args, micropython_exe

    root = Path(__file__).resolve().parent.parent
    heap, heap_env = heap_args(HEAP)
    env = dict(os.environ, MICROPYPATH=os.pathsep.join((str(lib or root / "lib"), ".frozen")), **heap_env)
    # (MicroPython compiles this file too, and has no *unpacking in a list display)
    return subprocess.run([micropython_exe()] + heap + [__file__, "--count", str(count), "--seed", str(seed)],
                          env=env, capture_output=True, text=True, timeout=timeout)


def _options(argv):
    count, seed = DEFAULT_COUNT, 1
    i = 0
    while i < len(argv):
        if argv[i] in ("--count", "--seed") and i + 1 < len(argv):
            v = int(argv[i + 1])
            if argv[i] == "--count":
                count = v
            else:
                seed = v
            i += 2
        else:
            raise SystemExit("usage: python -m tools.emvfuzz [--count N] [--seed S]")
    return count, seed


# ---- the loop, in MicroPython ----------------------------------------------------------------

# Tags the kernel reads, so that mutations hit the paths real answers take.
REAL_TAGS = (0x6F, 0x84, 0xA5, 0xBF0C, 0x61, 0x4F, 0x50, 0x87, 0x9F38, 0x70, 0x77, 0x80, 0x82,
             0x94, 0x5A, 0x5F34, 0x57, 0x8C, 0x8D, 0x9F49, 0x8F, 0x90, 0x92, 0x9F32, 0x93, 0x9F46,
             0x9F47, 0x9F48, 0x9F4A, 0x9F4B, 0x9F69, 0x9F02, 0x5F2A, 0x9F1A, 0x9F4E, 0x9F36,
             0x9F26, 0x9F27, 0x9F10, 0x8E, 0x5F24, 0x5F25, 0x9F7F8F)


def fuzz(count, seed):
    import hashlib
    import random
    import time

    from emv import EmvError, oda, tlv

    random.seed(seed)
    rnd = random.getrandbits

    def rbytes(n):
        return bytes(rnd(8) for _ in range(n))

    def tag(constructed):
        if rnd(1):
            t = REAL_TAGS[random.randrange(len(REAL_TAGS))]
            if tlv.is_constructed(t) == constructed:
                return t
        first = (rnd(8) & 0xC0) | (0x20 if constructed else 0)
        k = random.randrange(3)
        if k == 0:
            return first | random.randrange(1, 0x1F)
        first |= 0x1F
        if k == 1:
            return (first << 8) | rnd(7)
        return (first << 16) | ((0x80 | rnd(7)) << 8) | rnd(7)

    def tree(depth):
        out = b""
        for _ in range(random.randrange(1, 5)):
            if depth < 4 and rnd(2) == 0:
                out += tlv.encode(tag(True), tree(depth + 1))
            else:
                n = random.choice((0, 1, 2, 4, 8, 20, 127, 128, 200, 255, 256, 300)) if rnd(2) == 0 \
                    else random.randrange(16)
                out += tlv.encode(tag(False), rbytes(n))
        return out

    def mutate(data):
        b = bytearray(data)
        for _ in range(random.randrange(1, 4)):
            if not b:
                b = bytearray(rbytes(random.randrange(1, 8)))
            op = random.randrange(7)
            i = random.randrange(len(b))
            if op == 0:
                b[i] ^= 1 << rnd(3)
            elif op == 1:
                b = b[:i]
            elif op == 2:  # a length or tag byte that lies or takes a bad form
                b[i] = random.choice((0x00, 0x1F, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFF, rnd(8)))
            elif op == 3:
                b = b[:i] + rbytes(random.randrange(1, 6)) + b[i:]
            elif op == 4:
                j = random.randrange(i, len(b) + 1)
                b = b[:j] + b[i:j] + b[j:]
            elif op == 5:
                k = random.randrange(1, 9)
                b = b[:i] + bytes((random.choice((0x00, 0xFF, 0x80)),)) * k + b[i + k:]
            else:
                b = b[:i] + b[i + random.randrange(1, 5):]
        return bytes(b)

    def sealed(fmt, n, pan, extra):
        """A block of n bytes that exponent 1 opens as is: 6A, a plausible body of format fmt
        (Book 2 field layout, key lengths near the room), mutated at times, a hash over the
        body and extra that is right three times in four, BC."""
        room = n - 22
        if fmt == 2:
            head = b"\x02" + (pan + b"\xff" * 4)[:4] + b"\x12\x29\x00\x00\x01\x01\x01"
            head += bytes((room - 14 + random.randrange(-2, 40), 1))
        elif fmt == 4:
            head = b"\x04" + (pan + b"\xff" * 10)[:10] + b"\x12\x29\x00\x00\x02\x01\x01"
            head += bytes((room - 20 + random.randrange(-2, 40), 1))
        elif fmt == 5:
            ldd = random.randrange(0, room)
            head = bytes((5, 1, ldd)) + rbytes(ldd)
        else:
            head = bytes((fmt, 1)) + rbytes(2)
        body = (head + b"\xbb" * room)[:room]
        if rnd(1):
            body = (mutate(body) + b"\xbb" * room)[:room]
        h = hashlib.sha1(body + extra).digest() if rnd(2) else rbytes(20)
        return (b"\x6a" + body + h + b"\xbc")[:n + random.choice((0, 0, 0, -1, 1))]

    def check_oda(k, data, step):
        n = random.choice((64, 96, 128, 144, 176, 248))
        key = (b"\xff" * n, 1)
        if rnd(1):
            pan = data[:random.randrange(0, 11)]
        else:  # digits, F-padded: what gets past the identifier checks
            d = "".join("%d" % random.randrange(10) for _ in range(random.randrange(6, 20)))
            pan = bytes.fromhex(d + "f" * (len(d) % 2))
        rem = data[-random.randrange(1, 60):] if rnd(1) else None
        exp = random.choice((b"\x03", b"\x03", b"\x01\x00\x01", b"", data[:3]))
        static, terminal = data[:20], data[:8]
        if step == 4:
            cert = sealed(2, n, pan, (rem or b"") + exp)
            oda.recover_issuer_key(key, cert, rem, exp, pan, "261121")
        elif step == 5:
            cert = sealed(4, n, pan, (rem or b"") + exp + static)
            oda.recover_icc_key(key, cert, rem, exp, static, pan, "261121")
        elif step == 6:
            oda.verify_dda(key, sealed(5, n, pan, terminal), terminal)
        elif step == 7:
            oda.verify_sda(key, sealed(3, n, pan, static), static)
        else:
            oda.verify_dda(key, data[:n], terminal)  # unformatted garbage

    stats = {}
    t0 = time.ticks_ms()
    for k in range(count):
        data = mutate(tree(0)) if k % 8 else tree(0)
        try:
            for step in range(10):
                try:
                    if step == 0:
                        tlv.decode(data)
                    elif step == 1:
                        values = tlv.flatten(data)
                    elif step == 2:
                        tlv.find(data, REAL_TAGS[k % len(REAL_TAGS)])
                    elif step == 3:
                        tlv.build_dol(tlv.parse_dol(data[:random.randrange(1, 64)]), values)
                    elif step < 9:
                        check_oda(k, data, step)
                    else:
                        recs = [(random.randrange(1, 31), data), (random.randrange(1, 31), data[1:])]
                        oda.static_pieces(recs, b"\x39\x00", random.choice((None, b"", b"\x82", data[:2])))
                    stats["results"] = stats.get("results", 0) + 1
                except EmvError as e:
                    name = type(e).__name__
                    stats[name] = stats.get(name, 0) + 1
                    if step == 1:
                        values = {}
        except Exception as e:  # noqa: BLE001 - anything else is the finding
            print("emvfuzz: CRASH at input %d (seed %d, step %d): %s %r" % (k, seed, step, type(e).__name__, e))
            print("input: " + data.hex())
            sys.print_exception(e)  # type: ignore[attr-defined]  # MicroPython's
            return 1
    dt = time.ticks_diff(time.ticks_ms(), t0) / 1000
    print("emvfuzz: %d inputs, 0 crashes, %s in %.1f s" % (
        count, ", ".join("%d %s" % (stats[n], n) for n in sorted(stats)), dt))
    return 0


if __name__ == "__main__":
    if sys.implementation.name == "micropython":
        sys.exit(fuzz(*_options(sys.argv[1:])))
    sys.exit(main(sys.argv[1:]))
