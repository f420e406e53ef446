"""The bank as an operator runs it: the admin CLI sets it up with a tools/emvcard profile,
`python -m tools.bank` serves it, a terminal buys with the profile's card; then the log file
holds the transaction, masked, and neither the PAN nor the PIN block.
"""

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.bank.client import Terminal, SimCard
from tools.bank.state import State

PROFILE = Path(__file__).resolve().parents[2] / "tools" / "emvcard" / "cards" / "visa-classic.json"
IKID = bytes.fromhex("B0B0B0B000000001")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")


def admin(state_dir, *args):
    r = subprocess.run([sys.executable, "-W", "ignore", "-m", "tools.bank.admin", "--state-dir",
                        str(state_dir), *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_admin_cli_and_server(tmp_path):
    d = tmp_path / "bank"
    admin(d, "init")
    admin(d, "account", "ALICE", "--name", "Alice", "--balance", "50000")
    assert "476173******0010" not in admin(d, "card", str(PROFILE), "--account", "ALICE")
    admin(d, "device", "PT000001")
    admin(d, "bind", "PT000001", "ALICE")
    listing = admin(d, "list")
    assert "pan_masked=476173******0010" in listing and "4761739001010010" not in listing

    proc = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "tools.bank", "--state-dir",
                             str(d), "--listen", "127.0.0.1:0", "--merchant-api", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        m = re.search(r"listening on ([\d.]+):(\d+)", proc.stdout.readline())
        assert m and "merchant API on http://127.0.0.1:" in proc.stdout.readline()
        app = json.loads(PROFILE.read_text())["apps"][0]
        card = SimCard(app["pan"], app["expiry"][:4], app["psn"], bytes.fromhex(app["imk_ac"]))
        state = State(d)
        files = state.pki_dir / "devices"

        async def go():
            t = Terminal("PT000001", state.hsm.initial_key(IKID), IKID)
            await t.open(m.group(1), int(m.group(2)), Terminal.context(
                state.pki_dir / "ca.pem", files / "PT000001.pem", files / "PT000001.key.pem"))
            await t.sign_on()
            raw, doc, tags = t.purchase_message(card, 4200, pin="1234")
            ans = await t.send_raw(raw, "0210", doc["11"])
            await t.close()
            return doc, ans
        doc, ans = asyncio.run(asyncio.wait_for(go(), 60))
        assert ans["39"] == "00" and ans["mac_ok"]
    finally:
        proc.terminate()
        proc.wait(10)
    assert "balance=45800" in admin(d, "list")
    log = (d / "bank.log").read_text()
    assert "card 476173******0010 -> 00" in log
    assert app["pan"] not in log and doc["52"] not in log.upper()
