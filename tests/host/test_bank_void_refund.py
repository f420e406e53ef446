"""Voids and refunds at the bank (issue 21 part 2), on SQLite and PostgreSQL: a device gives back a
purchase it made (0200/200000 naming its RRN; one it approved offline, its advice's DE11 + DE7),
the merchant API one of its paid requests; the host decides by its business day: a void (the
whole purchase, its postings undone) until the cut-over (`python -m tools.bank.admin cutover`),
refunds after it (in part, never beyond the original, the payee's account debited). The attacks
are in tests/attack/test_bank_refund.py.
"""

import pytest

from tests.host import bankfix
from tests.host.test_bank_flows import bank, postgres, run  # noqa: F401 (fixtures)
from tools.bank import admin
from tools.bank.host import OFFLINE_CAP

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")


def signed_on(bank):
    return bankfix.reconnect(bank.state, bank.address)


def balances(bank, *accounts):
    return tuple(bank.state.ledger.account(a)["balance"] for a in accounts)


def cutover(bank, capsys):
    """The admin CLI's cut-over on the bank's own database; what it printed."""
    assert admin.main(["--state-dir", str(bank.state.dir), "--database", bank.state.database_url,
                       "cutover"]) == 0
    return capsys.readouterr().out


OPENED_WITH = 100000 + 5000 + 1000     # bankfix.make_state's balances (ALICE, BOB, USD1)


def conserved(bank):
    """Every transaction's postings sum to zero, and all accounts (the bank's clearing one
    too) hold what they were opened with."""
    per_rrn = {}
    for p in bank.state.ledger.postings():
        per_rrn[p["rrn"]] = per_rrn.get(p["rrn"], 0) + p["amount"]
    total = sum(a["balance"] for a in bank.state.ledger.accounts())
    return all(v == 0 for v in per_rrn.values()) and total == OPENED_WITH


def test_void_the_same_day_refunds_after_the_cutover_never_beyond_the_original(bank, capsys):
    async def day_one():
        t = await signed_on(bank)
        bought = await t.purchase(bankfix.make_card(), 1000, pin="1234")
        part = await t.give_back(bought["37"], 400)          # the same day: whole or nothing
        void = await t.give_back(bought["37"], 1000)
        again = await t.give_back(bought["37"], 1000)        # voided already
        kept = await t.purchase(bankfix.make_card(), 1000, pin="1234")
        await t.close()
        return bought, part, void, again, kept
    bought, part, void, again, kept = run(day_one())
    assert bought["39"] == "00" and (part["39"], again["39"]) == ("13", "12")
    assert void["39"] == "00" and void["mac_ok"] and void["48"] == "VOID=" + bought["37"]
    assert len(void["37"]) == 12 and void["37"] != bought["37"] and len(void["38"]) == 6
    assert balances(bank, "ALICE", "SHOP") == (100000 - 1000, 1000)      # the kept one only
    out = cutover(bank, capsys)
    assert out.startswith("business day 1 closed") and "day 2 open" in out

    async def day_two():
        t = await signed_on(bank)
        first = await t.give_back(kept["37"], 300)
        beyond = await t.give_back(kept["37"], 701)
        rest = await t.give_back(kept["37"], 700)
        more = await t.give_back(kept["37"], 1)
        old_void = await t.give_back(bought["37"], 1000)    # voided: nothing to refund
        await t.close()
        return first, beyond, rest, more, old_void
    first, beyond, rest, more, old_void = run(day_two())
    assert (first["39"], first["48"]) == ("00", "REFUND=" + kept["37"])
    assert (beyond["39"], rest["39"], rest["48"]) == ("13", "00", "REFUND=" + kept["37"])
    assert (more["39"], old_void["39"]) == ("13", "12")
    assert balances(bank, "ALICE", "SHOP") == (100000, 0) and conserved(bank)
    led = bank.state.ledger
    assert [(r["kind"], r["amount"]) for r in led.refunds(kept["37"])] == [("refund", 300), ("refund", 700)]
    assert [(r["kind"], r["amount"]) for r in led.refunds(bought["37"])] == [("void", 1000)]
    assert led.transaction(bought["37"])["reversed"] == 1 and led.transaction(kept["37"])["reversed"] == 0
    assert led.business_day()[0] == 2


