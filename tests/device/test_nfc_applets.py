# The NFC applets (lib/nfc) on the device, without the PN532: APDUs in, R-APDUs out, the state
# on flash. End to end through the PN532 model: tests/host/test_pn532.py.
import os
import struct

import asyncio
import vault
from nfc import ApduError, Router, parse
from nfc.confirm import AID as CONFIRM_AID
from nfc.confirm import ConfirmApplet, OwnerNotAuthenticated, approval_mac, owner_confirm
from nfc.transit import AID as TRANSIT_AID
from nfc.transit import TransitApplet, debit_mac, receipt_mac
from vault.crypto import hmac_sha256

from expect import raises

KEY = bytes(range(32))
PATH = "/data/transit-unit.bin"


def _fresh():
    for p in (PATH, PATH + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass


def _run(applet, apdu):
    return asyncio.run(applet.process(apdu))


def _select(aid):
    return b"\x00\xa4\x04\x00" + bytes((len(aid),)) + aid + b"\x00"


def _debit(card_id, counter, amount, terminal=7, nonce=b"12345678", key=KEY):
    mac = debit_mac(key, card_id, counter, amount, terminal, nonce)
    return b"\x80\x54\x00\x00\x18" + struct.pack(">II", amount, terminal) + nonce + mac + b"\x00"


def test_apdu_cases():
    assert parse(b"\x00\xa4\x04\x00") == (0, 0xA4, 4, 0, b"", None)
    assert parse(b"\x80\x5c\x00\x00\x00") == (0x80, 0x5C, 0, 0, b"", 256)
    assert parse(b"\x00\xa4\x04\x00\x02\xf0\x01") == (0, 0xA4, 4, 0, b"\xf0\x01", None)
    assert parse(b"\x00\xa4\x04\x00\x02\xf0\x01\x10") == (0, 0xA4, 4, 0, b"\xf0\x01", 16)
    for bad in (b"\x00\xa4\x04", b"\x00\xa4\x04\x00\x03\x01", b"\x00\xa4\x04\x00\x00\x00\x01"):
        with raises(ApduError):
            parse(bad)


def test_router_selects_by_aid():
    _fresh()
    transit = TransitApplet(KEY, path=PATH)

    async def never(*args):
        return False

    card = Router(transit, ConfirmApplet(KEY, never))
    assert _run(card, b"\x80\x5c\x00\x00\x00") == b"\x69\x86"  # nothing selected
    assert _run(card, _select(b"\xf0nope")) == b"\x6a\x82"
    assert _run(card, _select(TRANSIT_AID))[-2:] == b"\x90\x00"
    assert _run(card, b"\x80\x5c\x00\x00\x00")[-2:] == b"\x90\x00"
    assert _run(card, _select(CONFIRM_AID[:6]))[-2:] == b"\x90\x00"  # a partial AID selects too
    assert card.current is card.applets[1]
    assert _run(card, b"\x01\x02") == b"\x67\x00"
    card.reset()
    assert card.current is None and not transit.selected


def test_transit_debit_receipt_and_flash():
    _fresh()
    t = TransitApplet(KEY, path=PATH)
    card_id = t.card_id
    assert len(card_id) == 8 and PATH.rsplit("/", 1)[1] in os.listdir("/data")
    assert t.credit(500) == 500
    assert _run(t, b"\x80\x5c\x00\x00\x00") == b"\x69\x86"  # not selected
    fci = _run(t, _select(TRANSIT_AID))
    assert fci[-2:] == b"\x90\x00" and card_id in fci
    assert _run(t, b"\x80\x5c\x00\x00\x00") == struct.pack(">IIH", 500, 0, 978) + b"\x90\x00"
    rapdu = _run(t, _debit(card_id, 0, 120))
    assert rapdu[-2:] == b"\x90\x00" and struct.unpack(">II", rapdu[:8]) == (380, 1)
    assert rapdu[8:16] == receipt_mac(KEY, card_id, 1, 120, 380, 7, b"12345678")
    assert _run(t, _debit(card_id, 0, 120)) == b"\x69\x82"  # replayed: the counter moved
    assert _run(t, _debit(card_id, 1, 120, key=b"x" * 32)) == b"\x69\x82"
    assert _run(t, _debit(card_id, 1, 381)) == b"\x69\x85"  # more than the balance
    assert _run(t, _debit(card_id, 1, 0)) == b"\x6a\x80"
    assert _run(t, b"\x80\x54\x00\x00\x02\x00\x00\x00") == b"\x67\x00"
    assert _run(t, b"\x80\x54\x01\x00\x00") == b"\x6a\x86"
    assert _run(t, b"\x00\x5c\x00\x00\x00") == b"\x6e\x00"
    for _ in range(10):
        _run(t, _debit(card_id, t.counter, 1))
    # The log keeps the 8 newest, newest first; one entry by its number; beyond: 6A83.
    log = _run(t, b"\x80\xb2\x00\x00\x00")
    assert len(log) == 8 * 16 + 2
    assert struct.unpack(">IIII", log[:16]) == (11, 1, 370, 7)
    assert _run(t, b"\x80\xb2\x02\x00\x00")[:16] == log[16:32]
    assert _run(t, b"\x80\xb2\x09\x00\x00") == b"\x6a\x83"
    # On flash, whole: a new applet over the file has it all; no temporary file is left.
    again = TransitApplet(KEY, path=PATH)
    assert (again.card_id, again.balance, again.counter, again.log) == (card_id, 370, 11, t.log)
    assert PATH.rsplit("/", 1)[1] + ".tmp" not in os.listdir("/data")


def test_transit_state_survives_an_interrupted_write_and_refuses_tampering():
    _fresh()
    t = TransitApplet(KEY, path=PATH)
    t.credit(100)
    # A write that never reached its rename (power cut): the temporary file is dropped, the
    # last complete state stays.
    with open(PATH + ".tmp", "wb") as f:
        f.write(b"PTT1 half a state")
    again = TransitApplet(KEY, path=PATH)
    assert again.balance == 100 and again.broken is None
    assert PATH.rsplit("/", 1)[1] + ".tmp" not in os.listdir("/data")
    # Another key, or a changed byte: refused, and every command says 6581.
    assert TransitApplet(b"k" * 32, path=PATH).broken == "the transit state on flash does not verify"
    with open(PATH, "rb") as f:
        data = bytearray(f.read())
    data[17] ^= 0x01  # the balance's last byte
    with open(PATH, "wb") as f:
        f.write(data)
    bad = TransitApplet(KEY, path=PATH)
    assert bad.broken is not None and bad.card_id is None
    assert _run(bad, _select(TRANSIT_AID))[-2:] == b"\x90\x00"
    assert _run(bad, b"\x80\x5c\x00\x00\x00") == b"\x65\x81"
    with raises(Exception):
        bad.credit(5)
    # The broken file is left as it was (for diagnosis), not overwritten with a new card.
    with open(PATH, "rb") as f:
        assert f.read() == data


def test_transit_credit_is_named_once_and_bounded():
    from nfc.transit import MAX_BALANCE

    _fresh()
    t = TransitApplet(KEY, path=PATH)
    first, second = b"0000421205101530", b"0000431205101612"
    assert MAX_BALANCE == 15000
    assert t.credit(1000, first) == 1000
    assert t.credit(1000, first) == 1000  # the same top-up again (a recovery after a cut): nothing
    assert t.credit(250, second) == 1250
    again = TransitApplet(KEY, path=PATH)  # the name is on flash with the balance
    assert (again.balance, again.last_topup) == (1250, second)
    for amount in (0, -5, MAX_BALANCE - 1250 + 1, 2 ** 40):  # nothing changes, in RAM or on flash
        with raises(ValueError):
            again.credit(amount, b"0000441205101700")
    assert (TransitApplet(KEY, path=PATH).balance, again.balance, again.last_topup) == (1250, 1250, second)
    assert again.credit(MAX_BALANCE - 1250, b"0000451205101800") == MAX_BALANCE  # up to the maximum exactly


def test_transit_state_of_the_firmware_before_top_ups_is_read():
    # PTT1: the head without the last top-up's name (written here as that firmware did).
    _fresh()
    body = struct.pack(">4s8sHIIB", b"PTT1", b"CARD0001", 978, 700, 3, 1) + struct.pack(">IIII", 3, 50, 700, 9)
    with open(PATH, "wb") as f:
        f.write(body + hmac_sha256(KEY, b"PT-STORE" + body)[:16])
    t = TransitApplet(KEY, path=PATH)
    assert (t.broken, t.card_id, t.balance, t.counter, t.log, t.last_topup) == (
        None, b"CARD0001", 700, 3, [(3, 50, 700, 9)], bytes(16))
    t.credit(300, b"0000461205101900")  # written in the new format from then on
    assert (TransitApplet(KEY, path=PATH).balance, TransitApplet(KEY, path=PATH).counter) == (1000, 3)


def _prepare(amount, currency, nonce, merchant):
    m = merchant.encode()
    return b"\x80\x10\x00\x00" + bytes((16 + len(m),)) + struct.pack(">I", amount) + currency.encode() + nonce \
        + bytes((len(m),)) + m + b"\x00"


def test_confirm_applet_answers():
    answers = []

    async def owner(merchant, amount, currency):
        answers.append((merchant, amount, currency))
        result = answers_to_give.pop(0)
        if isinstance(result, type) and issubclass(result, Exception):
            raise result("no")
        return result

    answers_to_give = [True, False, OwnerNotAuthenticated, RuntimeError, True]
    device_id = b"DEVICE01"
    c = ConfirmApplet(KEY, owner, device_id=device_id)
    nonce = b"\xa0" * 8
    assert _run(c, _prepare(100, "EUR", nonce, "Shop")) == b"\x69\x86"
    assert _run(c, _select(CONFIRM_AID))[-2:] == b"\x90\x00"
    ok = _run(c, _prepare(1250, "EUR", nonce, "Café Ünïcode"))
    assert ok[-2:] == b"\x90\x00" and ok[:8] == device_id and ok[8:12] == b"\x00\x00\x00\x01"
    assert ok[12:28] == approval_mac(KEY, device_id, 1, 1250, "EUR", "Café Ünïcode", nonce)
    assert ok[12:28] == hmac_sha256(KEY, b"PT-CONFIRM" + device_id + struct.pack(">II", 1, 1250) + b"EUR"
                                    + bytes((len("Café Ünïcode".encode()),)) + "Café Ünïcode".encode() + nonce)[:16]
    assert answers[-1] == ("Café Ünïcode", 1250, "EUR")
    assert _run(c, b"\x80\x12\x00\x00\x00") == ok  # the last answer again
    assert _run(c, _prepare(1250, "EUR", nonce, "Shop")) == b"\x69\x85"  # refused
    assert _run(c, _prepare(1250, "EUR", nonce, "Shop")) == b"\x69\x82"  # not the owner
    assert _run(c, _prepare(1250, "EUR", nonce, "Shop")) == b"\x69\x85"  # a fault: refused
    assert _run(c, _prepare(5, "EUR", nonce, "Shop"))[8:12] == b"\x00\x00\x00\x02"
    # Malformed: a lower-case currency, no merchant, amount 0, a length that lies.
    assert _run(c, _prepare(5, "eur", nonce, "Shop")) == b"\x6a\x80"
    assert _run(c, _prepare(5, "EUR", nonce, "")) == b"\x6a\x80"
    assert _run(c, _prepare(0, "EUR", nonce, "Shop")) == b"\x6a\x80"
    bad = bytearray(_prepare(5, "EUR", nonce, "Shop"))
    bad[20] = 9
    assert _run(c, bytes(bad)) == b"\x6a\x80"
    assert len(answers) == 5


class _UI:
    def __init__(self, confirm, pins):
        self.confirm, self.pins, self.shown = confirm, list(pins), []

    async def confirm_amount(self, merchant, amount, currency, account, title="Pay", timeout_ms=0):
        self.shown.append((title, merchant, amount, currency))
        return self.confirm

    async def pin_pad(self, title="Enter PIN", prompt=None, randomize=False, **kw):
        return self.pins.pop(0)

    async def message(self, *args, **kw):
        self.shown.append(("message",) + args[:1])


class _Session:
    def __init__(self, good):
        self.good, self.tried = good, []

    def activity(self):
        pass

    async def unlock_with_pin_waiting(self, pin, waiting):
        self.tried.append(bytes(pin))
        ok = bytes(pin) == self.good
        for i in range(len(pin)):
            pin[i] = 0
        if not ok:
            raise vault.WrongPin(3)


def test_owner_confirm_asks_the_amount_then_the_pin():
    session = _Session(b"2468")
    ui = _UI(True, [bytearray(b"2468")])
    confirm = owner_confirm(ui, session, account="DE89 ... 3000")
    assert asyncio.run(confirm("Coffee Corner", 1250, "EUR")) is True
    assert ui.shown == [("Confirm", "Coffee Corner", 1250, "EUR")] and session.tried == [b"2468"]
    # Cancel on the amount screen: no PIN asked.
    ui = _UI("cancel", [])
    assert asyncio.run(owner_confirm(ui, session)("Shop", 1, "EUR")) is False
    # Cancel on the PIN pad.
    ui = _UI(True, ["cancel"])
    assert asyncio.run(owner_confirm(ui, session)("Shop", 1, "EUR")) is False
    # A wrong PIN: the owner is not authenticated (the applet answers 6982).
    ui = _UI(True, [bytearray(b"1111")])
    with raises(OwnerNotAuthenticated):
        asyncio.run(owner_confirm(ui, session)("Shop", 1, "EUR"))
    assert ui.shown[-1] == ("message", "Wrong PIN")
