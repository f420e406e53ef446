"""The kernel's side of the card: commands over an `async transceive(apdu) -> data + SW1 SW2`
(drivers.iso7816_slot.Slot.transceive, drivers.pn532.IsoDep.transceive).

The interface's own errors (iso7816.CardError, drivers.pn532.NfcError: a card removed, mute,
a broken protocol) come out as the kernel's CardError (InterfaceError, sw None), so the kernel's callers
handle one kind. Only the interface classes already imported are looked for: the kernel never
loads a driver the handheld is not using.
"""

import sys

from emv import CardError, TlvError, tlv

SW_OK = 0x9000


class InterfaceError(CardError):
    """The interface failed (card removed, mute, protocol broken): not the card's answer."""


def _interface_errors():
    out = []
    for name, cls in (("iso7816", "CardError"), ("drivers.pn532", "NfcError")):
        mod = sys.modules.get(name)
        if mod is not None:
            out.append(getattr(mod, cls))
    return tuple(out)


async def _closed(apdu):
    raise InterfaceError("the card is done with (Channel.close)")


class Channel:
    """Counts the commands (`commands`) and keeps the last status word (`sw`)."""

    __slots__ = ("transceive", "commands", "sw", "_errors")

    def __init__(self, transceive):
        self.transceive = transceive
        self.commands = 0
        self.sw = 0
        self._errors = _interface_errors()

    def close(self):
        """The card is done with: its interface and its errors' classes no longer held (the
        caller may let go of their driver); a command after it is an InterfaceError."""
        self.transceive = _closed
        self._errors = ()

    async def send(self, cla, ins, p1, p2, data=None, le=True):
        """(response data, SW) of one command; le: case 2/4 (Le 00)."""
        apdu = bytearray((cla, ins, p1, p2))
        if data is not None:
            apdu.append(len(data))
            apdu.extend(data)
        if le:
            apdu.append(0)
        return await self.raw(apdu)

    async def raw(self, apdu):
        """(response data, SW) of a C-APDU given whole (an issuer script's command)."""
        self.commands += 1
        try:
            r = await self.transceive(apdu)
        except self._errors as e:
            raise InterfaceError("%s: %s" % (type(e).__name__, e))
        if len(r) < 2:
            raise CardError("a response of %d bytes: no status word" % len(r))
        self.sw = (r[-2] << 8) | r[-1]
        return r[:-2], self.sw

    async def ok(self, cla, ins, p1, p2, data=None, le=True):
        """The response data of a command that must succeed (90 00); CardError otherwise."""
        r, sw = await self.send(cla, ins, p1, p2, data, le)
        if sw != SW_OK:
            raise CardError("%02X%02X: status %04X" % (cla, ins, sw), sw)
        return r

    async def select(self, name, first=True):
        """SELECT by DF name (P2 00: first occurrence, 02: next)."""
        return await self.send(0x00, 0xA4, 0x04, 0x00 if first else 0x02, name)

    async def read_record(self, sfi, n):
        return await self.send(0x00, 0xB2, n, (sfi << 3) | 0x04)

    async def get_data(self, tag):
        """A GET DATA's value (e.g. 9F17, 9F36, 9F13), or None when the card does not give it."""
        r, sw = await self.send(0x80, 0xCA, tag >> 8, tag & 0xFF)
        if sw != SW_OK:
            return None
        try:
            return tlv.find(r, tag)
        except TlvError:  # a malformed answer counts as no answer (Book 3 10.6.3)
            return None