def test_a_refund_repeated_gets_its_first_answer_and_pays_once(bank, capsys):
    async def buy():
        t = await signed_on(bank)
        bought = await t.purchase(bankfix.make_card(), 800, pin="1234")
        await t.close()
        return bought
    bought = run(buy())
    cutover(bank, capsys)

    async def refund_twice():
        t = await signed_on(bank)
        raw, doc, _ = t.build("0200", {"3": "200000", "4": "%012d" % 500, "48": "RRN=" + bought["37"],
                                       "49": "978"})
        first = await t.send_raw(raw, "0210", doc["11"])
        fields = {k: v for k, v in doc.items() if k not in ("t", "11", "41", "53", "p", "1", "64", "128")}
        again_raw, _, _ = t.build("0200", fields, stan=doc["11"])      # same DE11 + DE7, new KSN
        again = await t.send_raw(again_raw, "0210", doc["11"])
        await t.close()
        return first, again
    first, again = run(refund_twice())
    assert first["39"] == "00" and again["mac_ok"]
    assert (again["39"], again["37"], again["38"], again["48"]) == (first["39"], first["37"], first["38"],
                                                                   first["48"])
    assert balances(bank, "ALICE", "SHOP") == (100000 - 300, 300)
    assert bank.state.ledger.refunded(bought["37"]) == 500


def test_a_reversed_refund_or_void_gives_the_purchase_back_its_standing(bank, capsys):
    # The device reverses a return whose 0210 it never got (0400, as any 0200): the money goes
    # back where it was and the purchase can be given back again.
    async def go(after_cutover):
        t = await signed_on(bank)
        bought = await t.purchase(bankfix.make_card(), 600, pin="1234")
        if after_cutover:
            cutover(bank, capsys)
        raw, doc, _ = t.build("0200", {"3": "200000", "4": "%012d" % 600, "48": "RRN=" + bought["37"],
                                       "49": "978"})
        done = await t.send_raw(raw, "0210", doc["11"])
        undone = await t.reverse(doc)
        standing = bank.state.ledger.transaction(bought["37"])["reversed"]
        left = bank.state.ledger.refunded(bought["37"])
        redo = await t.give_back(bought["37"], 600)
        await t.close()
        return done, undone, standing, left, redo
    for after_cutover, kind in ((False, "VOID"), (True, "REFUND")):
        done, undone, standing, left, redo = run(go(after_cutover))
        assert done["48"].startswith(kind + "=") and (undone["t"], undone["39"]) == ("0410", "00")
        assert (standing, left) == (0, 0)
        assert redo["39"] == "00" and redo["48"] == done["48"]
        assert balances(bank, "ALICE", "SHOP") == (100000, 0) and conserved(bank)


def refund(bank, req_id, amount, reference, merchant="Corner Bakery"):
    return bankfix.api(bank, "POST", "/payment-requests/%s/refunds" % req_id,
                       {"amount": amount, "reference": reference}, merchant)


def test_the_merchant_voids_the_same_day_and_refunds_after_the_cutover(bank, capsys):
    req, paid = bankfix.paid_request(bank, "M-1", 900)
    assert refund(bank, req["id"], 100, "r-part")[0] == 409           # a void is whole
    status, void = refund(bank, req["id"], 900, "r-void")
    assert status == 201 and (void["kind"], void["amount"], void["refunded"]) == ("void", 900, 900)
    shown = bankfix.api(bank, "GET", "/payment-requests/" + req["id"])[1]
    assert (shown["status"], shown["refunded"]) == ("voided", 900)
    assert balances(bank, "ALICE", "CLEARING") == (100000, 0)

    req, paid = bankfix.paid_request(bank, "M-2", 900)
    cutover(bank, capsys)
    status, first = refund(bank, req["id"], 250, "r-1")
    assert status == 201 and (first["kind"], first["refunded"]) == ("refund", 250)
    # A retry after a lost answer (same reference): the first refund, nothing more paid.
    status, again = refund(bank, req["id"], 250, "r-1")
    assert status == 200 and again["rrn"] == first["rrn"] and again["refunded"] == 250
    assert refund(bank, req["id"], 300, "r-1")[0] == 409               # the reference is taken
    assert refund(bank, req["id"], 651, "r-2")[0] == 409               # beyond what is left
    status, rest = refund(bank, req["id"], 650, "r-3")
    assert status == 201 and rest["refunded"] == 900
    shown = bankfix.api(bank, "GET", "/payment-requests/" + req["id"])[1]
    assert (shown["status"], shown["refunded"], shown["rrn"]) == ("refunded", 900, paid["37"])
    assert balances(bank, "ALICE", "CLEARING") == (100000, 0) and conserved(bank)
    # The ledger shows both sides: each refund names the payment it gives back.
    assert [(r["rrn"], r["amount"]) for r in bank.state.ledger.refunds(paid["37"])] == [
        (first["rrn"], 250), (rest["rrn"], 650)]


