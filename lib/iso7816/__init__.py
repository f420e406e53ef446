"""ISO/IEC 7816-3 contact cards: the ATR (atr), T=0 (t0), T=1 (t1) and PPS (pps), over a
"line" object the slot driver provides (drivers/iso7816_slot.py):

    await line.send(data)                     the bytes onto the I/O line (echo checked, dropped)
    await line.receive(n, timeout_ms[, char_ms])  exactly n bytes: the first within timeout_ms,
                                              each next within char_ms; CardMute on silence,
                                              CardRemoved when the card has gone
    await line.drain()                        drop what the card sent so far
    line.etu_us, line.d, line.f_clk           the current etu (us), D, the card's clock (Hz)
    line.etu_ms(n), line.slack_ms(us)         a timeout of n etu / us, in ms with the slack

Errors are typed: CardError and its subclasses (defined here, shared by the slot driver).

What one command may take (a card that lies must not hold the terminal): its R-APDU at most
MAX_RESPONSE bytes, data and SW1 SW2 (the kernel's commands are short APDUs, Le at most 256: a
T=1 chain or a T=0 run of GET RESPONSEs beyond it is refused, never gathered), and at most the
slot's _COMMAND_MS in all, however many WTX requests or NULL bytes the card sends. Past either:
CardOverrun, and the slot deactivates the card.
"""

from micropython import const

MAX_RESPONSE = const(258)


class CardError(Exception):
    """Base of the contact slot's errors."""


class CardAbsent(CardError):
    """No card in the slot."""


class CardRemoved(CardError):
    """The card was taken out (before or during a command)."""


class CardMute(CardError):
    """The card did not answer in time (no ATR, or silence within a command)."""


class ProtocolError(CardError):
    """The card broke the transmission protocol (a bad procedure byte, block, or PPS)."""


class AtrError(ProtocolError):
    """A malformed Answer To Reset."""


class CardOverrun(ProtocolError):
    """The card's answer went past what one command may take: longer than MAX_RESPONSE
    bytes, or later than the slot's _COMMAND_MS."""
