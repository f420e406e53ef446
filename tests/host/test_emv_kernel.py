"""The EMV kernel (lib/emv/kernel.py) on the device, in whole transactions against the rig's EMV
test cards (tools/emvcard) in the contact slot and on the NFC antenna. The host plays the
issuer: it checks the card's ARQC from DE55 (decoded by pyemv) with tools/emvcard/cryptogram.py
and answers with an ARPC, then checks the card's TC after completion.

Each test uses its own card ("profile#tag": fresh counters) so that tests do not depend on
each other's PIN tries or ATCs.
"""

import contextlib
import shutil

import pytest

import emvfix
from tools import emvcard
from tools.bank.hsm import Hsm
from tools.device import Device
from tools.emvcard import cryptogram
from tools.emvcard.tlv import tlv
from tools.vdevice.spawn import VDeviceProcess

TC, ARQC, AAC = 0x40, 0x80, 0x00


@pytest.fixture(scope="module")
def handheld(request, firmware_image, tmp_path_factory):
    """A virtual handheld of this module's own, with a 512K heap: on the unix port the drivers
    and the kernel are bytecode in the heap (frozen in flash on the board) beside the simulated
    buses, and in the session's 256K what is left is too fragmented for a run of transactions.
    The kernel's own working set is measured by `python -m tools.bench emv`."""
    if request.config.getoption("--port"):
        pytest.skip("drives the virtual handheld's rig; this run is on a real board")
    state = tmp_path_factory.mktemp("emv-vdevice")
    img = state / "flash.img"
    shutil.copyfile(firmware_image, img)
    vd = VDeviceProcess(img, state)
    dev = Device(vd.repl)
    dev.soft_reset()  # what boot and main.py printed is behind us
    try:
        yield vd, dev
    finally:
        dev.close()
        vd.stop()


@pytest.fixture(scope="module")
def device(handheld):
    return handheld[1]


@pytest.fixture(scope="module")
def emv(handheld):
    vdevice, device = handheld
    emvfix.attach(vdevice, device)

    class Rig:
        def insert(self, card):
            device.exec("asyncio.run(slot.deactivate())")
            vdevice.rig.call("do", name="card", action="insert", applet="emv:" + card, atr="t1")

        def place(self, card):
            vdevice.rig.call("do", name="nfc", action="place", applet="emv:" + card)

        def pins(self, *pins):
            device.exec("PINS[:] = %r; ASKED[:] = []; GIVEN[:] = []" % [p.encode() for p in pins])

        def contact(self, card, amount=2500, *pins, **kw):
            self.insert(card)
            self.pins(*pins)
            args = "".join(", %s=%r" % kv for kv in kw.items())
            return device.eval("contact(%d%s)" % (amount, args), timeout=60)

        def contactless(self, card, amount=2500):
            self.place(card)
            return device.eval("contactless(%d)" % amount, timeout=60)

        def finish(self, arc, auth=None, scripts=None):
            return device.eval("finish(%r, %r, %r)" % (arc, auth, scripts), timeout=60)

    try:
        yield Rig()
    finally:
        try:
            device.exec("asyncio.run(slot.deactivate())")
        finally:
            emvfix.detach(vdevice)


@contextlib.contextmanager
def on_device(device, do, undo):
    """do, then undo (both device code) whatever happens in between."""
    device.exec(do)
    try:
        yield
    finally:
        device.exec(undo)


def bits(hexstr, byte, mask):
    return bool(bytes.fromhex(hexstr)[byte] & mask)


# ---- contact ---------------------------------------------------------------------------------

