"""Power cuts and lost answers in the offline batch (lib/terminal/offline.py), on a virtual
handheld of its own (booted in safe mode: the REPL only) with the bank host behind its Wi-Fi: at
each flash write of storing an advice, and of forwarding it (the sign-on, the 0220, the record's
removal), the power fails; after the boot the batch holds the advice whole or not at all (never
half of one), and once forwarded the bank has posted every advice that was stored exactly once:
the money it moved is the sum of those, whatever the cut. The same when the link drops after
the 0220 went up (its 0230 lost). The caps' arithmetic is checked on the same device.
"""

import ast
import datetime
import re
import threading
import time

import pytest

import emvfix
import uplinkfix as fx
from test_uplink import SETUP
from tools.vaultops import VaultBench

OPEN = """
import os
from vault import Vault
from vault.store import Store
vault = Vault(Store('/uplink-vault')).open()
""" + SETUP + """
from terminal import offline
from update import config as parameters
from emv.config import TerminalConfig
cfg = TerminalConfig()
def batch():
    return [offline._batch().entry(k) for k in offline.waiting()]
"""
STORE = "adv = offline.store(up, offline.prepare(up, cfg, card, %d, '978'))"
FORWARD = "go(offline.forward)"


@pytest.fixture(scope="module")
def bench(firmware_image, tmp_path_factory):
    bank = fx.BankHost(tmp_path_factory.mktemp("bank"))
    try:
        with VaultBench(firmware_image, tmp_path_factory.mktemp("offline-power")) as b:
            b.boot_from(b.tmp / "blank.img")
            b.vd.rig.attach("wlan0", "wifi", name="wifi")
            b.vd.rig.call("do", name="wifi", action="target", host=bank.address[0], port=bank.address[1])
            b.dev.exec(fx.provisioning(bank), timeout=60)
            b.bank = bank
            ready(b)
            yield b
    finally:
        bank.stop()


def ready(b):
    b.vd.rig.call("do", name="wifi", action="up")
    b.dev.exec(OPEN, timeout=30)


def value(b, expression):
    return ast.literal_eval(repr(b.dev.eval(expression, timeout=60)))


def writes(b, code):
    start = b.vd.rig.call("flash_writes")
    b.dev.exec(code, timeout=60)
    return b.vd.rig.call("flash_writes") - start


def card(b, amount):
    code, _, _ = fx.card_result_code(amount, cid=0x40)
    b.dev.exec(code)


def posted(b):
    return b.bank.ledger()["accounts"][fx.CARD_ACCOUNT]


def test_the_caps_lower_the_floor_limits_the_kernel_sees(bench):
    # Parameters of €80.00 floors, caps of €60.00 a payment, €80.00 and 2 advices waiting.
    b = bench
    b.dev.exec("try:\n    os.mkdir('/config')\nexcept OSError:\n    pass")
    b.dev.exec("import json\nwith open(parameters.TERMINAL, 'w') as f:\n    json.dump({'floor_limit': 8000, "
               "'offline_caps': [6000, 8000, 2], 'contactless_limits': [['a000000003', 100000, 5000, 8000]]}, f)\n"
               "def floors(keys):\n    j = offline._batch()\n    for k in keys:\n        j.queue({'key': k, 'fields': {}})\n"
               "    c = offline.limit(parameters.kernel('978'), up)\n    for k in keys:\n        j.done(k)\n"
               "    return offline.room(c, keys), c.floor_limit, c.contactless_limits, c.online")
    try:
        assert value(b, "floors([])") == (6000, 6001, ((b"\xa0\x00\x00\x00\x03", 100000, 5000, 6000),), False)
        assert value(b, "floors(['0000011205201316_3000'])")[:2] == (5000, 5001)      # the total left
        assert value(b, "floors(['0000011205201316_7500'])")[:2] == (500, 501)
        assert value(b, "floors(['0000011205201316_8000'])")[:3] == (0, 0, ((b"\xa0\x00\x00\x00\x03", 100000, 5000, 0),))
        assert value(b, "floors(['0000011205201316_1', '0000021205201316_1'])")[:2] == (0, 0)   # the count
        # Offline not allowed (a merchant's request: no uplink given), or no parameters: floors
        # of 0, and the kernel goes online (here the uplink is not signed on: the failure is the bank's).
        b.dev.exec("os.remove(parameters.TERMINAL)")
        assert value(b, "offline.limit(parameters.kernel('978'), None).floor_limit") == 0
        assert value(b, "(lambda c: (c.floor_limit, c.contactless_limits[0][3], c.online))(offline.limit(parameters.kernel('978'), up))") \
            == (0, 0, True)
    finally:
        b.dev.exec("try:\n    os.remove(parameters.TERMINAL)\nexcept OSError:\n    pass")


