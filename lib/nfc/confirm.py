"""The confirmation applet: a shop terminal asks the handheld's owner to approve an amount.

    applet = ConfirmApplet(key, confirm=owner_confirm(ui, session, sensor))
    await pn532.emulate(applet)              # or behind nfc.Router

The shop's terminal SELECTs the applet and sends PREPARE; the handheld shows the merchant and
the amount on its own screen and the owner approves with the PIN (typed here, on the handheld:
it never leaves the device and is never sent to the terminal) or a fingerprint. The answer is an
approval MAC'd under the device's key, bound to everything the owner saw and to the terminal's
nonce, or a refusal status word.

  SELECT   00 A4 04 00 Lc AID         -> FCI: 6F { 84 AID, A5 { C0 device id (8) } }
  PREPARE  80 10 00 00 Lc amount (4) · currency (3, ISO 4217 letters) · nonce (8) ·
                          merchant length (1) · merchant (UTF-8, up to 64 bytes)   [Le]
           -> approved: device id (8) · counter (4) · MAC (16), 9000
           -> refused by the owner (Cancel, timeout): 6985; the owner's authentication failed: 6982
  RESULT   80 12 00 00 [Le]           -> the last PREPARE's answer again (a lost R-APDU)

MAC: HMAC-SHA256(key, "PT-CONFIRM" · device id · counter · amount · currency · merchant length ·
merchant · nonce), its first 16 bytes; the counter counts approvals since start-up.

confirm(merchant, amount, currency) is injected: True approves, False refuses; raising
OwnerNotAuthenticated (or anything else) refuses too. owner_confirm() is the handheld's: the
amount screen, then the owner's fingerprint or PIN through the Session.
"""

import struct

from micropython import const

from nfc import (CLA_PROPRIETARY, SW_CLA_NOT_SUPPORTED, SW_CONDITIONS, SW_INS_NOT_SUPPORTED, SW_NOT_ALLOWED,
                 SW_NOT_FOUND, SW_OK, SW_SECURITY, SW_WRONG_DATA, SW_WRONG_P1P2, ApduError, is_select, parse,
                 reply, tlv)
from vault.crypto import hmac_sha256

AID = b"\xf0PT-CONFIRM"
INS_PREPARE = const(0x10)
INS_RESULT = const(0x12)
MAC_SIZE = const(16)
MAX_MERCHANT = const(64)


class OwnerNotAuthenticated(Exception):
    """The owner approved on screen but did not prove to be the owner (PIN, fingerprint)."""


def approval_mac(key, device_id, counter, amount, currency, merchant, nonce):
    """The MAC of an approval (what the shop's terminal, holding the key, checks)."""
    merchant = merchant.encode() if isinstance(merchant, str) else bytes(merchant)
    return hmac_sha256(key, b"PT-CONFIRM" + device_id + struct.pack(">II", counter, amount) + currency.encode()
                       + bytes((len(merchant),)) + merchant + nonce)[:MAC_SIZE]


class ConfirmApplet:
    AID = AID

    def __init__(self, key, confirm, device_id=b"PT\x00\x00\x00\x00\x00\x01"):
        self._key = key
        self.confirm = confirm
        self.device_id = bytes(device_id)
        self.counter = 0
        self.selected = False
        self.last = None  # the last PREPARE's R-APDU
        self.asked = []  # what the owner was asked: (merchant, amount, currency, answer)

    def reset(self):
        self.selected = False

    async def process(self, apdu):
        try:
            cla, ins, p1, p2, data, _ = parse(apdu)
            if is_select(cla, ins, p1):
                if not data or data != AID[:len(data)]:
                    self.selected = False
                    return reply(SW_NOT_FOUND)
                self.selected = True
                self.last = None
                return reply(SW_OK, tlv(0x6F, tlv(0x84, AID) + tlv(0xA5, tlv(0xC0, self.device_id))))
            if not self.selected:
                return reply(SW_NOT_ALLOWED)
            if cla != CLA_PROPRIETARY:
                return reply(SW_CLA_NOT_SUPPORTED)
            if p1 or p2:
                return reply(SW_WRONG_P1P2)
            if ins == INS_PREPARE:
                self.last = await self._prepare(data)
                return self.last
            if ins == INS_RESULT:
                return self.last or reply(SW_NOT_ALLOWED)
            return reply(SW_INS_NOT_SUPPORTED)
        except ApduError as e:
            return reply(e.sw)

    async def _prepare(self, data):
        if len(data) < 16:
            return reply(SW_WRONG_DATA)
        amount = struct.unpack(">I", data[:4])[0]
        currency_bytes, nonce, n = data[4:7], data[7:15], data[15]
        merchant_bytes = data[16:]
        if n != len(merchant_bytes) or not 0 < n <= MAX_MERCHANT or amount == 0 \
                or any(not 0x41 <= c <= 0x5A for c in currency_bytes):
            return reply(SW_WRONG_DATA)
        try:
            merchant = merchant_bytes.decode()
        except UnicodeError:
            return reply(SW_WRONG_DATA)
        currency = currency_bytes.decode()
        try:
            approved = await self.confirm(merchant, amount, currency)
            sw = SW_CONDITIONS
        except OwnerNotAuthenticated:
            approved, sw = False, SW_SECURITY
        except Exception:  # a screen or sensor fault: refused, never a crash of the card
            approved, sw = False, SW_CONDITIONS
        self.asked.append((merchant, amount, currency, approved is True))
        del self.asked[:-4]
        if approved is not True:
            return reply(sw)
        self.counter += 1
        mac = approval_mac(self._key, self.device_id, self.counter, amount, currency, merchant_bytes, nonce)
        return reply(SW_OK, self.device_id + struct.pack(">I", self.counter) + mac)


def owner_confirm(ui, session, sensor=None, account="", pin_tries=1, randomize=True):
    """The handheld's confirm callback: the amount on screen (ui.confirm_amount), then the owner
    proves it is them with ui.fingerprint.confirm_owner, the terminal's own payments' proof: by
    fingerprint when the vault allows it now, else by the PIN on the handheld's own pad, titled
    "Enter PIN" (its digits shuffled unless randomize is False, the terminal app's fixed pad).
    A Cancel or a timeout refuses; a failed authentication raises OwnerNotAuthenticated."""
    async def confirm(merchant, amount, currency):
        answer = await ui.confirm_amount(merchant, amount, currency, account, title="Confirm")
        if answer is not True:
            return False
        from ui.fingerprint import confirm_owner
        from ui.screens import format_amount

        return await confirm_owner(ui, session, sensor, title="Enter PIN", prompt="Your PIN to confirm",
                                   tries=pin_tries, randomize=randomize, refused=OwnerNotAuthenticated,
                                   payment=(format_amount(amount, currency), merchant))

    return confirm