def test_contact_offline_pin_then_online_with_arpc(emv, device):
    r = emv.contact("visa-classic#arpc", 2500, "1234")
    assert r["outcome"] == "online", r
    assert (r["aid"], r["label"], r["pan"], r["psn"]) == ("a0000000031010", "VISA", "4761739001010010", "01")
    assert r["cvm"] == "410302"  # offline plaintext PIN, always, successful
    assert device.eval("ASKED") == [3]  # the try counter from GET DATA 9F17
    assert device.eval("[bytes(b) for b in GIVEN]") == [b"\x00" * 4]  # the PIN wiped after VERIFY
    # TVR: DDA passed; a new card (last online ATC 0); floor limit 0 exceeded and the lower
    # consecutive offline limit (9F14 00) too: online. TSI: ODA, CVM, card and
    # terminal risk management.
    assert r["tvr"] == "000800c000" and r["tsi"] == "e800", r
    tags = emvfix.de55(r["icc_data"])
    assert tags[0x9F27] == bytes((ARQC,)) and tags[0x9F02] == bytes.fromhex("000000002500")
    assert tags[0x95] == bytes.fromhex(r["tvr"]) and tags[0x9F34] == bytes.fromhex("410302")
    assert tags[0x84] == bytes.fromhex("a0000000031010")
    auth = emvfix.issuer_answer(r)  # checks the ARQC as the bank does
    f = emv.finish(b"00", auth)
    assert f["outcome"] == "approved", f
    assert f["tsi"] == "f800"  # issuer authentication performed (EXTERNAL AUTHENTICATE)
    assert not bits(f["tvr"], 4, 0x40)  # the ARPC passed
    tags = emvfix.de55(f["icc_data"])
    assert tags[0x9F27] == bytes((TC,))
    emvfix.check_cryptogram(f)  # the card's TC, over the second GENERATE AC's data


@pytest.mark.parametrize("card, pin", [("visa-classic", "1234"), ("visa-cvn18", "1234"), ("visa-cvn22", "4321"),
                                       ("mastercard-sda", None), ("mastercard-cvn17", "1234")])
def test_each_cryptogram_version_round_trips_through_the_hsm(emv, tmp_path, card, pin):
    # card -> kernel -> the bank's HSM (tools/bank/hsm.py): the ARQC of DE55 checks, one with a
    # bit of its cryptogram off does not; the HSM's issuer authentication data (ARPC method 1
    # or 2, as the card's version has it) goes through EXTERNAL AUTHENTICATE and the card's TC
    # checks too. Contactless: the ARQC of the GPO answer.
    app = emvcard.load_profile(card)["apps"][0]
    bank = Hsm.create(tmp_path / "keys.json")
    bank.add_issuer_key(app["issuer"], bytes.fromhex(app["imk_ac"]))
    pan, psn = app["pan"], app["psn"]
    r = emv.contact(card + "#versions", 2500, *([pin] if pin else []))
    assert r["outcome"] == "online", r
    tags = emvfix.de55(r["icc_data"])
    assert cryptogram.version_of(tags, pan)[0] == app["cvn"]
    assert bank.verify_arqc(app["issuer"], pan, psn, tags)
    tampered = dict(tags)
    tampered[0x9F26] = bytes((tags[0x9F26][0] ^ 0x01,)) + tags[0x9F26][1:]
    assert not bank.verify_arqc(app["issuer"], pan, psn, tampered)
    f = emv.finish(b"00", bank.arpc(app["issuer"], pan, psn, tags, b"00"))
    assert f["outcome"] == "approved" and not bits(f["tvr"], 4, 0x40), f
    final = emvfix.de55(f["icc_data"])
    assert final[0x9F27] == bytes((TC,)) and bank.verify_arqc(app["issuer"], pan, psn, final)
    if app["afl_contactless"]:
        r = emv.contactless(card + "#versions-tap", 2500)
        assert r["outcome"] == "online", r
        assert bank.verify_arqc(app["issuer"], pan, psn, emvfix.de55(r["icc_data"]))


# ---- CDA (EMV Book 2 6.6) -------------------------------------------------------------------------

def _commands(device):
    """Record (INS, P1) of every command the kernel sends from now on (MANGLE)."""
    device.exec("SENT = []; MANGLE[0] = lambda a, r: SENT.append((a[1], a[2])) or r")


