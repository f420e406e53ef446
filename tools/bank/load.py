"""python -m tools.bank.load --terminals N --seconds S [--database URL] [--state-dir D]:
the bank host's load benchmark.

Sets up a fresh bank state (a temp dir unless --state-dir; the ledger in it, or at --database,
which must be an empty database) with N devices, each with its own certificate, DUKPT initial
key, account and test card; starts `python -m tools.bank` on it in a process of its own; then
N simulated terminals (tools/bank/client.py, in this process) each sign on and do purchases
with an online PIN (ISO 9564 format 4 under DUKPT) and an ARQC, back to back, for S seconds.
Prints the authorizations per second and the p50/p99 latency (request sent -> answer MAC
checked), and checks the ledger afterwards (every approval posted exactly once).
"""

import argparse
import asyncio
import re
import secrets
import subprocess
import sys
import tempfile
import time

from tools.bank import admin
from tools.bank.client import Terminal, SimCard
from tools.bank.state import State

LOAD_BANK_ID = bytes.fromhex("10AD10AD")
PIN = "1234"
AMOUNT = 100


def serial_of(i):
    return "LT%06d" % i


def setup(state, n):
    """N devices, accounts and cards; returns [(serial, card)]."""
    imk = secrets.token_bytes(16)
    out = []
    for i in range(1, n + 1):
        serial, account = serial_of(i), "LOAD%06d" % i
        state.ledger.create_account(account, "load %d" % i, "978", 10 ** 12)
        pan = "40000000%08d" % i
        profile = {"pin": PIN, "apps": [{"pan": pan, "psn": "01", "expiry": "4912",
                                         "issuer": "load-issuer", "imk_ac": imk.hex()}]}
        admin.add_card(state, profile, account)
        admin.register_device(state, serial)
        out.append((serial, SimCard(pan, "4912", "01", imk)))
    return out


def start_host(state_dir, database, workers):
    cmd = [sys.executable, "-m", "tools.bank", "--state-dir", str(state_dir), "--listen",
           "127.0.0.1:0", "--merchant-api", "127.0.0.1:0", "--workers", str(workers)]
    if database:
        cmd += ["--database", database]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on ([\d.]+):(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit("the bank host did not start: %r" % line)
    proc.stdout.readline()
    return proc, (m.group(1), int(m.group(2)))


async def terminal_loop(state, address, serial, card, deadline, latencies, codes):
    ikid = LOAD_BANK_ID + int(serial[2:]).to_bytes(4, "big")
    t = Terminal(serial, state.hsm.initial_key(ikid), ikid)
    d = state.pki_dir / "devices"
    await t.open(*address, Terminal.context(state.pki_dir / "ca.pem", d / (serial + ".pem"),
                                            d / (serial + ".key.pem")))
    await t.sign_on()
    while time.monotonic() < deadline:
        start = time.perf_counter()
        ans = await t.purchase(card, AMOUNT, pin=PIN)
        latencies.append(time.perf_counter() - start)
        ok = ans["mac_ok"] and ans["arpc_ok"]
        codes[ans["39"] if ok else "bad-answer"] = codes.get(ans["39"] if ok else "bad-answer", 0) + 1
    await t.close()


async def run_load(state, address, terminals, seconds):
    latencies, codes = [], {}
    deadline = time.monotonic() + seconds
    start = time.monotonic()
    await asyncio.gather(*(terminal_loop(state, address, s, c, deadline, latencies, codes)
                           for s, c in terminals))
    return latencies, codes, time.monotonic() - start


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.bank.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--terminals", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--database", default=None, help="an empty PostgreSQL database (default SQLite)")
    p.add_argument("--state-dir", default=None)
    p.add_argument("--workers", type=int, default=8, help="the host's ledger/HSM threads")
    args = p.parse_args(argv)
    state_dir = args.state_dir or tempfile.mkdtemp(prefix="bank-load-")
    state = State(state_dir, args.database).init()
    terminals = setup(state, args.terminals)
    proc, address = start_host(state_dir, args.database, args.workers)
    try:
        latencies, codes, elapsed = asyncio.run(run_load(state, address, terminals, args.seconds))
    finally:
        proc.terminate()
        proc.wait(10)
    lat = sorted(latencies)
    db = "postgresql" if state.ledger.db.postgres else "sqlite"
    approved = codes.get("00", 0)
    posted = sum(1 for x in state.ledger.postings() if x["amount"] < 0)
    print("%s, %d terminals, %.1f s: %d authorizations (%s), %.1f per second, "
          "latency p50 %.1f ms, p99 %.1f ms" % (
              db, args.terminals, elapsed, len(lat),
              " ".join("%s:%d" % kv for kv in sorted(codes.items())), len(lat) / elapsed,
              percentile(lat, 50) * 1000, percentile(lat, 99) * 1000))
    state.close()
    if posted != approved:
        print("ledger check FAILED: %d approvals, %d debits posted" % (approved, posted))
        return 1
    return 0 if approved == len(lat) else 1


if __name__ == "__main__":
    sys.exit(main())
