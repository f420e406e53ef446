# The EMV kernel's decisions without a card, on the device: CVM list evaluation (EMV Book 3
# 10.5, Annex C3), the PIN block, TVR/TSI bits (Annex C5/C6), processing restrictions, terminal
# risk management (floor limit, random selection, velocity) and terminal action analysis with
# TAC and IAC. Whole transactions against the card applets: tests/host/test_emv_kernel.py.
import asyncio

from emv import cvm, risk
from emv.config import TerminalConfig
from emv.select import Candidate, order

from expect import raises

PIN_CAPS = 0xC8  # 9F33 byte 2 of the handheld: plaintext PIN, online PIN, no CVM


def run_cvm(cvm_list, amount=1000, txn_type=risk.PURCHASE, app_currency=True, caps=PIN_CAPS, answers=None):
    """(9F34, TVR, the methods performed) of a CVM list; answers[method]: perform's result."""
    tvr = bytearray(5)
    done = []

    async def perform(method):
        done.append(method)
        return (answers or {}).get(method, True)

    ctx = cvm.Context(amount, txn_type, app_currency, False, caps)
    results = asyncio.run(cvm.process(cvm_list, ctx, tvr, perform))
    return results.hex(), tvr.hex(), done


def cvm_list(x, y, *rules):
    return x.to_bytes(4, "big") + y.to_bytes(4, "big") + bytes.fromhex("".join(rules))


def test_cvm_offline_pin_first():
    assert run_cvm(cvm_list(0, 0, "4103", "4203", "1F00")) == ("410302", "0000000000", [cvm.PLAIN_PIN])


def test_cvm_failed_pin_falls_through_to_online_pin():
    # 41: apply the next rule when this one fails; online PIN's result is "unknown" (00).
    got = run_cvm(cvm_list(0, 0, "4103", "4203", "1F00"), answers={cvm.PLAIN_PIN: False})
    assert got == ("420300", "0000000000", [cvm.PLAIN_PIN, cvm.ONLINE_PIN])


def test_cvm_failed_pin_without_next_bit_fails_verification():
    got = run_cvm(cvm_list(0, 0, "0100", "1F00"), answers={cvm.PLAIN_PIN: False})
    assert got == ("010001", "0000800000", [cvm.PLAIN_PIN])  # CV not successful: byte 3 bit 8


def test_cvm_signature_refused_next_rule():
    # Signature (1E) and PIN + signature (03) are not supported here: failed, next rule.
    got = run_cvm(cvm_list(0, 0, "5E00", "4300", "1F00"))
    assert got == ("1f0002", "0000000000", [])
    # A signature rule without the next bit: verification fails, nothing performed.
    assert run_cvm(cvm_list(0, 0, "1E00")) == ("1e0001", "0000800000", [])


def test_cvm_condition_03_skips_unsupported():
    # "If terminal supports the CVM": signature is skipped (condition not met), not failed.
    assert run_cvm(cvm_list(0, 0, "1E03", "1F00")) == ("1f0002", "0000000000", [])


def test_cvm_amount_conditions_x_y():
    rules = cvm_list(5000, 20000, "4206", "4109", "1F00")  # online PIN under X, offline PIN over Y
    assert run_cvm(rules, amount=4999)[2] == [cvm.ONLINE_PIN]
    assert run_cvm(rules, amount=5000) == ("1f0002", "0000000000", [])  # neither: no CVM
    assert run_cvm(rules, amount=20001)[2] == [cvm.PLAIN_PIN]
    # Another currency than the application's: the amount conditions never apply.
    assert run_cvm(rules, amount=20001, app_currency=False)[2] == []
    rules = cvm_list(5000, 20000, "4207", "4108")  # over X, under Y
    assert run_cvm(rules, amount=6000)[2] == [cvm.ONLINE_PIN]
    assert run_cvm(rules, amount=100)[2] == [cvm.PLAIN_PIN]


def test_cvm_cash_and_cashback_conditions():
    rules = cvm_list(0, 0, "4204", "4105", "4202", "1F00")  # manual cash, cashback, not cash
    assert run_cvm(rules, txn_type=risk.CASH)[0] == "420400"
    assert run_cvm(rules, txn_type=risk.CASHBACK)[0] == "410502"
    assert run_cvm(rules, txn_type=risk.PURCHASE)[0] == "420200"


