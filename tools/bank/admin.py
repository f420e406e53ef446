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
    merchant ID --name N [--account ACC] [--operator] [--out FILE] [--rekey]
                                                a merchant API client and its key: ID (DE42) up
                                                to 15 of A-Z 0-9, N (DE43) printable ASCII up to
                                                40; --operator: the bank's own, reads the trace;
                                                its credentials (the secret: shown once) go to
                                                FILE, by default <state-dir>/merchants/ID.json;
                                                --rekey: a new key for a merchant that has one
                                                (lost credentials: the old key stops working)
    hold ID ACCOUNT AMOUNT [--reason R] | release ID
    cutover                                     close the business day: what it approved can
                                                no longer be voided, only refunded
    list                                        accounts, cards, devices
    ledger                                      transactions and postings
    publish firmware|files|params SOURCE --version N [--svn N]
                                                an update package signed with the update key
                                                (tools/bank/updates.py): firmware: the app image
                                                file; files: a directory (its files, by vfs
                                                path); params: a terminal parameters JSON
                                                ({"capk": [...], "terminal": {...}}: CA keys
                                                past their expiry are revoked, left out)
    devices                                     the fleet: firmware, security, parameters and
                                                files versions, last sign-on, state
                                                (production, blocked, revoked)
    revoke SERIAL | reinstate SERIAL            refuse the device at sign-on (62: it says so on
                                                its screen) | take it back into production
"""

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

from tools.bank import merchant, pki, updates
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


def add_merchant(state, merchant_id, name, account_id=None, role="merchant", out=None, rekey=False):
    """A merchant API client with a new key: the ledger keeps the secret sealed by the HSM; the
    merchant's copy {id, name, role, key_id, secret} is written to out (0600; default
    <state-dir>/merchants/<id>.json) and returned. rekey: a merchant that exists gets the new
    key (its credentials were lost; the old key stops working), else it is a Conflict."""
    if not merchant.MERCHANT_ID.match(merchant_id):
        raise ValueError("a merchant id is 1..15 of A-Z and 0-9 (DE42)")
    if not merchant.printable(name, 40):
        raise ValueError("a merchant name is 1..40 printable ASCII characters (DE43, the device's "
                         "screen): %r is not" % name)
    if account_id is not None and state.ledger.account(account_id) is None:
        raise ValueError("no account %s" % account_id)
    key_id = "pk_" + secrets.token_hex(8)
    secret = secrets.token_bytes(32)
    state.ledger.add_merchant(merchant_id, name, role, account_id, key_id,
                              state.hsm.seal(secret, ("merchant-key|" + key_id).encode()), rekey)
    creds = {"id": merchant_id, "name": name, "role": role, "key_id": key_id, "secret": secret.hex()}
    out = Path(out) if out else state.dir / "merchants" / (merchant_id + ".json")
    out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f)
    return creds


def publish(state, kind, source, version, svn=0):
    """(package id, CA keys revoked) of the package of `kind` ("firmware", "files", "params")
    made from source (a file, a directory, a JSON file) and published."""
    revoked = []
    source = Path(source)
    if kind == "firmware":
        payload = source.read_bytes()
    elif kind == "files":
        payload = updates.files_payload(source)
    else:
        try:
            doc = json.loads(source.read_text())
        except json.JSONDecodeError as e:
            raise updates.UpdateError("%s is not JSON: %s" % (source, e))
        payload, revoked = updates.params_payload(doc)
    return updates.publish(state, updates.KINDS[kind], version, svn, payload), revoked


# The fleet view's names of the ledger's device statuses.
STATES = {"active": "production", "blocked": "blocked", "revoked": "revoked"}


def fleet(state):
    return [{"serial": d["serial"], "firmware": d["fw"], "svn": d["svn"], "config": d["cfg"],
             "files": d["files"], "last_sign_on": d["last_sign_on"] or "never",
             "state": STATES.get(d["status"], d["status"])}
            for d in state.ledger.fleet()]


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
    m = sub.add_parser("merchant")
    m.add_argument("id")
    m.add_argument("--name", required=True)
    m.add_argument("--account")
    m.add_argument("--operator", action="store_true")
    m.add_argument("--out", type=Path)
    m.add_argument("--rekey", action="store_true")
    h = sub.add_parser("hold")
    h.add_argument("id")
    h.add_argument("account")
    h.add_argument("amount", type=int)
    h.add_argument("--reason", default="admin hold")
    r = sub.add_parser("release")
    r.add_argument("id")
    sub.add_parser("cutover")
    sub.add_parser("list")
    sub.add_parser("ledger")
    u = sub.add_parser("publish")
    u.add_argument("kind", choices=sorted(updates.KINDS))
    u.add_argument("source", type=Path)
    u.add_argument("--version", type=int, required=True)
    u.add_argument("--svn", type=int, default=0, help="its security version: units refuse a lower one")
    sub.add_parser("devices")
    for name in ("revoke", "reinstate"):
        sub.add_parser(name).add_argument("serial")
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
        elif args.cmd == "merchant":
            creds = add_merchant(state, args.id, args.name, args.account,
                                 "operator" if args.operator else "merchant", args.out, args.rekey)
            print("merchant %s key %s; its credentials (the secret only there) in %s" % (
                args.id, creds["key_id"], args.out or state.dir / "merchants" / (args.id + ".json")))
        elif args.cmd == "hold":
            led.place_hold(args.id, args.account, args.amount, args.reason)
        elif args.cmd == "release":
            led.release_hold(args.id)
        elif args.cmd == "cutover":
            closed = led.cutover()
            print("business day %(day)d closed (%(opened)s .. %(closed)s): %(transactions)d "
                  "transactions, %(approved)d approved; day %(next)d open"
                  % dict(closed, next=closed["day"] + 1))
        elif args.cmd == "list":
            _print_rows("accounts", led.accounts())
            _print_rows("cards", led.cards())
            _print_rows("devices", led.devices())
            _print_rows("merchants", led.merchants())
        elif args.cmd == "ledger":
            _print_rows("transactions", led.transactions())
            _print_rows("postings", led.postings())
        elif args.cmd == "publish":
            pid, revoked = publish(state, args.kind, args.source, args.version, args.svn)
            for k in revoked:
                print("CA key %s has expired: revoked (left out of the package)" % k)
            print("package %s published (%s version %d, security version %d)" % (pid, args.kind, args.version, args.svn))
        elif args.cmd == "devices":
            rows = fleet(state)
            print("%-10s %-10s %8s %4s %7s %6s  %s" % ("serial", "state", "firmware", "svn", "config", "files",
                                                     "last sign-on"))
            for r in rows:
                print("%(serial)-10s %(state)-10s %(firmware)8s %(svn)4s %(config)7s %(files)6s  %(last_sign_on)s"
                      % {k: ("-" if v is None else v) for k, v in r.items()})
        elif args.cmd in ("revoke", "reinstate"):
            led.set_device_status(args.serial, "revoked" if args.cmd == "revoke" else "active")
            print("device %s %s" % (args.serial, "revoked: refused at its next sign-on" if args.cmd == "revoke"
                                    else "back in production"))
    except (LedgerError, HsmError, pki.PkiError, updates.UpdateError, OSError, KeyError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    finally:
        state.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
