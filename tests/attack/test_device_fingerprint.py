"""A free fingerprint attempt by cutting the power (issue 17): the fingerprint failure was counted
after the sensor's "no match" had been acted on, so an attacker who cuts the power the moment the
sensor answers (its ring LED, the screen, the UART) keeps the count where it was, and tries a
stranger's finger again and again past the 5 failures that should require the PIN.

As tests/host/test_vault_power.py does for the PIN: the unlock flow of the device (ui.fingerprint
with the R503 driver against the rig's sensor, the vault on the virtual handheld's flash) is run
with the power failing at each of its flash writes in turn; the sensor's answer is printed the
moment the driver has it ("ANSWERED"). After every cut and reboot: once the answer was out, the
attempt is on flash. Today the count's every write comes after the answer; now every one before.
"""

import ast

import pytest

from tools.screenshots import SETUP, attach_display
from tools.vaultops import PERSONALIZED, VaultBench

OWNER, STRANGER = "owner-thumb", "stranger-index"
TEMPLATE = 3
# After every boot: the display, the sensor (its Search answer announced), the vault, a session.
FLOW = SETUP + """
import vault
from drivers.r503 import R503
from ui import fingerprint
from vault.session import Session
sensor = R503(board.buses.fingerprint_uart(), wakeup=board.buses.pin(h.PIN_FINGERPRINT_WAKEUP))
asyncio.run(sensor.open())
_search = sensor.search
async def _announced(*args):
    try:
        return await _search(*args)
    finally:
        print('ANSWERED')
sensor.search = _announced
v = vault.Vault().open()
session = Session(v)
"""
UNLOCK = "print(repr(asyncio.run(fingerprint.unlock(ui, sensor, session))))"
FAILS = "print(repr((v.meta['fp_fails'], v.fingerprint_allowed(), v.unlocked)))"


@pytest.fixture(scope="module")
def bench(firmware_image, tmp_path_factory):
    with VaultBench(firmware_image, tmp_path_factory.mktemp("fingerprint-power")) as b:
        rig = b.vd.rig
        attach_display(rig)
        rig.attach("uart1", "r503", name="r503")
        rig.call("do", name="r503", action="timing", scale=0.01)
        rig.call("do", name="r503", action="enroll", finger=OWNER, location=TEMPLATE)
        b.boot_from(b.tmp / "blank.img")
        b.dev.exec(PERSONALIZED + "v.enroll_finger(%d)\nv.lock()" % TEMPLATE, timeout=60)
        snapshot = b.tmp / "enrolled.img"
        rig.call("snapshot", path=str(snapshot))
        b.snapshot = snapshot
        yield b


def boot(bench, finger):
    bench.boot_from(bench.snapshot)
    bench.vd.rig.call("do", name="r503", action="place", finger=finger)
    bench.dev.exec(FLOW, timeout=60)


def fails(bench):
    bench.dev.exec(FLOW, timeout=60)
    return ast.literal_eval(bench.dev.exec(FAILS).strip().splitlines()[-1])


def test_power_cut_after_no_match_gives_no_free_attempt(bench, capsys):
    boot(bench, STRANGER)
    start = bench.vd.rig.call("flash_writes")
    said = bench.dev.exec(UNLOCK, timeout=60)
    writes = bench.vd.rig.call("flash_writes") - start  # a dry run counts them
    assert "ANSWERED" in said and said.strip().splitlines()[-1] == "None", said  # not recognised
    assert writes > 0
    assert fails(bench) == (1, True, False)  # counted, and 4 more may be tried
    after_answer = 0
    for k in range(1, writes + 1):
        boot(bench, STRANGER)
        answered = b"ANSWERED" in bench.cut(k, UNLOCK)
        after_answer += answered
        count = fails(bench)[0]
        # Once the sensor had answered, the attempt is on flash; before, it may or may not be.
        assert count == 1 if answered else count in (0, 1), (k, writes, answered, count)
    assert after_answer == 0, (after_answer, writes)  # every write before the answer
    with capsys.disabled():
        print("\nfingerprint no-match: power cut at each of its %d flash writes, none after the sensor's answer;"
              " the attempt counted" % writes)
