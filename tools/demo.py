"""The demo: a bank that knows the demo's accounts and test cards, and a virtual handheld set up
as its owner would find it after the shop (`make run` and the flow tests start from it).

    seed(state_dir)                     the bank state: accounts, cards, device PT000001, bindings
    personalize(port, state_dir, bank_host, wifi_network)
                                        a blank (or factory) unit: provisioned (tools.provision
                                        inject, /config/bank.json), owner PIN DEMO_PIN, the
                                        bound accounts in its vault, /config/wifi.json,
                                        the test CAs' keys in /data/capk.json

    python -m tools.demo seed [--state-dir build/bank]   (a state seeded already: completed,
                                                         e.g. the merchants' credentials it lacks)
    python -m tools.demo personalize --port build/vdevice.tty [--state-dir build/bank]

The accounts (euro):
    ACC-OWNER    Current account   the owner's, default, 1,000.00
    ACC-SAVINGS  Savings           the owner's, 250.00
    ACC-ALICE    Alice Martin      a saved payee
    ACC-SHOP     the device's merchant account (purchases are credited there)
    CARD-<PROFILE> one per tools/emvcard test card whose keys the bank holds, 500.00 each
"""

import argparse
import json
import sys

from tools import emvcard
from tools.bank import admin, merchant, pki, spawn
from tools.emvcard import perso
from tools.bank.state import DEFAULT_DIR, State

DEMO_PIN = "2580"
SERIAL = "PT000001"
CAPK_PATH = "/data/capk.json"  # lib/emv/capk.py's file
CURRENCY = "978"
SHOP = "ACC-SHOP"
# (id, name, role on the device or None, default, opening balance in cents)
ACCOUNTS = (
    ("ACC-OWNER", "Current account", "owner", True, 100_000),
    ("ACC-SAVINGS", "Savings", "owner", False, 25_000),
    ("ACC-ALICE", "Alice Martin", "payee", False, 10_000),
    (SHOP, "Corner Bakery", None, False, 0),
)
CARD_BALANCE = 50_000
# The merchants the bank knows (the merchant API signs as one, and the device shows its name):
# the demo's shops, and the many of the caps' and steady state's pushes (tests/host/test_caps.py,
# tools/steadystate.py). Each one's credentials: <state-dir>/merchants/<id>.json.
MERCHANTS = (("Corner Bakery", SHOP), ("Coffee Corner", None)) + tuple(
    ("Shop %02d" % i, None) for i in range(9)) + tuple(("Shop %02d (steady state)" % i, None) for i in range(8))
# The card profiles the bank issued: the ones a purchase can reach the bank with (the others
# are broken on purpose and end in the kernel). Each profile's apps go to one account.
CARDS = ("visa-classic", "bank-b-debit", "decline", "blocked", "expired", "two-apps", "mastercard-sda", "refuse-arpc",
         "visa-cvn18", "visa-cvn22", "mastercard-cvn17", "visa-cda",  # other cryptogram versions, CDA
         "mastercard-cda")  # CDA tapped too (M/Chip, Book C-2)
# The rig's access point (tools/rig/wifi.py DEFAULT_NETWORKS), the route to the bank.
WIFI = ("PocketNet", "correct horse")
# Where the unit finds its bank: the access point forwards every connection to the host.
BANK_HOST = "localhost:8583"

BIND = """
import vault, wifi
from binascii import unhexlify as u
v = vault.Vault().open()
pin = bytearray(%r)
try:
    v.set_pin(pin)
finally:
    for i in range(len(pin)):
        pin[i] = 0
%s
wifi.save(%r, %r)
print(repr((v.state, sorted(v.accounts()))))
"""


def card_account(profile):
    return "CARD-" + profile.upper()


def seeded(state_dir):
    """Whether the bank state already holds the demo (its owner's account)."""
    state = State(state_dir)
    try:
        return state.hsm_path.is_file() and state.ledger.account(ACCOUNTS[0][0]) is not None
    finally:
        state.close()


def seed(state_dir):
    """A bank state in state_dir with the demo's accounts, cards, device and bindings; returns
    {card profile: account id}. The state must hold no demo yet (seeded())."""
    import tools.emvcard as emvcard

    state = State(state_dir).init()
    try:
        led = state.ledger
        for account_id, name, _, _, balance in ACCOUNTS:
            led.create_account(account_id, name, CURRENCY, balance)
        cards = {}
        for profile in CARDS:
            account = card_account(profile)
            led.create_account(account, "Card holder (%s)" % profile, CURRENCY, CARD_BALANCE)
            for app in range(len(emvcard.load_profile(profile)["apps"])):
                admin.add_card(state, emvcard.load_profile(profile), account, app)
            cards[profile] = account
        admin.register_device(state, SERIAL, merchant_account=SHOP)
        for account_id, _, role, _, _ in ACCOUNTS:
            if role:
                led.bind(SERIAL, account_id, role)
        add_merchants(state)
        return cards
    finally:
        state.close()


