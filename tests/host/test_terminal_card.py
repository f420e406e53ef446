"""Card purchase (reader mode) end to end: the demo terminal (terminalfix) with the rig's EMV test
cards (tools/emvcard) in its slot and on its antenna, the real bank host behind its Wi-Fi. The
owner types the amount, the card is inserted or tapped, the PIN typed on the device's keypad;
what counts is what the screens say and what the bank's ledger shows afterwards.

The tests run in order on one terminal and one rig (the cards keep their counters): each starts
and ends at the home menu, and takes the card away at its end.
"""

import re
import time

import pytest

import terminalfix
from tools import demo

VISA = "emv:visa-classic"
VISA_ACCOUNT = demo.card_account("visa-classic")
MC_ACCOUNT = demo.card_account("mastercard-sda")


@pytest.fixture(scope="module")
def shop(firmware_image, tmp_path_factory):
    """terminalfix's terminal, unlocked and signed on."""
    t = terminalfix.Terminal(tmp_path_factory.mktemp("terminal-card"), firmware_image)
    try:
        t.unlock()
        t.signed_on()
        yield t
    finally:
        t.close()


def start(t, digits):
    """From the home menu: Purchase, the amount typed, OK; returns the waiting screen."""
    t.purchase(digits)
    return t.screen("Insert or tap card")


def done(t, title, timeout=30):
    """The result screen `title`, read, OK tapped, back at the home menu; returns the result."""
    try:
        result = t.screen(title, timeout)
    except AssertionError:
        print("the bank's log, its end:\n" + t.bank.log()[-3000:])
        raise
    t.tap("OK")
    t.screen("Pocket Terminal")
    return result


def history_entry(t, label):
    """From the home menu: History, the entry `label` opened and read, back at the home menu;
    returns the entry's screen."""
    t.choose("History")
    assert label in t.screen("History")["buttons"]
    t.tap(label)
    entry = t.screen("Purchase")
    t.tap("OK")
    t.screen("History")
    t.tap("Back")
    t.screen("Pocket Terminal")
    return entry


def field_off(t):
    deadline = time.monotonic() + 5
    while t.rig.call("model", name="nfc")["field"]:
        assert time.monotonic() < deadline, "the NFC field stayed on"
        time.sleep(0.1)
    return True


def test_contact_purchase_with_offline_pin_approved(shop):
    t = shop
    before = t.ledger()
    waiting = start(t, "1250")
    assert "€12.50" in waiting["text"] and "Cancel" in waiting["buttons"]
    t.insert(VISA)
    assert t.screen("Card PIN")["pin_pad"]  # visa-classic's CVM list: offline plaintext PIN first
    t.type_pin("1234")
    t.screen("Authorising")
    approved = done(t, "Approved")
    t.remove_card()
    # What the owner says of it: the amount, from which card (this terminal is the payee), the bank's reference.
    assert re.fullmatch(r"€12\.50 from card •••• 0010\. Bank reference \d{12}\.", approved["text"]), approved
    assert "4761739001010010" not in t.log()  # the full PAN is never shown nor printed
    after = t.ledger()
    assert after[demo.SHOP] - before[demo.SHOP] == 1250
    assert before[VISA_ACCOUNT] - after[VISA_ACCOUNT] == 1250
    assert field_off(t)
    # History: the purchase with the masked card number and the bank's reference.
    entry = history_entry(t, "€12.50 Purchase")
    assert re.fullmatch(r"Purchase of €12\.50: approved\. With •••• 0010\. Reference \d{12}\. "
                        r"\d{1,2} [A-Z][a-z]{2} 20\d\d, \d\d:\d\d\.", entry["text"]), entry


def test_contactless_purchase_approved(shop):
    t = shop
    before = t.ledger()
    start(t, "830")
    t.tap_card(VISA)
    approved = done(t, "Approved")  # no CVM on the short path (CTQ 0000)
    t.lift_card()
    assert approved["text"].startswith("€8.30 from card •••• 0010. Bank reference "), approved
    after = t.ledger()
    assert after[demo.SHOP] - before[demo.SHOP] == 830 and before[VISA_ACCOUNT] - after[VISA_ACCOUNT] == 830
    assert field_off(t)