def test_cda_card_signs_both_cryptograms(emv, device, tmp_path):
    app = emvcard.load_profile("visa-cda")["apps"][0]
    bank = Hsm.create(tmp_path / "keys.json")
    bank.add_issuer_key(app["issuer"], bytes.fromhex(app["imk_ac"]))
    _commands(device)
    try:
        r = emv.contact("visa-cda#flow", 2500, "1234")
        first = device.eval("SENT")
        assert r["outcome"] == "online" and r["tvr"] == "000800c000", r  # no ODA bit: CDA passed
        tags = emvfix.de55(r["icc_data"])
        assert bank.verify_arqc(app["issuer"], app["pan"], app["psn"], tags)  # the AC signed
        device.exec("SENT[:] = []")
        f = emv.finish(b"00", bank.arpc(app["issuer"], app["pan"], app["psn"], tags, b"00"))
        second = device.eval("SENT")
    finally:
        device.exec("MANGLE[0] = None")
    # no INTERNAL AUTHENTICATE; GENERATE AC with P1 bit 5 (CDA signature) for the ARQC and the TC
    assert 0x88 not in [ins for ins, _ in first] and (0xAE, 0x90) in first and (0xAE, 0x50) in second
    assert f["outcome"] == "approved" and not bits(f["tvr"], 0, 0x04), f
    final = emvfix.de55(f["icc_data"])
    assert final[0x9F27] == bytes((TC,)) and bank.verify_arqc(app["issuer"], app["pan"], app["psn"], final)


@pytest.mark.parametrize("card, why", [("cda-plain-ac", "a plain AC to a request for CDA"),
                                       ("cda-wrong-hash", "transaction data hash code")])
def test_cda_failure_declines_offline(emv, card, why):
    r = emv.contact(card + "#flow", 2500, "1234")
    assert (r["outcome"], r["reason"]) == ("declined", "CDA failed: " + why), r
    assert bits(r["tvr"], 0, 0x04) and r["cryptogram"] is None  # never sent online


def test_cda_keys_that_do_not_recover_fail_cda_before_generate_ac(emv, device):
    # The ICC certificate (record 2 of SFI 3) damaged on the line: CDA failed at ODA, the
    # GENERATE AC asks no signature, and TAC online has "CDA failed": the issuer decides.
    device.exec("SENT = []\n"
                "def _damage(a, r):\n"
                "    SENT.append((a[1], a[2]))\n"
                "    return r[:20] + bytes((r[20] ^ 1,)) + r[21:] if a[1:4] == b'\\xb2\\x02\\x1c' else r\n"
                "MANGLE[0] = _damage")
    try:
        r = emv.contact("visa-cda#badkey", 2500, "1234")
        sent = device.eval("SENT")
    finally:
        device.exec("MANGLE[0] = None")
    assert r["outcome"] == "online" and bits(r["tvr"], 0, 0x04) and "ICC certificate" in r["reason"], r
    assert (0xAE, 0x80) in sent and 0x88 not in [ins for ins, _ in sent]


def test_terminal_without_cda_does_dda_with_a_cda_card(emv, device):
    _commands(device)
    try:
        with on_device(device, "kernel.config.capabilities = b'\\x20\\xc8\\xc0'",
                       "kernel.config.capabilities = TerminalConfig().capabilities"):
            r = emv.contact("visa-cda#nocda", 2500, "1234")
        sent = device.eval("SENT")
    finally:
        device.exec("MANGLE[0] = None")
    assert r["outcome"] == "online" and r["tvr"] == "000800c000", r
    assert 0x88 in [ins for ins, _ in sent] and (0xAE, 0x80) in sent  # DDA, a plain ARQC


def test_cda_card_contactless_pays_with_fdda(emv):
    r = emv.contactless("visa-cda#tap", 2500)
    assert r["outcome"] == "online" and r["tvr"][:2] == "00", r
    emvfix.check_cryptogram(r)


def test_contact_wrong_pin_then_right(emv, device):
    r = emv.contact("visa-classic#wrongpin", 2500, "9999", "1234")
    assert r["outcome"] == "online" and r["cvm"] == "410302", r
    assert device.eval("ASKED") == [3, 2]  # 63C2 after the wrong one


