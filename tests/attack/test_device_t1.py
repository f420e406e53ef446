"""A lying chip card against the contact slot (issue 17): one that chains T=1 blocks without end
(the R-APDU gathered until the heap ran out), one that asks for WTX without end, and their T=0
twins, NULL procedure bytes and 61 xx without end (never cut off). The rig's card model does the
lying at character level (tools/rig/iso7816.py, `fault` chain / wtx / nulls); the device's
driver (drivers/iso7816_slot.py with lib/iso7816) must refuse each with a typed error,
CardOverrun: an R-APDU longer than iso7816.MAX_RESPONSE (256 data bytes + SW, what a short APDU
can carry and the EMV kernel use) as soon as a block or a GET RESPONSE would pass it, a command
longer than the slot's _COMMAND_MS in all. The card is then deactivated, the card flow says
"Card not readable", and the slot serves the next card.
"""

import time

import pytest

from tests.host.test_iso7816 import FCI, SELECT, card, fresh, tx  # noqa: F401 (card: a fixture)

MAX_RESPONSE = 258  # lib/iso7816 MAX_RESPONSE
COMMAND_S = 8.0  # drivers/iso7816_slot.py _COMMAND_MS

# The card flow's own reading of the error (lib/terminal/card.py): what the owner is told.
# The largest single allocation during the command (heapstat: the virtual handheld's GC hook).
SCREEN = """
import heapstat
def overrun(h):
    heapstat.reset()
    try:
        asyncio.run(slot.transceive(bytes.fromhex(h)))
    except iso7816.CardError as e:
        largest = heapstat.largest()
        from terminal import card as _flow
        return (type(e).__name__, str(e), _flow._card_failure(e, slot).title, slot.active, largest)
    return ('answered',)
"""


def overrun(device, apdu, timeout):
    device.exec(SCREEN)
    return device.eval("overrun(%r)" % apdu, timeout)


def next_card_works(device, card, atr):
    card.do("fault", kind="none")
    fresh(device, card, atr=atr)
    assert tx(device, SELECT) == ("ok", FCI + "9000")


@pytest.mark.parametrize("count", [1, -1], ids=["one block too many", "without end"])
def test_t1_chain_beyond_a_short_response_is_refused(device, card, count):
    fresh(device, card, atr="t1")
    card.do("fault", kind="chain", count=count)
    result = overrun(device, SELECT, timeout=30)
    # Today's reader gathered the chain: 21 + 254 bytes for one block too many, and a chain
    # without end until MemoryError (or the test's timeout).
    assert result[:3] == ("CardOverrun", "T=1: a chained response over %d bytes" % MAX_RESPONSE,
                          "Card not readable"), result
    assert result[3] is False and card.state()["state"] == "off"  # deactivated
    assert result[4] <= 1024, result[4]  # no buffer grew with the chain (today: until MemoryError)
    next_card_works(device, card, "t1")


@pytest.mark.parametrize("atr, kind", [("t1", "wtx"), ("emv-t0", "nulls")], ids=["T=1 WTX", "T=0 NULL"])
def test_waits_without_end_are_cut_at_the_command_limit(device, card, atr, kind):
    fresh(device, card, atr=atr)
    base = card.state()["counters"][kind]
    card.do("fault", kind=kind, count=-1)
    t0 = time.monotonic()
    result = overrun(device, SELECT, timeout=COMMAND_S + 20)
    took = time.monotonic() - t0
    # Today's reader answered every WTX and took every NULL until the test's timeout.
    assert result[:3] == ("CardOverrun", "the card took more than %d ms over one command" % (COMMAND_S * 1000),
                          "Card not readable"), result
    assert COMMAND_S <= took < COMMAND_S + 3, took
    asked = card.state()["counters"][kind] - base
    assert asked > 20, asked  # the card kept asking for time (every 50 / 20 ms) until the limit
    assert result[3] is False and card.state()["state"] == "off"  # deactivated: the card stops
    next_card_works(device, card, atr)


def test_t1_wtx_within_the_limit_is_still_served(device, card):
    # The bound is on the total, not on WTX: a slow card that asks for time, then answers, is read.
    fresh(device, card, atr="t1")
    card.do("fault", kind="wtx", count=20)  # 20 x 50 ms of the card's work
    assert tx(device, SELECT) == ("ok", FCI + "9000")
    assert device.eval("slot._proto.wtx") >= 20


def test_t0_get_response_without_end_is_refused(device, card):
    fresh(device, card, atr="emv-t0")
    card.do("fault", kind="chain", count=-1)
    result = overrun(device, SELECT, timeout=30)
    # Today's reader asked 32 GET RESPONSEs (8 KB gathered) before it gave up.
    assert result[:3] == ("CardOverrun", "T=0: a response over %d bytes" % MAX_RESPONSE, "Card not readable"), result
    assert result[3] is False
    next_card_works(device, card, "emv-t0")
