"""python -m tools.bank.admin [--state-dir D] [--database URL] COMMAND: the bank's back office.

    init                                        HSM keys, CA + host certificate, ledger tables
    pki init | pki device SERIAL                the test PKI (tools/bank/pki.py)
    account ID --name N [--currency 978] [--balance MINOR]
    card PROFILE.json --account ID [--app 0]    a test card (tools/emvcard profile): PAN -> keyed
                                                hash + masked, PIN -> PVV, imk_ac -> the HSM
    device SERIAL [--cert PEM] [--merchant-account ID] [--ikid HEX16]
                                                register a device (its certificate issued here
                                                when --cert is not given) and pin its certificate
                                                (and its DUKPT initial key id)
    bind SERIAL ACCOUNT [--payee]               an account the device may debit (or pay to)
    hold ID ACCOUNT AMOUNT [--reason R] | release ID
    list                                        accounts, cards, devices
    ledger                                      transactions and postings
"""

import argparse
import json
import secrets
import sys
from pathlib import Path

from tools.bank import pki
from tools.bank.hsm import HsmError
from tools.bank.ledger import LedgerError, mask_pan
from tools.bank.state import DEFAULT_DIR, State


def add_card(state, profile, account_id, app_index=0):
    """Issue a card of a tools/emvcard profile to an account; its token."""
    app = profile["apps"][app_index]
    pan, pin = app["pan"], profile["pin"]
    key_id = app["issuer"]
    state.hsm.add_issuer_key(key_id, bytes.fromhex(app["imk_ac"]))
    token = "CT" + secrets.token_hex(7).upper()
    state.ledger.add_card(token, state.hsm.pan_hash(pan), mask_pan(pan), app["expiry"][:4],
                          app["psn"], state.hsm.pvv(pan, pin), key_id, account_id)
    return token


def register_device(state, serial, cert=None, merchant_account=None, ikid=None):
    """Register a device, pinning its certificate (issued by the bank's CA when cert is None)
    and, when given, its DUKPT initial key id (8 bytes)."""
    pki.check_serial(serial)
    if ikid is not None and len(ikid) != 8:
        raise ValueError("an initial key id has 8 bytes (16 hex digits)")
    if cert is None:
        cert = pki.issue_device(state.pki_dir, serial)["cert"]
    state.ledger.add_device(serial, pki.cert_fingerprint(cert), merchant_account,
                            ikid.hex().upper() if ikid else None)
    return cert


def _print_rows(title, rows):
    print("%s:" % title)
    for r in rows:
        print("  " + "  ".join("%s=%s" % kv for kv in r.items()))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.bank.admin", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--state-dir", default=DEFAULT_DIR)
    p.add_argument("--database", default=None)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("init")
    pk = sub.add_parser("pki")
    pk.add_argument("what", choices=("init", "device"))
    pk.add_argument("serial", nargs="?")
    a = sub.add_parser("account")
    a.add_argument("id")
    a.add_argument("--name", required=True)
    a.add_argument("--currency", default="978")
    a.add_argument("--balance", type=int, default=0)
    c = sub.add_parser("card")
    c.add_argument("profile", type=Path)
    c.add_argument("--account", required=True)
    c.add_argument("--app", type=int, default=0)
    d = sub.add_parser("device")
    d.add_argument("serial")
    d.add_argument("--cert", type=Path)
    d.add_argument("--merchant-account")
    d.add_argument("--ikid", type=bytes.fromhex, help="its DUKPT initial key id, 16 hex digits")
    b = sub.add_parser("bind")
    b.add_argument("serial")
    b.add_argument("account")
    b.add_argument("--payee", action="store_true")
    h = sub.add_parser("hold")
    h.add_argument("id")
    h.add_argument("account")
    h.add_argument("amount", type=int)
    h.add_argument("--reason", default="admin hold")
    r = sub.add_parser("release")
    r.add_argument("id")
    sub.add_parser("list")
    sub.add_parser("ledger")
    args = p.parse_args(argv)

    state = State(args.state_dir, args.database)
    try:
        if args.cmd == "pki":
            if args.what == "init":
                print("CA and host certificate in %s" % pki.init(state.pki_dir))
            else:
                if not args.serial:
                    p.error("pki device needs a SERIAL")
                files = pki.issue_device(state.pki_dir, args.serial)
                print("\n".join("%s: %s" % kv for kv in files.items()))
            return 0
        state.init()
        led = state.ledger
        if args.cmd == "init":
            print("bank state in %s, ledger %s" % (state.dir, led.db.url.split("@")[-1]))
        elif args.cmd == "account":
            led.create_account(args.id, args.name, args.currency, args.balance)
        elif args.cmd == "card":
            token = add_card(state, json.loads(args.profile.read_text()), args.account, args.app)
            print("card %s for account %s" % (token, args.account))
        elif args.cmd == "device":
            cert = register_device(state, args.serial, args.cert, args.merchant_account,
                                   args.ikid)
            print("device %s registered, certificate %s" % (args.serial, cert))
        elif args.cmd == "bind":
            led.bind(args.serial, args.account, "payee" if args.payee else "owner")
        elif args.cmd == "hold":
            led.place_hold(args.id, args.account, args.amount, args.reason)
        elif args.cmd == "release":
            led.release_hold(args.id)
        elif args.cmd == "list":
            _print_rows("accounts", led.accounts())
            _print_rows("cards", led.cards())
            _print_rows("devices", led.devices())
        elif args.cmd == "ledger":
            _print_rows("transactions", led.transactions())
            _print_rows("postings", led.postings())
    except (LedgerError, HsmError, pki.PkiError, KeyError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    finally:
        state.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
