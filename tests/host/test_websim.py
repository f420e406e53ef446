"""The web simulator (tools/websim) in headless Chromium: the page, its screen, touch, controls
and traces, checked against the rig's models through the control API."""

import base64
import time
from pathlib import Path

import pytest

from tools import image
from tools.device import Device
from tools.websim.bank import BankHost
from websimfix import WebsimProcess, browser, chromium_missing

ROOT = Path(__file__).resolve().parent.parent.parent
SCREENSHOT = ROOT / "build" / "websim.png"
CARD = "emv:visa-classic"
PAN = "4761739001010010"  # the card's PAN (tools/emvcard/cards/visa-classic.json)

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    state = tmp_path_factory.mktemp("websim")
    image.build(state / "flash.img")
    ws = WebsimProcess(state / "flash.img", state, bank=BankHost.if_available(state) is not None)
    yield ws
    ws.stop()


@pytest.fixture(scope="module")
def page(sim, tmp_path_factory):
    pw, context = browser(tmp_path_factory.mktemp("chromium-profile"))
    page = context.new_page()
    page.goto(sim.url)
    page.wait_for_function("window.websim && window.websim.state !== null")
    yield page
    context.close()
    pw.stop()


@pytest.fixture(scope="module")
def device(sim):
    """The REPL, on a device reset into safe mode (the standby key held: no terminal
    application, so the heap is the REPL's)."""
    boots = sim.rig.call("device")["boots"]
    sim.rig.call("set_pin", pin="standby_key", level=0)
    sim.rig.call("reset")
    wait_for(lambda: sim.rig.call("device")["boots"] > boots and sim.rig.call("device")["phase"] == "repl",
             "a safe-mode boot")
    sim.rig.call("set_pin", pin="standby_key", level=None)
    dev = Device(sim.repl)
    yield dev
    dev.close()


def wait_for(check, what, timeout=10):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("no %s within %d s" % (what, timeout))
        time.sleep(0.02)


def panel_rgb(frame):
    """The ST7789 model's memory as RGB bytes, converted as the datasheet's RGB565 expands."""
    ram = base64.b64decode(frame["rgb565"])
    out = bytearray()
    for i in range(0, len(ram), 2):
        c = ram[i] << 8 | ram[i + 1]
        r, g, b = c >> 11, (c >> 5) & 63, c & 31
        out += bytes(((r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)))
    return bytes(out)


def canvas_rgb(page):
    rgba = page.evaluate("Array.from(document.getElementById('screen').getContext('2d')"
                         ".getImageData(0, 0, 240, 320).data)")
    return bytes(v for i, v in enumerate(rgba) if i % 4 != 3)


def quiet_frame(sim, quiet_s=0.5, timeout=20):
    """The display's frame once the device has drawn and stopped drawing for quiet_s."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        frame = sim.rig.call("do", name="display", action="frame")
        if frame["frame"] != last:
            last, since = frame["frame"], time.monotonic()
        elif frame["shown"] and time.monotonic() - since >= quiet_s:
            return sim.rig.call("do", name="display", action="frame", pixels=True)
        time.sleep(0.05)
    raise AssertionError("the display never settled on a screen")


def drawn_frame(sim, timeout=30):
    """quiet_frame, once the panel shows a screen (the application, not the display's cleared
    memory while the terminal is still starting: opening its vault, joining its bank)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = quiet_frame(sim)
        if len(set(base64.b64decode(frame["rgb565"]))) > 2 or time.monotonic() > deadline:
            return frame


def test_page_shows_the_screen_as_the_device_draws_it(sim, page):
    page.wait_for_function("window.websim.frames >= 1")
    before = page.evaluate("window.websim.lastFrame")
    boots = sim.rig.call("device")["boots"]
    sim.rig.call("reset")  # the device boots and draws its screen afresh
    wait_for(lambda: sim.rig.call("device")["boots"] > boots, "a new boot")
    frame = drawn_frame(sim)
    assert frame["frame"] > before
    # The page paints the model's memory, pixel for pixel.
    page.wait_for_function("window.websim.lastFrame >= %d" % frame["frame"])
    assert canvas_rgb(page) == panel_rgb(frame)
    assert len(set(panel_rgb(frame))) > 2  # a drawn screen, not a blank one


def test_a_click_on_the_screen_is_a_touch_at_panel_coordinates(sim, page):
    page.click("[data-zoom='2']")
    reports = sim.rig.call("model", name="touch")["reports"]
    page.click("#screen", position={"x": 2 * 100 + 1, "y": 2 * 150 + 1})
    wait_for(lambda: sim.rig.call("model", name="touch")["reports"] >= reports + 2, "touch down and lift-up")
    touch = sim.rig.call("model", name="touch")
    p1 = bytes.fromhex(touch["points"])[:4]
    event, x, y = p1[0] >> 6, (p1[0] & 0x0F) << 8 | p1[1], (p1[2] & 0x0F) << 8 | p1[3]
    assert (event, x, y) == (1, 100, 150)  # the lift-up report, where the finger was
    assert touch["fingers"] == {}
    page.click("[data-zoom='1']")


def test_the_card_list_starts_on_a_card_the_demo_bank_pays(sim, page):
    # It started on emv:bad-cert: a newcomer's first tap failed.
    from tools import demo

    options = page.eval_on_selector_all("#card option", "os => os.map(o => o.value)")
    assert page.input_value("#card") == options[0] == "emv:" + demo.CARDS[0]
    assert options[:len(demo.CARDS)] == ["emv:" + c for c in demo.CARDS]
    assert options.index("emv:bad-cert") >= len(demo.CARDS)


