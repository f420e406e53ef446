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
"""


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
