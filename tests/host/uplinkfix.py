"""Helpers for tests/host/test_uplink.py: the real bank host (`python -m tools.bank`) in a temp
state dir with an account, a card and the device registered; the device's provisioning from
the bank's PKI and HSM; TLS servers with certificates the device must refuse.
"""

import datetime
import secrets
import socket
import ssl
import threading
import time
import urllib.error
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tools.bank import admin, pki, updates
from tools.bank.client import SimCard
from tools.bank.spawn import HostProcess
from tools.bank.state import State

SERIAL = "PT000001"
INITIAL_KEY_ID = bytes.fromhex("B0B0B0B0") + bytes.fromhex("00000001")
CARD = {"pan": "4761739001010010", "psn": "01", "expiry": "301231", "pin": "1234",
        "imk": "F70959962E60613CDBB332C195F814E7", "issuer": "bank-a-visa"}
OWNER, SAVINGS, SHOP = "ACC-OWNER", "ACC-SAVINGS", "ACC-SHOP"
CARD_ACCOUNT = "ACC-CARD"
OPENING = 100_000


class BankHost(HostProcess):
    """`python -m tools.bank` on free ports over a fresh state dir; ledger() reads its ledger."""
    merchant = "Corner Bakery"

    def __init__(self, state_dir):
        self.dir = Path(state_dir)
        state = State(self.dir).init()
        led = state.ledger
        for acct, name in ((OWNER, "Owner current"), (SAVINGS, "Owner savings"), (SHOP, "The shop"),
                           (CARD_ACCOUNT, "Card holder")):
            led.create_account(acct, name, "978", OPENING)
        profile = {"pin": CARD["pin"], "apps": [{"pan": CARD["pan"], "expiry": CARD["expiry"], "psn": CARD["psn"],
                                                 "imk_ac": CARD["imk"], "issuer": CARD["issuer"]}]}
        admin.add_card(state, profile, CARD_ACCOUNT)
        admin.register_device(state, SERIAL, merchant_account=SHOP)
        led.bind(SERIAL, OWNER, "owner")
        led.bind(SERIAL, SAVINGS, "owner")
        admin.add_merchant(state, "CORNERBAKERY", self.merchant, SHOP)
        state.close()
        self.initial_key_ids = []
        self.pki = self.dir / "pki"
        super().__init__(self.dir)

    def new_initial_key(self):
        """(initial key id, initial key) of a provisioning: a new key id every time, as inject
        gives a unit provisioned again (its generation, the top byte of the derivation id): the
        bank takes a key id's KSN counter only upwards, and a fresh vault counts from 1."""
        ikid = INITIAL_KEY_ID[:4] + bytes((len(self.initial_key_ids),)) + INITIAL_KEY_ID[5:]
        self.initial_key_ids.append(ikid)
        state = State(self.dir)
        try:
            return ikid, state.hsm.initial_key(ikid)
        finally:
            state.close()

    def update_key(self):
        """The vault item "issuer.update" of this bank's update-signing key."""
        state = State(self.dir)
        try:
            return updates.public_item(updates.private_key(state))
        finally:
            state.close()

    def ledger(self):
        """A fresh look at the ledger (a State of its own: the host runs in another process)."""
        state = State(self.dir)
        try:
            led = state.ledger
            return {"accounts": {a: led.account(a)["available"] for a in (OWNER, SAVINGS, SHOP, CARD_ACCOUNT)},
                    "postings": led.postings(), "transactions": led.transactions()}
        finally:
            state.close()

    def push(self, order, amount, within=20):
        """A merchant's payment request for the device, once it has signed on again. A push
        that found no live session leaves its order expired, so each attempt has an order of
        its own (order-1, order-2...)."""
        deadline = time.time() + within
        # Pushed into the next session: one a closing connection held would be lost with it.
        sign_ons = self.log().count("0800/001 -> 00")
        while self.log().count("0800/001 -> 00") == sign_ons and time.time() < deadline:
            time.sleep(0.05)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.post("/payment-requests", {"device": SERIAL, "order": "%s-%d" % (order, attempt),
                                                       "amount": amount, "currency": "978"})
            except urllib.error.HTTPError as e:
                if e.code != 409 or time.time() > deadline:
                    raise
                time.sleep(0.2)

    def request(self, request_id):
        return self.get("/payment-requests/" + request_id)


