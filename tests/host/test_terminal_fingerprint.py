"""The owner's fingerprint in the terminal app, end to end on the demo terminal
(tests/host/terminalfix.py): enrolled the way the owner does it (Home > Settings > Fingerprints >
Add, the finger on the rig's R503 three times), then used where the app asks for the owner:
the lock screen, a pushed request's confirmation, the vault's fingerprint policy, and deleted
again. What is checked is what the owner saw (the screen lines), what the sensor and the vault
hold, and what the bank did (its ledger).

The tests share one terminal and run in order; each leaves it unlocked at the home menu."""

import re
import struct

import pytest

from terminalfix import terminal  # noqa: F401 (the fixture)
from tools import demo

OWNER = "ACC-OWNER"
THUMB = "owner-right-thumb"  # the finger the owner enrols
STRANGER = "stranger-index"  # a finger the sensor has never seen


def locked(t):
    return t.screen(lambda s: s["title"].startswith("Locked"))


def home(t):
    """Back at the home menu after a result screen's OK."""
    t.tap("OK")
    return t.screen("Pocket Terminal")


def titles_since(t, count):
    return [s["title"] for s in t.screens[count:]]


def fingerprints_menu(t):
    """From the home menu to Settings > Fingerprints; its screen."""
    t.choose("Settings")
    t.screen("Settings")
    t.choose("Fingerprints")
    return t.screen("Fingerprints")


def leave_settings(t):
    """From the Fingerprints menu back to the home menu."""
    t.tap("Back")
    t.screen("Settings")
    t.tap("Back")
    t.screen("Pocket Terminal")


@pytest.fixture(scope="module")
def enrolled(terminal):
    """{"id": the template id of THUMB} once test_enrol has run."""
    return {}


def test_enrol_a_finger_in_settings(terminal, enrolled):
    t = terminal
    t.unlock()
    assert fingerprints_menu(t)["buttons"].keys() - {"Back"} == {"Add a fingerprint"}
    assert t.sensor_library() == {}
    t.tap("Add a fingerprint")
    first = t.screen("Add fingerprint")
    assert first["text"] == "Place your finger on the sensor (1 of 3)"
    count = len(t.screens)
    t.place_finger(THUMB, presses=3)  # the owner lifts and places again as the screen asks
    added = t.screen("Fingerprint added", timeout=40)
    assert added["text"] == "You can now unlock with this finger."
    guide = [s["text"] for s in t.screens[count:] if s["title"] == "Add fingerprint"]
    for step in ("Got it (1 of 3)", "Lift your finger (1 of 3)", "Place the same finger again (2 of 3)",
                 "Lift your finger (2 of 3)", "Place the same finger again (3 of 3)", "Got it (3 of 3)", "Saved"):
        assert step in guide, guide
    # The sensor holds one template, of that finger; the vault records its id as the owner's.
    library = t.sensor_library()
    assert list(library.values()) == [THUMB]
    enrolled["id"] = template_id = next(iter(library))
    listed = t.screen("Fingerprints")  # the menu again, with the new finger
    assert "Delete fingerprint %d" % template_id in listed["buttons"]
    # Read from the vault on flash (the app stopped, the REPL in a fresh interpreter): it
    # survives a restart.
    fingers, allowed, enrolled["max_fails"] = t.device.eval(
        "(lambda v: (v.fingers, v.fingerprint_allowed(), v.policy['fp_max_fails']))(__import__('vault').Vault().open())")
    assert (fingers, allowed) == ([template_id], True)
    t.restart()
    assert locked(t)["buttons"].keys() >= {"Fingerprint", "PIN"}  # the lock screen offers it now
    t.unlock()  # the PIN still unlocks


