"""The steady state the benchmarks and tests measure in (issue 16): a unit in use, every store
it keeps at its cap, filled through the firmware's own APIs with entries like real ones.

    from tools import steadystate
    filled = steadystate.fill(device, bank_dir)  # device: tools.device.Device on the demo
                                                 # terminal's REPL, app stopped (terminalfix's
                                                 # t.device, or tools.demo.fresh(port));
                                                 # bank_dir: the demo bank's state dir
    # -> {"history": 50, "fingerprints": 10, "accounts": 8, "capk": 32, "reversals": 16}
    steadystate.push_requests(push)              # with the app running: push(merchant, order,
                                                 # amount), as terminalfix's t.push

The caps, and where each comes from:
- history: terminal.history.MAX_ENTRIES (50, read from the device); the ring's spare slot is
  written too (MAX_ENTRIES + 1 adds), so the flash holds every record it ever will.
- fingerprints: vault.FINGERPRINTS (10, one per finger). The ids recorded are the top of the
  sensor's library (drivers.r503.LIBRARY_SIZE = 200), so that a flow enrolling a real finger
  (the sensor's first free id, 0 up) does not meet them; the sensor itself holds no template
  for them (its library is the R503's flash, not the ESP32's).
- bound accounts: vault.ACCOUNTS (8; each keeps ~170 bytes of the vault's index in RAM for
  good, and terminal.accounts.bound() unseals every one per Balance or Transfer). Filled with
  real ones: accounts created at the demo bank, bound to the device there, each with its
  binding certificate from the bank's PKI.
- cards of several banks (the CA public keys of every scheme the terminal accepts,
  /data/capk.json, lib/emv/capk.py): no cap in the firmware yet; read an entry at a time, so
  RAM stays flat, but every card's get() reads and SHA-1-checks every entry (time grows with
  the file). Filled to CAPK = 32 keys (six schemes with their live and next keys, with room):
  the demo's test CAs first, then keys of the real schemes' RIDs at the largest EMV size
  (1984-bit moduli), with valid checksums and indexes no card here names.
- reversal journal: uplink.journal.REVERSALS (16 records, one file each; at the cap no new
  online transaction). Filled with 0400s of 0200s the bank never saw: it answers them 25
  (nothing to undo, the ledger unchanged) and the uplink drops them at the first sign-on after
  the fill. So the journal is at its cap for the boot and the sign-on (where the drain's cost
  lands); to keep it there through a flow, keep Wi-Fi down.
- pending payment requests: uplink.REQUESTS (8, in RAM; a push beyond is declined at once with
  a 0620). push_requests() pushes that many through the merchant API.
"""

import ast
import hashlib
import json
import secrets

from tools import demo
from tools.bank import pki
from tools.bank.state import State

# The firmware's caps (see the docstring; tests/host/test_caps.py fails if REQUESTS differs),
# and the CA keys the fill writes.
FINGERPRINTS = 10
ACCOUNTS = 8
CAPK = 32
REVERSALS = 16
REQUESTS = 8

_UNLOCK = """
import vault
v = vault.Vault().open()
v.verify_pin(bytearray(%r))
""" % demo.DEMO_PIN.encode()

# What the owner does with a terminal, in turn: (kind, amount, counterparty, result, card or
# account, reference); the amounts vary with the entry's number.
_HISTORY = """
from terminal.history import History, MAX_ENTRIES
h = History(v)
deeds = (('Purchase', 'Purchase', 'approved', '4761739001010010', None, '%012d'),
         ('Request', 'Corner Bakery', 'approved', None, 'Current account', 'ORD-%06d'),
         ('Transit', 'Gate A1B2C3D4', 'approved', None, None, '#%d'),
         ('Transfer', 'Alice Martin', 'approved', None, 'Current account', '%012d'),
         ('Purchase', 'Purchase', 'declined (51)', '5413330089020011', None, ''),
         ('Shop', 'Librairie du Centre, Lyon', 'approved', None, None, ''))
for i in range(MAX_ENTRIES + 1):
    kind, party, result, card, account, ref = deeds[i % len(deeds)]
    h.add(kind, 120 + 37 * i, 'EUR', party, result, card=card, account=account, reference=ref % i if ref else '')
print(repr(h.count()))
"""