def provisioning(bank, store="/uplink-vault"):
    """MicroPython code that makes `vault`: a fresh vault in `store`, provisioned as the factory
    does for this device: its key and certificate (DER), the issuer CA, the DUKPT initial key
    from the bank's HSM and its key id (a new one every time: BankHost.new_initial_key)."""
    files = pki.device_files(bank.pki, SERIAL)
    ikid, initial_key = bank.new_initial_key()
    items = {"device.key": files["key_der"].read_bytes(), "device.cert": files["cert_der"].read_bytes(),
             "issuer.ca": (bank.pki / "ca.der").read_bytes(), "dukpt.ik": initial_key,
             "dukpt.ksn": ikid, "issuer.unblock": secrets.token_bytes(32), "issuer.update": bank.update_key()}
    lines = ["import os", "from vault import Vault", "from vault.store import Store",
             "try:\n    for n in os.listdir(%r):\n        os.remove(%r + '/' + n)\nexcept OSError:\n    pass"
             % (store, store),
             "vault = Vault(Store(%r)).open()" % store]
    lines += ["vault.provision(%r, bytes.fromhex(%r))" % (k, v.hex()) for k, v in items.items()]
    lines.append("vault.finish_provisioning()")
    return "\n".join(lines)


# The card whose cryptograms card_result_code makes: one for the run, so that its ATC only goes
# up as a real card's does (the bank refuses an ATC it has seen). Card 02 of the PAN (its own
# keys and ATC): the rig's visa-classic, PSN 01, counts from 1 again in every rig process.
_SIM_CARD = SimCard(CARD["pan"], CARD["expiry"][:4], "02", bytes.fromhex(CARD["imk"]))


def card_result_code(amount, today=None, cid=0x80):
    """(code, card, tags): MicroPython code making `card`, what the EMV kernel hands the uplink
    for the test card (its lib/emv/kernel.Result fields) with a DE55 holding a fresh ARQC (cid
    0x40: a TC, an offline approval's) from the card's keys; the host's SimCard and the tags, to
    check the ARPC that comes back."""
    from tools.emvcard import tlv

    card = _SIM_CARD
    tags = card.icc_data(amount, today=today, cid=cid)
    icc = b"".join(tlv.tlv(tag, value) for tag, value in tags.items())
    track2 = bytes.fromhex(CARD["pan"] + "D" + CARD["expiry"][:4] + "2011234567" + "F")
    code = ("class _Card:\n    pass\ncard = _Card()\n"
            "card.pan = %r\ncard.psn = bytes.fromhex(%r)\ncard.expiry = bytes.fromhex(%r)\n"
            "card.track2 = bytes.fromhex(%r)\ncard.icc_data = bytes.fromhex(%r)\ncard.contactless = False\n"
            % (CARD["pan"], card.psn, CARD["expiry"], track2.hex(), icc.hex()))
    return code, card, tags


# ---- servers with certificates the device must refuse --------------------------------------

def _cert(subject_key, cn, issuer_cert, issuer_key, days=(-1, 365)):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer_cert.subject if issuer_cert else name).public_key(subject_key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days[0]))
         .not_valid_after(now + datetime.timedelta(days=days[1])))
    if issuer_cert is None:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    return b.sign(issuer_key or subject_key, hashes.SHA256())


class TcpServer:
    """A TCP server on 127.0.0.1 (a free port): each connection to handle(conn) in a thread."""

    def __init__(self, handle):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = self.sock.getsockname()
        self.accepted = 0
        self._handle = handle
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def close(self):
        self.sock.close()


class TlsServer(TcpServer):
    """A TLS server with the given host certificate that asks for the device's certificate."""

    def __init__(self, tmp, cert, key, ca_pem):
        tmp = Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "host.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp / "host.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(tmp / "host.pem", tmp / "host.key")
        self.ctx.load_verify_locations(ca_pem)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.errors = []
        super().__init__(self._handshake)

    def _handshake(self, conn):
        try:
            with self.ctx.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError) as e:
            self.errors.append(str(e))


def impostor(tmp, bank):
    """A server whose certificate (for localhost) comes from a CA the device does not know."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert(ca_key, "Impostor CA", None, None)
    key = ec.generate_private_key(ec.SECP256R1())
    return TlsServer(tmp, _cert(key, "localhost", ca, ca_key), key, bank.pki / "ca.pem")


def expired(tmp, bank):
    """A server whose certificate comes from the issuer CA but expired yesterday."""
    ca_key = serialization.load_pem_private_key((bank.pki / "ca.key.pem").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((bank.pki / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    return TlsServer(tmp, _cert(key, "localhost", ca, ca_key, days=(-30, -1)), key, bank.pki / "ca.pem")
