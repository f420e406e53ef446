"""Cardholder verification (EMV Book 3 section 10.5): the CVM list (8E) evaluated rule by rule,
the method performed through `perform(code) -> True (verified), False (failed)`, the CVM
results (9F34) and the TVR bits. The offline plaintext PIN itself is pin_block() + the kernel's
VERIFY.

This terminal has a PIN pad and no paper: plaintext offline PIN, online PIN and no CVM are
supported; signature (and the combined methods with signature) is not, so such a rule fails
and the list goes on when the rule lets it.
"""

from micropython import const

from emv import risk

FAIL_CVM = const(0x00)
PLAIN_PIN = const(0x01)  # plaintext PIN verified by the ICC
ONLINE_PIN = const(0x02)  # enciphered PIN verified online
PLAIN_PIN_SIGNATURE = const(0x03)
ENC_PIN = const(0x04)  # enciphered PIN verified by the ICC
ENC_PIN_SIGNATURE = const(0x05)
SIGNATURE = const(0x1E)
NO_CVM = const(0x1F)
NOT_PERFORMED = const(0x3F)  # 9F34 byte 1 when no CVM was performed

APPLY_NEXT = const(0x40)  # CVM code bit 7: apply the next rule if this one fails

UNKNOWN = const(0x00)  # 9F34 byte 3
FAILED = const(0x01)
SUCCESSFUL = const(0x02)

# Terminal capabilities (9F33) byte 2: the CVMs the terminal has, by method.
_CAPABILITY = {PLAIN_PIN: 0x80, ONLINE_PIN: 0x40, SIGNATURE: 0x20, ENC_PIN: 0x10, NO_CVM: 0x08}
_PIN_METHODS = (PLAIN_PIN, ONLINE_PIN, PLAIN_PIN_SIGNATURE, ENC_PIN, ENC_PIN_SIGNATURE)


def supported(method, caps):
    """Does this terminal (9F33 byte 2 `caps`) perform the method? The combined methods need
    a signature, which this terminal never takes."""
    bit = _CAPABILITY.get(method)
    return bit is not None and method != SIGNATURE and bool(caps & bit)


def recognised(method):
    return method in _PIN_METHODS or method in (FAIL_CVM, SIGNATURE, NO_CVM)


class Context:
    """What the conditions look at: amounts (minor units), the transaction type (9C), whether
    the transaction is in the application's currency, whether the terminal is unattended, the
    terminal's CVM capabilities (9F33 byte 2)."""

    __slots__ = ("amount", "txn_type", "app_currency", "unattended", "caps")

    def __init__(self, amount, txn_type, app_currency, unattended, caps):
        self.amount = amount
        self.txn_type = txn_type
        self.app_currency = app_currency
        self.unattended = unattended
        self.caps = caps


def condition_met(cond, method, x, y, ctx):
    """Book 3 Annex C3, the CVM condition codes."""
    cash = ctx.txn_type == risk.CASH
    if cond == 0x00:
        return True
    if cond == 0x01:
        return ctx.unattended and cash
    if cond == 0x02:
        return not cash and ctx.txn_type != risk.CASHBACK
    if cond == 0x03:
        return supported(method, ctx.caps)
    if cond == 0x04:
        return not ctx.unattended and cash
    if cond == 0x05:
        return ctx.txn_type == risk.CASHBACK
    if 0x06 <= cond <= 0x09:
        if not ctx.app_currency:
            return False
        limit = x if cond <= 0x07 else y
        return ctx.amount < limit if cond in (0x06, 0x08) else ctx.amount > limit
    return False  # RFU or proprietary: not understood, the rule does not apply


async def process(cvm_list, ctx, tvr, perform):
    """Run the CVM list; the CVM results (3 bytes). perform(method) is awaited for a supported
    method other than no-CVM and fail-CVM and says whether verification succeeded (online
    PIN: True, its result is the issuer's)."""
    if cvm_list is None or len(cvm_list) < 10 or len(cvm_list) & 1:
        risk.mark(tvr, risk.ICC_DATA_MISSING)
        return bytes((NOT_PERFORMED, 0, UNKNOWN))
    x = int.from_bytes(cvm_list[0:4], "big")
    y = int.from_bytes(cvm_list[4:8], "big")
    last = None
    for i in range(8, len(cvm_list), 2):
        code, cond = cvm_list[i], cvm_list[i + 1]
        method = code & 0x3F
        if not condition_met(cond, method, x, y, ctx):
            continue
        if method == NO_CVM and supported(method, ctx.caps):
            return bytes((code, cond, SUCCESSFUL))
        if not recognised(method):
            risk.mark(tvr, risk.UNRECOGNISED_CVM)
            ok = False
        elif method == FAIL_CVM or not supported(method, ctx.caps):
            if method in _PIN_METHODS and not ctx.caps & 0xD0:
                risk.mark(tvr, risk.PIN_PAD_MISSING)
            ok = False
        else:
            ok = await perform(method)
            if ok and method == ONLINE_PIN:
                return bytes((code, cond, UNKNOWN))
        if ok:
            return bytes((code, cond, SUCCESSFUL))
        last = (code, cond)
        if not code & APPLY_NEXT:
            break
    risk.mark(tvr, risk.CV_FAILED)
    if last is None:
        return bytes((NOT_PERFORMED, 0, FAILED))
    return bytes((last[0], last[1], FAILED))


def pin_block(digits):
    """The plaintext PIN block, format 2 (Book 3 6.5.12): 2N, the digits, F padding; 8 bytes.
    digits: a bytearray of ASCII digits or digit values 0-9, 4 to 12 of them. The caller wipes
    both the digits and the block."""
    n = len(digits)
    if not 4 <= n <= 12:
        raise ValueError("a PIN has 4 to 12 digits")
    block = bytearray(b"\xff" * 8)
    block[0] = 0x20 | n
    for i in range(n):
        d = digits[i]
        if d >= 0x30:
            d -= 0x30
        if d > 9:
            raise ValueError("a PIN is digits")
        j = 1 + (i >> 1)
        block[j] = (block[j] & 0x0F) | (d << 4) if not i & 1 else (block[j] & 0xF0) | d
    return block
