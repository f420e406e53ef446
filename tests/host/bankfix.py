"""Fixtures helpers for the bank host tests (tests/host/test_bank*.py): a throwaway PostgreSQL
server, a bank state with accounts, cards and devices, the host running in a thread of its own
(its own event loop), and simulated terminals to talk to it.

PostgreSQL: the Debian `postgresql` package (initdb/pg_ctl under /usr/lib/postgresql/*/bin),
installed with apt-get when missing; the server runs from a temp dir, on a free port, as the
`postgres` user when we are root (PostgreSQL refuses to run as root).
"""

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from tools.bank import admin, merchant
from tools.bank.merchant import Client, load_credentials
from tools.bank.client import Terminal, SimCard
from tools.bank.host import Host
from tools.bank.state import State

BANK_ID = bytes.fromhex("B0B0B0B0")      # the first 4 bytes of every test device's initial key id
CARD = {"pan": "4761739001010010", "psn": "01", "expiry": "301231", "pin": "1234",
        "imk": bytes.fromhex("F70959962E60613CDBB332C195F814E7"), "issuer": "bank-a-visa"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], env=env).returncode:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
            subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], env=env, check=True)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    return Path(found[-1]).parent


class PostgresServer:
    """initdb + pg_ctl start in a temp dir of its own (pytest's are private to root, and the
    server runs as postgres); stop() stops it and removes the dir. url() makes a database."""

    def __init__(self):
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="bank-pg-"))
        self.port = _free_port()
        self._as = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "bank", "--no-sync")
        self._run("pg_ctl", "-D", str(data), "-l", str(self.dir / "log"), "-w", "-o",
                  "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
                  % (self.port, self.dir), "start")
        self.data = data
        self._n = 0

    def _run(self, tool, *args):
        subprocess.run(self._as + [str(self.bin / tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def url(self, name=None):
        """A fresh database's URL."""
        import psycopg
        self._n += 1
        name = name or "bank%d" % self._n
        with psycopg.connect(self.base_url("postgres"), autocommit=True) as c:
            c.execute("CREATE DATABASE %s" % name)
        return self.base_url(name)

    def base_url(self, db):
        return "postgresql://bank@127.0.0.1:%d/%s" % (self.port, db)

    def stop(self):
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class BankThread:
    """The host and its merchant API on 127.0.0.1 (free ports), in a thread with its own loop."""

    def __init__(self, state):
        self.state = state
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("bank host did not start")

    def _main(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self):
        self.host = Host(self.state)
        self.address = await self.host.start("127.0.0.1", 0)
        self.runner, self.api = await merchant.start(self.host, "127.0.0.1", 0)

    def stop(self):
        async def _stop():
            await self.runner.cleanup()
            await self.host.stop()
        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def make_state(base, url):
    """A bank state under base with: accounts ALICE (1000.00 EUR, the card's), BOB (50.00),
    SHOP; device PT000001 with ALICE and BOB bound (owner) and CAROL as payee; the visa-classic
    test card (PIN 1234) on ALICE; merchants Corner Bakery (its account SHOP) and Kiosk, and the
    operator (their credentials in <state>/merchants/, api() signs with them)."""
    state = State(Path(base) / "bank", url).init()
    led = state.ledger
    led.create_account("ALICE", "Alice", "978", 100000)
    led.create_account("BOB", "Bob", "978", 5000)
    led.create_account("CAROL", "Carol", "978", 0)
    led.create_account("SHOP", "Shop", "978", 0)
    led.create_account("USD1", "Dollar account", "840", 1000)
    profile = {"pin": CARD["pin"], "apps": [{"pan": CARD["pan"], "psn": CARD["psn"],
                                             "expiry": CARD["expiry"], "issuer": CARD["issuer"],
                                             "imk_ac": CARD["imk"].hex()}]}
    admin.add_card(state, profile, "ALICE")
    for serial in ("PT000001", "PT000002"):
        admin.register_device(state, serial, merchant_account="SHOP",
                              ikid=initial_key_id(serial))
    led.bind("PT000001", "ALICE")
    led.bind("PT000001", "BOB")
    led.bind("PT000001", "CAROL", "payee")
    led.bind("PT000002", "USD1")
    admin.add_merchant(state, "CORNERBAKERY", "Corner Bakery", "SHOP")
    admin.add_merchant(state, "KIOSK", "Kiosk")
    admin.add_merchant(state, "OPERATOR", "The bank's operator", role="operator")
    return state


def api(bank, method, path, body=None, merchant="Corner Bakery"):
    """(HTTP status, JSON) of a merchant API call to a BankThread, signed as merchant."""
    client = Client("http://%s:%d" % tuple(bank.api), load_credentials(bank.state.dir, merchant))
    return client.call(method, path, body)


def initial_key_id(serial):
    return BANK_ID + int(serial[2:]).to_bytes(4, "big")


async def terminal(state, address, serial="PT000001", cert=None, key=None, counter=0):
    """A signed-off Terminal connected to the bank as serial (its issued certificate unless
    cert/key say otherwise)."""
    files = {"cert": cert, "key": key}
    if cert is None:
        files = {"cert": state.pki_dir / "devices" / (serial + ".pem"),
                 "key": state.pki_dir / "devices" / (serial + ".key.pem")}
    ikid = initial_key_id(serial)
    t = Terminal(serial, state.hsm.initial_key(ikid), ikid, counter)
    ctx = Terminal.context(state.pki_dir / "ca.pem", files["cert"], files["key"])
    return await t.open(address[0], address[1], ctx)


async def reconnect(state, address, serial="PT000001"):
    """serial connected (again) and signed on, its DUKPT counter and STAN where the bank last
    saw them: a device keeps both across connections (a Terminal of its own starts at 0)."""
    counter = state.ledger.ksn_counter(serial, initial_key_id(serial).hex().upper()) or 0
    t = await terminal(state, address, serial, counter=counter)
    t.stan = counter % 999999
    ans = await t.sign_on()
    assert ans["39"] == "00" and ans["mac_ok"], ans
    return t


def paid_request(bank, order, amount, merchant="Corner Bakery"):
    """A request of merchant's pushed to PT000001 (reconnected) and paid from ALICE: (the
    request as the merchant API created it, the 0210)."""
    async def go():
        t = await reconnect(bank.state, bank.address)
        status, req = await asyncio.to_thread(api, bank, "POST", "/payment-requests", {
            "device": "PT000001", "order": order, "amount": amount, "currency": "978"}, merchant)
        assert status == 201, req
        push = await asyncio.wait_for(t.pushes.get(), 10)
        paid = await t.pay_request(push, "ALICE")
        await t.close()
        return req, paid
    req, paid = asyncio.run(asyncio.wait_for(go(), 60))
    assert paid["39"] == "00", paid
    return req, paid


_CARD = SimCard(CARD["pan"], CARD["expiry"][:4], CARD["psn"], CARD["imk"])


def make_card():
    """The test card: one for the whole run, as a real card is, so that its ATC only goes up
    (the bank refuses a cryptogram whose ATC it has seen)."""
    return _CARD
