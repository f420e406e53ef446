"""The terminal's EMV parameters (TerminalConfig), which the kernel (emv.kernel) reads.

A module of its own: the terminal builds them from the issuer's parameters (update.config.kernel)
before the card is there, with update.config and terminal.offline in the heap; from the kernel's
module they brought the whole kernel (emv.kernel, emv.risk, emv.apdu, emv.tlv, ~3.4 KB) into the
heap beside those two.
"""


class TerminalConfig:
    """The terminal's parameters; every keyword overrides one default (the handheld's)."""

    __slots__ = ("aids", "country", "currency", "terminal_type", "capabilities", "additional",
                 "ttq", "app_version", "ifd_serial", "floor_limit", "random_threshold",
                 "random_target", "random_max", "tac_denial", "tac_online", "tac_default",
                 "online", "services", "contactless_limits", "offline_caps")

    def __init__(self, **kw):
        self.aids = (b"\xa0\x00\x00\x00\x03", b"\xa0\x00\x00\x00\x04", b"\xa0\x00\x00\x00\x25",
                     b"\xa0\x00\x00\x00\x42")  # Visa, Mastercard, Amex, CB: partial match
        self.country = b"\x02\x76"  # 9F1A, n3: Germany (the test cards are issued there, 5F28)
        self.currency = b"\x09\x78"  # 5F2A: EUR
        self.terminal_type = b"\x22"  # 9F35: attended, merchant, online with offline capability
        self.capabilities = b"\x20\xc8\xc8"  # 9F33: IC; plaintext PIN, online PIN, no CVM; SDA, DDA, CDA
        self.additional = b"\x60\x00\x00\xa0\x01"  # 9F40: goods, services; display; code table 1
        self.ttq = b"\x26\x00\x00\x00"  # 9F66: EMV mode, online capable, online PIN
        self.app_version = b"\x00\x96"  # 9F09: VIS 1.5
        self.ifd_serial = b"PT000001"  # 9F1E
        self.floor_limit = 0  # minor units: 0, every transaction is above it (online)
        self.random_threshold = 0
        self.random_target = 0  # percent
        self.random_max = 0
        self.tac_denial = b"\x00\x10\x00\x00\x00"  # service not allowed
        self.tac_online = b"\xdc\x40\x04\xf8\x00"
        self.tac_default = b"\xdc\x40\x00\xa8\x00"
        self.online = True  # the uplink is there
        self.services = False  # the merchant sells goods (AUC check)
        # The contactless reader's limits per scheme (EMV Book A 3.1.1, pre-processing), in minor
        # units of the currency: (RID or b"" for any other, transaction limit: at or above it the
        # card must be inserted; CVM required limit: at or above it the cardholder is verified,
        # here by online PIN; floor limit: above it the card must go online). The EEA's usual:
        # no PIN up to EUR 50, no tap from EUR 1,000; floor 0 as every payment goes online. The
        # issuer's terminal parameters replace them.
        self.contactless_limits = ((b"\xa0\x00\x00\x00\x03", 100000, 5000, 0),  # Visa
                                   (b"\xa0\x00\x00\x00\x04", 100000, 5000, 0),  # Mastercard
                                   (b"", 100000, 5000, 0))  # type: tuple
        # What the terminal may approve offline (tools/bank/PROTOCOL.md, "Offline approvals"), as
        # Stripe Terminal's offline mode caps it: (one transaction at most, the advices not yet
        # forwarded in total, and in number). Below the floor limits only: with floors of 0 they
        # never apply. The terminal folds what is left of them into the floor limits it gives
        # the kernel (terminal.offline.config); the bank applies the first too (OFFLINE_CAP).
        self.offline_caps = (5000, 20000, 10)
        for k in kw:
            setattr(self, k, kw[k])
