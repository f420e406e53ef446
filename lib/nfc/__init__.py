"""The handheld as a contactless card: applets behind the PN532's card emulation.

    from drivers.pn532 import PN532
    from nfc import Router
    from nfc.transit import TransitApplet
    from nfc.confirm import ConfirmApplet
    card = Router(TransitApplet(key), ConfirmApplet(key, confirm))
    await nfc.emulate(card)          # drivers.pn532: each C-APDU to card.process(apdu)

An applet is an object with an AID and `async process(apdu) -> response` (data + SW1 SW2). The
Router hands a SELECT by name to the applet whose AID it names and everything after it to that
applet, as a card's operating system does. APDUs here are short ones (ISO/IEC 7816-4 cases 1 to
4); the status words are 7816-4's.
"""

from micropython import const

SW_OK = const(0x9000)
SW_WRONG_LENGTH = const(0x6700)
SW_MEMORY_FAILURE = const(0x6581)
SW_SECURITY = const(0x6982)  # security status not satisfied: a MAC, the owner's authentication
SW_CONDITIONS = const(0x6985)  # conditions of use not satisfied: refused, not enough balance
SW_NOT_ALLOWED = const(0x6986)  # command not allowed: no application selected
SW_WRONG_DATA = const(0x6A80)
SW_NOT_FOUND = const(0x6A82)  # no application with that AID
SW_RECORD_NOT_FOUND = const(0x6A83)
SW_WRONG_P1P2 = const(0x6A86)
SW_INS_NOT_SUPPORTED = const(0x6D00)
SW_CLA_NOT_SUPPORTED = const(0x6E00)

CLA_ISO = const(0x00)
CLA_PROPRIETARY = const(0x80)
INS_SELECT = const(0xA4)


class ApduError(Exception):
    """A C-APDU that is not well formed: answered with `sw`."""

    def __init__(self, sw=SW_WRONG_LENGTH):
        super().__init__("SW %04X" % sw)
        self.sw = sw


def parse(apdu):
    """(cla, ins, p1, p2, data, le) of a short C-APDU (le None when absent, 256 for 00).
    Raises ApduError(6700) for anything else."""
    n = len(apdu)
    if n < 4:
        raise ApduError()
    cla, ins, p1, p2 = apdu[0], apdu[1], apdu[2], apdu[3]
    if n == 4:
        return cla, ins, p1, p2, b"", None
    if n == 5:
        return cla, ins, p1, p2, b"", apdu[4] or 256
    lc = apdu[4]
    if lc == 0:
        raise ApduError()  # an extended length: not here
    if n == 5 + lc:
        return cla, ins, p1, p2, bytes(apdu[5:]), None
    if n == 6 + lc:
        return cla, ins, p1, p2, bytes(apdu[5:5 + lc]), apdu[-1] or 256
    raise ApduError()


def reply(sw, data=b""):
    """An R-APDU: data then the status word."""
    out = bytearray(data)
    out.append(sw >> 8)
    out.append(sw & 0xFF)
    return bytes(out)


def tlv(tag, value):
    """A BER-TLV with a one- or two-byte tag and a short length (< 128 bytes)."""
    head = bytes((tag >> 8, tag & 0xFF)) if tag > 0xFF else bytes((tag,))
    return head + bytes((len(value),)) + bytes(value)


def is_select(cla, ins, p1):
    return cla == CLA_ISO and ins == INS_SELECT and p1 == 0x04


class Router:
    """Applets behind one card: a SELECT by name picks the applet, the rest goes to it."""

    def __init__(self, *applets):
        self.applets = applets
        self.current = None

    async def process(self, apdu):
        try:
            cla, ins, p1, _, data, _ = parse(apdu)
        except ApduError as e:
            return reply(e.sw)
        if is_select(cla, ins, p1):
            self.current = None
            for applet in self.applets:
                if data and bytes(applet.AID[:len(data)]) == data:
                    self.current = applet
                    break
            else:
                return reply(SW_NOT_FOUND)
        if self.current is None:
            return reply(SW_NOT_ALLOWED)
        return await self.current.process(apdu)

    def reset(self):
        """The reader left: nothing is selected any more."""
        self.current = None
        for applet in self.applets:
            applet.reset()