def test_a_card_that_insists_on_going_online_and_the_default_action_when_the_bank_cannot_be_reached(bench):
    # EMV Book 3 10.7-10.8 with the rig's visa-classic (its own offline limit €50.00, lower
    # consecutive offline limit 0): the kernel asks a TC below the floor, the card answers an
    # ARQC above its limit; the bank unreachable (complete(arc=None)), the default action codes
    # ask a TC with Y3, which the card refuses (AAC). Below its limit, with the terminal online
    # (the card's velocity sends it online: ARQC), the bank unreachable: Y3, the card's TC, stored
    # and forwarded; the host verifies that TC and posts it.
    b = bench
    emvfix.attach(b.vd, b.dev)
    b.vd.rig.call("do", name="card", action="insert", applet="emv:visa-classic", atr="t1")
    today = "bytes.fromhex(%r)" % datetime.date.today().strftime("%y%m%d")
    try:
        b.dev.exec("kernel.config = TerminalConfig(floor_limit=8000, online=False)\nPINS[:] = [b'1234']")
        insists = b.dev.eval("contact(5500, date=%s)" % today, timeout=60)
        assert insists["outcome"] == "online", insists
        declined = b.dev.eval("finish(None)", timeout=60)
        assert (declined["outcome"], declined["reason"]) == ("declined", "unable to go online: the card declined offline (Y3)"), declined
        assert b.dev.eval("res.terminal[0x8A]") == b"Y3"
        b.dev.exec("kernel.config = TerminalConfig(floor_limit=8000)\nPINS[:] = [b'1234']")
        velocity = b.dev.eval("contact(3000, date=%s)" % today, timeout=60)
        assert velocity["outcome"] == "online" and velocity["tvr"][6:8] == "40", velocity   # lower limit exceeded
        approved = b.dev.eval("finish(None)", timeout=60)
        assert approved["outcome"] == "approved" and b.dev.eval("res.terminal[0x8A]") == b"Y3", approved
        assert emvfix.de55(approved["icc_data"])[0x9F27] == b"\x40"
        emvfix.check_cryptogram(approved)       # the issuer's own check of the TC
        start = posted(b)
        ready(b)  # the uplink's names again (emvfix's SETUP took some)
        b.dev.exec("adv = offline.store(up, offline.prepare(up, kernel.config, res, 3000, '978'))\n" + FORWARD, timeout=60)
        assert start - posted(b) == 3000 and value(b, "batch()") == []
    finally:
        b.vd.rig.call("do", name="card", action="remove")
        emvfix.detach(b.vd)
        b.dev.exec("slot = nfc = kernel = res = None")


def cut(b, k, code):
    """Run code with the power cut at its k-th flash write (VaultBench.cut's way): True once the
    device has booted again, False if code ended before (its writes vary by a few with the
    flash's state: a cut point past its end is no cut)."""
    rig, serial = b.vd.rig, b.dev.transport.serial
    boots = rig.call("device")["boots"]
    rig.call("power_cut", after=k)
    b.dev.transport.exec_raw_no_follow(code)
    said = b""
    deadline = time.monotonic() + 30
    while rig.call("device")["boots"] == boots:
        said += serial.read(serial.in_waiting or 1)
        if said.count(b"\x04") >= 2:  # the raw REPL's two ends: the code ran to its end
            assert said.endswith(b"\x04\x04") or said.split(b"\x04")[1] == b"", said  # without error
            rig.call("power_cut", after=1 << 30)  # disarmed
            b.connect()
            return False
        assert time.monotonic() < deadline, (k, code, said)
    b.vd.wait_booted(after_boots=boots)
    b.connect()
    return True


def cut_and_settle(b, k, code):
    """Run code with the power cut at its k-th flash write; after the boot, the batch (each
    record read whole), then every advice forwarded: (batch after the boot, batch after), or
    None when code ended before its k-th write."""
    if not cut(b, k, code):
        return None
    ready(b)
    left = value(b, "batch()")
    b.dev.exec(FORWARD, timeout=60)
    return left, value(b, "batch()")


