"""ISO 8583 on the wire, CPython side (the host, and the simulated terminals of tools.bank.client):
2-byte big-endian length framing, pyiso8583 with tools/bank/spec.py, and the message MAC as
tools/bank/PROTOCOL.md defines it (AES-CMAC over the message up to the MAC field, MAC bit set).
"""

import asyncio
import datetime

import iso8583

from tools.bank.spec import SPEC

MAX_FRAME = 4096
MAC_LEN = 8


class WireError(Exception):
    """A frame or message that does not fit the protocol; partial: the fields read before the
    fault ({} if none), for a format error's answer."""

    def __init__(self, message, partial=None):
        super().__init__(message)
        self.partial = partial or {}


async def read_frame(reader):
    """One frame's bytes, or None when the peer closed between messages. A frame of any length
    the prefix can say is read whole (an empty one, or one above MAX_FRAME, included): the
    caller answers it as the format error it is and the stream stays in step."""
    try:
        head = await reader.readexactly(2)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise WireError("connection closed inside a length prefix") from None
        return None
    return await reader.readexactly(int.from_bytes(head, "big"))


def frame(raw):
    if len(raw) > MAX_FRAME:
        raise WireError("message of %d bytes exceeds %d" % (len(raw), MAX_FRAME))
    return len(raw).to_bytes(2, "big") + bytes(raw)


def mac_field(doc):
    """'128' when the message needs a secondary bitmap (a field above 64), else '64'."""
    return "128" if any(k.isdigit() and 64 < int(k) < 128 for k in doc) else "64"


def encode(doc, mac):
    """The message bytes of doc {field: value} (no bitmaps, no MAC), MAC'd by mac(data) -> 8
    bytes, or unMAC'd when mac is None."""
    doc = {k: v for k, v in doc.items() if k not in ("p", "1", "64", "128")}
    if mac is None:
        raw, _ = iso8583.encode(doc, SPEC)
        return bytes(raw)
    doc[mac_field(doc)] = "00" * MAC_LEN
    raw, _ = iso8583.encode(doc, SPEC)
    raw = bytes(raw)
    return raw[:-MAC_LEN] + mac(raw[:-MAC_LEN])


def decode(raw):
    """doc {field: str} of a message; WireError if it does not decode (pyiso8583's KeyError for
    a bitmap bit of a field the protocol does not have included)."""
    if not 0 < len(raw) <= MAX_FRAME:
        raise WireError("message of %d bytes, not 1..%d" % (len(raw), MAX_FRAME))
    try:
        doc, _ = iso8583.decode(bytes(raw), SPEC)
    except iso8583.DecodeError as e:
        raise WireError(str(e), e.doc_dec) from None
    except KeyError as e:
        raise WireError("field %s is not in the protocol" % e) from None
    return doc


def mac_ok(raw, doc, check):
    """True if the message carries its MAC as its last field and check(data, mac) accepts it."""
    if mac_field(doc) not in doc:
        return False
    return check(bytes(raw[:-MAC_LEN]), bytes(raw[-MAC_LEN:]))


def transmission_time(when=None):
    """DE7: MMDDhhmmss, UTC."""
    return (when or datetime.datetime.now(datetime.timezone.utc)).strftime("%m%d%H%M%S")