def test_another_merchants_request_is_refused_as_one_that_never_was(bank):
    req, _ = bankfix.paid_request(bank, "K-1", 500)
    theirs = refund(bank, req["id"], 500, "x-1", merchant="Kiosk")
    nobody = refund(bank, "ZZZZZZZZZZZZ", 500, "x-2", merchant="Kiosk")
    assert theirs[0] == nobody[0] == 404 and theirs[1] == nobody[1]
    assert bankfix.api(bank, "POST", "/payment-requests/%s/refunds" % req["id"],
                       {"amount": 500, "reference": "x-3"}, "The bank's operator")[0] == 403
    assert balances(bank, "ALICE") == (100000 - 500,)


def test_the_device_gives_back_a_request_it_paid(bank, capsys):
    # The payer's side: the device that paid a pushed request gives it back (0200/200000); the
    # request's status follows, as for the merchant's own refunds.
    voided, paid_void = bankfix.paid_request(bank, "D-1", 700)
    refunded, paid_refund = bankfix.paid_request(bank, "D-2", 500)
    cut = paid_refund["37"]

    async def go(rrn, *amounts):
        t = await signed_on(bank)
        answers = [await t.give_back(rrn, a) for a in amounts]
        await t.close()
        return answers

    # The day it was paid: D-1 voided; D-2 refunded in two parts after the cut-over.
    [void] = run(go(paid_void["37"], 700))
    assert (void["39"], void["48"]) == ("00", "VOID=" + paid_void["37"])
    cutover(bank, capsys)
    part, rest = run(go(cut, 200, 300))
    assert (part["39"], part["48"], rest["39"]) == ("00", "REFUND=" + cut, "00")
    shown = [bankfix.api(bank, "GET", "/payment-requests/" + r["id"])[1] for r in (voided, refunded)]
    assert [(s["status"], s["refunded"]) for s in shown] == [("voided", 700), ("refunded", 500)]
    assert balances(bank, "ALICE", "CLEARING") == (100000, 0) and conserved(bank)


def test_an_offline_purchase_is_given_back_by_its_advice_once_posted_by_its_device_only(bank, capsys):
    # The device has no RRN for a purchase it approved offline: it names it by its advice's DE11 +
    # DE7 (DE48 "ADVICE="), and the host looks among that device's advices it posted only.
    card = bankfix.make_card()

    def key(advised):
        return advised["sent"]["11"] + advised["sent"]["7"]

    async def day_one():
        t = await signed_on(bank)
        voided = await t.advice(card, 1500)
        kept = await t.advice(card, 2000)
        refused = await t.advice(card, OFFLINE_CAP + 1)          # above the cap: refused, not paid
        other = await bankfix.reconnect(bank.state, bank.address, "PT000002")
        answers = {"another device's": await other.give_back(key(voided), 1500, advice=True),
                   "never received": await t.give_back("999999" + voided["sent"]["7"], 1500, advice=True),
                   "refused": await t.give_back(key(refused), OFFLINE_CAP + 1, advice=True),
                   "not 16 digits": await t.give_back(key(voided)[:-1], 1500, advice=True)}
        await other.close()
        part = await t.give_back(key(voided), 500, advice=True)   # the day it was posted: whole only
        void = await t.give_back(key(voided), 1500, advice=True)
        again = await t.give_back(key(voided), 1500, advice=True)
        await t.close()
        return voided, kept, refused, answers, part, void, again
    voided, kept, refused, answers, part, void, again = run(day_one())
    assert (voided["39"], kept["39"], refused["39"]) == ("00", "00", "13")
    assert {what: a["39"] for what, a in answers.items()} == dict.fromkeys(answers, "25")
    assert (part["39"], void["39"], void["48"], again["39"]) == ("13", "00", "VOID=" + voided["37"], "12")
    assert balances(bank, "ALICE", "SHOP") == (100000 - 2000, 2000)      # the kept one only
    cutover(bank, capsys)

    async def day_two():
        t = await signed_on(bank)
        answers = [await t.give_back(key(kept), amount, advice=True) for amount in (500, 1501, 1500)]
        await t.close()
        return answers
    first, beyond, rest = run(day_two())
    assert (first["39"], first["48"], beyond["39"], rest["39"]) == ("00", "REFUND=" + kept["37"], "13", "00")
    assert balances(bank, "ALICE", "SHOP") == (100000, 0) and conserved(bank)
    led = bank.state.ledger
    assert [(r["kind"], r["amount"]) for r in led.refunds(voided["37"])] == [("void", 1500)]
    assert [(r["kind"], r["amount"]) for r in led.refunds(kept["37"])] == [("refund", 500), ("refund", 1500)]
