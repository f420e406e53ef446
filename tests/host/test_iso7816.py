"""The contact slot: our driver (drivers/iso7816_slot.py with lib/iso7816) on the device,
against the rig's chip-card model (tools/rig/iso7816.py) at character level: activation and
the ATR in both conventions, PPS to a faster F/D, T=0 cases 1-4 with NULL, ~INS, 61xx and 6Cxx,
T=1 chaining both ways, WTX, an EDC error recovered by retransmission, resynchronisation after
repeated errors; a mute card and a removal as typed errors, the slot ready for the next card.
"""

import threading
import time

import pytest
from rigfix import Model

SETUP = """
import asyncio, board, iso7816
from drivers.iso7816_slot import Slot
try:
    slot
except NameError:
    slot = Slot.from_board(board)
def run(coro):
    try:
        return ('ok', asyncio.run(coro))
    except iso7816.CardError as e:
        return (type(e).__name__, str(e))
def act():
    r = run(slot.activate())
    return r if r[0] != 'ok' else ('ok', r[1].raw.hex())
def tx(h):
    r = run(slot.transceive(bytes.fromhex(h)))
    return r if r[0] != 'ok' else ('ok', r[1].hex())
"""

SELECT = "00A40400" + "07F0504F434B4554" + "00"
FCI = "6f11" + "8407f0504f434b4554" + "a506" + "5004" + "4543484f"


@pytest.fixture(scope="module")
def card(vdevice, device):
    rig = vdevice.rig
    rig.attach("uart2", "iso7816", name="card")
    device.exec(SETUP)

    c = Model(vdevice, "card")
    try:
        yield c
    finally:
        try:
            device.exec("asyncio.run(slot.deactivate())")
        finally:
            rig.detach("card")


def fresh(device, card, **insert):
    device.exec("asyncio.run(slot.deactivate())")
    card.do("fault", kind="none")
    card.do("insert", **insert)
    card.base = card.state()["counters"]  # the model's counters run on across cards
    ok, atr = device.eval("act()")
    assert ok == "ok", atr
    return atr


def clean(card):
    """The card saw nothing wrong on the line: no parity or EDC error, nothing ignored."""
    now = card.state()["counters"]
    new = {k: now[k] - card.base.get(k, 0) for k in ("parity_errors", "edc_errors", "ignored")}
    assert new == {"parity_errors": 0, "edc_errors": 0, "ignored": 0}, now


def tx(device, apdu, timeout=None):
    return device.eval("tx(%r)" % apdu, timeout)


# ---- T=0 -------------------------------------------------------------------------------------

def test_t0_activation_and_cases(device, card):
    atr = fresh(device, card, atr="emv-t0")
    assert atr == "3b6800000073c84012009000"
    assert device.eval("(slot.protocol, slot.F, slot.D, slot.inverse)") == (0, 372, 1, False)
    st = card.state()
    assert st["state"] != "off" and st["convention"] == "direct"
    # Case 1 (P3 = 00 sent), case 3 (data, 61xx -> GET RESPONSE of the echo), case 4 (SELECT: FCI
    # by GET RESPONSE), case 2 (EE: P1P2 bytes).
    assert tx(device, "00700000") == ("ok", "9000")
    assert tx(device, "00DA000003AABBCC") == ("ok", "aabbcc9000")
    assert tx(device, SELECT) == ("ok", FCI + "9000")
    assert tx(device, "00EE001010") == ("ok", bytes(range(16)).hex() + "9000")
    clean(card)


def test_t0_6cxx_and_long_61xx(device, card):
    fresh(device, card, atr="emv-t0")
    # Le 08 for a 16-byte answer: 6C 10, sent again with P3 = 10.
    assert tx(device, "00EE001008") == ("ok", bytes(range(16)).hex() + "9000")
    # 600 bytes for Le 00: 256, then 61xx for more than a short APDU carries (iso7816.MAX_RESPONSE):
    # refused before any GET RESPONSE, the card deactivated (tests/attack/test_device_t1.py).
    ok, r = tx(device, "00B0000000")
    assert ok == "CardOverrun" and device.eval("slot.active") is False, r


