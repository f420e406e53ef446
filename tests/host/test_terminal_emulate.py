"""Card mode end to end on the demo terminal (terminalfix): the handheld as a contactless card
for the rig's scripted reader (tools/rig/pn532.py: reader, reader_log, reader_leave).

The applets' keys are computed here as the issuer computes them (terminal/emulate.py): the unit's
issuer.unblock unsealed from the bank's HSM state (what tools.provision inject recorded), then
HMAC-SHA256 with the applet's label. A gate's DEBIT MACs and a shop's check of the approval use
them, so the device's keys are the issuer's, not just self-consistent."""

import hashlib
import hmac
import json
import struct
import time

from terminalfix import terminal  # noqa: F401 (the fixture)
from tools import demo
from tools.bank.state import State

TRANSIT_AID = b"\xf0PT-TRANSIT"
CONFIRM_AID = b"\xf0PT-CONFIRM"
GATE = 0xA1B2C3D4
NONCE = bytes.fromhex("0102030405060708")


def issuer_key(bank_dir, label, serial=demo.SERIAL):
    """The applet key of the unit `serial`, derived on the issuer's side."""
    record = json.loads((bank_dir / "factory" / (serial + ".json")).read_text())
    state = State(bank_dir)
    try:
        unblock = state.hsm.unseal(bytes.fromhex(record["unblock_sealed"]),
                                   b"issuer.unblock " + serial.encode() + bytes((record["generation"],)))
    finally:
        state.close()
    return hmac.new(unblock, label, hashlib.sha256).digest()


def mac(key, *parts, n=8):
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()[:n]


def apdu(head, data=b"", le=True):
    return bytes.fromhex(head) + (bytes((len(data),)) + data if data else b"") + (b"\x00" if le else b"")


def select(aid):
    return apdu("00A40400", aid)


def debit(key, card_id, counter, amount):
    return apdu("80540000", struct.pack(">II", amount, GATE) + NONCE
                + mac(key, b"PT-DEBIT", card_id, struct.pack(">III", counter, amount, GATE), NONCE))


def prepare(amount, merchant):
    m = merchant.encode()
    return apdu("80100000", struct.pack(">I", amount) + b"EUR" + NONCE + bytes((len(m),)) + m)


def gate(t, script):
    t.shop_reader(script)
    return t.reader_answers(len(script))


def target_mode(t):
    return t.rig.call("model", name="nfc")["target_mode"]


def until(what, failure, timeout=5):
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)


def screen_with(t, title, words):
    return t.screen(lambda s: s["title"] == title and words in s.get("text", ""))


def card_mode(t, entry):
    """From the home menu (the lock screen when the test runs first: unlocked) to `entry`."""
    if not t.screens or t.screens[-1]["title"] != "Pocket Terminal":
        t.unlock()
    t.choose("Card mode")
    t.screen("Card mode")
    t.tap(entry)


def test_a_gate_debits_the_transit_card_while_the_handheld_shows_it(terminal):
    t = terminal
    key = issuer_key(t.bank.dir, b"PT-NFC-TRANSIT-1")
    # A top-up of €10.00 on the unit (the bank's top-up flow is not part of the terminal yet).
    card_id = bytes.fromhex(t.device.exec(
        "import vault\nfrom terminal.emulate import applet_key, TRANSIT_LABEL\nfrom nfc.transit import TransitApplet\n"
        "a = TransitApplet(applet_key(vault.Vault().open(), TRANSIT_LABEL))\na.credit(1000)\nprint(a.card_id.hex())"
    ).strip())
    t.restart()
    t.unlock()
    card_mode(t, "Transit card")
    screen_with(t, "Transit card", "Balance €10.00.")

    log = gate(t, [select(TRANSIT_AID), apdu("805C0000"), debit(key, card_id, 0, 250)])
    (_, fci), (_, balance), (_, receipt) = log
    assert fci[-2:] == b"\x90\x00" and card_id in fci
    assert balance == struct.pack(">IIH", 1000, 0, 978) + b"\x90\x00"
    assert receipt[:8] == struct.pack(">II", 750, 1) and receipt[-2:] == b"\x90\x00"
    assert receipt[8:16] == mac(key, b"PT-RECEIPT", card_id, struct.pack(">IIII", 1, 250, 750, GATE), NONCE)
    screen_with(t, "Transit card", "Paid €2.50 at gate A1B2C3D4. Balance €7.50.")
    t.reader_leave()

    # The next gate: the same DEBIT replayed is refused (6982), a new one goes through.
    log = gate(t, [select(TRANSIT_AID), debit(key, card_id, 0, 250), debit(key, card_id, 1, 120)])
    assert [r[-2:].hex() for _, r in log] == ["9000", "6982", "9000"]
    screen_with(t, "Transit card", "Paid €1.20 at gate A1B2C3D4. Balance €6.30.")
    t.reader_leave()

    # Back: the PN532 is no longer a card; History has both debits.
    t.tap("Back")
    t.screen("Card mode")
    assert target_mode(t) is None
    t.tap("Back")
    t.screen("Pocket Terminal")
    t.choose("History")
    history = t.screen("History")
    assert {"€1.20 Gate A1B2C3D4", "€2.50 Gate A1B2C3D4"} <= set(history["buttons"])
    t.tap("Back")
    t.screen("Pocket Terminal")