_FINGERS = """
from drivers.r503 import LIBRARY_SIZE
for template_id in range(LIBRARY_SIZE - %d, LIBRARY_SIZE):
    v.enroll_finger(template_id)
print(repr(len(v.fingers)))
"""

_BIND = """
from binascii import unhexlify as u
v.bind_account(%r, u(%r), u(%r))
print(repr(len(v.accounts())))
"""

_REVERSALS = """
import uplink
from uplink.journal import Journal
j = Journal()
for i in range(%d - len(j.pending())):
    stan = j.next_stan()
    key = '%%06d' %% (900000 + i) + '0101%%06d' %% i  # a 0200's STAN + DE7 the bank never saw
    j.queue({'key': key, 'stan': stan, 'de7': '0101%%06d' %% i, 'de3': '000000', 'de4': '%%012d' %% (1250 + i),
             'de49': '978', 'de90': '0200' + key + '0' * 22, 'de39': uplink.REVERSE_UNANSWERED})
print(repr(len(j.pending())))
"""

# The real schemes' registered application provider ids, for the CA keys added.
_RIDS = ("A000000003", "A000000004", "A000000025", "A000000065", "A000000152", "A000000333")


def _value(device, code):
    """Run code on the device; the value it printed last."""
    return ast.literal_eval(device.exec(code, timeout=300).strip().splitlines()[-1])


def _capk(device):
    """/data/capk.json at CAPK keys: the device's own first, then keys of the real schemes."""
    entries = json.loads(device.read_file(demo.CAPK_PATH))
    taken = {(e["rid"], e["index"]) for e in entries}
    n = 0
    while len(entries) < CAPK:
        rid, index = _RIDS[n % len(_RIDS)], "%02X" % (0xE0 + n // len(_RIDS))
        n += 1
        if (rid, index) in taken:
            continue
        modulus = (b"\xc0" + secrets.token_bytes(247)).hex().upper()  # 1984 bits, EMV's largest
        checksum = hashlib.sha1(bytes.fromhex(rid + index + modulus + "03")).hexdigest().upper()
        entries.append({"rid": rid, "index": index, "modulus": modulus, "exponent": "03", "expiry": "301231",
                        "checksum": checksum})
    device.write_file(demo.CAPK_PATH, json.dumps(entries).encode())
    return _value(device, "import emv.capk\nprint(repr(len(emv.capk.Store.load())))")


def _accounts(device, bank_dir):
    """Bound accounts up to ACCOUNTS: payees created at the bank, bound there and on the device."""
    bound = _value(device, _UNLOCK + "print(repr(len(v.accounts())))")
    state = State(bank_dir)
    try:
        for i in range(bound, ACCOUNTS):
            account_id = "ACC-PAYEE-%02d" % i
            name = "Payee %02d (steady state)" % i
            if state.ledger.account(account_id) is None:
                state.ledger.create_account(account_id, name, demo.CURRENCY, 0)
            if state.ledger.binding(demo.SERIAL, account_id) is None:
                state.ledger.bind(demo.SERIAL, account_id, "payee")
            record = json.dumps({"name": name, "role": "payee", "currency": demo.CURRENCY, "default": False})
            cert = pki.issue_binding(state.pki_dir, demo.SERIAL, account_id, "payee")
            bound = _value(device, _UNLOCK + _BIND % (account_id, record.encode().hex(), cert.hex()))
    finally:
        state.close()
    return bound


def fill(device, bank_dir):
    """Every store of the demo unit on `device` at its cap (see the module's docstring);
    returns {store: entries it holds now}. The device's REPL must be in a fresh interpreter with
    the app stopped; afterwards restart the unit (the app starts at the lock screen)."""
    filled = {"history": _value(device, _UNLOCK + _HISTORY)}
    filled["fingerprints"] = _value(device, _UNLOCK + _FINGERS % FINGERPRINTS)
    filled["accounts"] = _accounts(device, bank_dir)
    filled["capk"] = _capk(device)
    filled["reversals"] = _value(device, _REVERSALS % REVERSALS)
    return filled


def push_requests(push, n=REQUESTS):
    """n payment requests waiting on the running unit: push(merchant, order, amount) is the
    caller's merchant API call (terminalfix's Terminal.push). Returns n."""
    for i in range(n):
        push("Shop %02d (steady state)" % i, "ORD-STEADY-%02d" % i, 500 + 25 * i)
    return n
