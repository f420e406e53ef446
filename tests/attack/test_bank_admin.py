"""Attack on the back office (issue 17): the admin CLI took negative holds and balances (a
negative hold is money made up). Refused with a clear error, nothing written."""

import subprocess
import sys

import pytest


def admin(state_dir, *args):
    return subprocess.run([sys.executable, "-W", "ignore", "-m", "tools.bank.admin", "--state-dir",
                           str(state_dir), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, error", [
    (("account", "MALLORY", "--name", "Mallory", "--balance", "-100000"), "an opening balance is 0 or more"),
    (("hold", "H1", "ALICE", "-5000"), "a hold is a positive amount"),
    (("hold", "H2", "ALICE", "0"), "a hold is a positive amount"),
    (("merchant", "CAFE", "--name", "Café"), "printable ASCII"),
])
def test_admin_refuses_negative_amounts_and_names_a_device_cannot_show(tmp_path, args, error):
    d = tmp_path / "bank"
    assert admin(d, "init").returncode == 0
    assert admin(d, "account", "ALICE", "--name", "Alice", "--balance", "1000").returncode == 0
    r = admin(d, *args)
    assert r.returncode == 1 and r.stderr.startswith("error: ") and error in r.stderr, r.stderr
    listing = admin(d, "list").stdout
    assert "MALLORY" not in listing and "CAFE" not in listing and "balance=1000  held=0  available=1000" in listing
