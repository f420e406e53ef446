"""tools/emvfuzz.py: the EMV parsers (lib/emv tlv and oda) under a few thousand generated and
mutated inputs inside MicroPython end only in results or typed EmvErrors; and the harness does
find a crash when one is there (a bounds check taken out of a copy of tlv.py)."""

import re
import shutil
from pathlib import Path

from tools import emvfuzz

LIB = Path(__file__).resolve().parents[2] / "lib"


def counts(report):
    return {name: int(n) for n, name in re.findall(r"(\d+) (\w+)", report.split(",", 2)[2])}


def test_parsers_survive_the_fuzzer():
    proc = emvfuzz.run(count=3000, seed=7, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = proc.stdout.strip().splitlines()[-1]
    assert report.startswith("emvfuzz: 3000 inputs, 0 crashes, "), report
    c = counts(report)
    # Every path is exercised: malformed TLV refused, certificates refused, and inputs accepted.
    assert c["TlvError"] > 1000 and c["OdaFailed"] > 5000 and c["results"] > 3000, report


def test_the_fuzzer_finds_a_planted_bug(tmp_path):
    shutil.copytree(LIB / "emv", tmp_path / "emv")
    src = (tmp_path / "emv" / "tlv.py").read_text()
    check = '            if j >= end:\n                raise TlvError("truncated tag at %d" % i)\n'
    assert src.count(check) == 1
    (tmp_path / "emv" / "tlv.py").write_text(src.replace(check, ""))
    proc = emvfuzz.run(count=3000, seed=7, lib=tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert "emvfuzz: CRASH at input" in proc.stdout and "IndexError" in proc.stdout, proc.stdout
    assert re.search(r"^input: [0-9a-f]+$", proc.stdout, re.M), proc.stdout
