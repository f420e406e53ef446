"""The R503 fingerprint module: the rig's model (tools/rig/r503.py) checked by independent host
software, Adafruit's CircuitPython fingerprint library on CPython and pyserial through the
model's pty; then our driver (drivers/r503.py) running on the device through the same model.

Each test attaches a fresh module (empty library, default password) to uart1 and detaches it
after, as other tests use uart1 too. Processing times are scaled down; nothing here asserts a
duration.
"""

import hashlib
import struct

import pytest
import serial
from rigfix import Model

FAST = 0.1  # the model's processing times, scaled for the tests


@pytest.fixture
def r503(vdevice):
    rig = vdevice.rig
    rig.attach("uart1", "r503", name="r503")

    module = Model(vdevice, "r503")
    try:
        module.do("timing", scale=FAST)
        yield module
    finally:
        rig.detach("r503")
        rig.set_pin("fingerprint_wakeup", None)  # the module no longer drives its line


# ---- the model, by Adafruit's library ---------------------------------------------------------

def _until(call, wanted, tries=40):
    """Poll as Adafruit's examples do (`while finger.get_image() != OK: pass`), but bounded."""
    for _ in range(tries):
        got = call()
        if got == wanted:
            return got
    raise AssertionError("%s never returned 0x%02x (last 0x%02x)" % (call.__name__, wanted, got))


def test_adafruit_library_enrols_searches_and_deletes(r503):
    import adafruit_fingerprint as af

    with serial.Serial(r503.tty, 57600, timeout=2) as port:
        finger = af.Adafruit_Fingerprint(port)  # VfyPwd with the default password, ReadSysPara
        assert (finger.library_size, finger.security_level, finger.system_id) == (200, 3, 0)
        assert finger.device_address == b"\xff\xff\xff\xff"
        assert (finger.data_packet_size, finger.baudrate) == (2, 6)  # 128-byte packets, 57600
        assert finger.count_templates() == af.OK and finger.template_count == 0
        assert finger.get_image() == af.NOFINGER

        # Enrolment as Adafruit's example does it: image, features, lift, image, features,
        # merge, store. The finger is a person who lifts and places again as prompted.
        r503.do("place", finger="alice-index", presses=2)
        _until(finger.get_image, af.OK)
        assert finger.image_2_tz(1) == af.OK
        _until(finger.get_image, af.NOFINGER)
        _until(finger.get_image, af.OK)
        assert finger.image_2_tz(2) == af.OK
        assert finger.create_model() == af.OK
        assert finger.store_model(7) == af.OK
        assert finger.count_templates() == af.OK and finger.template_count == 1
        assert finger.read_templates() == af.OK and finger.templates == [7]
        assert r503.state()["library"] == {"7": "alice-index"}

        # The same finger again is found, by both searches; someone else is not.
        r503.do("place", finger="alice-index")
        assert finger.get_image() == af.OK and finger.image_2_tz(1) == af.OK
        assert finger.finger_search() == af.OK
        assert finger.finger_id == 7 and finger.confidence >= 50
        assert finger.finger_fast_search() == af.OK and finger.finger_id == 7
        r503.do("place", finger="mallory-thumb")
        assert finger.get_image() == af.OK and finger.image_2_tz(2) == af.OK
        # Two different fingers (alice's in buffer 1, mallory's in 2) do not make one template.
        assert finger.create_model() == af.ENROLLMISMATCH
        assert finger.image_2_tz(1) == af.OK
        assert finger.finger_search() == af.NOTFOUND

        # A wet finger and a partial touch: the datasheet's codes from Img2Tz.
        r503.do("place", finger="alice-index", quality="wet")
        assert finger.get_image() == af.OK and finger.image_2_tz(1) == af.IMAGEMESS
        r503.do("place", finger="alice-index", quality="partial")
        assert finger.get_image() == af.OK and finger.image_2_tz(1) == af.FEATUREFAIL
        r503.do("lift")

        assert finger.set_led(color=2, mode=1, speed=0x40, cycles=0) == af.OK
        assert r503.state()["led"] == {"mode": 1, "speed": 0x40, "colour": 2, "count": 0}
        assert finger.store_model(200) == af.BADLOCATION

        assert finger.delete_model(7) == af.OK
        assert finger.count_templates() == af.OK and finger.template_count == 0
        r503.do("place", finger="alice-index")
        assert finger.get_image() == af.OK and finger.image_2_tz(1) == af.OK
        assert finger.finger_search() == af.NOTFOUND