@pytest.mark.parametrize("card, pin", [
    ("visa-cvn18", "1234"),  # ARPC method 2 (ARPC || CSU) in EXTERNAL AUTHENTICATE
    ("visa-cvn22", "4321"),  # IAD format 2, 32 bytes
    ("mastercard-cvn17", "1234"),  # M/Chip: the session key from ATC and UN
    ("visa-cvn22", None), ("mastercard-cvn17", None),  # tapped
    ("visa-cda", "1234"), ("visa-cda", None),  # CDA: both cryptograms signed; tapped: fDDA
    ("mastercard-cda", None),  # tapped M/Chip: GENERATE AC with CDA, checked once the card has gone
])
def test_each_cryptogram_version_pays_through_the_bank(shop, card, pin):
    t = shop
    account = demo.card_account(card)
    before = t.ledger()
    start(t, "930")
    if pin:
        t.insert("emv:" + card)
        t.screen("Card PIN")  # offline PIN first (their CVM list)
        t.type_pin(pin)
        done(t, "Approved")
        t.remove_card()
    else:
        t.tap_card("emv:" + card)
        done(t, "Approved")
        t.lift_card()
    after = t.ledger()
    assert after[demo.SHOP] - before[demo.SHOP] == 930 and before[account] - after[account] == 930


def test_a_tap_from_the_cvm_limit_asks_the_cards_pin(shop):
    # EUR 1,234.56 tapped went online with no PIN at all. From EUR 50 (the reader's CVM limit)
    # the card's PIN is asked on the handheld's keypad and checked by the bank.
    t = shop
    before = t.ledger()
    start(t, "6000")
    t.tap_card(VISA)
    t.screen("Card PIN")
    t.lift_card()  # the card is done: the PIN is typed without it
    t.type_pin("1234")
    done(t, "Approved")
    assert before[VISA_ACCOUNT] - t.ledger()[VISA_ACCOUNT] == 6000


def test_a_tap_at_the_contactless_limit_is_asked_into_the_slot(shop):
    t = shop
    before = t.ledger()
    start(t, "123456")
    t.tap_card(VISA)
    shown = t.screen("Insert the card")
    assert "€1,234.56" in shown["text"] and "cannot be made contactless" in shown["text"], shown
    t.lift_card()
    t.tap("Cancel")
    t.screen("Pocket Terminal")
    assert t.ledger() == before


@pytest.mark.parametrize("pin, title", [("9999", "Wrong PIN"), ("1234", "Approved")])
def test_contact_only_card_tapped_is_asked_into_the_slot(shop, pin, title):
    t = shop
    before = t.ledger()
    start(t, "1999")
    t.tap_card("emv:mastercard-sda")  # no PPSE: "try another interface"
    assert "Cancel" in t.screen("Insert the card")["buttons"]
    assert field_off(t)  # the card released at once, the field off while waiting for the slot
    t.lift_card()
    t.insert("emv:mastercard-sda")
    t.screen("Card PIN")  # online PIN (its CVM list), on the device's keypad; the bank checks it
    t.type_pin(pin)
    result = done(t, title)
    t.remove_card()
    paid = 1999 if title == "Approved" else 0
    after = t.ledger()
    assert after[demo.SHOP] - before[demo.SHOP] == paid and before[MC_ACCOUNT] - after[MC_ACCOUNT] == paid
    assert result["text"].startswith("€19.99 from card •••• 0011. " + ("Bank reference " if paid else "")), result


@pytest.mark.parametrize("card, title", [
    ("emv:blocked", "Card blocked"),  # SELECT 6283: its only application is blocked
    ("emv:malformed-tlv", "Card not readable"),  # a record with a broken TLV
])
def test_inserted_card_that_cannot_pay(shop, card, title):
    t = shop
    before = t.ledger()
    start(t, "500")
    t.insert(card)
    failure = done(t, title)
    t.remove_card()
    assert failure["error"] is True
    assert t.ledger() == before


@pytest.mark.parametrize("card, masked", [("cda-wrong-hash", r"476173\*+0143"),
                                          ("mastercard-cda-wrong-hash", r"541333\*+0045")])  # tapped
