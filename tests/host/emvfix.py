"""The EMV kernel on the virtual handheld with the rig's EMV test cards (tools/emvcard), for
tests/host/test_emv_kernel.py and `python -m tools.bench emv`: the device-side code, the CA key
file, and the issuer's side of an online authorisation (what the bank host does with DE55).
"""

import json

from pyemv import tlv as pyemv_tlv

from tools import emvcard
from tools.emvcard import cryptogram
from tools.emvcard import perso

CAPK_PATH = "/data/capk.json"
DATE = "260615"  # the transactions' date (9A): cards valid, "expired" expired

# On the device: the contact slot, the PN532 on I2C, one kernel whose PIN and choice callbacks
# answer from lists the host fills, and calls that return a summary of the result.
SETUP = """
import asyncio, board, gc
from board import handheld as _hw
from drivers.iso7816_slot import Slot
from drivers import pn532
from emv import capk
from emv.config import TerminalConfig
from emv.kernel import Kernel
# The kernel's and the slot's lazy imports, made before the heap fragments (on the unix port
# the simulated buses take much of it; on the board these modules are frozen).
from emv import oda, cvm, select
from iso7816 import t0, t1
DATE = bytes.fromhex(%r)
slot = Slot.from_board(board)
_P = board.buses.machine.Pin
nfc = pn532.PN532(pn532.I2CLink(board.buses.i2c(), irq=board.buses.pin(_hw.PIN_NFC_IRQ, _P.IN)),
                  reset=board.buses.pin(_hw.PIN_NFC_RESET, _P.OUT, value=1))
asyncio.run(nfc.begin())
PINS, ASKED, GIVEN, LABELS, CHOICE = [], [], [], [], [0]
def pin(tries):
    ASKED.append(tries)
    b = bytearray(PINS.pop(0)) if PINS else bytearray()
    GIVEN.append(b)
    return b
def choose(labels):
    LABELS.append([bytes(x).decode() for x in labels])
    return CHOICE[0]
store = capk.Store.load(%r)
kernel = Kernel(TerminalConfig(), store, choose=choose, pin=pin)
res = None
def summary(r):
    h = lambda b: None if b is None else bytes(b).hex()
    return {'outcome': r.outcome, 'reason': r.reason, 'icc_data': h(r.icc_data), 'pan': r.pan, 'psn': h(r.psn),
            'track2': h(r.track2), 'expiry': h(r.expiry), 'cryptogram': h(r.cryptogram), 'tvr': h(r.tvr),
            'tsi': h(r.tsi), 'aid': h(r.aid), 'label': None if r.label is None else bytes(r.label).decode(),
            'online_pin': r.online_pin, 'cvm': h(r.cvm_results), 'commands': r.commands}
MANGLE = [None]  # f(apdu, response) -> response: a damaged line between card and kernel
def mangled(transceive):
    async def tx(apdu):
        r = await transceive(apdu)
        return MANGLE[0](bytes(apdu), r) if MANGLE[0] else r
    return tx
def contact(amount, **kw):
    global res
    res = None  # the last result's memory free before the next transaction
    GIVEN[:] = []
    gc.collect()
    async def go():
        await slot.activate()
        return await kernel.transact(mangled(slot.transceive), amount, **dict({"date": DATE}, **kw))
    res = asyncio.run(go())
    return summary(res)
def contactless(amount, **kw):
    global res
    res = None
    gc.collect()
    async def go():
        card = await nfc.poll(2000)
        return await kernel.transact(mangled(card.transceive), amount, contactless=True, date=DATE, **kw)
    res = asyncio.run(go())
    return summary(res)
def finish(arc, auth=None, scripts=None):
    asyncio.run(kernel.complete(mangled(slot.transceive), res, arc, auth, scripts))
    return summary(res)
def attempt(fn, *args, **kw):
    # ('ok', summary), or the error's class name and message
    try:
        return ('ok', fn(*args, **kw))
    except Exception as e:
        return (type(e).__name__, str(e))
""" % (DATE, CAPK_PATH)


def capk_json():
    """The kernel's CA key file for the test CAs (python -m tools.emvcard capk)."""
    return json.dumps(perso.capk_entries(emvcard.CARDS_DIR)).encode()


def attach(vd, dev):
    """The card slot and the PN532 on the rig, the CA key file and the kernel on the device."""
    vd.rig.attach("uart2", "iso7816", name="card")
    vd.rig.attach("i2c0", "pn532", addr=0x24, name="nfc")
    # Not /emv/capk.json (lib/emv/README.md): a folder /emv at the flash's root would shadow
    # the emv package in /lib, the root being first on sys.path.
    dev.makedirs(CAPK_PATH.rsplit("/", 1)[0])
    dev.write_file(CAPK_PATH, capk_json())
    dev.exec(SETUP, timeout=60)


def detach(vd):
    vd.rig.detach("card")
    vd.rig.detach("nfc")


def de55(hexdata):
    """DE55 decoded by pyemv (the independent parser): {tag int: value}."""
    return {int(t, 16): v for t, v in pyemv_tlv.decode(bytes.fromhex(hexdata)).items()}


def _issuer(result, tags):
    """(issuer master key, PAN, PSN) of the result's card, as the bank host holds them."""
    pan = result["pan"]
    return bytes.fromhex(emvcard.issuer_keys(pan)["imk_ac"]), pan, tags[0x5F34].hex()


def check_cryptogram(result):
    """The DE55 tags of the result, after checking that its cryptogram (9F26) is the one the
    issuer computes over DE55's data by the card's cryptogram version: the bank's ARQC check."""
    tags = de55(result["icc_data"])
    assert cryptogram.cryptogram(*_issuer(result, tags), tags) == tags[0x9F26], \
        "the cryptogram does not verify"
    assert tags[0x9F26].hex() == result["cryptogram"]
    return tags


def issuer_answer(result, arc=b"00"):
    """The issuer authentication data (91) for the result's ARQC, by the card's ARPC method."""
    tags = check_cryptogram(result)
    return cryptogram.issuer_auth(*_issuer(result, tags), tags, arc)