def test_the_enrolled_finger_unlocks_another_is_refused_and_the_pin_still_works(terminal):
    t = terminal
    t.standby()
    lock = locked(t)
    assert lock["title"] == "Locked (standby)" and lock["buttons"].keys() >= {"Fingerprint", "PIN"}
    # A finger the sensor does not know: refused, its screen, the lock screen again.
    t.tap("Fingerprint")
    assert t.screen("Unlock")["text"] == "Place your finger on the sensor"
    t.place_finger(STRANGER)
    refused = t.screen("Not recognised")
    assert refused["error"] is True
    locked(t)
    # The owner's finger unlocks.
    t.tap("Fingerprint")
    t.screen("Unlock")
    t.place_finger(THUMB)
    t.screen("Pocket Terminal")
    # Locked again, the PIN unlocks too.
    t.standby()
    locked(t)
    t.unlock()


def paid_with_the_finger(t, order, amount, finger):
    """Push a request, Pay it, `finger` on the sensor: the message that follows (the result,
    or the finger's refusal)."""
    t.push("Corner Bakery", order, amount)
    t.screen("Payment request", timeout=30)
    t.tap("Pay")
    # What the finger pays, and to whom, on the screen that asks for it (issue 18).
    assert t.screen("Confirm with fingerprint")["text"] == "€%d.%02d\nto Corner Bakery\nPlace your finger on the sensor" % (
        divmod(amount, 100))
    t.place_finger(finger)
    return t.screen(lambda s: s.get("error") is not None, timeout=40)


def test_a_pushed_request_confirmed_with_the_finger(terminal):
    t = terminal
    before = t.ledger()
    approved = paid_with_the_finger(t, "ORD-FINGER", 1875, THUMB)
    assert approved["title"] == "Approved", approved
    assert approved["text"].startswith("€18.75 to Corner Bakery from Current account. Bank reference ")
    after = t.ledger()
    assert after[OWNER] == before[OWNER] - 1875
    home(t)
    t.choose("History")
    assert "€18.75 Corner Bakery" in t.screen("History")["buttons"]
    t.tap("Back")
    t.screen("Pocket Terminal")


def test_an_unknown_finger_at_confirmation_falls_back_to_the_pin(terminal):
    t = terminal
    before = t.ledger()
    refused = paid_with_the_finger(t, "ORD-STRANGER", 640, STRANGER)
    assert refused["title"] == "Not recognised" and refused["error"] is True
    assert t.screen("Confirm with PIN")["pin_pad"] is True  # once the refusal has been read
    assert t.ledger() == before  # nothing paid on a stranger's finger
    t.type_pin(demo.DEMO_PIN)
    approved = t.screen(lambda s: s.get("error") is not None, timeout=40)
    assert approved["title"] == "Approved", approved
    assert t.ledger()[OWNER] == before[OWNER] - 640
    home(t)


def apdu(head, data):
    return bytes.fromhex(head) + bytes((len(data),)) + data + b"\x00"