def test_adafruit_library_checks_configures_loads_compares_and_uploads(r503):
    """The library's calls the enrolment test does not make, each answered as the datasheet says."""
    import adafruit_fingerprint as af

    r503.do("enroll", finger="alice-index", location=3)
    r503.do("enroll", finger="bob-thumb", location=4)
    with serial.Serial(r503.tty, 57600, timeout=2) as port:
        finger = af.Adafruit_Fingerprint(port)
        assert finger.check_module() is True  # GetEcho 0x53, answered 0x55
        assert finger.verify_password() == af.OK
        assert finger.set_sysparam(5, 5) == af.OK and finger.read_sysparam() == af.OK
        assert finger.security_level == 5
        with pytest.raises(RuntimeError, match="Command failed"):
            finger.set_sysparam(5, 9)  # security levels are 1..5: 0x1B, bad configuration

        # A stored template loaded into each buffer: the same finger scores high, two do not.
        assert finger.load_model(3, 1) == af.OK and finger.load_model(3, 2) == af.OK
        assert finger.compare_templates() == af.OK and finger.confidence[0] >= 100
        assert finger.load_model(4, 2) == af.OK
        assert finger.compare_templates() == af.NOMATCH and finger.confidence[0] < 30
        assert finger.load_model(5, 1) == af.DBRANGEFAIL  # an empty slot: no valid template

        # UpChar: the ack, then 512 bytes in data packets of the parameters' size (128 here).
        template = finger.get_fpdata("char", 1)
        assert bytes(template) == hashlib.shake_256(b"R503 finger:alice-index").digest(512)
        # DownChar: the same template back, into buffer 2 (which held bob's): they match again.
        assert finger.send_fpdata(template, "char", 2) is True
        assert finger.compare_templates() == af.OK

        # SetSysPara 4 (the baud rate, N x 9600) takes effect at the next power-on: 115200 for
        # the images, which take 1.7 s each way at that rate.
        assert finger.set_sysparam(4, 12) == af.OK and r503.state()["baud"] == 57600
        r503.do("power_cycle")
        port.baudrate = 115200
        assert finger.read_sysparam() == af.OK and finger.baudrate == 12

        # UpImage: a captured image, 192 x 192 pixels of 4 bits; DownImage puts it back in the
        # image buffer (which holds another finger's by then), and Img2Tz finds whose it is.
        r503.do("place", finger="bob-thumb")
        assert finger.get_image() == af.OK
        image = finger.get_fpdata("image")
        assert len(image) == 192 * 192 // 2
        r503.do("place", finger="alice-index")
        assert finger.get_image() == af.OK
        assert finger.send_fpdata(image, "image") is True
        # The image's packets take 1.7 s on the wire, and a pty's buffer lets the host write
        # them at once: the answer to the next command comes that much later.
        port.timeout = 4
        assert finger.image_2_tz(1) == af.OK
        assert finger.finger_search() == af.OK and finger.finger_id == 4
        # A picture the module never took: no features in it.
        assert finger.send_fpdata([0x11] * len(image), "image") is True
        assert finger.image_2_tz(1) == af.FEATUREFAIL
        port.timeout = 2
        r503.do("lift")

        assert finger.empty_library() == af.OK
        assert finger.count_templates() == af.OK and finger.template_count == 0
    assert r503.state()["library"] == {}


def _packet(pid, payload, address=0xFFFFFFFF):
    length = len(payload) + 2
    body = bytes((pid,)) + length.to_bytes(2, "big") + bytes(payload)
    return b"\xef\x01" + address.to_bytes(4, "big") + body + (sum(body) & 0xFFFF).to_bytes(2, "big")


