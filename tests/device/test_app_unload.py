# terminal.app: what an operation kept to resume holds. A lock keeps the operation it
# interrupted (the session resumes it after the unlock), but not what its interrupted step
# imported: the step starts again then, and imports it again. Kept, Card mode's reader and
# applets stayed through the pushed requests paid by card before it resumed, and the heap ran
# out (the monkey's seed 20261205, action 657).
import asyncio
import sys

import board
import parts
import vaultfix
from board import handheld as h
from drivers.st7789 import ST7789
from terminal.app import App, Operation
from ui.screens import UI
from vault.session import Session

_pin = board.buses.machine.Pin


class _Untouched:
    async def event(self, timeout_ms=None):
        await asyncio.sleep_ms(timeout_ms or 60_000)


class _Reads(Operation):
    """A step that imports a flow's module (a card's TLV codec), then waits on its screen."""

    async def start(self, app):
        import emv.tlv  # noqa: F401

        await asyncio.sleep_ms(60_000)


async def _interrupted():
    display = ST7789(board.buses.display_spi(), board.buses.pin(h.PIN_DISPLAY_CS, _pin.OUT, value=1),
                     board.buses.pin(h.PIN_DISPLAY_DC, _pin.OUT, value=0))
    await display.init()
    session = Session(vaultfix.personalized())
    session.unlock_with_pin(bytearray(vaultfix.PIN))
    app = App(UI(display, _Untouched()), session)
    operation = _Reads()
    session.begin(operation)

    async def lock():  # the standby key, then the watcher's cancel of the step
        while "emv.tlv" not in sys.modules:
            await asyncio.sleep_ms(10)
        session.lock("standby")
        app._running[0][1].cancel()
    asyncio.create_task(lock())
    await app.once()
    return session.interrupted is operation


def test_a_lock_keeps_the_operation_but_not_what_its_step_imported():
    parts.unload([name for name in sys.modules if name == "emv" or name.startswith("emv.")])
    assert asyncio.run(_interrupted())  # kept, to resume after the unlock
    assert "emv.tlv" not in sys.modules and "emv" not in sys.modules
    assert "terminal.app" in sys.modules  # what the operation is made of stays