def test_t0_nulls_and_ins_bar(device, card):
    fresh(device, card, atr="emv-t0", nulls=3, ack="ins-bar")
    assert tx(device, "00DA000004DEADBEEF") == ("ok", "deadbeef9000")
    assert tx(device, SELECT) == ("ok", FCI + "9000")
    assert device.eval("slot._proto.nulls") >= 6


def test_inverse_convention_card(device, card):
    atr = fresh(device, card, atr="sim")
    assert atr == "3f2f008069af03070352000d0a0e833e9f16"
    assert device.eval("slot.inverse") is True
    assert card.state()["convention"] == "inverse"
    assert tx(device, SELECT) == ("ok", FCI + "9000")
    clean(card)


# ---- T=1 and PPS -----------------------------------------------------------------------------

def test_t1_pps_to_faster_fd_and_ifsd(device, card):
    atr = fresh(device, card, atr="t1")
    assert atr == "3bf81300008131fe454a434f5076323431b7"
    assert device.eval("(slot.protocol, slot.F, slot.D, slot.pps_done)") == (1, 372, 4, True)
    st = card.state()
    assert (st["F"], st["D"], st["protocol"], st["ifsd"]) == (372, 4, 1, 254)
    assert abs(st["device_baud"] - st["card_baud"]) / st["card_baud"] < 0.01
    assert tx(device, SELECT) == ("ok", FCI + "9000")
    assert card.state()["counters"]["pps"] - card.base["pps"] == 1
    clean(card)


def test_t1_chaining_both_ways(device, card):
    fresh(device, card, atr="t1")
    data = bytes(i & 0xFF for i in range(255))
    apdu = "00DA0000FF" + data.hex()  # 260 bytes > IFSC 254: chained to the card
    ok, r = tx(device, apdu)
    assert ok == "ok" and r == data.hex() + "9000"  # 257 bytes > IFSD 254: chained back
    # 600 bytes chained back: refused at the block that passes iso7816.MAX_RESPONSE.
    ok, r = tx(device, "00B0000000")
    assert ok == "CardOverrun" and device.eval("slot.active") is False, r


def test_t1_wtx(device, card):
    fresh(device, card, atr="t1")
    card.do("wtx", n=2)
    assert tx(device, SELECT) == ("ok", FCI + "9000")
    assert device.eval("slot._proto.wtx") == 2


def test_t1_edc_error_retransmitted(device, card):
    fresh(device, card, atr="t1")
    card.do("fault", kind="edc", count=1)
    assert tx(device, SELECT) == ("ok", FCI + "9000")
    assert device.eval("(slot._proto.retransmissions, slot._proto.resyncs)") == (1, 0)


def test_t1_resynchronisation_after_repeated_errors(device, card):
    fresh(device, card, atr="t1")
    card.do("fault", kind="edc", count=3)
    assert tx(device, SELECT) == ("ok", FCI + "9000")
    assert device.eval("slot._proto.resyncs") == 1
    assert tx(device, "00DA000002CAFE") == ("ok", "cafe9000")


# ---- faults: mute, removal; the slot ready for the next card ----------------------------------

@pytest.mark.parametrize("atr", ["emv-t0", "t1"])
def test_mute_card_then_next_card(device, card, atr):
    fresh(device, card, atr=atr)
    card.do("fault", kind="mute", count=-1)
    t0 = time.monotonic()
    ok, why = tx(device, SELECT, timeout=30)  # T=1: 3 x BWT (1.5 s each for BWI 4)
    assert time.monotonic() - t0 < 10
    assert ok == "CardMute", why
    card.do("fault", kind="none")
    device.exec("asyncio.run(slot.deactivate())")
    fresh(device, card, atr=atr)
    assert tx(device, SELECT) == ("ok", FCI + "9000")