def test_model_on_the_wire(r503):
    # Raw packets, as the datasheet has them, for what Adafruit's library does not use.
    with serial.Serial(r503.tty, 57600, timeout=0.5) as port:
        def ask(payload, answer_bytes, **kw):
            port.write(_packet(0x01, payload, **kw))
            return port.read(answer_bytes)

        assert ask(b"\x40", 12) == _packet(0x07, b"\x00")  # HandShake
        assert ask(b"\x77", 12) == _packet(0x07, b"\xfc")  # not an instruction: unsupported
        damaged = bytearray(_packet(0x01, b"\x1d"))
        damaged[-1] ^= 1
        port.write(damaged)
        assert port.read(12) == _packet(0x07, b"\x01")  # error when receiving the packet
        assert ask(b"\x1d", 14, address=0x12345678) == b""  # another module's address: silence
        port.write(b"\x00\xef\x55" + _packet(0x01, b"\x1d"))  # junk first: skipped
        assert port.read(14) == _packet(0x07, b"\x00\x00\x00")

        # UpChar: the ack, then the 512-byte char file in 128-byte data packets, the last one
        # marked end of data.
        r503.do("place", finger="alice-index")
        assert ask(b"\x01", 12) == _packet(0x07, b"\x00") and ask(b"\x02\x01", 12) == _packet(0x07, b"\x00")
        assert ask(b"\x08\x01", 12) == _packet(0x07, b"\x00")
        data = port.read(4 * (11 + 128))
        pids = [data[i * 139 + 6] for i in range(4)]
        assert pids == [0x02, 0x02, 0x02, 0x08]
        chunks = [data[i * 139:(i + 1) * 139] for i in range(4)]
        assert all(c == _packet(c[6], c[9:137]) for c in chunks)
        assert b"".join(c[9:137] for c in chunks) == hashlib.shake_256(b"R503 finger:alice-index").digest(512)

        # SetSysPara: security level 5 at once; a baud rate only from the next power-on.
        assert ask(b"\x0e\x05\x05", 12) == _packet(0x07, b"\x00")
        assert ask(b"\x0e\x04\x0c", 12) == _packet(0x07, b"\x00")
        assert ask(b"\x0e\x09\x01", 12) == _packet(0x07, b"\x1a")  # no such parameter
        params = ask(b"\x0f", 28)
        assert params == _packet(0x07, b"\x00" + struct.pack(">HHHHIHH", 0x0C, 0, 200, 5, 0xFFFFFFFF, 2, 12))
        # (status: PWD verified, image held; security level 5; baud N = 12 in flash)
        assert r503.state()["baud"] == 57600

        # SoftReset: the ack, then the 0x55 handshake byte once it has started again; RAM is gone.
        assert ask(b"\x3d", 13) == _packet(0x07, b"\x00") + b"\x55"
        assert r503.state()["image"] is None


def test_wakeup_line_follows_the_finger(vdevice, r503):
    assert vdevice.rig.call("pin", pin="fingerprint_wakeup")["level"] == 1
    r503.do("place", finger="alice-index")
    pin = vdevice.rig.call("pin", pin="fingerprint_wakeup")
    assert (pin["gpio"], pin["level"], pin["external"]) == (35, 0, 0)  # the module pulls it low
    r503.do("lift")
    assert vdevice.rig.call("pin", pin="fingerprint_wakeup")["level"] == 1


# ---- our driver, on the device ----------------------------------------------------------------

SETUP = """
import asyncio, board
from board import handheld as hw
from drivers import r503
u = board.buses.fingerprint_uart()
u.init(baudrate=57600)
wakeup = board.buses.pin(hw.PIN_FINGERPRINT_WAKEUP)
fp = r503.R503(u, wakeup=wakeup, timeout_ms=%d)
def run(coro):
    return asyncio.run(coro)
def attempt(coro):
    # What an operation ends with: ('ok', value), or the error's class name and code.
    try:
        return ('ok', asyncio.run(coro))
    except r503.FingerprintError as e:
        return (type(e).__name__, e.code)
"""


def driver(device, timeout_ms=1000):
    device.exec(SETUP % timeout_ms)
    return device


