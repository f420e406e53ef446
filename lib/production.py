"""The production lock: a unit whose eFuse says "production" never gives its REPL.

Production is a fact in eFuse, not in a file that a flipped bit or a restored flash could undo:
BLOCK3 bit 255 (EFUSE_BLK3_RDATA7_REG bit 31, ESP32 Technical Reference Manual, chapter "eFuse
Controller"; a word that ESP-IDF's eFuse table leaves to the user, BLK3_RESERVED_7 in espefuse's),
burned by the factory as its last step (`python -m tools.provision inject --production-lock`
calls burn()) and never cleared again: eFuse bits only go from 0 to 1. A read-protected BLOCK3
reads as zeros, which would hide the bit, so a read-protected BLOCK3 counts as production too:
the lock fails closed.

Who reads it, in order:
1. the board's C, before MicroPython starts (firmware/pt_lock.c): on a production unit the REPL
   UART's RX line is tied to idle, so no byte from the serial port ever reaches the REPL, a
   Ctrl-C, a raw REPL or a soft reset included (the virtual handheld's launcher models it);
2. boot.py, through enforce(): Ctrl-C off here too, safe mode refused (safemode.py), and a
   secure store that is Tampered or does not read shuts the unit behind a screen for good;
3. main.py, through after_main(): on a production unit its end, or a crash, resets the board.
"""

from micropython import const

_EFUSE_BLK0_RDATA0 = const(0x3FF5A000)  # WR_DIS [15:0], RD_DIS [19:16]
_EFUSE_BLK3_RDATA7 = const(0x3FF5A094)
_EFUSE_BLK3_WDATA7 = const(0x3FF5A0F4)
_EFUSE_CLK = const(0x3FF5A0F8)  # EFUSE_CLK_SEL0 [7:0], EFUSE_CLK_SEL1 [15:8]
_EFUSE_CONF = const(0x3FF5A0FC)
_EFUSE_CMD = const(0x3FF5A104)
_EFUSE_DAC_CONF = const(0x3FF5A118)  # EFUSE_DAC_CLK_DIV [7:0]
_CONF_WRITE = const(0x5A5A)
_CONF_READ = const(0x5AA5)
_CMD_READ = const(1)
_CMD_PGM = const(2)

locked = False


def _mem32():
    import board

    return board.buses.machine.mem32  # machine.mem32 on the ESP32; board.sim's eFuse controller


def burned():
    """Is this a production unit (the eFuse bit burned, or BLOCK3 unreadable)?"""
    mem = _mem32()
    return bool(mem[_EFUSE_BLK3_RDATA7] >> 31 & 1 or mem[_EFUSE_BLK0_RDATA0] >> 18 & 1)


def enforce():
    """boot.py's first act: on a production unit, no REPL this boot, and a store that fails its
    checks shuts the unit (shut() never returns). Returns whether the unit is a production one."""
    global locked
    if not burned():
        return False
    import board

    locked = True
    board.refuse_repl()
    if not _store_opens():
        shut()
    return True


def _store_opens():
    # The vault's store is opened for this one question, its modules (~4.7 KB of heap) let go
    # after it: the terminal imports them anew.
    import sys

    try:
        from vault.store import Store, Tampered

        store = Store()
        try:
            store.open()
            return True
        except (Tampered, OSError, ValueError):
            return False
        finally:
            store.close()
    finally:
        for name in ("vault.store", "vault.crypto", "vault"):
            sys.modules.pop(name, None)


def shut():
    """The unit stays shut behind this screen: its secrets are not to be trusted or used."""
    import asyncio

    print("production: the secure store failed its checks: this unit is locked")

    async def show():
        import parts
        from ui.screens import UI

        display, touch = parts.display(), parts.touch()
        await display.init()
        await touch.init()
        ui = UI(display, touch)
        while True:
            await ui.message("Locked", "This unit is locked: its secure store failed its checks.",
                             remedy="Return it to its issuer (your bank).", error=True, timeout_ms=600_000)

    async def dark():
        while True:
            await asyncio.sleep_ms(600_000)

    try:
        asyncio.run(show())
    except Exception as e:  # no screen to show it on: shut all the same
        print("production: no locked screen (%s: %s)" % (type(e).__name__, e))
    asyncio.run(dark())


def after_main():
    """main.py is ending, or crashed: on a production unit that means a reset, never the REPL."""
    if locked:
        import board

        board.reset()


def burn():
    """Burn the production bit (the factory's last step, at the REPL of a development unit);
    returns burned() read back. The ESP32's eFuse programming sequence (TRM, "eFuse Controller":
    timing for the 80 MHz APB clock, the bit into the write register, program, then read the
    eFuses into the read registers), as ESP-IDF's efuse_hal (esp32) and espefuse do it."""
    mem = _mem32()
    mem[_EFUSE_CLK] = mem[_EFUSE_CLK] & ~0xFFFF | 80 | 128 << 8
    mem[_EFUSE_DAC_CONF] = mem[_EFUSE_DAC_CONF] & ~0xFF | 100
    mem[_EFUSE_BLK3_WDATA7] = 1 << 31
    for conf, command in ((_CONF_WRITE, _CMD_PGM), (_CONF_READ, _CMD_READ)):
        mem[_EFUSE_CONF] = conf
        mem[_EFUSE_CMD] = command
        while mem[_EFUSE_CMD] & 3:
            pass
        mem[_EFUSE_BLK3_WDATA7] = 0  # the write register cleared, as ESP-IDF leaves it
    return burned()