def test_contact_pin_try_limit_falls_to_online_pin(emv, device):
    r = emv.contact("visa-classic#ptl", 2500, "0000", "0000", "0000")
    assert device.eval("ASKED") == [3, 2, 1]
    # 41 03 failed (apply next), 42 03 online PIN: entered later for DE52, result unknown.
    assert r["cvm"] == "420300" and r["online_pin"] is True, r
    assert bits(r["tvr"], 2, 0x20) and bits(r["tvr"], 2, 0x04)  # PIN try limit, online PIN entered
    assert not bits(r["tvr"], 2, 0x80)
    emvfix.check_cryptogram(r)
    # The next transaction: the try counter is 0, no VERIFY is sent and no PIN asked.
    r = emv.contact("visa-classic#ptl", 2500)
    assert device.eval("ASKED") == [] and r["cvm"] == "420300", r


def test_contact_issuer_declines(emv):
    r = emv.contact("visa-classic#issuerdecline", 2500, "1234")
    assert r["outcome"] == "online"
    f = emv.finish(b"05", emvfix.issuer_answer(r, b"05"))
    assert f["outcome"] == "declined" and "05" in f["reason"], f
    assert emvfix.de55(f["icc_data"])[0x9F27] == bytes((AAC,))
    emvfix.check_cryptogram(f)


def test_contact_wrong_arpc(emv):
    r = emv.contact("visa-classic#badarpc", 2500, "1234")
    auth = bytearray(emvfix.issuer_answer(r))
    auth[0] ^= 1
    f = emv.finish(b"00", bytes(auth))
    # EXTERNAL AUTHENTICATE 6300: issuer authentication failed; the card then declines.
    assert bits(f["tvr"], 4, 0x40) and f["outcome"] == "declined", f


def test_issuer_authentication_data_of_no_arpc_method_is_not_sent(emv, device):
    # 91 of 7 bytes is neither method's (8 to 16): the kernel sends no EXTERNAL AUTHENTICATE
    # and marks issuer authentication failed; the card, with no ARPC, declines.
    r = emv.contact("visa-classic#shortarpc", 2500, "1234")
    device.exec("SENT = []; MANGLE[0] = lambda a, r: SENT.append(a[1]) or r")
    try:
        f = emv.finish(b"00", emvfix.issuer_answer(r)[:7])
    finally:
        device.exec("MANGLE[0] = None")
    assert bits(f["tvr"], 4, 0x40) and f["outcome"] == "declined", f
    assert 0x82 not in device.eval("SENT") and 0xAE in device.eval("SENT")


def test_contact_unable_to_go_online(emv):
    r = emv.contact("visa-classic#offline", 2500, "1234")
    assert r["outcome"] == "online"
    # No answer from the host: the default action codes. TAC default DC4000A800 has the floor
    # limit bit that is set: AAC asked with ARC Z3.
    f = emv.finish(None)
    assert f["outcome"] == "declined", f
    assert emvfix.de55(f["icc_data"])[0x9F27] == bytes((AAC,))


def test_offline_decline(emv):
    r = emv.contact("decline", 2500, "1234")
    assert r["outcome"] == "declined" and r["reason"], r
    tags = emvfix.de55(r["icc_data"])
    assert tags[0x9F27] == bytes((AAC,))
    emvfix.check_cryptogram(r)  # an AAC is a real cryptogram too


def test_blocked_application(emv):
    r = emv.contact("blocked", 2500)
    assert r["outcome"] == "end" and "no application" in r["reason"], r
    assert r["aid"] is None or r["icc_data"] is None


def test_cardholder_choice(emv, device):
    with on_device(device, "CHOICE[0] = 1; LABELS[:] = []", "CHOICE[0] = 0"):
        r = emv.contact("two-apps", 2500, "1234")
    assert device.eval("LABELS") == [["VISA CREDIT", "VISA DEBIT"]]
    assert r["aid"] == "a0000000032010" and r["label"] == "VISA DEBIT", r
    assert r["outcome"] == "online"
    emvfix.check_cryptogram(r)


def test_aid_list_when_the_card_has_no_pse(emv, device):
    # SELECT 1PAY.SYS.DDF01 answered 6A82 (a shim on the device): the terminal's AID list, by
    # partial selection (A000000003, then P2 02 for the next occurrence) finds both applications.
    no_pse = "MANGLE[0] = lambda a, r: b'\\x6a\\x82' if a[5:19] == b'1PAY.SYS.DDF01' else r; LABELS[:] = []"
    with on_device(device, no_pse, "MANGLE[0] = None"):
        r = emv.contact("two-apps#aidlist", 2500, "1234")
    assert device.eval("LABELS") == [["VISA CREDIT", "VISA DEBIT"]]
    assert r["outcome"] == "online" and r["aid"] == "a0000000031010", r


