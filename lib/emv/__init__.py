"""The EMV kernel (lib/emv/README.md): its typed errors and the outcomes of a transaction.

Imported by every module of the package, so it stays tiny: no imports, no tables.
"""

# A transaction's outcome (Kernel.transact's result.outcome).
APPROVED = "approved"
DECLINED = "declined"
ONLINE = "online"
TRY_ANOTHER_INTERFACE = "try another interface"
END = "end"

# result.reason when every application the card offered answered SELECT with 6283 (Book 1
# 12.4: a blocked application): the card is blocked for this terminal.
APPLICATION_BLOCKED = "no application left: the card's application is blocked"


async def awaited(answer):
    """A cardholder callback's answer (choose, pin): the callback may be a plain function or a
    coroutine function (the terminal's screens are async); a coroutine's answer is awaited."""
    return (await answer) if hasattr(answer, "send") else answer


class EmvError(Exception):
    """Base of the kernel's errors: everything a card or a key file can do wrong."""


class TlvError(EmvError):
    """Malformed BER-TLV or DOL (the message says what, and at which offset), or a redundant
    data object (EMV Book 3 section 10.2: the transaction is terminated)."""


class CardError(EmvError):
    """A card answered an error status word (`sw`, an int such as 0x6A82; None when the card
    broke the protocol instead, e.g. a response shorter than its status word)."""

    def __init__(self, msg, sw=None):
        super().__init__(msg)
        self.sw = sw


class OdaFailed(EmvError):
    """Offline data authentication failed: a certificate or signature that does not verify,
    an unknown or expired CA key, an expired certificate. The kernel sets a TVR bit."""


class CapkError(EmvError):
    """A CA public key file entry that is malformed or fails its SHA-1 checksum."""