def test_card_controls_place_and_take_the_cards(sim, page):
    page.select_option("#card", CARD)
    page.click("#tap_card")
    wait_for(lambda: (sim.rig.call("model", name="nfc")["card"] or {}).get("applet") == CARD, "card in the field")
    page.click("#remove_card")
    wait_for(lambda: sim.rig.call("model", name="nfc")["card"] is None, "card out of the field")
    page.click("#insert_card")
    wait_for(lambda: sim.rig.call("model", name="card")["applet"] == CARD, "chip card in the slot")
    page.click("#eject_card")
    wait_for(lambda: not sim.rig.call("model", name="card")["inserted"], "chip card out")


def test_finger_controls(sim, page):
    page.click("#finger_unknown")
    wait_for(lambda: sim.rig.call("model", name="r503")["finger"] == "stranger-thumb", "unknown finger")
    page.click("#finger_enrolled")
    enrolled = page.evaluate("window.websim.state.fingers.enrolled[0]")
    wait_for(lambda: sim.rig.call("model", name="r503")["finger"] == enrolled, "enrolled finger")
    assert sim.rig.call("pin", pin="fingerprint_wakeup")["level"] == 0  # the ring is touched
    page.click("#lift_finger")
    wait_for(lambda: sim.rig.call("model", name="r503")["finger"] is None, "finger lifted")


def test_standby_key_is_a_short_press(sim, page):
    levels = []
    page.click("#standby")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not (0 in levels and levels[-1] == 1):
        levels.append(sim.rig.call("pin", pin="standby_key")["level"])
    assert 0 in levels and levels[-1] == 1, levels  # pressed (low), then released (pulled up)


def test_wifi_controls(sim, page):
    if page.is_disabled("#wifi_off"):
        assert "not available" in page.get_attribute("#wifi_off", "title")
        pytest.skip("the rig has no Wi-Fi access point model")
    page.click("#wifi_off")
    wait_for(lambda: sim.rig.call("do", name="wifi", action="networks") is not None
             and not sim.rig.call("model", name="wifi")["up"], "Wi-Fi off")
    page.click("#wifi_on")
    wait_for(lambda: sim.rig.call("model", name="wifi")["up"], "Wi-Fi on")


def test_apdu_trace_masks_the_pan_and_hides_pin_data(sim, page, device):
    page.select_option("#card", CARD)
    page.click("#insert_card")
    wait_for(lambda: sim.rig.call("model", name="card")["applet"] == CARD, "chip card in the slot")
    device.exec("import asyncio, board\nfrom drivers.iso7816_slot import Slot\nslot = Slot.from_board(board)\n"
                "asyncio.run(slot.activate())", timeout=30)
    for apdu in ("00A404000E315041592E5359532E444446303100", "00A4040007A000000003101000", "00B2010C00",
                 "0020008008241234FFFFFFFFFF"):
        device.exec("asyncio.run(slot.transceive(bytes.fromhex(%r)))" % apdu, timeout=30)
    page.wait_for_function("document.getElementById('apdus').textContent.includes('VERIFY')")
    text = page.inner_text("#apdus")
    assert "A0 00 00 00 03 10 10" in text  # the exchange is there
    assert PAN[:6] + "******" + PAN[-4:] in text.replace(" ", "")  # track 2 of READ RECORD, masked
    assert PAN not in text.replace(" ", "")
    assert "[VERIFY data not shown: 8 bytes]" in text
    assert "241234" not in text.replace(" ", "")


def test_device_log_shows_the_console(page, device):
    device.exec("print('websim-' + 'console-check')")
    page.wait_for_function("document.getElementById('log').textContent.includes('websim-console-check')")


def test_merchant_panel_reaches_the_bank(sim, page):
    if page.is_disabled("#push_request"):
        pytest.skip("no bank host (tools.bank is not there or did not start): " + page.get_attribute("#push_request", "title"))
    page.fill("input[name=order]", "T-%d" % time.time())
    page.click("#push_request")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('bank answered')")
    # The host took the request as well formed (400 is a bad body): 201 when the device is
    # registered and signed on; until the terminal application signs on, the host says why not.
    status = page.inner_text("#status")
    assert any("HTTP %d" % code in status for code in (201, 404, 409)), status


def test_power_cut_restarts_the_device(sim, page):
    boots = sim.rig.call("device")["boots"]
    page.click("#power_cut")
    wait_for(lambda: sim.rig.call("device")["power_cuts"] == 1 and sim.rig.call("device")["boots"] > boots, "a new boot")


def test_screenshot_of_the_page(sim, page):
    sim.wait_booted(after_boots=sim.rig.call("device")["boots"] - 1)  # after the power cut: the device draws its screen again
    frame = quiet_frame(sim)
    page.wait_for_function("window.websim.lastFrame >= %d" % frame["frame"])
    page.click("[data-zoom='1.5']")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000


def test_a_taken_page_port_is_said_at_once_with_the_way_out(tmp_path):
    # make run used to start the bank host and the whole handheld, then fail on the page's port.
    import socket
    import subprocess
    import sys

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "tools.websim", "--port", str(port), "--state-dir", str(tmp_path),
                              "--image", str(tmp_path / "none.img")], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
    assert out.returncode == 1, out
    assert "the page's port %d on 127.0.0.1 is taken" % port in out.stderr and "WEB_PORT" in out.stderr, out.stderr
    assert time.monotonic() - started < 10 and not (tmp_path / "bank").exists()  # nothing else was started