def test_interface_error_is_the_kernels_card_error(emv, device):
    # The PN532 driver's CardRemoved after the SELECT (the card left the field): the kernel's
    # CardError (InterfaceError, sw None) comes out, not a driver class and not an outcome.
    emv.place("visa-classic#gone")
    gone = "MANGLE[0] = lambda a, r: (_ for _ in ()).throw(pn532.CardRemoved('gone')) if a[1] == 0xA8 else r"
    with on_device(device, gone, "MANGLE[0] = None"):
        got = device.eval("attempt(contactless, 1500)")
    assert got[0] == "InterfaceError" and "CardRemoved" in got[1], got
    device.exec("from emv import CardError\nfrom emv.apdu import InterfaceError")
    assert device.eval("issubclass(InterfaceError, CardError)") is True


def test_a_held_ca_key_file_is_closed_once_the_key_is_read(emv, device):
    # The terminal opens the CA key file before the card is read (capk.Store.hold); the kernel
    # closes it once it has the transaction's one CA key, before the RSA work (the payment's
    # fullest heap). DDA passes, and the next card's key is read from the file as before.
    device.exec("store.hold()")
    assert device.eval("store._held is not None")
    for _ in range(2):
        r = emv.contact("visa-classic#arpc", 2500, "1234")
        assert r["outcome"] == "online" and r["tvr"][:2] == "00" and bits(r["tsi"], 0, 0x80), r  # DDA passed
        assert device.eval("store._held") is None


def test_bad_certificate_fails_dda(emv):
    r = emv.contact("bad-cert", 2500, "1234")
    assert r["outcome"] == "online", r  # TAC online has DDA failed: the issuer decides
    assert bits(r["tvr"], 0, 0x08) and not bits(r["tvr"], 0, 0x80), r  # DDA failed, ODA was performed
    assert bits(r["tsi"], 0, 0x80)
    assert "ODA" in r["reason"]


def test_sda_card(emv):
    r = emv.contact("mastercard-sda", 2500)
    assert r["outcome"] == "online", r
    assert r["tvr"][:2] == "00" and bits(r["tsi"], 0, 0x80)  # SDA performed and passed
    assert r["online_pin"] is True and r["cvm"] == "420300"
    emvfix.check_cryptogram(r)


def test_expired_card(emv):
    r = emv.contact("expired", 2500, "1234")
    assert bits(r["tvr"], 1, 0x40), r  # expired application
    assert r["outcome"] == "online"  # TAC/IAC online (DC40...) have the expired bit


@pytest.mark.parametrize("card", ["malformed-tlv", "lying-lengths"])
def test_malformed_card_data_ends(emv, card):
    r = emv.contact(card, 2500, "1234")
    assert r["outcome"] == "end" and "TlvError" in r["reason"], r


# ---- contactless -----------------------------------------------------------------------------

def test_contactless_short_path(emv, device):
    nacks = device.eval("nfc.nacks")
    r = emv.contactless("visa-classic#cl", 1500)
    assert r["outcome"] == "online", r
    # Every answer (the GPO's is ~200 bytes) read whole in one I2C read: none asked for again.
    assert device.eval("nfc.nacks") == nacks
    # PPSE, SELECT, GPO (the ARQC in its answer), READ RECORD SFI 2 #1, SFI 3 #1 and #2: the
    # card is done after six commands, fDDA is checked after.
    assert r["commands"] == 6
    assert r["tsi"][:2] == "80" and r["tvr"][:2] == "00", r  # fDDA performed and passed
    assert r["track2"].startswith("4761739001010010d3012")
    emvfix.check_cryptogram(r)
    f = emv.finish(b"00")
    assert f["outcome"] == "approved"


