"""T=0, the character protocol (ISO/IEC 7816-3 section 10, EMV Book 1 section 9.2 / 9.3).

    t0 = T0(line, wi=atr.wi)
    rapdu = await t0.transceive(apdu)

An APDU of each case goes out as a TPDU (CLA INS P1 P2 P3 and data); the card answers with
procedure bytes: NULL (60: wait more), INS (all the rest of the data), ~INS (one byte), or SW1
(6x / 9x, then SW2). 61xx: the response is fetched with GET RESPONSE (Le = xx), repeated while
the card says more is there; 6Cxx: the command is sent again with P3 = xx. Each procedure byte
and data character must come within the work waiting time WWT = 960 x WI x D etu (the line
knows the etu). Short APDUs only (extended ones would need ENVELOPE): GET RESPONSEs that
would take the R-APDU past MAX_RESPONSE bytes (iso7816) are CardOverrun, not asked; NULL bytes
without end are cut by the slot's _COMMAND_MS.
"""

from micropython import const

from iso7816 import MAX_RESPONSE, CardOverrun, ProtocolError

_NULL = const(0x60)
_GET_RESPONSE = const(0xC0)
MAX_RESPONSES = const(32)  # GET RESPONSE / 6Cxx rounds before the card is given up as looping


def case_of(apdu):
    """(case, Lc, Le) of a short C-APDU; Le 256 for a coded 00. ProtocolError if malformed."""
    n = len(apdu)
    if n < 4:
        raise ProtocolError("C-APDU shorter than 4 bytes")
    if n == 4:
        return 1, 0, 0
    p3 = apdu[4]
    if n == 5:
        return 2, 0, p3 or 256
    if p3 == 0:
        raise ProtocolError("extended APDUs are not supported on T=0")
    if n == 5 + p3:
        return 3, p3, 0
    if n == 6 + p3:
        return 4, p3, apdu[-1] or 256
    raise ProtocolError("C-APDU length %d does not match Lc %d" % (n, p3))


class T0:
    """T=0 over `line` (see iso7816's docstring); `wi`: TC2 (default 10)."""

    def __init__(self, line, wi=10):
        self.line = line
        self.wi = wi
        self.nulls = 0  # NULL procedure bytes seen (statistics)

    def wwt_ms(self):
        return self.line.etu_ms(960 * self.wi * self.line.d)

    async def _tpdu(self, header, data, le):
        """One TPDU: header (5 bytes), data to send (case 3) or le bytes to receive (case 2).
        Returns (response data, sw1, sw2)."""
        line = self.line
        ins = header[1]
        wwt = self.wwt_ms()
        await line.send(header)
        out = bytearray()
        sent = 0
        while True:
            pb = (await line.receive(1, wwt))[0]
            if pb == _NULL:
                self.nulls += 1
                continue
            if pb & 0xF0 in (0x60, 0x90):
                sw2 = (await line.receive(1, wwt))[0]
                return bytes(out), pb, sw2
            if pb == ins:
                if sent < len(data):
                    await line.send(data[sent:])
                    sent = len(data)
                elif len(out) < le:
                    out += await line.receive(le - len(out), wwt)
                else:
                    raise ProtocolError("T=0: INS procedure byte with nothing left to transfer")
            elif pb == ins ^ 0xFF:
                if sent < len(data):
                    await line.send(data[sent:sent + 1])
                    sent += 1
                elif len(out) < le:
                    out += await line.receive(1, wwt)
                else:
                    raise ProtocolError("T=0: ~INS procedure byte with nothing left to transfer")
            else:
                raise ProtocolError("T=0: invalid procedure byte 0x%02X" % pb)

    async def transceive(self, apdu):
        """A C-APDU (cases 1-4, short); the R-APDU (data, SW1, SW2)."""
        apdu = bytes(apdu)
        case, lc, le = case_of(apdu)
        if case == 1:
            header = apdu[:4] + b"\x00"
            data = b""
        elif case == 2:
            header = apdu[:5]
            data = b""
        else:
            header = apdu[:5]
            data = apdu[5:5 + lc]
        want = le if case == 2 else 0
        body, sw1, sw2 = await self._tpdu(header, data, want)
        response = bytearray(body)
        rounds = 0
        while True:
            rounds += 1
            if rounds > MAX_RESPONSES:
                raise ProtocolError("T=0: the card keeps asking for more exchanges")
            if sw1 in (0x61, 0x6C) and len(response) + (sw2 or 256) > MAX_RESPONSE - 2:
                raise CardOverrun("T=0: a response over %d bytes" % MAX_RESPONSE)
            if sw1 == 0x6C and (header[1] == _GET_RESPONSE or case == 2):
                # Wrong length: the same command (the original case 2 one, or the GET
                # RESPONSE) again with P3 = SW2.
                header = header[:4] + bytes((sw2,))
                body, sw1, sw2 = await self._tpdu(header, b"", sw2 or 256)
                response += body
                continue
            if sw1 == 0x61:
                # More data available: GET RESPONSE with Le = SW2, until the card has no more.
                n = sw2 or 256
                header = bytes((0x00, _GET_RESPONSE, 0, 0, sw2))  # EMV: CLA 00
                body, sw1, sw2 = await self._tpdu(header, b"", n)
                response += body
                continue
            return bytes(response) + bytes((sw1, sw2))
