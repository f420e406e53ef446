# The terminal's bank link (lib/terminal/link.py) and receipt helpers on the device: which
# /config/bank.json the link accepts, what the owner is told when there is no bank, and the
# currency codes the screens show.
import json
import os

import asyncio

from expect import raises
from terminal import errors, link, receipt
from ui.screens import Status

PATH = "/tmp-bank.json"


class _UI:
    """What the link touches of the UI: the status and a redraw."""

    def __init__(self):
        self.status = Status()
        self.redraws = 0

    def redraw_status(self):
        self.redraws += 1


def _write(config):
    with open(PATH, "w") as f:
        f.write(config if isinstance(config, str) else json.dumps(config))


def test_bank_config_needs_host_port_and_serial():
    try:
        _write({"host": "localhost", "port": 8583, "serial": "PT000001", "currency": "978"})
        assert link.load(PATH)["port"] == 8583
        _write({"host": "localhost", "serial": "PT000001"})
        assert link.load(PATH) is None
        _write("{not json")
        assert link.load(PATH) is None
    finally:
        os.remove(PATH)
    assert link.load(PATH) is None


def test_no_bank_says_so_on_the_status_bar_and_in_the_failure():
    ui = _UI()
    the_link = link.Link(None, ui, config=None)
    the_link.uplink = None  # whatever /config holds on this device: no bank
    with raises(errors.Failure) as e:
        asyncio.run(the_link.ready(10))
    assert e.value.kind is errors.NO_NETWORK
    assert e.value.message == "This terminal is not set up for a bank."
    assert e.value.title == "No network" and "bank" in e.value.remedy

    async def status_once():
        # One round of the status task: it reads the battery's ADC first (over the rig here,
        # slow on a loaded machine), so wait for its redraw, not a fixed 50 ms.
        task = asyncio.create_task(the_link._status())
        for _ in range(200):
            await asyncio.sleep_ms(10)
            if ui.redraws:
                break
        task.cancel()

    asyncio.run(status_once())
    assert (ui.status.wifi, ui.status.bank, ui.redraws) == (None, "no bank", 1)


def test_currencies_shown_by_their_letters():
    assert [receipt.alpha(c) for c in ("978", "840", "EUR", "999")] == ["EUR", "USD", "EUR", "999"]
