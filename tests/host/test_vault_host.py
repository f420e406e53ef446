"""The vault on the virtual handheld with its rig: the standby key, and diag."""


def test_standby_key_locks_the_session(vdevice, device):
    device.exec("import sys\nif '/tests' not in sys.path: sys.path.append('/tests')\n"
                "import board, time, vaultfix\nfrom vault.session import Session\n"
                "v = vaultfix.personalized('/host-test-store')\ns = Session(v)\n"
                "s.watch_standby(board.buses.standby_key())")
    assert device.eval("s.state") == "UNLOCKED"
    vdevice.rig.set_pin("standby_key", 0)  # pressed
    try:
        device.exec("for _ in range(100):\n    if s.state == 'LOCKED': break\n    time.sleep_ms(5)")
        assert device.eval("(s.state, s.lock_reason, v.data_key)") == ("LOCKED", "standby", None)
    finally:
        vdevice.rig.set_pin("standby_key", None)
        device.exec("board.buses.standby_key().irq(None)\nvaultfix.clean('/host-test-store')")


def test_diag_reports_the_secure_store(vdevice, device):
    out = device.exec("import diag\ndiag.report()")
    line = [l for l in out.splitlines() if l.startswith("secure store")]
    assert line and line[0].split()[2] == "ok", out
    assert line[0].split()[3] in ("BLANK", "FACTORY"), out