def test_driver_enrols_identifies_verifies_and_deletes(device, r503):
    dev = driver(device)
    params = dev.eval("run(fp.open())")
    assert params == {"status": 4, "system_id": 0, "library_size": 200, "security_level": 3,
                      "address": 0xFFFFFFFF, "packet_size": 128, "baud": 57600}

    # Enrolment guided step by step; the first free slot.
    r503.do("place", finger="alice-index", presses=2)
    dev.exec("steps = []\ntid = run(fp.enroll(on_step=lambda step, n: steps.append((step, n))))")
    assert dev.eval("tid") == 0
    assert dev.eval("steps") == [("place", 1), ("captured", 1), ("lift", 1), ("place again", 2),
                                 ("captured", 2), ("stored", 0)]
    # A second finger at a chosen slot, from three captures.
    r503.do("place", finger="bob-thumb", presses=3)
    assert dev.eval("run(fp.enroll(5, captures=3))") == 5
    assert r503.state()["library"] == {"0": "alice-index", "5": "bob-thumb"}
    assert dev.eval("run(fp.template_count())") == 2
    assert dev.eval("run(fp.templates())") == [0, 5]

    # 1:N and 1:1.
    r503.do("place", finger="bob-thumb")
    template_id, score = dev.eval("run(fp.identify())")
    assert template_id == 5 and score >= 50
    assert dev.eval("run(fp.verify(5))") >= 50
    assert dev.eval("attempt(fp.verify(0))") == ("NoMatch", 0x08)
    assert dev.eval("attempt(fp.verify(9))") == ("TemplateError", 0x0C)  # an empty slot
    r503.do("place", finger="mallory-thumb")
    assert dev.eval("attempt(fp.identify())") == ("NoMatch", 0x09)

    # Captures of two different fingers do not make a template.
    r503.do("place", finger="alice-index")
    dev.exec("run(fp.capture(1))")
    r503.do("place", finger="bob-thumb")
    dev.exec("run(fp.capture(2))")
    assert dev.eval("attempt(fp.reg_model())") == ("EnrollMismatch", 0x0A)
    assert dev.eval("attempt(fp.enroll(200))") == ("BadLocation", 0x0B)

    dev.exec("run(fp.delete(5))")
    assert dev.eval("run(fp.templates())") == [0]
    assert dev.eval("attempt(fp.identify())") == ("NoMatch", 0x09)  # bob's finger, still there
    dev.exec("run(fp.led(r503.LED_FLASHING, r503.LED_GREEN, 0x20, 3))")
    assert r503.state()["led"] == {"mode": 2, "speed": 0x20, "colour": 4, "count": 3}
    ok, detail = dev.eval("run(fp.self_test())")
    assert ok, detail
    assert detail == "1 of 200 templates, security level 3, 57600 baud, address FFFFFFFF"


def test_driver_library_full(device, r503):
    dev = driver(device)
    for location in range(200):
        r503.do("enroll", finger="finger-%d" % location, location=location)
    r503.do("place", finger="carol-ring", presses=2)
    assert dev.eval("attempt(fp.enroll())") == ("LibraryFull", 0x1F)
    assert r503.state()["stats"]["captures"] == 0  # refused before asking for the finger
    assert dev.eval("run(fp.template_count())") == 200


def test_driver_reports_image_problems(device, r503):
    dev = driver(device)
    r503.do("place", finger="alice-index", quality="wet")
    assert dev.eval("attempt(fp.identify())") == ("ImageMessy", 0x06)
    r503.do("place", finger="alice-index", quality="partial")
    assert dev.eval("attempt(fp.identify())") == ("TooFewFeatures", 0x07)
    r503.do("place", finger="alice-index", quality="faulty")
    assert dev.eval("attempt(fp.identify())") == ("ImageFail", 0x03)
    # All three are image errors: the screen asks for the finger again.
    assert dev.eval("all(issubclass(c, r503.ImageError) for c in (r503.ImageMessy, r503.TooFewFeatures, "
                    "r503.ImageFail))")
    # No finger at all: the driver waits on the WAKEUP line, not by asking the module for images.
    r503.do("lift")
    polls = r503.state()["stats"]["no_finger"]
    assert dev.eval("fp.finger_present()") is False
    assert dev.eval("attempt(fp.identify(timeout_ms=200))") == ("NoFinger", 0x02)
    assert r503.state()["stats"]["no_finger"] == polls
    # Without the line it asks the module, which says no finger.
    dev.exec("fp = r503.R503(u)")
    assert dev.eval("attempt(fp.identify(timeout_ms=200))") == ("NoFinger", 0x02)
    assert r503.state()["stats"]["no_finger"] > polls


