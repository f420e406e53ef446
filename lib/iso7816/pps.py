"""Protocol and Parameters Selection (ISO/IEC 7816-3 section 9).

    request = pps.request(protocol, fi, di)     # PPSS FF, PPS0, PPS1, PCK
    ok = pps.accepted(request, response)        # True: F/D as asked; False: keep the defaults

The card answers a request it accepts with the same bytes (or with PPS1 left out: then the
default Fd/Dd stay, which `accepted` reports as False); a card that does not answer, answers
something else or breaks PCK has refused, and the slot resets it and goes on at the defaults.
"""

from micropython import const

from iso7816 import ProtocolError

PPSS = const(0xFF)


def request(protocol, fi, di):
    pps0 = 0x10 | (protocol & 0x0F)
    pps1 = (fi & 0x0F) << 4 | (di & 0x0F)
    body = bytes((PPSS, pps0, pps1))
    return body + bytes((body[0] ^ body[1] ^ body[2],))


def response_length(pps0):
    """The length of a response from its PPS0 (PPSS PPS0 [PPS1] [PPS2] [PPS3] PCK)."""
    return 3 + bool(pps0 & 0x10) + bool(pps0 & 0x20) + bool(pps0 & 0x40)


def accepted(req, resp):
    """Whether the card's response selects the F/D asked for. ProtocolError when it is not a
    valid response to the request at all (the card must then be reset)."""
    if len(resp) < 3 or resp[0] != PPSS:
        raise ProtocolError("PPS: bad response %s" % bytes(resp).hex())
    x = 0
    for b in resp:
        x ^= b
    if x:
        raise ProtocolError("PPS: PCK does not check")
    if resp[1] & 0x0F != req[1] & 0x0F:
        raise ProtocolError("PPS: the card selected another protocol")
    if len(resp) != response_length(resp[1]):
        raise ProtocolError("PPS: response length does not match PPS0")
    if resp[1] & 0x10:
        if resp[2] != req[2]:
            raise ProtocolError("PPS: PPS1 differs from the request")
        return True
    return False
