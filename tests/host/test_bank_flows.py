"""The bank host end to end over real TLS, with a CPython terminal (tools/bank/client.py), on
SQLite and on a throwaway PostgreSQL server: sign-on, purchases with PIN and ARQC, the
declines, MAC, idempotency, reversals, the certificate checks, balance, transfer, the
merchant API's pushed requests; and afterwards no clear PIN, PIN block or full PAN in the
bank's log or database.
"""

import asyncio
import concurrent.futures
import json
import logging
import ssl
import time

import pytest

from tests.host import bankfix
from tools.bank import admin, pki, wire
from tools.bank.client import TerminalError, SimCard

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")


@pytest.fixture(scope="module")
def postgres():
    server = bankfix.PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def bank(request, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tools.bank")
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").url()
    else:
        url = "sqlite:///%s" % (tmp_path / "bank.db")
    state = bankfix.make_state(tmp_path, url)
    host = bankfix.BankThread(state)
    yield host
    host.stop()
    state.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def logged(caplog, text, seconds=5):
    """True once text is in the log (the host logs a refusal in its own thread, maybe after
    the client has seen the connection close)."""
    deadline = time.monotonic() + seconds
    while text not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    return text in caplog.text


def balance(bank, account):
    return bank.state.ledger.account(account)["balance"]


def postings(bank):
    return bank.state.ledger.postings()


async def signed_on(bank, serial="PT000001"):
    t = await bankfix.terminal(bank.state, bank.address, serial)
    ans = await t.sign_on()
    assert ans["39"] == "00" and ans["mac_ok"]
    return t


def test_sign_on_echo_sign_off(bank):
    async def go():
        t = await signed_on(bank)
        assert bank.host.sessions["PT000001"].signed_on
        echo = await t.sign_on("301")
        assert (echo["t"], echo["39"], echo["70"], echo["mac_ok"]) == ("0810", "00", "301", True)
        off = await t.sign_on("002")
        assert off["39"] == "00"
        assert not bank.host.sessions["PT000001"].signed_on
        await t.close()
    run(go())


def test_purchase_with_pin_and_arqc_approved(bank):
    async def go():
        t = await signed_on(bank)
        ans = await t.purchase(bankfix.make_card(), 2599, pin="1234")
        await t.close()
        return ans
    ans = run(go())
    assert ans["39"] == "00" and ans["mac_ok"] and ans["arpc_ok"]
    assert len(ans["38"]) == 6 and len(ans["37"]) == 12
    assert ans["2"] == bankfix.CARD["pan"] and ans["4"] == "000000002599"
    assert balance(bank, "ALICE") == 100000 - 2599
    assert balance(bank, "SHOP") == 2599
    assert sorted((p["account"], p["amount"]) for p in postings(bank)) == [
        ("ALICE", -2599), ("SHOP", 2599)]


def test_wrong_pin_55_then_75_after_three(bank):
    async def go():
        t = await signed_on(bank)
        card = bankfix.make_card()
        out = [await t.purchase(card, 1000, pin=p) for p in ("4321", "1111", "0000", "1234")]
        await t.close()
        return out
    answers = run(go())
    assert [a["39"] for a in answers] == ["55", "55", "75", "75"]
    assert all(a["arpc_ok"] for a in answers)        # the card learns the decline from the ARPC
    assert postings(bank) == [] and balance(bank, "ALICE") == 100000


def test_right_pin_resets_the_tries(bank):
    async def go():
        t = await signed_on(bank)
        card = bankfix.make_card()
        out = [await t.purchase(card, 100, pin=p) for p in ("4321", "4321", "1234", "4321")]
        await t.close()
        return [a["39"] for a in out]
    assert run(go()) == ["55", "55", "00", "55"]


def test_expired_unknown_card_and_bad_arqc(bank):
    base = {"pin": "1234", "apps": [{"pan": "4761739001010028", "psn": "01", "expiry": "231231",
                                     "issuer": bankfix.CARD["issuer"],
                                     "imk_ac": bankfix.CARD["imk"].hex()}]}
    admin.add_card(bank.state, base, "ALICE")
    expired = SimCard("4761739001010028", "2312", "01", bankfix.CARD["imk"])
    unknown = SimCard("4761739001010036", "3012", "01", bankfix.CARD["imk"])
    forged = SimCard(bankfix.CARD["pan"], "3012", "01", bytes(16))   # ARQC under a wrong key

    async def go():
        t = await signed_on(bank)
        out = [await t.purchase(c, 100, pin="1234") for c in (expired, unknown, forged)]
        await t.close()
        return out
    exp, unk, bad = run(go())
    assert (exp["39"], exp["arpc_ok"]) == ("54", True)
    assert unk["39"] == "14" and "55" not in unk
    assert bad["39"] == "05" and "55" not in bad       # no ARPC for a cryptogram that failed
    assert postings(bank) == []


def test_insufficient_funds_51(bank):
    async def go():
        t = await signed_on(bank)
        ans = await t.purchase(bankfix.make_card(), 100001, pin="1234")
        await t.close()
        return ans
    ans = run(go())
    assert ans["39"] == "51" and ans["arpc_ok"]
    assert postings(bank) == []


def test_bad_mac_63_and_not_acted_on(bank):
    async def go():
        t = await signed_on(bank)
        raw, doc, _ = t.purchase_message(bankfix.make_card(), 500, pin="1234")
        forged = raw[:-1] + bytes((raw[-1] ^ 1,))
        ans = await t.send_raw(forged, "0210", doc["11"])
        # the same message, MAC intact, is then processed: the 63 was not remembered
        good = await t.send_raw(raw, "0210", doc["11"])
        await t.close()
        return ans, good
    bad, good = run(go())
    assert bad["39"] == "63" and bad["mac_ok"] and "55" not in bad
    assert good["39"] == "00"
    assert balance(bank, "ALICE") == 100000 - 500


def test_a_byte_for_byte_copy_is_refused_63_and_posts_once(bank):
    # The device never sends the same bytes twice (a repeat takes the next KSN, below): a copy
    # reuses its DUKPT counter and is refused as the replay it is.
    async def go():
        t = await signed_on(bank)
        raw, doc, _ = t.purchase_message(bankfix.make_card(), 700, pin="1234")
        first = await t.send_raw(raw, "0210", doc["11"])
        again = await t.send_raw(raw, "0210", doc["11"])
        await t.close()
        return first, again
    first, again = run(go())
    assert first["39"] == "00" and (again["39"], again["mac_ok"]) == ("63", True)
    assert balance(bank, "ALICE") == 100000 - 700 and len(postings(bank)) == 2


def test_a_repeat_under_a_new_ksn_gets_the_first_answer_maced_for_it(bank):
    # A device resends an unanswered request with the same DE11 and DE7 but, its DUKPT having
    # moved on, a new KSN: the first answer's content comes back under the new KSN's MAC.
    async def go():
        t = await signed_on(bank)
        raw, doc, _ = t.purchase_message(bankfix.make_card(), 400, pin="1234")
        first = await t.send_raw(raw, "0210", doc["11"])
        fields = {k: v for k, v in doc.items() if k not in ("t", "11", "41", "53", "p", "1", "64", "128")}
        again_raw, _, ksn = t.build("0200", fields, stan=doc["11"])  # DE7 from fields: the first's
        again = await t.send_raw(again_raw, "0210", doc["11"])
        await t.close()
        return first, again, ksn
    first, again, ksn = run(go())
    assert again["mac_ok"] and again["53"].lower() == ksn.hex() != first["53"].lower()
    assert (again["39"], again["37"], again["38"]) == (first["39"], first["37"], first["38"])
    assert balance(bank, "ALICE") == 100000 - 400 and len(postings(bank)) == 2


def test_concurrent_duplicates_post_once(bank):
    # one connection handles its messages in order, so race the host's handler directly: one
    # 0200 (same DE11 + DE7) under 4 successive KSNs, from 4 threads at once. Each is answered
    # with the first answer, or 63 when a later KSN got in first (the counter only goes up);
    # the ledger's unique constraints settle the rest: posted once.
    async def build():
        t = await signed_on(bank)
        raw, doc, _ = t.purchase_message(bankfix.make_card(), 300)   # no PIN block: same bytes but DE53
        fields = {k: v for k, v in doc.items() if k not in ("t", "11", "41", "53", "p", "1", "64", "128")}
        copies = [raw] + [t.build("0200", fields, stan=doc["11"])[0] for _ in range(3)]
        await t.close()
        return copies
    copies = run(build())
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outs = [wire.decode(o.answer) for o in pool.map(lambda r: bank.host.bank.handle("PT000001", r), copies)]
    approved = [o for o in outs if o["39"] == "00"]
    assert approved and all(o["39"] == "63" for o in outs if o["39"] != "00")
    assert len({(o["37"], o["38"]) for o in approved}) == 1
    assert balance(bank, "ALICE") == 100000 - 300 and len(postings(bank)) == 2


def test_reversal_undoes_and_unknown_reversal_25(bank):
    async def go():
        t = await signed_on(bank)
        raw, doc, _ = t.purchase_message(bankfix.make_card(), 1500, pin="1234")
        ans = await t.send_raw(raw, "0210", doc["11"])
        rev = await t.reverse(doc)
        rev_again = await t.reverse(doc)            # a re-sent 0400 (new STAN): nothing more
        unknown = dict(doc, **{"11": "999999"})
        rev_unknown = await t.reverse(unknown)
        await t.close()
        return ans, rev, rev_again, rev_unknown
    ans, rev, rev_again, rev_unknown = run(go())
    assert ans["39"] == "00"
    assert (rev["t"], rev["39"], rev["mac_ok"]) == ("0410", "00", True)
    assert rev_again["39"] == "00" and rev_unknown["39"] == "25"
    assert balance(bank, "ALICE") == 100000 and balance(bank, "SHOP") == 0
    assert sorted(p["amount"] for p in postings(bank)) == [-1500, -1500, 1500, 1500]


def test_forged_certificate_cannot_connect(bank, tmp_path, caplog):
    rogue = tmp_path / "rogue"
    pki.init(rogue)
    files = pki.issue_device(rogue, "PT000001")          # a registered serial, the wrong CA

    async def go():
        t = await bankfix.terminal(bank.state, bank.address, "PT000001", files["cert"],
                                   files["key"])
        await t.sign_on()
    with pytest.raises((TerminalError, ssl.SSLError, ConnectionError)):
        run(go())
    assert "PT000001" not in bank.host.sessions
    assert logged(caplog, "refused: TLS handshake: [SSL: CERTIFICATE_VERIFY_FAILED]")


def test_unregistered_serial_refused(bank, caplog):
    files = pki.issue_device(bank.state.pki_dir, "PT000099")   # our CA, never registered

    async def go():
        t = await bankfix.terminal(bank.state, bank.address, "PT000099", files["cert"],
                                   files["key"])
        await t.sign_on()
    with pytest.raises((TerminalError, ConnectionError)):
        run(go())
    assert logged(caplog, "'PT000099' is not a registered device")


def test_other_devices_certificate_for_a_registered_serial_refused(bank, caplog):
    # a second certificate for PT000001 from our CA: not the one the ledger pinned
    pki.issue_device(bank.state.pki_dir, "PT000001")

    async def go():
        t = await bankfix.terminal(bank.state, bank.address, "PT000001")
        await t.sign_on()
    with pytest.raises((TerminalError, ConnectionError)):
        run(go())
    assert logged(caplog, "other than its registered one")


def test_terminal_id_must_be_the_certificates_serial(bank):
    async def go():
        t = await signed_on(bank)
        t.serial = "PT000002"
        ans = await t.balance("ALICE")
        await t.close()
        return ans
    assert run(go())["39"] == "57"


def test_ksn_of_another_initial_key_63(bank):
    async def go():
        t = await signed_on(bank)
        t.ikid = bankfix.initial_key_id("PT000002")        # keys and KSNs of another device
        t.initial_key = bank.state.hsm.initial_key(t.ikid)
        ans = await t.balance("ALICE")
        await t.close()
        return ans
    ans = run(go())
    assert ans["39"] == "63" and "54" not in ans and not ans["mac_ok"]


def test_balance_and_transfer(bank):
    async def go():
        t = await signed_on(bank)
        out = {"balance": await t.balance("ALICE"),
               "to_own": await t.transfer("ALICE", "BOB", 2500),
               "to_payee": await t.transfer("BOB", "CAROL", 1000),
               "from_payee": await t.transfer("CAROL", "BOB", 1),
               "to_stranger": await t.transfer("ALICE", "SHOP", 1),
               "too_much": await t.transfer("BOB", "ALICE", 999999),
               "not_mine": await t.balance("SHOP"),
               "after": await t.balance("BOB")}
        await t.close()
        return out
    out = run(go())
    assert out["balance"]["39"] == "00" and out["balance"]["54"] == "1002978C000000100000"
    assert out["to_own"]["39"] == "00" and out["to_payee"]["39"] == "00"
    assert [out[k]["39"] for k in ("from_payee", "to_stranger", "too_much", "not_mine")] == \
        ["57", "57", "51", "57"]
    assert out["after"]["54"] == "1002978C000000006500"
    assert (balance(bank, "ALICE"), balance(bank, "BOB"), balance(bank, "CAROL")) == \
        (97500, 6500, 1000)


def test_holds_reduce_the_available_balance(bank):
    bank.state.ledger.place_hold("H1", "BOB", 4000, "test")

    async def go():
        t = await signed_on(bank)
        out = (await t.balance("BOB"), await t.transfer("BOB", "ALICE", 1500))
        await t.close()
        return out
    bal, tr = run(go())
    assert bal["54"] == "1002978C000000001000" and tr["39"] == "51"


_api = bankfix.api


def test_pushed_request_paid_from_the_bound_account(bank):
    async def go():
        t = await signed_on(bank)
        status, req = await asyncio.to_thread(_api, bank, "POST", "/payment-requests", {
            "device": "PT000001", "order": "A-1001",
            "amount": 1250, "currency": "978"})
        assert status == 201 and req["status"] == "pushed"
        push = await asyncio.wait_for(t.pushes.get(), 10)
        assert push["mac_ok"] and push["37"] == req["id"] and push["48"] == "ORD=A-1001"
        assert push["4"] == "000000001250" and push["43"].rstrip() == "Corner Bakery"
        paid = await t.pay_request(push, "ALICE")
        again = await t.pay_request(push, "ALICE")       # a second payment of the same order
        await t.close()
        return req, paid, again
    req, paid, again = run(go())
    assert paid["39"] == "00" and again["39"] == "12"
    status, now = _api(bank, "GET", "/payment-requests/" + req["id"])
    assert status == 200 and now["status"] == "paid" and now["rrn"] == paid["37"]
    assert balance(bank, "ALICE") == 100000 - 1250


def test_pushed_request_refused_and_checks(bank):
    async def go():
        t = await signed_on(bank)
        _, req = await asyncio.to_thread(_api, bank, "POST", "/payment-requests", {
            "device": "PT000001", "order": "A-1002",
            "amount": 990, "currency": "978"})
        push = await asyncio.wait_for(t.pushes.get(), 10)
        wrong_account = await t.pay_request(push, "SHOP")
        refused = await t.refuse_request(push)
        late = await t.pay_request(push, "ALICE")
        await t.close()
        return req, wrong_account, refused, late
    req, wrong_account, refused, late = run(go())
    assert wrong_account["39"] == "57"
    assert (refused["t"], refused["39"]) == ("0630", "00") and late["39"] == "12"
    assert _api(bank, "GET", "/payment-requests/" + req["id"])[1]["status"] == "refused"
    # a device that is not signed on gets nothing pushed
    status, err = _api(bank, "POST", "/payment-requests", {
        "device": "PT000002", "order": "1", "amount": 1, "currency": "978"})
    assert status == 409 and "not signed on" in err["error"]
    assert _api(bank, "POST", "/payment-requests", {"device": "PT000001"})[0] == 400


def test_pushed_request_paid_with_a_card(bank):
    async def go():
        t = await signed_on(bank)
        _, req = await asyncio.to_thread(_api, bank, "POST", "/payment-requests", {
            "device": "PT000001", "order": "K-7", "amount": 450, "currency": "978"}, "Kiosk")
        await asyncio.wait_for(t.pushes.get(), 10)
        wrong = await t.purchase(bankfix.make_card(), 451, pin="1234", order="K-7")
        paid = await t.purchase(bankfix.make_card(), 450, pin="1234", order="K-7")
        await t.close()
        return req, wrong, paid
    req, wrong, paid = run(go())
    assert wrong["39"] == "13" and paid["39"] == "00" and paid["arpc_ok"]
    assert _api(bank, "GET", "/payment-requests/" + req["id"], merchant="Kiosk")[1]["status"] == "paid"


def test_no_clear_pin_pin_block_or_pan_in_logs_or_database(bank, caplog):
    pin_blocks = []

    async def go():
        t = await signed_on(bank)
        card = bankfix.make_card()
        for pin in ("1234", "8642"):
            raw, doc, _ = t.purchase_message(card, 321, pin=pin)
            pin_blocks.append(doc["52"])
            await t.send_raw(raw, "0210", doc["11"])
            await t.send_raw(raw, "0210", doc["11"])     # and its duplicate (idempotency table)
        await t.reverse(doc)
        await t.close()
    run(go())
    log = caplog.text
    dump = json.dumps(bank.state.ledger.dump(), default=str)
    assert "476173******0010" in log                      # the log did record the purchases
    assert bank.state.ledger.transactions()               # and the database
    pan = bankfix.CARD["pan"]
    for text in (log, dump):
        assert pan not in text and pan.encode().hex() not in text.lower()
        for block in pin_blocks:
            assert block.lower() not in text.lower()
    cells = [str(c) for rows in bank.state.ledger.dump().values() for row in rows for c in row]
    assert "1234" not in cells and "8642" not in cells
    assert not any(w in ("1234", "8642") for w in log.replace(":", " ").split())