def test_contactless_decline_and_other_interface(emv):
    r = emv.contactless("decline#cl", 1500)
    assert r["outcome"] == "declined", r
    r = emv.contactless("mastercard-sda#cl", 1500)  # no PPSE: contact only
    assert r["outcome"] == "try another interface", r


# On the device: the card leaves the field once it has answered its last command, last = (INS,
# P1 or None for any, P2): any command after that is the PN532's CardRemoved. sign: the INS of
# the answer whose signature (9F4B) is damaged on the way, or None. SENT: (INS, P1) of each.
LEAVES = """
LEFT, SENT = [], []
def leaves(last, sign):
    def mangle(a, r):
        if LEFT:
            raise pn532.CardRemoved('the card has left the field')
        SENT.append((a[1], a[2]))
        if a[1] == last[0] and last[1] in (None, a[2]) and a[3] == last[2]:
            LEFT.append(1)
        if a[1] == sign:
            i = r.find(b'\\x9f\\x4b') + 10
            r = r[:i] + bytes((r[i] ^ 0x01,)) + r[i + 1:]
        return r
    return mangle
"""


def gone_after_last_answer(emv, device, card, sign):
    """The contactless transaction of a card that leaves after its last answer: its result,
    online after six commands (nothing was sent to the card once it had gone)."""
    device.exec(LEAVES)
    last = "MANGLE[0] = leaves((0xB2, 2, 0x1C), %r)" % (0xA8 if sign else None)  # SFI 3 #2; the GPO's fDDA
    with on_device(device, last, "MANGLE[0] = None"):
        r = emv.contactless(card, 1500)
    assert device.eval("LEFT") == [1]
    assert r["outcome"] == "online" and r["commands"] == 6, r
    return r


def test_contactless_card_removed_after_its_last_answer_completes(emv, device):
    # EMV Book C-3: the card may leave after its last answer; the records are parsed, fDDA
    # checked and the decision made without it.
    r = gone_after_last_answer(emv, device, "visa-classic#left", False)
    assert r["tsi"][:2] == "80" and r["tvr"][:2] == "00", r  # fDDA performed and passed
    assert r["pan"] == "4761739001010010" and r["expiry"]  # from the records, parsed after
    emvfix.check_cryptogram(r)


def test_contactless_done_once_the_card_has_answered(emv, device):
    # kernel.transact's done (the terminal releases the card there and lets go of the PN532's
    # driver, before fDDA): awaited once, after the card's sixth and last answer, nothing sent
    # after it; fDDA is then checked without the card. An M/Chip card answers GENERATE AC
    # after its records: no done from the kernel (the terminal releases it when it returns).
    device.exec(LEAVES + "DONE = []\nasync def done():\n    DONE.append(len(SENT))\n")
    with on_device(device, "MANGLE[0] = leaves((0xB2, 2, 0x1C), None)", "MANGLE[0] = None"):
        emv.place("visa-classic#done")
        r = device.eval("contactless(1500, done=done)", timeout=60)
    assert device.eval("DONE") == [6] and device.eval("LEFT") == [1], r
    assert r["outcome"] == "online" and r["commands"] == 6, r
    assert r["tsi"][:2] == "80" and r["tvr"][:2] == "00", r  # fDDA performed and passed
    device.exec("LEFT[:] = []; SENT[:] = []; DONE[:] = []")
    with on_device(device, "MANGLE[0] = leaves((0xAE, None, 0), None)", "MANGLE[0] = None"):
        emv.place("mastercard-cda#done")
        r = device.eval("contactless(2500, done=done)", timeout=60)
    assert device.eval("DONE") == [] and device.eval("LEFT") == [1], r
    assert r["outcome"] == "online", r


def test_contactless_fdda_failure_found_after_removal(emv, device):
    # The signature fails once the card has gone: the TVR says so (DDA failed) and the card's
    # ARQC goes online with it, as when the card stayed.
    r = gone_after_last_answer(emv, device, "visa-classic#leftbad", True)
    assert bits(r["tvr"], 0, 0x08) and bits(r["tsi"], 0, 0x80), r  # DDA failed, ODA performed
    assert "fDDA" in r["reason"], r