def test_a_lock_ends_card_mode_and_the_pn532_is_not_left_a_target(terminal):
    t = terminal
    card_mode(t, "Transit card")
    t.screen("Transit card")
    # The screen is drawn while the PN532 is reset and sent TgInitAsTarget: a card soon after.
    until(lambda: target_mode(t) is not None, "the PN532 did not become a target in card mode")
    t.standby()
    t.screen(lambda s: s["title"].startswith("Locked"))
    until(lambda: target_mode(t) is None, "the PN532 stayed in target mode after the lock")
    # After the PIN the step the lock cut short resumes (Operation): a transit card again.
    t.tap("PIN")
    t.screen("Unlock")
    t.type_pin(demo.DEMO_PIN)
    screen_with(t, "Transit card", "Hold the terminal to the gate's reader.")
    until(lambda: target_mode(t) is not None, "the PN532 is not a target again after the unlock")
    t.tap("Back")
    t.screen("Card mode")
    assert target_mode(t) is None
    t.tap("Back")
    t.screen("Pocket Terminal")


def test_a_shop_asks_the_owner_who_approves_with_the_pin_or_refuses(terminal):
    t = terminal
    key = issuer_key(t.bank.dir, b"PT-NFC-CONFIRM-1")
    device_id = demo.SERIAL.encode()
    card_mode(t, "Shop confirmation")
    t.screen("Shop confirmation")

    t.shop_reader([select(CONFIRM_AID), prepare(1250, "Corner Bakery")])
    shown = t.screen("Confirm")
    assert shown["text"] == "€12.50 to Corner Bakery"
    t.tap("Confirm")
    t.screen("Enter PIN")
    t.type_pin(demo.DEMO_PIN)
    screen_with(t, "Shop confirmation", "Approved: €12.50 to Corner Bakery.")
    log = t.reader_answers(2)
    approval = log[1][1]
    assert approval[-2:] == b"\x90\x00" and len(approval) == 30 and approval[:8] == device_id
    counter = struct.unpack(">I", approval[8:12])[0]
    m = b"Corner Bakery"
    # The shop's check: nfc.confirm.approval_mac's formula under the issuer's key.
    assert approval[12:28] == mac(key, b"PT-CONFIRM", device_id, struct.pack(">II", counter, 1250), b"EUR",
                                  bytes((len(m),)), m, NONCE, n=16)
    t.reader_leave()

    # Refused on the handheld: the shop gets 6985 and no MAC.
    t.shop_reader([select(CONFIRM_AID), prepare(99900, "Mallory Mart")])
    assert t.screen("Confirm")["text"] == "€999.00 to Mallory Mart"
    t.tap("Cancel")
    screen_with(t, "Shop confirmation", "Refused: €999.00 to Mallory Mart.")
    assert t.reader_answers(2)[1][1] == b"\x69\x85"
    t.reader_leave()
    t.tap("Back")
    t.screen("Card mode")
    assert target_mode(t) is None


def test_requests_paid_by_card_after_a_lock_in_shop_confirmation(terminal):
    # The monkey's seed 20261205, action 657: Card mode interrupted by a lock is kept to resume,
    # and the pushed requests are paid by card first. Card mode's reader, applets and History
    # stayed imported through those payments (the session kept the operation, so nothing was
    # let go): the heap ran out (MemoryError) in a payment, then in the app's start.
    t = terminal
    t.restart()  # a fresh boot, as the monkey's run was
    t.unlock()
    card_mode(t, "Shop confirmation")
    t.screen("Shop confirmation")
    for amount in (427, 2858):
        t.shop_reader([select(CONFIRM_AID), prepare(amount, "Shop 01")])
        t.screen("Confirm")
        t.tap("Confirm")
        t.screen("Enter PIN")
        t.type_pin(demo.DEMO_PIN)
        screen_with(t, "Shop confirmation", "Approved")
        t.reader_leave()
    for i in range(2):
        t.push("Corner Bakery", "LOCKED-%d" % i, 1000 + i)
    t.standby()
    t.screen("Locked: 2 requests", timeout=30)
    t.tap("PIN")
    t.screen("Unlock")
    t.type_pin(demo.DEMO_PIN)
    for i in range(2):
        t.screen("Payment request", timeout=30)
        t.tap("Other way")
        t.screen("Pay with")
        t.choose("A card")
        t.screen("Insert or tap card")
        t.insert("emv:decline")
        t.screen("Card PIN", timeout=40)
        t.type_pin("1234")
        end = t.screen(lambda s: s.get("error") is not None, timeout=40)
        assert end["title"] == "Declined", end
        t.remove_card()
        t.tap("OK")
    # Then what the lock interrupted: Card mode again, and the app never crashed.
    t.screen("Shop confirmation", timeout=30)
    assert "MemoryError" not in t.log() and "crashed" not in t.log()
    t.tap("Back")
    t.screen("Card mode")
    t.tap("Back")
    t.screen("Pocket Terminal")