def test_cda_that_fails_declines_without_the_bank(shop, card, masked):
    # The card's signature over its ARQC does not check (its hash leaves out its IAD): the
    # cryptogram is not the card's, so it is declined offline and never sent to the bank.
    t = shop
    before = t.ledger()
    start(t, "1500")
    if card.startswith("mastercard"):
        t.tap_card("emv:" + card)
        done(t, "Declined")
        t.lift_card()
    else:
        t.insert("emv:" + card)
        t.screen("Card PIN")
        t.type_pin("1234")
        done(t, "Declined")
        t.remove_card()
    assert t.ledger() == before
    assert not re.search(r"card " + masked, t.bank.log())


def test_card_declines(shop):
    t = shop
    before = t.ledger()
    start(t, "700")
    t.tap_card("emv:decline")  # AAC in its GPO answer
    done(t, "Declined")
    t.lift_card()
    assert t.ledger() == before
    assert field_off(t)


def test_card_refuses_after_the_bank_approved_and_the_approval_is_reversed(shop):
    # The bank approves (ARQC good, posted); the card finds the ARPC wrong and answers its
    # second GENERATE AC with an AAC: the terminal reverses the approval (0400, DE39 06).
    t = shop
    before = t.ledger()
    start(t, "2600")
    t.insert("emv:refuse-arpc")
    t.screen("Card PIN")  # offline PIN, as visa-classic
    t.type_pin("1234")
    t.screen("Authorising")
    declined = done(t, "Declined")
    t.remove_card()
    assert declined["error"] is True and "cancelled" in declined["text"], declined
    assert re.match(r"€26\.00 from card •••• \d{4}\. The card refused", declined["text"]), declined
    log = t.bank.log()
    assert re.search(r"0200/000000 STAN (\d{6}) amount 000000002600 card 476173\*+0101 -> 00", log), log[-3000:]
    original = re.search(r"0200/000000 STAN (\d{6}) amount 000000002600 card \S+ -> 00", log).group(1)
    assert re.search(r"0400 STAN \d{6} reverses STAN %s \(reason 06\)" % original, log)
    assert re.search(r"0400/000000 STAN \d{6} amount 000000002600 -> 00", log)
    assert t.ledger() == before  # posted, then undone
    # History keeps the failure, not a payment.
    entry = history_entry(t, "€26.00 Purchase")
    assert "approved" not in entry["text"], entry


def test_card_removed_mid_transaction(shop):
    # Taken out while its PIN is typed: the pad goes at once (it went only once OK was pressed,
    # and the VERIFY found no card), the PIN is never sent.
    t = shop
    before = t.ledger()
    start(t, "4200")
    t.insert(VISA)
    t.screen("Card PIN")
    removed = time.monotonic()
    t.remove_card()
    t.screen("Card removed", timeout=5)
    assert time.monotonic() - removed < 1.5
    t.tap("OK")
    t.screen("Pocket Terminal")
    assert t.ledger() == before


def test_card_taken_out_while_the_bank_is_asked(shop):
    # The bank's answer slow to come (the route holds it 3 s): a card taken out while
    # "Authorising" waits is said within a second, not once the answer comes; the approval
    # that comes after it is reversed, and nothing is charged.
    t = shop
    before = t.ledger()
    t.rig.call("do", name="wifi", action="latency", ms=3000)
    try:
        start(t, "4300")
        t.insert(VISA)
        t.screen("Card PIN")
        t.type_pin("1234")
        t.screen("Authorising")
        removed = time.monotonic()
        t.remove_card()
        told = t.screen("Card removed", timeout=5)
        assert time.monotonic() - removed < 1.5
        assert "buttons" not in told and told["text"].startswith("€43.00. The payment is being cancelled"), told
        final = t.screen(lambda s: s["title"] == "Card removed" and "buttons" in s, timeout=30)
        assert "The bank's approval was cancelled: nothing was charged." in final["text"], final
    finally:
        t.rig.call("do", name="wifi", action="latency", ms=0)
    t.tap("OK")
    t.screen("Pocket Terminal")
    assert t.ledger() == before


def test_cancel_while_waiting_for_the_card(shop):
    t = shop
    before = t.ledger()
    start(t, "100")
    t.tap("Cancel")
    t.screen("Pocket Terminal")
    assert field_off(t)
    # A card tapped now is not read: nothing is waiting for one.
    t.tap_card(VISA)
    time.sleep(1)
    t.lift_card()
    assert "Authorising" not in [s["title"] for s in t.screens[-3:]]
    assert t.ledger() == before