@pytest.mark.parametrize("damage", [
    # The GPO answer's 77 length (81 xx form) claims 5 bytes more than follow.
    "lambda a, r: r[:2] + bytes((r[2] + 5,)) + r[3:] if a[1] == 0xA8 else r",
    # A record cut in the middle of an object.
    "lambda a, r: r[:len(r) // 2] + r[-2:] if a[1] == 0xB2 and a[3] == 0x1C else r",
    # A record with its 70 template's length shorter than its contents (the rest is junk).
    "lambda a, r: r[:1] + bytes((r[1] - 9,)) + r[2:] if a[1] == 0xB2 and a[3] == 0x14 else r",
])
def test_contactless_damaged_answers_end(emv, device, damage):
    # The cards' contactless answers are well formed; these are damaged on the way (a shim around
    # the PN532 target's transceive on the device), as a lying card would send them.
    with on_device(device, "MANGLE[0] = " + damage, "MANGLE[0] = None"):
        r = emv.contactless("visa-classic#damaged", 1500)
    assert r["outcome"] == "end" and "TlvError" in r["reason"], r


# ---- contactless M/Chip (EMV Book C-2): GENERATE AC with CDA after the records ------------------

def tapped_mchip(emv, device, card, amount=2500, sign=False):
    """A tapped M/Chip card that leaves once it has answered GENERATE AC (sign: its signature
    damaged on the way): the result, and the commands (INS, P1) it was sent."""
    device.exec(LEAVES)
    last = "MANGLE[0] = leaves((0xAE, None, 0), %r)" % (0xAE if sign else None)
    with on_device(device, last, "MANGLE[0] = None"):
        r = emv.contactless(card, amount)
    assert device.eval("LEFT") == [1], r
    return r, device.eval("SENT")


def test_mchip_tapped_cda_checked_after_the_card_has_gone(emv, device):
    r, sent = tapped_mchip(emv, device, "mastercard-cda#tap")
    # PPSE, SELECT, GPO (AIP and AFL only), READ RECORD x3, GENERATE AC for an ARQC with CDA
    # (P1 90): seven commands, the last the GENERATE AC; the keys and the signature after.
    assert [ins for ins, _ in sent] == [0xA4, 0xA4, 0xA8, 0xB2, 0xB2, 0xB2, 0xAE] and sent[-1] == (0xAE, 0x90)
    assert r["outcome"] == "online" and r["commands"] == 7, r
    assert not bits(r["tvr"], 0, 0x04 | 0x80) and bits(r["tsi"], 0, 0x80), r  # CDA performed, passed
    assert bits(r["tvr"], 3, 0x80)  # above the reader's contactless floor limit (0): online
    assert r["cvm"] == "1f0002" and not r["online_pin"]  # under the CVM required limit: no CVM
    tags = emvfix.check_cryptogram(r)  # the AC from inside the signature is the card's ARQC
    assert tags[0x9F10][1] == 0x10 and tags[0x84] == bytes.fromhex("a0000000041010")  # M/Chip CVN 16
    f = emv.finish(b"00")  # the card has gone: the issuer's answer decides
    assert f["outcome"] == "approved", f


def test_mchip_tapped_signature_that_fails_declines_without_the_bank(emv, device):
    # Damaged on the way, or a hash that leaves out the IAD: found once the card has gone; "CDA
    # failed" in the TVR and declined offline (Book C-2 S910.7 ends the transaction), the
    # cryptogram never sent online.
    r, _ = tapped_mchip(emv, device, "mastercard-cda#tapbad", sign=True)
    assert r["outcome"] == "declined" and r["reason"].startswith("CDA failed: "), r
    assert bits(r["tvr"], 0, 0x04) and r["cryptogram"] is None and r["icc_data"] is None, r
    r, _ = tapped_mchip(emv, device, "mastercard-cda-wrong-hash#tap")
    assert (r["outcome"], r["reason"]) == ("declined", "CDA failed: transaction data hash code"), r
    assert bits(r["tvr"], 0, 0x04) and r["cryptogram"] is None, r