def cancel_pin_pad(t):
    x, y, w, h = t.keypad["Cancel"]
    t.tap_at(x + w // 2, y + h // 2)


def test_after_too_many_unknown_fingers_the_pin_is_required_once(terminal, enrolled):
    # The vault's policy: fp_max_fails fingers not recognised in a row and the fingerprint no
    # longer confirms nor unlocks (its wrap is destroyed) until the PIN has been entered.
    t = terminal
    t.push("Corner Bakery", "ORD-POLICY", 330)
    t.screen("Payment request", timeout=30)
    for attempt in range(1, enrolled["max_fails"] + 1):
        t.tap("Pay")
        t.screen("Confirm with fingerprint")
        t.place_finger(STRANGER)
        t.screen("Not recognised")
        if attempt < enrolled["max_fails"]:
            t.tap("OK")  # read and put away; the last one is left to go by itself (its 3 s)
        t.screen("Confirm with PIN")
        cancel_pin_pad(t)
        t.screen("Payment request")
    count = len(t.screens)
    t.tap("Pay")
    t.screen("Confirm with PIN")  # straight to the PIN pad: no finger asked for
    assert "Confirm with fingerprint" not in titles_since(t, count)
    cancel_pin_pad(t)
    t.screen("Payment request")
    # Locked now, the lock screen says the PIN is needed first.
    t.standby()
    assert re.fullmatch(r"Locked: \d+ requests?", locked(t)["title"])
    t.tap("Fingerprint")
    required = t.screen("PIN required")
    assert required["error"] is True
    t.tap("OK")
    locked(t)
    t.tap("PIN")
    t.screen("Unlock")
    t.type_pin(demo.DEMO_PIN)
    t.screen("Payment request")  # the request the lock interrupted, again
    # The PIN restored the fingerprint: it confirms the payment.
    before = t.ledger()
    t.tap("Pay")
    t.screen("Confirm with fingerprint")
    t.place_finger(THUMB)
    approved = t.screen(lambda s: s.get("error") is not None, timeout=40)
    assert approved["title"] == "Approved", approved
    assert t.ledger()[OWNER] == before[OWNER] - 330
    home(t)


def test_a_shop_confirmation_takes_the_finger_too(terminal):
    # Card mode > Shop confirmation: the same proof (ui.fingerprint.confirm_owner) as the
    # terminal's own payments, with the shop's titles: the finger approves; a stranger's finger
    # falls back to the PIN pad "Enter PIN".
    t = terminal
    t.choose("Card mode")
    t.screen("Card mode")
    t.tap("Shop confirmation")
    t.screen("Shop confirmation")
    for counter, (finger, amount) in enumerate(((THUMB, 1250), (STRANGER, 480)), 1):
        merchant = b"Corner Bakery"
        t.shop_reader([apdu("00A40400", b"\xf0PT-CONFIRM"),  # SELECT, PREPARE (lib/nfc/confirm.py)
                       apdu("80100000", struct.pack(">I", amount) + b"EUR" + bytes(8) + bytes((len(merchant),)) + merchant)])
        t.screen("Confirm")
        t.tap("Confirm")
        t.screen("Confirm with fingerprint")
        t.place_finger(finger)
        if finger == STRANGER:
            t.screen("Not recognised")
            t.screen("Enter PIN")
            t.type_pin(demo.DEMO_PIN)
        (_, fci), (_, approval) = t.reader_answers(2)
        assert fci[-2:] == approval[-2:] == b"\x90\x00" and len(approval) == 30, approval.hex()
        assert approval[8:12] == struct.pack(">I", counter)  # approvals since the card mode began
        t.screen(lambda s: s["title"] == "Shop confirmation" and s.get("text", "").startswith("Approved: "))
        t.reader_leave()
    t.tap("Back")
    t.screen("Card mode")
    t.tap("Back")
    t.screen("Pocket Terminal")


def test_a_deleted_fingerprint_is_gone_and_the_pin_confirms(terminal, enrolled):
    t = terminal
    fingerprints_menu(t)
    t.tap("Delete fingerprint %d" % enrolled["id"])
    assert t.screen("Fingerprints")["buttons"].keys() - {"Back"} == {"Add a fingerprint"}
    assert t.sensor_library() == {}
    leave_settings(t)
    # Confirm asks for the PIN directly.
    before = t.ledger()
    t.push("Corner Bakery", "ORD-AFTER", 510)
    t.screen("Payment request", timeout=30)
    count = len(t.screens)
    t.tap("Pay")
    t.screen("Confirm with PIN")
    assert "Confirm with fingerprint" not in titles_since(t, count)
    t.type_pin(demo.DEMO_PIN)
    approved = t.screen(lambda s: s.get("error") is not None, timeout=40)
    assert approved["title"] == "Approved", approved
    assert t.ledger()[OWNER] == before[OWNER] - 510
    home(t)
    # The lock screen offers the PIN only.
    t.standby()
    assert locked(t)["buttons"].keys() - {"Back"} == {"PIN"}
    t.unlock()
