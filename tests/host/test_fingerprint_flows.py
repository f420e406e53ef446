"""The fingerprint flows on the device: the R503 driver against the rig's model, guidance on
the ST7789, the template ids in the vault."""

import pytest

from tools.screenshots import SETUP, attach_display

FLOWS = """
import sys
if '/tests' not in sys.path: sys.path.append('/tests')
import vaultfix
from drivers.r503 import R503
from ui import fingerprint
from vault.session import Session
sensor = R503(board.buses.fingerprint_uart(), wakeup=board.buses.pin(h.PIN_FINGERPRINT_WAKEUP))
asyncio.run(sensor.open())
v = vaultfix.personalized('/fp-flow-store')
session = Session(v)
class TapsOK:
    # The owner reads each message and taps its button (at the bottom of the screen).
    async def event(self, ms):
        await asyncio.sleep_ms(20)
        return ('up', 120, 290)
ui.touch = TapsOK()
steps = []
_progress = ui.progress
def progress(title, text, fraction=None):
    steps.append(text)
    _progress(title, text, fraction)
ui.progress = progress
"""


@pytest.fixture(scope="module")
def flows(vdevice, device):
    attach_display(vdevice.rig)
    vdevice.rig.attach("uart1", "r503", name="r503")
    vdevice.rig.call("do", name="r503", action="timing", scale=0.01)
    device.exec(SETUP + FLOWS, timeout=60)
    yield device
    device.exec("vaultfix.clean('/fp-flow-store')")
    vdevice.rig.detach("r503")
    vdevice.rig.detach("display")
    vdevice.rig.set_pin("fingerprint_wakeup", None)


def test_enrol_guides_and_records_the_template_in_the_vault(vdevice, flows):
    vdevice.rig.call("do", name="r503", action="place", finger="owner-thumb", presses=3)
    template_id = flows.eval("asyncio.run(fingerprint.enroll(ui, sensor, v))", timeout=60)
    assert isinstance(template_id, int)
    assert flows.eval("v.fingers") == [template_id]
    steps = flows.eval("steps")
    assert steps[0] == "Place your finger on the sensor (1 of 3)", steps
    assert "Lift your finger (1 of 3)" in steps and "Place the same finger again (2 of 3)" in steps, steps
    assert steps[-1] == "Saved", steps
    assert flows.eval("asyncio.run(sensor.templates())") == [template_id]


def test_unlock_with_the_enrolled_finger_and_not_another(vdevice, flows):
    flows.exec("v.lock()\nsteps.clear()")
    vdevice.rig.call("do", name="r503", action="place", finger="stranger-index", presses=1)
    assert flows.eval("asyncio.run(fingerprint.unlock(ui, sensor, session))", timeout=30) is None
    assert flows.eval("(v.unlocked, v.meta['fp_fails'])") == (False, 1)
    vdevice.rig.call("do", name="r503", action="lift")
    vdevice.rig.call("do", name="r503", action="place", finger="owner-thumb", presses=1)
    assert flows.eval("asyncio.run(fingerprint.unlock(ui, sensor, session))", timeout=30) is True
    assert flows.eval("(v.unlocked, v.meta['fp_fails'])") == (True, 0)
    vdevice.rig.call("do", name="r503", action="lift")


def test_an_unreadable_finger_gets_a_remedy(vdevice, flows):
    vdevice.rig.call("do", name="r503", action="place", finger="owner-index", quality="wet", presses=3)
    assert flows.eval("asyncio.run(fingerprint.enroll(ui, sensor, v))", timeout=60) is None
    assert len(flows.eval("v.fingers")) == 1
    vdevice.rig.call("do", name="r503", action="lift")


def test_delete_removes_it_from_vault_and_sensor(vdevice, flows):
    template_id = flows.eval("v.fingers[0]")
    assert flows.eval("asyncio.run(fingerprint.delete(ui, sensor, v, %d))" % template_id, timeout=30) is True
    assert flows.eval("v.fingers") == []
    assert flows.eval("asyncio.run(sensor.templates())") == []