def test_mchip_tapped_from_the_cvm_limit_asks_the_online_pin(emv, device):
    r, _ = tapped_mchip(emv, device, "mastercard-cda#tapcvm", amount=5000)
    assert r["outcome"] == "online" and r["online_pin"] and r["cvm"] == "420300", r  # its list's online PIN
    emvfix.check_cryptogram(r)


def test_mchip_card_inserted_is_cda_on_contact(emv, device):
    _commands(device)
    try:
        r = emv.contact("mastercard-cda#slot", 2500)
        sent = device.eval("SENT")
    finally:
        device.exec("MANGLE[0] = None")
    assert r["outcome"] == "online" and not bits(r["tvr"], 0, 0x04 | 0x80), r
    assert (0xAE, 0x90) in sent and 0x88 not in [ins for ins, _ in sent]
    emvfix.check_cryptogram(r)


# ---- issuer scripts --------------------------------------------------------------------------

def script(result, tags, header):
    """An issuer script command for the result's card, MAC'd as its issuer does."""
    issuer = emvcard.issuer_keys(result["pan"])
    return cryptogram.script_command(bytes.fromhex(issuer["imk_smi"]), result["pan"], tags[0x5F34].hex(),
                                     tags[0x9F36], tags[0x9F26], header)


def test_issuer_scripts_before_and_after(emv):
    r = emv.contact("visa-classic#scripts", 2500, "1234")
    auth = emvfix.issuer_answer(r)
    tags = emvfix.de55(r["icc_data"])
    unblock_pin = script(r, tags, bytes.fromhex("84240000"))
    block_app = script(r, tags, bytes.fromhex("841E0000"))
    scripts = (tlv(0x71, tlv(0x9F18, b"\x00\x00\x00\x01") + tlv(0x86, unblock_pin))
               + tlv(0x72, tlv(0x9F18, b"\x00\x00\x00\x02") + tlv(0x86, block_app)))
    f = emv.finish(b"00", auth, scripts)
    assert f["outcome"] == "approved", f
    assert f["tsi"] == "fc00" and f["tvr"][8:] == "00", f  # script processing performed, none failed
    # The 72 script ran after the second GENERATE AC: the application is blocked now.
    r = emv.contact("visa-classic#scripts", 2500)
    assert r["outcome"] == "end" and "no application" in r["reason"], r


def test_issuer_script_with_a_wrong_mac(emv):
    r = emv.contact("visa-classic#badscript", 2500, "1234")
    tags = emvfix.de55(r["icc_data"])
    bad = bytearray(script(r, tags, bytes.fromhex("84240000")))
    bad[-1] ^= 1
    f = emv.finish(b"00", emvfix.issuer_answer(r), tlv(0x71, tlv(0x86, bytes(bad))))
    assert f["outcome"] == "approved", f  # the card said 6988 to the script, not to the payment
    assert bits(f["tvr"], 4, 0x20) and not bits(f["tvr"], 4, 0x10), f  # failed before the final AC
    assert bits(f["tsi"], 0, 0x04)


# The reader's limits (TerminalConfig.contactless_limits, EMV Book A 3.1.1): for Visa by default
# EUR 1,000 for a tap, a CVM from EUR 50, online above 0.
def test_contactless_limits_decide_the_interface_and_the_pin(emv, device):
    ttq = "bytes(res.terminal[0x9F66]).hex()"
    r = emv.contactless("visa-classic#limits", 4999)  # under the CVM limit: no PIN
    assert r["outcome"] == "online" and not r["online_pin"], r
    assert device.eval(ttq) == "26800000"  # online cryptogram required, no CVM required
    r = emv.contactless("visa-classic#limits", 5000)  # at the CVM limit: the card asks none, the reader does
    assert r["outcome"] == "online" and r["online_pin"] and r["cvm"] == "020000", r
    assert device.eval(ttq) == "26c00000"  # and CVM required
    emvfix.check_cryptogram(r)  # the card's cryptogram covers the TTQ the terminal sent
    r = emv.contactless("visa-classic#limits", 123456)  # EUR 1,234.56: insert the card
    assert r["outcome"] == "try another interface" and "contactless limit 100000" in r["reason"], r
    assert r["commands"] == 2  # PPSE and SELECT: no GPO, no cryptogram for an amount the tap may not pay
