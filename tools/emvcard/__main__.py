"""python -m tools.emvcard {ca, issuer, card, capk, make-test-cards}: the test cards' personalisation.

  ca --rid A000000003 --index 92 [--bits 1152] [--expiry YYMMDD] --out FILE
  issuer --ca FILE --name NAME --bin 476173 [--expiry MMYY] --out FILE
  card --issuer FILE --name NAME --pan PAN [--psn 01] [--expiry YYMMDD] [--effective YYMMDD]
       [--aid A0000000031010] [--label VISA] [--priority 1] [--oda dda|cda|sda] [--cvm HEX]
       [--no-contactless | --kernel qvsdc|mchip] [--pin 1234] [--pin-try-limit 3] [--offline-amount 5000]
       [--cvn visa-cvn10|visa-cvn18|visa-cvn22|mchip-cvn16|mchip-cvn17] --out FILE
  capk [--cards DIR] --out build/capk.json   the kernel's CA public key file
  make-test-cards [--cards DIR]              the standard set (README.md), TEST keys
"""

import argparse
import json
import os
import sys

from . import CARDS_DIR, cryptogram, perso


def _write(obj, path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def _read(path):
    with open(path) as f:
        return json.load(f)


def _ca_path(cards, rid, index):
    return os.path.join(cards, "ca-%s-%s.json" % (rid, index))


def make_test_cards(cards):
    """The standard set: 3 CA keys, 3 issuers, the cards of README.md."""
    cas = {}
    for rid, index in (("A000000003", "92"), ("A000000003", "94"), ("A000000004", "F1")):
        cas[rid + index] = perso.make_ca(rid, index)
        _write(cas[rid + index], _ca_path(cards, rid, index))
    rogue = perso.make_ca("A000000003", "92")  # signs bad-cert's issuer certificate; not kept
    bank_a = perso.make_issuer(cas["A00000000392"], "bank-a-visa", ["476173"])
    bank_b_mc = perso.make_issuer(cas["A000000004F1"], "bank-b-mastercard", ["541333"])
    bank_b_visa = perso.make_issuer(cas["A00000000394"], "bank-b-visa", ["457199"])
    bank_a_rogue = dict(perso.make_issuer(cas["A00000000392"], "bank-a-visa", ["476173"],
                                          signer=rogue))
    for issuer in (bank_a, bank_b_mc, bank_b_visa):
        _write(issuer, os.path.join(cards, "issuer-%s.json" % issuer["name"]))
    # bad-cert: bank A's master keys (the bank still checks its cryptograms), a key whose
    # certificate a rogue CA signed in the name of A000000003/92
    bank_a_rogue.update({k: bank_a[k] for k in ("imk_ac", "imk_smi", "imk_smc", "bins")})

    def pan(prefix):
        return prefix + perso.luhn(prefix)

    visa = dict(aid="A0000000031010", label="VISA")
    cards_made = [
        perso.make_card("visa-classic", "Bank A Visa, contact + contactless, DDA, offline "
                        "plaintext PIN then online PIN then no CVM; PIN 1234, 3 tries",
                        [perso.make_app(bank_a, pan="4761739001010010", **visa)]),
        perso.make_card("mastercard-sda", "Bank B Mastercard, M/Chip CVN 16, contact only, SDA, "
                        "online PIN",
                        [perso.make_app(bank_b_mc, "A0000000041010", "MASTERCARD",
                                        "5413330089020011", oda="sda", contactless=False,
                                        cvm=perso.CVM_PIN_ONLINE_NONE)]),
        perso.make_card("visa-cvn18", "Bank A Visa, CVN 18 (common session key, the whole IAD "
                        "in the cryptogram, ARPC method 2 with CSU), DDA, contact + contactless",
                        [perso.make_app(bank_a, pan=pan("476173900101011"), cvn="visa-cvn18",
                                        **visa)]),
        perso.make_card("visa-cvn22", "Bank B Visa, CVN 22 (IAD format 2 with a 5-byte CVR, "
                        "ARPC method 2 with CSU), DDA, contact + contactless, PIN 4321",
                        [perso.make_app(bank_b_visa, pan=pan("457199000000002"), cvn="visa-cvn22",
                                        **visa)], pin="4321"),
        perso.make_card("mastercard-cvn17", "Bank B Mastercard, M/Chip CVN 17 (session key from "
                        "ATC and UN, the counters in the cryptogram, ARPC method 1), DDA, "
                        "contact + contactless", [perso.make_app(
                            bank_b_mc, "A0000000041010", "MASTERCARD", pan("541333008902002"),
                            cvn="mchip-cvn17")]),
        perso.make_card("visa-cda", "Bank A Visa with CDA (AIP 3D00: DDA and CDA): its TC and "
                        "ARQC come signed in GENERATE AC; contact + contactless (fDDA)",
                        [perso.make_app(bank_a, pan=pan("476173900101012"), oda="cda", **visa)]),
        perso.make_card("cda-plain-ac", "as visa-cda, but a plain AC (9F26, no 9F4B) to a "
                        "GENERATE AC that asks CDA", [perso.make_app(
                            bank_a, pan=pan("476173900101013"), oda="cda", **visa)],
                        misbehave=["cda-plain-ac"]),
        perso.make_card("cda-wrong-hash", "as visa-cda, but its signature's transaction data hash "
                        "leaves out its IAD", [perso.make_app(
                            bank_a, pan=pan("476173900101014"), oda="cda", **visa)],
                        misbehave=["cda-wrong-hash"]),
        perso.make_card("mastercard-cda", "Bank B Mastercard, M/Chip CVN 16 with CDA (AIP 3D00), "
                        "contact + contactless as M/Chip (Book C-2): tapped, its GPO answers AIP and "
                        "AFL, the records follow, then GENERATE AC with CDA", [perso.make_app(
                            bank_b_mc, "A0000000041010", "MASTERCARD", pan("541333008902003"),
                            oda="cda", cvm=perso.CVM_PIN_ONLINE_NONE, kernel="mchip")]),
        perso.make_card("mastercard-cda-wrong-hash", "as mastercard-cda, but its signature's "
                        "transaction data hash leaves out its IAD", [perso.make_app(
                            bank_b_mc, "A0000000041010", "MASTERCARD", pan("541333008902004"),
                            oda="cda", cvm=perso.CVM_PIN_ONLINE_NONE, kernel="mchip")],
                        misbehave=["cda-wrong-hash"]),
        perso.make_card("two-apps", "Bank A: Visa credit and Visa debit, both priorities "
                        "with 'cardholder confirmation required' (the kernel must ask)",
                        [perso.make_app(bank_a, "A0000000031010", "VISA CREDIT",
                                        pan("476173900101002"), priority=0x81),
                         perso.make_app(bank_a, "A0000000032010", "VISA DEBIT",
                                        pan("476173900101003"), priority=0x82)]),
        perso.make_card("bank-b-debit", "Bank B Visa debit (another bank, CA key 94), DDA, "
                        "contact + contactless, PIN 4321",
                        [perso.make_app(bank_b_visa, "A0000000032010", "VISA DEBIT",
                                        pan("457199000000001"))], pin="4321"),
        perso.make_card("bad-cert", "Bank A Visa whose issuer certificate a wrong CA key "
                        "signed: ODA fails", [perso.make_app(bank_a_rogue, pan=pan(
                            "476173900101004"), **visa)]),
        perso.make_card("expired", "Bank A Visa whose application expired (5F24 2023-12-31; "
                        "certificates valid)", [perso.make_app(
                            bank_a, pan=pan("476173900101005"), expiry="231231",
                            effective="200101", **visa)]),
        perso.make_card("blocked", "Bank A Visa, application blocked: SELECT answers FCI + "
                        "6283, GPO 6985", [perso.make_app(
                            bank_a, pan=pan("476173900101006"), blocked=True, **visa)]),
        perso.make_card("decline", "Bank A Visa that declines offline: AAC to any first "
                        "GENERATE AC (and in the contactless GPO)", [perso.make_app(
                            bank_a, pan=pan("476173900101007"), **visa)],
                        misbehave=["decline"]),
        perso.make_card("refuse-arpc", "Bank A Visa that finds every issuer's ARPC wrong: AAC "
                        "at the second GENERATE AC after the bank approved (the terminal must "
                        "reverse)", [perso.make_app(bank_a, pan=pan("476173900101010"), **visa)],
                        misbehave=["refuse-arpc"]),
        perso.make_card("malformed-tlv", "Bank A Visa whose record SFI 1 #1 ends with a "
                        "broken TLV (a tag 9F1F whose length byte 81 has no length)",
                        [perso.make_app(bank_a, pan=pan("476173900101008"), **visa)]),
        perso.make_card("lying-lengths", "Bank A Visa: record SFI 1 #1's 70 length claims 16 "
                        "bytes more than follow, the GPO answer's 77 length 5 more",
                        [perso.make_app(bank_a, pan=pan("476173900101009"), **visa)],
                        misbehave=["gpo-length"]),
    ]
    for card in cards_made:
        rec = card["apps"][0]["records"]
        raw = bytes.fromhex(rec["1.1"])
        if card["name"] == "malformed-tlv":
            body = raw[2:] + b"\x9f\x1f\x81"
            rec["1.1"] = (bytes((0x70, len(body))) + body).hex().upper()
        elif card["name"] == "lying-lengths":
            rec["1.1"] = (raw[:1] + bytes((raw[1] + 16,)) + raw[2:]).hex().upper()
        _write(card, os.path.join(cards, card["name"] + ".json"))
    return [c["name"] for c in cards_made]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.emvcard", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ca", help="a test CA key (RSA e=3)")
    p.add_argument("--rid", required=True)
    p.add_argument("--index", required=True)
    p.add_argument("--bits", type=int, default=1152)
    p.add_argument("--expiry", default="351231", help="YYMMDD")
    p.add_argument("--out", required=True)
    p = sub.add_parser("issuer", help="an issuer key, certified by a CA (format 02)")
    p.add_argument("--ca", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--bin", required=True, action="append")
    p.add_argument("--expiry", default="1235", help="MMYY")
    p.add_argument("--out", required=True)
    p = sub.add_parser("card", help="a one-application card profile")
    p.add_argument("--issuer", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--description", default="")
    p.add_argument("--pan", required=True)
    p.add_argument("--psn", default="01")
    p.add_argument("--expiry", default="301231", help="YYMMDD")
    p.add_argument("--effective", default="240101", help="YYMMDD")
    p.add_argument("--aid", default="A0000000031010")
    p.add_argument("--label", default="VISA")
    p.add_argument("--priority", type=lambda s: int(s, 0), default=1)
    p.add_argument("--oda", choices=("dda", "cda", "sda"), default="dda")
    p.add_argument("--cvm", default=perso.CVM_PIN_OFFLINE_ONLINE_NONE, help="8E value, hex")
    p.add_argument("--no-contactless", action="store_true")
    p.add_argument("--kernel", choices=("qvsdc", "mchip"), default="qvsdc",
                   help="how it pays tapped: the cryptogram in the GPO answer (qVSDC) or GENERATE AC after "
                   "the records (M/Chip)")
    p.add_argument("--pin", default="1234")
    p.add_argument("--pin-try-limit", type=int, default=3)
    p.add_argument("--offline-amount", type=int, default=5000, help="minor units")
    p.add_argument("--cvn", choices=sorted(cryptogram.VERSIONS),
                   help="cryptogram version (default: Visa CVN 10, M/Chip CVN 16 for a Mastercard AID)")
    p.add_argument("--out", required=True)
    p = sub.add_parser("capk", help="the kernel's CA public key file")
    p.add_argument("--cards", default=CARDS_DIR)
    p.add_argument("--out", default="build/capk.json")
    p = sub.add_parser("make-test-cards", help="regenerate the standard test cards")
    p.add_argument("--cards", default=CARDS_DIR)
    a = ap.parse_args(argv)

    if a.cmd == "ca":
        _write(perso.make_ca(a.rid, a.index, a.bits, a.expiry), a.out)
    elif a.cmd == "issuer":
        _write(perso.make_issuer(_read(a.ca), a.name, a.bin, a.expiry), a.out)
    elif a.cmd == "card":
        app = perso.make_app(_read(a.issuer), a.aid, a.label, a.pan, psn=a.psn,
                             expiry=a.expiry, effective=a.effective, priority=a.priority,
                             oda=a.oda, cvm=a.cvm, contactless=not a.no_contactless,
                             limits={"offline_amount": a.offline_amount}, cvn=a.cvn, kernel=a.kernel)
        _write(perso.make_card(a.name, a.description, [app], a.pin, a.pin_try_limit), a.out)
    elif a.cmd == "capk":
        keys = perso.capk_entries(a.cards)
        _write(keys, a.out)
        print("%d CA keys -> %s" % (len(keys), a.out))
    else:
        print("made:", ", ".join(make_test_cards(a.cards)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