def test_removed_card(device, card):
    fresh(device, card, atr="emv-t0")
    card.do("remove")
    assert tx(device, SELECT)[0] == "CardRemoved"
    assert device.eval("(slot.present(), slot.active)") == (False, False)
    assert device.eval("act()")[0] == "CardAbsent"
    fresh(device, card, atr="emv-t0")
    assert tx(device, SELECT) == ("ok", FCI + "9000")


def test_removal_mid_command(device, card):
    fresh(device, card, atr="t1")
    card.do("timing", scale=4.0)  # WTX work 200 ms each
    card.do("wtx", n=5)
    timer = threading.Timer(0.3, lambda: card.do("remove"))
    timer.start()
    try:
        t0 = time.monotonic()
        ok, why = tx(device, SELECT)
    finally:
        timer.join()
        card.do("timing", scale=1.0)
    assert ok == "CardRemoved", why
    assert time.monotonic() - t0 < 1.0  # noticed by the detect switch, not by a timeout
    assert device.eval("slot.active") is False
    fresh(device, card, atr="t1")
    assert tx(device, SELECT) == ("ok", FCI + "9000")


def test_self_test(device, card):
    device.exec("asyncio.run(slot.deactivate())")
    card.do("insert", atr="emv-t0")
    ok, detail = device.eval("asyncio.run(slot.self_test())")
    assert ok and "3b6800000073c84012009000" in detail
    card.do("remove")
    ok, detail = device.eval("asyncio.run(slot.self_test())")
    assert ok and "empty" in detail


def test_atr_without_tck_is_forgiven_and_said(device, card):
    # JCOP41's ATR without its TCK although it offers T=1 (off-spec; 31 cards of pcsc-tools'
    # list): the slot waits the TCK's character time, the ATR policy takes the rest, the card
    # works, and diag says what was forgiven.
    atr = fresh(device, card, atr="3BE900008131FE454A434F503431563232")
    assert atr == "3be900008131fe454a434f503431563232"
    assert device.eval("(slot.protocol, slot.atr.tck, slot.atr.forgiven)") == (1, None, ("no TCK",))
    assert tx(device, SELECT) == ("ok", FCI + "9000")
    ok, detail = device.eval("asyncio.run(slot.self_test())")
    assert ok and detail.endswith("ATR 3be900008131fe454a434f503431563232; forgave: no TCK"), detail
    clean(card)


def test_specific_mode_uses_ta1_at_once(device, card):
    # TA1 13 (D=4), TD1 10 -> TA2 00: specific mode, T=0, F/D from TA1 without a PPS.
    fresh(device, card, atr="3B90131000")
    assert device.eval("(slot.protocol, slot.F, slot.D, slot.pps_done)") == (0, 372, 4, False)
    assert tx(device, SELECT) == ("ok", FCI + "9000")
    assert card.state()["D"] == 4
    clean(card)


def test_pps_unanswered_falls_back_to_defaults(device, card):
    # A PPS the card does not take (here: D 8 asked of a card whose TA1 offers 4, which the model
    # leaves unanswered, as ISO 7816-3 9.3 lets a card do): the card is reset (cold) and used at
    # F=372 D=1, T=1 all the same.
    device.exec("import iso7816.pps as _P\n_req = _P.request\n_P.request = lambda t, fi, di: _req(t, fi, di + 1)")
    try:
        fresh(device, card, atr="t1")
    finally:
        device.exec("_P.request = _req")
    assert device.eval("(slot.protocol, slot.F, slot.D, slot.pps_done)") == (1, 372, 1, False)
    st = card.state()
    assert (st["D"], st["ifsd"], st["counters"]["atrs"] - card.base["atrs"]) == (1, 254, 2)
    assert tx(device, SELECT) == ("ok", FCI + "9000")
