"""The issuer's terminal management seen on the demo terminal (tests/host/terminalfix.py: the
app running from main.py, the real bank host): parameters published with the admin CLI reach
the terminal at its next sign-on and change what it does (a contactless limit lowered: a tap
above it is asked to insert the card), and a revoked terminal tells its owner so on the
screen of the flow they tried.
"""

import json
import time

from terminalfix import terminal  # noqa: F401 (the fixture)
from tools import bench, demo
from tools.bank import admin


def admin_cli(t, *args):
    assert admin.main(["--state-dir", str(t.bank.dir)] + [str(a) for a in args]) == 0


RETRY_MAX_MS = 3000


def reconnect(t):
    """A new session (the access point off and on): the device signs on again."""
    t.wifi(False)
    t.wifi(True)


def config_version(t, capsys, want, within=60):
    deadline = time.monotonic() + within
    while True:
        capsys.readouterr()
        admin_cli(t, "devices")
        row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(demo.SERIAL))
        if row[4] == str(want) or time.monotonic() > deadline:
            return row
        time.sleep(0.3)


def test_a_lower_contactless_limit_from_the_admin_cli_asks_for_the_card_to_be_inserted(terminal, tmp_path, capsys):
    t = terminal
    t.unlock()
    params = tmp_path / "params.json"
    # The test CAs' keys (the demo's cards verify against them) and contactless up to EUR 5.00.
    params.write_text(json.dumps({"capk": json.loads(bench.capk_file()),
                                  "terminal": {"contactless_limits": [["", 500, 500, 0]], "floor_limit": 0}}))
    admin_cli(t, "publish", "params", params, "--version", 1, "--svn", 1)
    reconnect(t)
    # state, firmware (the factory image's version), security version, config version
    assert config_version(t, capsys, 1)[1:5] == ["production", "1", "0", "1"]
    t.purchase("1000")
    t.screen("Insert or tap card")
    t.tap_card("emv:visa-classic")
    shown = t.screen("Insert the card", timeout=30)
    assert "cannot be made contactless" in shown["text"]
    t.lift_card()
    t.tap("Cancel")
    t.screen("Pocket Terminal")


def test_a_revoked_terminal_says_so_on_the_flow_the_owner_tries_and_comes_back_reinstated(terminal, capsys):
    t = terminal
    t.link_waits(retry_max_ms=RETRY_MAX_MS)  # its longest wait, the revoked terminal's: seconds
    t.unlock()
    admin_cli(t, "revoke", demo.SERIAL)
    reconnect(t)
    deadline = time.monotonic() + 30
    while "the device is revoked: refused" not in t.bank.log():
        assert time.monotonic() < deadline, "the device did not try to sign on"
        time.sleep(0.1)
    t.choose("Balance")
    t.screen("Balance")
    t.choose("Current account")
    shown = t.screen(lambda s: s.get("error") is not None, timeout=30)
    assert shown["title"] == "Terminal revoked" and "revoked this terminal" in shown["text"], shown
    assert shown["text"].endswith("Call your bank.")
    t.tap("OK")
    t.screen("Balance")
    t.tap("Back")
    t.screen("Pocket Terminal")
    assert config_version(t, capsys, 1)[1] == "revoked"
    # Reinstated, it signs on by itself at its next attempt: no restart, Balance works again.
    sign_ons = t.bank.log().count("0800/001 -> 00")
    admin_cli(t, "reinstate", demo.SERIAL)
    deadline = time.monotonic() + 30
    while t.bank.log().count("0800/001 -> 00") == sign_ons:
        assert time.monotonic() < deadline, "the reinstated terminal did not sign on again"
        time.sleep(0.1)
    t.choose("Balance")
    t.screen("Balance")
    t.choose("Current account")
    shown = t.screen(lambda s: s["title"] == "Balance" and "text" in s, timeout=30)
    assert shown["text"].startswith("Current account: "), shown
    assert config_version(t, capsys, 1)[1] == "production"