def add_merchants(state):
    """Give each merchant of the demo (MERCHANTS) and the operator without credentials in
    <state-dir>/merchants/ a key; the ids given one. All of them in a new state; in a state
    seeded before the merchant API had credentials, all of them too; one whose file was lost
    gets a new key (the old one no longer signs)."""
    state.init()  # the merchants' tables, in a ledger made before them
    known = {m["id"] for m in state.ledger.merchants()}
    added = []
    for mid, name, account, role in [(merchant.id_for(n), n, a, "merchant") for n, a in MERCHANTS] + [
            (spawn.OPERATOR, "The bank's operator", None, "operator")]:
        if not (state.dir / "merchants" / (mid + ".json")).is_file():
            admin.add_merchant(state, mid, name, account, role, rekey=mid in known)
            added.append(mid)
    return added


def complete(state_dir):
    """A demo bank state from an earlier version made fit for this one: the merchants'
    credentials it lacks (add_merchants); the ids added."""
    state = State(state_dir)
    try:
        return add_merchants(state)
    finally:
        state.close()


def binding_code(pki_dir):
    """The vault.bind_account calls for the demo's bound accounts (records and certificates)."""
    lines = []
    for account_id, name, role, default, _ in ACCOUNTS:
        if role is None:
            continue
        record = json.dumps({"name": name, "role": role, "currency": CURRENCY, "default": default}).encode()
        cert = pki.issue_binding(pki_dir, SERIAL, account_id, role)
        lines.append("v.bind_account(%r, u(%r), u(%r))" % (account_id, record.hex(), cert.hex()))
    return "\n".join(lines)


def personalize(port, state_dir, bank_host=BANK_HOST, wifi_network=WIFI, reprovision=False):
    """A blank, factory or wiped unit on `port` (its Wi-Fi routing to the bank host of
    state_dir) made the demo's: provisioned by inject (its TLS test signing on, then
    /config/bank.json), the owner's PIN DEMO_PIN, the bound accounts, /config/wifi.json.
    reprovision: a PROVISIONED unit (no owner yet) is wiped and provisioned again. Returns
    (vault state, bound account ids). Raises ProvisionError (tools.provision.common)."""
    from tools.provision import inject

    fresh(port).close()  # the app that ran at boot leaves no room for the TLS test
    inject.inject(port, SERIAL, state_dir, bank_host, wifi_network, reprovision=reprovision)
    code = BIND % (DEMO_PIN.encode(), binding_code(State(state_dir).pki_dir), wifi_network[0], wifi_network[1])
    dev = fresh(port)
    try:
        # The acquirer's CA public keys (public data, like the terminal's EMV configuration):
        # without them the kernel cannot authenticate the test cards.
        dev.makedirs(CAPK_PATH.rsplit("/", 1)[0])
        dev.write_file(CAPK_PATH, json.dumps(perso.capk_entries(emvcard.CARDS_DIR)).encode())
        return inject._value(dev, code, "the owner's PIN and accounts")
    finally:
        dev.close()


def fresh(port):
    """The unit's REPL in a fresh interpreter (a soft reset: boot.py runs, main.py does not)."""
    import time

    from tools.device import Device, DeviceError

    # Tried again while the app starting at boot holds Ctrl-C (as a person presses it again).
    deadline = time.monotonic() + 20
    while True:
        try:
            dev = Device(port, timeout=4)
            break
        except DeviceError:
            if time.monotonic() > deadline:
                raise
    dev.timeout = 20
    dev.soft_reset()
    return dev


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("seed", "personalize"))
    p.add_argument("--state-dir", default=DEFAULT_DIR, help="the bank's state (default %(default)s)")
    p.add_argument("--port", help="the unit's REPL (personalize), e.g. build/vdevice.tty")
    args = p.parse_args(argv)
    if args.what == "seed":
        if seeded(args.state_dir):
            added = complete(args.state_dir)
            print("%s holds the demo already%s" % (args.state_dir, "; merchant credentials added: "
                                                    + ", ".join(added) if added else ""))
            return 0
        seed(args.state_dir)
        print("demo bank state in %s" % args.state_dir)
        return 0
    if not args.port:
        p.error("personalize needs --port")
    from tools.provision.common import ProvisionError

    try:
        state, accounts = personalize(args.port, args.state_dir)
    except ProvisionError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("%s is %s, accounts %s; owner PIN %s" % (SERIAL, state, ", ".join(accounts), DEMO_PIN))
    return 0


if __name__ == "__main__":
    sys.exit(main())
