"""The virtual handheld's watchdog (board/sim.py machine.WDT over vflash.watchdog): as the
ESP32's, fed in time it never fires, however long the device runs; not fed (a hang: a loop
that never yields, the event loop stuck), the device resets within its timeout, whatever it is
doing, and boots again."""

import shutil
import time

from tools.device import Device
from tools.vdevice.spawn import VDeviceProcess

TIMEOUT_MS = 400

# A flow's shape: an asyncio task feeds the watchdog every 100 ms (lib/terminal's feeder does
# every second, against the board's 8 s) while another works for four times the timeout,
# sleeping between steps as the app's screens and drivers do.
FED = """
import asyncio, time
from board import sim
wdt = sim.WDT(timeout=%d)
async def feeder(stop):
    while not stop:
        wdt.feed()
        await asyncio.sleep_ms(100)
async def flow():
    stop = []
    task = asyncio.create_task(feeder(stop))
    t = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t) < 4 * %d:
        sum(range(2000))  # work
        await asyncio.sleep_ms(20)
    stop.append(1)
    await task
asyncio.run(flow())
print('survived')
""" % (TIMEOUT_MS, TIMEOUT_MS)


def test_fed_in_time_it_never_fires_then_a_hang_resets_the_device(firmware_image, tmp_path):
    shutil.copyfile(firmware_image, tmp_path / "flash.img")
    with VDeviceProcess(tmp_path / "flash.img", tmp_path) as vd:
        boots = vd.rig.call("device")["boots"]
        dev = Device(vd.repl)
        assert dev.exec(FED, timeout=30).strip() == "survived"
        time.sleep(2 * TIMEOUT_MS / 1000)  # still armed: the feeder has stopped, the REPL does not feed
        assert vd.wait_booted(after_boots=boots, timeout=10)["boots"] == boots + 1
        assert "watchdog: not fed in time" in vd.log_tail(40)
        dev.close()
        # A hang on the new boot: nothing yields, nothing feeds. The reset comes within the
        # timeout (and some scheduling slack), not never.
        dev = Device(vd.repl)
        dev.exec("from board import sim\nwdt = sim.WDT(timeout=%d)" % TIMEOUT_MS)
        started = time.monotonic()
        dev.transport.exec_raw_no_follow("while True:\n    pass\n")
        vd.wait_booted(after_boots=boots + 1, timeout=10)
        assert time.monotonic() - started < TIMEOUT_MS / 1000 + 3
        dev.close()


# terminal.supervise after crashes in a row: its backoff doubles (1, 2, 4, 8, 16 s...); slept
# unfed, the 8 s watchdog reset the board in the backoff after the 4th crash. Here a watchdog
# of 1.5 s against a backoff of 1 s then 2 s. (The virtual handheld has no watchdog of its own,
# board.HAS_WATCHDOG: the test arms one for the supervisor, as board.watchdog() does on the
# ESP32.)
SUPERVISED = """
import terminal, watchdog
from board import sim
watchdog._wdt = sim.WDT(timeout=1500)
async def always_crashes():
    raise OSError(5)
print('crashes', terminal.supervise(always_crashes, backoff_ms=1000, max_runs=2))
"""


def test_the_supervisors_backoff_feeds_the_watchdog(firmware_image, tmp_path):
    shutil.copyfile(firmware_image, tmp_path / "flash.img")
    with VDeviceProcess(tmp_path / "flash.img", tmp_path) as vd:
        boots = vd.rig.call("device")["boots"]
        dev = Device(vd.repl)
        assert dev.exec(SUPERVISED, timeout=30).strip().endswith("crashes 2")
        assert vd.rig.call("device")["boots"] == boots  # no reset in the 3 s of backoff
        dev.close()