def test_cvm_unrecognised_and_fail_cvm():
    got = run_cvm(cvm_list(0, 0, "4A00", "1F00"))  # 0A: no such method
    assert got == ("1f0002", "0000400000", [])  # unrecognised CVM: byte 3 bit 7
    assert run_cvm(cvm_list(0, 0, "0000", "1F00")) == ("000001", "0000800000", [])


def test_cvm_no_rule_applies_and_missing_list():
    assert run_cvm(cvm_list(100, 0, "0106"), amount=1)[:2] == ("010602", "0000000000")
    assert run_cvm(cvm_list(100, 0, "0106"), amount=500)[:2] == ("3f0001", "0000800000")
    assert run_cvm(None)[:2] == ("3f0000", "2000000000")  # ICC data missing
    assert run_cvm(b"\x00" * 9)[:2] == ("3f0000", "2000000000")  # odd length


def test_cvm_pin_without_pin_pad():
    got = run_cvm(cvm_list(0, 0, "0100"), caps=0x08)
    assert got == ("010001", "0000900000", [])  # CV failed + PIN pad not present


def test_pin_block_format_2():
    assert cvm.pin_block(bytearray(b"1234")) == bytearray.fromhex("241234ffffffffff")
    assert cvm.pin_block(bytearray((1, 2, 3, 4, 5))) == bytearray.fromhex("2512345fffffffff")
    assert cvm.pin_block(bytearray(b"123456789012")) == bytearray.fromhex("2c123456789012ff")
    with raises(ValueError):
        cvm.pin_block(bytearray(b"123"))
    with raises(ValueError):
        cvm.pin_block(bytearray(b"12a4"))


def test_tvr_tsi_bits():
    tvr = bytearray(5)
    for bit in (risk.ODA_NOT_PERFORMED, risk.EXPIRED, risk.PIN_TRY_LIMIT, risk.FLOOR_LIMIT_EXCEEDED,
                risk.ISSUER_AUTH_FAILED):
        risk.mark(tvr, bit)
    assert tvr.hex() == "8040208040"
    assert risk.marked(tvr, risk.EXPIRED) and not risk.marked(tvr, risk.NOT_EFFECTIVE)
    tsi = bytearray(2)
    for bit in (risk.TSI_ODA, risk.TSI_CVM, risk.TSI_CARD_RISK, risk.TSI_TERMINAL_RISK, risk.TSI_SCRIPT):
        risk.mark(tsi, bit)
    assert tsi.hex() == "ec00"


def test_date_window():
    assert risk.date_key(b"\x49\x12\x31") == 20491231
    assert risk.date_key(b"\x50\x01\x01") == 19500101


CARD = {0x9F08: b"\x00\x96", 0x9F07: b"\xff\x00", 0x5F28: b"\x02\x76", 0x5F25: b"\x24\x01\x01",
        0x5F24: b"\x30\x12\x31"}


def changed(card, *pairs):
    """A copy of card with tag, value pairs set."""
    out = dict(card)
    for i in range(0, len(pairs), 2):
        out[pairs[i]] = pairs[i + 1]
    return out


def restrict(card, today=b"\x26\x11\x21", txn_type=risk.PURCHASE, **cfg):
    tvr = bytearray(5)
    risk.restrictions(tvr, card, TerminalConfig(**cfg), today, txn_type)
    return tvr.hex()


def test_processing_restrictions():
    assert restrict(CARD) == "0000000000"
    assert restrict(changed(CARD, 0x9F08, b"\x00\x8c")) == "0080000000"  # version differs
    assert restrict(CARD, today=b"\x31\x01\x01") == "0040000000"  # expired
    assert restrict(CARD, today=b"\x31\x01\x01") == "0040000000"
    assert restrict(CARD, today=b"\x23\x12\x31") == "0020000000"  # not yet effective
    assert restrict(CARD, today=b"\x30\x12\x31") == "0000000000"  # the last valid day


