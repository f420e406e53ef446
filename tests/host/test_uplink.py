"""The bank uplink end to end: lib/uplink on the virtual handheld, over its Wi-Fi (the rig's
access point forwarding to the bank), mutual TLS with the certificates the bank's PKI made,
DUKPT keys from the bank's HSM, against the REAL reference host (`python -m tools.bank`,
tests/host/uplinkfix.py) and its ledger.
"""

import pytest
import iso8583 as pyiso  # pyiso8583

import uplinkfix as fx
from tools.bank.spec import SPEC
from tools.emvcard import tlv

SETUP = """
import asyncio, board, uplink, wifi
from uplink.journal import Journal
w = wifi.Wifi(network=('PocketNet', 'correct horse'))
def make(host='localhost'):
    return uplink.Uplink(vault, {'host': host, 'port': 8583, 'serial': 'PT000001',
                                 'merchant': 'PT000001SHOP001', 'currency': '978'},
                         wifi=w, journal=Journal('/uplink-test'))
up = make()
async def _with(fn):
    wt = asyncio.create_task(w.run())
    t = asyncio.create_task(up.run())
    try:
        if not await up.wait_ready(20000):
            return ('not ready', repr(up.error))
        return await fn(up)
    finally:
        t.cancel()
        wt.cancel()
        await asyncio.sleep_ms(0)
def go(fn):
    return asyncio.run(_with(fn))
def summary(a):
    return (a.mti, a.rc, a.rrn, a.auth_code, a.icc.hex() if a.icc else None)
"""


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    host = fx.BankHost(tmp_path_factory.mktemp("bank"))
    yield host
    host.stop()


@pytest.fixture(scope="module")
def handheld(vdevice, device, bank):
    """The device provisioned for the bank, its Wi-Fi on an AP that routes to the bank host."""
    rig = vdevice.rig
    device.soft_reset()
    rig.attach("wlan0", "wifi", name="wifi")
    rig.call("do", name="wifi", action="target", host=bank.address[0], port=bank.address[1])
    device.exec("import os\ntry:\n    for n in os.listdir('/uplink-test'):\n        os.remove('/uplink-test/' + n)\n"
                "except OSError:\n    pass")
    device.exec(fx.provisioning(bank), timeout=60)
    device.exec(SETUP)
    try:
        yield device
    finally:
        try:
            device.exec("board.wlan().active(False)")
        finally:
            rig.detach("wifi")
            device.soft_reset()


def test_sign_on_and_balance(handheld, bank):
    rc, cur, amount = handheld.eval("(lambda a: (a.rc,) + a.balance)(go(lambda up: up.balance(%r)))" % fx.OWNER,
                                    timeout=60)
    assert (rc, cur, amount) == ("00", "978", bank.ledger()["accounts"][fx.OWNER])