def test_driver_recovers_from_a_bad_line(device, r503):
    dev = driver(device, timeout_ms=300)
    r503.do("enroll", finger="alice-index", location=3)

    # A reply with a broken checksum: detected and the command repeated, transparently.
    r503.do("garble", n=1)
    assert dev.eval("run(fp.template_count())") == 1
    assert dev.eval("(fp.bad_packets, fp.retries)") == (1, 1)
    # Twice in a row: the typed error; the next command is fine.
    r503.do("garble", n=2)
    assert dev.eval("attempt(fp.template_count())") == ("BadPacket", None)
    assert dev.eval("run(fp.template_count())") == 1

    # Junk before the reply, with a stray 0xEF and a false header: skipped.
    r503.do("noise")
    assert dev.eval("run(fp.templates())") == [3]
    assert dev.eval("fp.skipped") > 0 and dev.eval("fp.retries") == 2
    # A false header that looks right (our address, an ack) and swallows the real reply: its
    # checksum fails, the command is repeated.
    r503.do("noise", data="ef01ffffffff070005")
    assert dev.eval("run(fp.template_count())") == 1
    assert dev.eval("fp.retries") == 3

    # A mute module: the typed timeout (after one retry), then normal service again.
    r503.do("mute", on=True)
    assert dev.eval("attempt(fp.template_count())") == ("FingerprintTimeout", None)
    assert dev.eval("fp.timeouts") == 2
    assert dev.eval("run(fp.self_test())") == (False, "no answer on the UART (power, TX/RX wiring, 57600 baud)")
    r503.do("mute", on=False)
    assert dev.eval("run(fp.template_count())") == 1

    # The module's baud rate is fixed: at 9600 it hears only garbage, and says nothing.
    dev.exec("u.init(baudrate=9600)")
    try:
        assert dev.eval("attempt(fp.template_count())") == ("FingerprintTimeout", None)
    finally:
        dev.exec("u.init(baudrate=57600)")
    assert r503.state()["stats"]["line_errors"] > 0
    assert dev.eval("run(fp.template_count())") == 1


def test_driver_password(device, r503):
    dev = driver(device)
    dev.exec("run(fp.set_password(0x5EC12E7))")
    assert r503.state()["password_set"] is True
    r503.do("power_cycle")

    # The default password no longer opens it; every command says so.
    dev = driver(device)
    assert dev.eval("attempt(fp.verify_password())") == ("WrongPassword", 0x13)
    assert dev.eval("attempt(fp.template_count())") == ("WrongPassword", 0x13)
    ok, detail = dev.eval("run(fp.self_test())")
    assert (ok, detail) == (False, "answers, but refuses the password")

    # The right one does; after a power cycle the driver gives it again by itself.
    dev.exec("fp = r503.R503(u, wakeup=wakeup, password=0x5EC12E7)")
    assert dev.eval("run(fp.self_test())")[0] is True
    r503.do("power_cycle")
    assert r503.state()["verified"] is False
    assert dev.eval("run(fp.template_count())") == 0
    assert r503.state()["verified"] is True

    # Nothing the driver says holds the password.
    r503.do("power_cycle")
    out = dev.exec("for p in (0, 0x5EC12E6):\n    try:\n        run(r503.R503(u, password=p).template_count())\n"
                   "    except r503.FingerprintError as e:\n        print(repr(e))\n"
                   "print(run(r503.R503(u, password=1).self_test()))")
    assert out.count("WrongPassword") == 2, out
    assert "5ec12e" not in out.lower() and str(0x5EC12E7) not in out and str(0x5EC12E6) not in out, out


def test_every_confirmation_code_is_a_typed_error(device):
    dev = driver(device)
    codes = [0x01, 0x02, 0x03, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x13, 0x15,
             0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1F, 0x20, 0x21, 0x22, 0x24, 0x26, 0x27, 0x29, 0xFC, 0xFD, 0xFE,
             0x42]
    rows = dev.eval("[(c, type(r503.error(c)).__name__, r503.error(c).code, str(r503.error(c))) for c in %r]"
                    % codes)
    got = {c: (name, code, text) for c, name, code, text in rows}
    assert all(code == c for c, (_, code, _) in got.items())
    assert all(text.endswith("(0x%02X)" % c) or "reserved" in text for c, (_, _, text) in got.items())
    assert {c: name for c, (name, _, _) in got.items() if name != "ModuleError"} == {
        0x01: "BadPacket", 0x02: "NoFinger", 0x03: "ImageFail", 0x06: "ImageMessy", 0x07: "TooFewFeatures",
        0x08: "NoMatch", 0x09: "NoMatch", 0x0A: "EnrollMismatch", 0x0B: "BadLocation", 0x0C: "TemplateError",
        0x13: "WrongPassword", 0x15: "ImageFail", 0x1F: "LibraryFull", 0x21: "PasswordRequired",
        0x22: "TemplateError", 0x24: "LibraryEmpty", 0x26: "NoFinger", 0x27: "AlreadyEnrolled"}
    assert dev.eval("issubclass(r503.LibraryEmpty, r503.NoMatch) and issubclass(r503.ModuleError, "
                    "r503.FingerprintError)")