def test_a_power_cut_at_each_write_of_storing_an_advice_loses_none_and_doubles_none(bench, capsys):
    b = bench
    start = posted(b)
    card(b, 1100)
    n = writes(b, STORE % 1100)
    assert n > 0 and len(value(b, "batch()")) == 1
    b.dev.exec(FORWARD, timeout=60)
    stored = [1100]
    for k in range(1, n + 1):
        card(b, 100 + k)
        settled = cut_and_settle(b, k, STORE % (100 + k))
        if settled is None:  # stored whole before its k-th write
            stored.append(100 + k)
            b.dev.exec(FORWARD, timeout=60)
            continue
        left, after = settled
        assert len(left) <= 1 and after == [], (k, left, after)
        if left:  # written whole: every field, its TC
            assert left[0]["fields"]["4"] == 100 + k and "9f270140" in left[0]["fields"]["55"], (k, left)
            stored.append(100 + k)
    with capsys.disabled():
        print("\nstoring an advice: power cut at each of its %d flash writes; %d advices stored whole, "
              "none half" % (n, len(stored) - 1))
    assert start - posted(b) == sum(stored)      # each stored advice posted once, none else


def test_a_power_cut_at_each_write_of_forwarding_posts_the_advice_once(bench, capsys):
    # Forwarding signs on (its DUKPT writes), sends the 0220 (its KSN stored before it leaves:
    # the vault's writes, cut one by one in tests/host/test_vault_power.py), and removes the
    # record at the 0230 (the batch's write). Cut at the KSN's first and last writes (nothing
    # sent yet) and at the removal (the host has posted it): after the boot the advice is
    # forwarded again, and the host posts it once.
    b = bench
    card(b, 1300)
    b.dev.exec(STORE % 1300)
    start = posted(b)
    n = writes(b, FORWARD)
    assert start - posted(b) == 1300 and value(b, "batch()") == []
    sign_on = writes(b, "go(lambda up: asyncio.sleep_ms(0))")
    points = [sign_on + 1, n - 1, n]
    for i, k in enumerate(points):
        card(b, 200 + i)
        b.dev.exec(STORE % (200 + i))
        start = posted(b)
        left, after = cut_and_settle(b, k, FORWARD) or ([], value(b, "batch()"))
        assert [e["fields"]["4"] for e in left] in ([], [200 + i]) and after == [], (k, left, after)
        assert start - posted(b) == 200 + i, k   # posted once, whether the cut came before or after the host
    with capsys.disabled():
        print("\nforwarding: %d flash writes (the sign-on's %d), power cut at %s" % (n, sign_on, points))


def test_a_lost_0230_keeps_the_advice_and_the_host_posts_it_once(bench):
    """The link drops right after the 0220 went up: the host has posted the advice, its 0230
    never comes back. The advice stays in the batch; sent again in the next session, the host
    answers the repeat (the same DE41 + DE11 + DE7) with its first answer and posts nothing more."""
    b = bench
    rig = b.vd.rig
    card(b, 1700)
    b.dev.exec(STORE % 1700)
    stan = value(b, "adv.reference")[:6]
    start = posted(b)

    def arm():
        # Once the device has signed on, the link drops right after its next message went up.
        sign_ons = b.bank.log().count("0800/001 -> 00")
        deadline = time.time() + 20
        while b.bank.log().count("0800/001 -> 00") == sign_ons and time.time() < deadline:
            time.sleep(0.05)
        rig.call("do", name="wifi", action="cut_after_up")

    threading.Thread(target=arm, daemon=True).start()
    b.dev.exec("async def late(up):\n    await asyncio.sleep_ms(1500)\n    await offline.forward(up)\n")
    try:
        b.dev.exec("go(late)", timeout=60)
        assert [e["fields"]["4"] for e in value(b, "batch()")] == [1700]     # kept: no 0230 came
        deadline = time.time() + 10  # the host posts it after the cut, which the device may see first
        while posted(b) == start and time.time() < deadline:
            time.sleep(0.05)
        assert start - posted(b) == 1700
    finally:
        rig.call("do", name="wifi", action="up")
    b.dev.exec(FORWARD, timeout=60)
    assert value(b, "batch()") == [] and start - posted(b) == 1700        # sent again, posted once
    log = b.bank.log()
    assert len(re.findall(r"0220/000000 STAN %s amount 0*1700 .* -> 00" % stan, log)) == 1, log
    assert "0220 STAN %s repeated: first answer again" % stan in log, log