def test_usage_control():
    domestic_goods_only = changed(CARD, 0x9F07, b"\x21\x00", 0x5F28, b"\x02\x76")
    assert restrict(domestic_goods_only) == "0000000000"
    assert restrict(domestic_goods_only, txn_type=risk.CASH) == "0010000000"
    assert restrict(domestic_goods_only, services=True) == "0010000000"
    assert restrict(domestic_goods_only, country=b"\x02\x50") == "0010000000"  # international (France)
    assert restrict(changed(CARD, 0x9F07, b"\xfe\x00")) == "0010000000"  # ATMs only
    assert restrict(changed(CARD, 0x9F07, b"\xff\x00"), txn_type=risk.CASHBACK) == "0010000000"
    assert restrict(changed(CARD, 0x9F07, b"\xff\x80"), txn_type=risk.CASHBACK) == "0000000000"  # domestic cashback
    assert restrict(changed(CARD, 0x9F07, b"\xff\x40"), txn_type=risk.CASHBACK) == "0010000000"  # international only


def test_floor_limit_and_random_selection():
    cfg = TerminalConfig(floor_limit=10000, random_threshold=2000, random_target=20, random_max=60)
    tvr = bytearray(5)
    risk.terminal_risk(tvr, 10000, cfg, 99)
    assert tvr.hex() == "0000008000"
    # Under the threshold: the target percentage (20): draws 1..20 go online.
    assert risk.random_selected(1000, cfg, 20) and not risk.random_selected(1000, cfg, 21)
    # Halfway between threshold and floor limit: 20 + (60 - 20) / 2 = 40 percent.
    assert risk.random_selected(6000, cfg, 40) and not risk.random_selected(6000, cfg, 41)
    tvr = bytearray(5)
    risk.terminal_risk(tvr, 6000, cfg, 10)
    assert tvr.hex() == "0000001000"


def test_velocity():
    card = {0x9F14: b"\x02", 0x9F23: b"\x05"}
    cases = ((b"\x00\x10", b"\x00\x0e", "0000000000"), (b"\x00\x10", b"\x00\x0d", "0000004000"),
             (b"\x00\x10", b"\x00\x0a", "0000006000"), (b"\x00\x03", b"\x00\x00", "0008004000"),
             (None, b"\x00\x01", "0000006000"))
    for atc, last, want in cases:
        tvr = bytearray(5)
        risk.velocity(tvr, card, atc, last)
        assert tvr.hex() == want, (atc, last, tvr.hex())
    tvr = bytearray(5)
    risk.velocity(tvr, {}, None, None)  # no limits on the card: not checked
    assert tvr.hex() == "0000000000"


def test_terminal_action_analysis():
    cfg = TerminalConfig()  # TACs: denial 0010000000, online DC4004F800, default DC4000A800
    card = {0x9F0E: b"\x00\x00\x00\x00\x00", 0x9F0F: b"\x00\x00\x00\x00\x00", 0x9F0D: b"\x00\x00\x00\x00\x00"}
    assert risk.action(bytearray(5), card, cfg, True) == risk.TC
    assert risk.action(bytearray.fromhex("0000008000"), card, cfg, True) == risk.ARQC  # floor limit
    assert risk.action(bytearray.fromhex("0010000000"), card, cfg, True) == risk.AAC  # TAC denial
    # The IAC adds to the TAC: here the card denies on "new card".
    denial = changed(card, 0x9F0E, b"\x00\x08\x00\x00\x00")
    assert risk.action(bytearray.fromhex("0008000000"), denial, cfg, True) == risk.AAC
    assert risk.action(bytearray.fromhex("0008000000"), card, cfg, True) == risk.TC
    # Offline only: the default codes decide.
    assert risk.action(bytearray.fromhex("0000008000"), card, cfg, False) == risk.AAC
    assert risk.action(bytearray.fromhex("0000000400"), card, cfg, False) == risk.TC
    # No IACs on the card: online and default are all ones (Book 3 10.7).
    assert risk.action(bytearray.fromhex("0000000400"), {}, cfg, True) == risk.ARQC
    assert risk.default_action(bytearray.fromhex("0000000001"), {}, cfg) == risk.AAC
    assert risk.default_action(bytearray(5), {}, cfg) == risk.TC


def test_priority_order():
    cands = [Candidate(b"\xa0\x00\x00\x00\x03\x20\x10", "B", 0), Candidate(b"\xa0\x00\x00\x00\x03\x10\x10", "A", 0x82),
             Candidate(b"\xa0\x00\x00\x00\x04\x10\x10", "C", 0x01)]
    got = order(cands)
    assert [c.label for c in got] == ["C", "A", "B"]
    assert got[1].confirm and not got[0].confirm
