"""The bank's ledger: accounts, cards, devices and what is bound to them, holds, postings, the
transaction log, payment requests and the idempotency table.

SQLite (WAL) by default, PostgreSQL when the URL says postgresql:// (psycopg 3): the same code
and the same SQL for both; the only adapter is the parameter style (`?` -> `%s`), how a write
transaction begins, and which exception a unique constraint raises.

Never in here: a clear PIN, a PIN block, a full PAN (cards are found by the HSM's keyed hash of
the PAN and shown masked), or any key (the card row names its issuer key id; the key is in the
HSM).
"""

import contextlib
import datetime
import sqlite3
import threading

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, currency TEXT NOT NULL,
    balance BIGINT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
    token TEXT PRIMARY KEY, pan_hash TEXT NOT NULL UNIQUE, pan_masked TEXT NOT NULL,
    expiry TEXT NOT NULL, psn TEXT NOT NULL, pvv TEXT NOT NULL, issuer_key_id TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id), pin_tries INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    serial TEXT PRIMARY KEY, cert_sha256 TEXT NOT NULL, status TEXT NOT NULL,
    merchant_account TEXT REFERENCES accounts(id), ikid TEXT, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS device_accounts (
    serial TEXT NOT NULL REFERENCES devices(serial), account_id TEXT NOT NULL REFERENCES accounts(id),
    role TEXT NOT NULL, PRIMARY KEY (serial, account_id));
CREATE TABLE IF NOT EXISTS holds (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), amount BIGINT NOT NULL,
    reason TEXT NOT NULL, active INTEGER NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    rrn TEXT PRIMARY KEY, serial TEXT NOT NULL, stan TEXT NOT NULL, dt TEXT NOT NULL,
    mti TEXT NOT NULL, kind TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
    account_id TEXT, card_token TEXT, rc TEXT NOT NULL, auth_code TEXT, request_id TEXT,
    reverses TEXT UNIQUE, reversed INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL,
    UNIQUE (serial, stan, dt));
CREATE TABLE IF NOT EXISTS postings (
    rrn TEXT NOT NULL REFERENCES transactions(rrn), account_id TEXT NOT NULL REFERENCES accounts(id),
    amount BIGINT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (rrn, account_id));
CREATE TABLE IF NOT EXISTS payment_requests (
    id TEXT PRIMARY KEY, serial TEXT NOT NULL REFERENCES devices(serial), merchant_id TEXT NOT NULL,
    merchant TEXT NOT NULL, order_no TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL,
    status TEXT NOT NULL, rrn TEXT, created TEXT NOT NULL, expires TEXT NOT NULL,
    UNIQUE (serial, order_no));
CREATE TABLE IF NOT EXISTS idempotency (
    serial TEXT NOT NULL, stan TEXT NOT NULL, dt TEXT NOT NULL, answer TEXT NOT NULL,
    created TEXT NOT NULL, PRIMARY KEY (serial, stan, dt));
CREATE TABLE IF NOT EXISTS dukpt_counters (
    serial TEXT NOT NULL REFERENCES devices(serial), ikid TEXT NOT NULL, counter BIGINT NOT NULL,
    PRIMARY KEY (serial, ikid));
CREATE TABLE IF NOT EXISTS card_atcs (
    card_token TEXT NOT NULL REFERENCES cards(token), psn TEXT NOT NULL, atc INTEGER NOT NULL,
    PRIMARY KEY (card_token, psn));
CREATE TABLE IF NOT EXISTS offline_tcs (
    card_token TEXT NOT NULL REFERENCES cards(token), psn TEXT NOT NULL, atc INTEGER NOT NULL,
    PRIMARY KEY (card_token, psn, atc));
CREATE TABLE IF NOT EXISTS merchants (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, account_id TEXT REFERENCES accounts(id),
    key_id TEXT NOT NULL UNIQUE, secret TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aliases (
    alias TEXT PRIMARY KEY, serial TEXT NOT NULL REFERENCES devices(serial), status TEXT NOT NULL,
    created TEXT NOT NULL, retired TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS aliases_live ON aliases (serial) WHERE status = 'active';
CREATE TABLE IF NOT EXISTS request_aliases (
    request_id TEXT PRIMARY KEY REFERENCES payment_requests(id), alias TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS merchant_nonces (
    key_id TEXT NOT NULL, nonce TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (key_id, nonce));
CREATE TABLE IF NOT EXISTS business_day (
    id INTEGER PRIMARY KEY CHECK (id = 1), day INTEGER NOT NULL, opened TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cutovers (
    day INTEGER PRIMARY KEY, opened TEXT NOT NULL, closed TEXT NOT NULL, transactions INTEGER NOT NULL,
    approved INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS packages (
    id TEXT PRIMARY KEY, kind INTEGER NOT NULL, version BIGINT NOT NULL, svn BIGINT NOT NULL,
    size BIGINT NOT NULL, sha256 TEXT NOT NULL, created TEXT NOT NULL, UNIQUE (kind, version));
CREATE TABLE IF NOT EXISTS device_versions (
    serial TEXT PRIMARY KEY REFERENCES devices(serial), fw BIGINT NOT NULL, svn BIGINT NOT NULL,
    cfg BIGINT NOT NULL, files BIGINT, last_sign_on TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refunds (
    rrn TEXT PRIMARY KEY REFERENCES transactions(rrn), original TEXT NOT NULL REFERENCES transactions(rrn),
    amount BIGINT NOT NULL, created TEXT NOT NULL);
"""

# The bank's own side of card and pushed-request payments when a device has no merchant account.
CLEARING = "CLEARING"
# What devices loaded onto their transit cards (top-ups, 920000): the transit operator is owed it
# and settles it from here, as it does a station's ticket machine.
TRANSIT = "TRANSIT"


class LedgerError(Exception):
    """A ledger operation refused: unknown account, card or device, or a duplicate."""


class Conflict(LedgerError):
    """A unique constraint said no: the row exists already (a duplicate message, a re-issue)."""


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def mask_pan(pan):
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


class Database:
    """A connection factory for a URL: sqlite:///path (or a bare path) or postgresql://...
    Each thread gets its own connection (the host runs the ledger in a thread pool)."""

    def __init__(self, url):
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        if self.postgres:
            import psycopg
            self._driver = psycopg
            self._unique = psycopg.errors.UniqueViolation
        else:
            self.path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
            self._unique = sqlite3.IntegrityError
        self._local = threading.local()
        self._all = []
        self._all_lock = threading.Lock()

    def _connect(self):
        if self.postgres:
            conn = self._driver.connect(self.url, autocommit=True)
        else:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        with self._all_lock:
            self._all.append(conn)
        return conn

    @property
    def conn(self):
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = self._connect()
        return c

    def sql(self, text):
        return text.replace("?", "%s") if self.postgres else text

    @property
    def for_update(self):
        """What a SELECT ends with to lock its rows until the transaction ends: PostgreSQL's row
        lock; SQLite's write transaction (BEGIN IMMEDIATE) holds the whole database already."""
        return " FOR UPDATE" if self.postgres else ""

    def execute(self, text, params=()):
        try:
            return self.conn.execute(self.sql(text), params)
        except self._unique as e:
            raise Conflict(str(e).splitlines()[0]) from None

    def one(self, text, params=()):
        return self.execute(text, params).fetchone()

    def all(self, text, params=()):
        return self.execute(text, params).fetchall()

    @contextlib.contextmanager
    def transaction(self):
        """A write transaction: SQLite takes the write lock at once (BEGIN IMMEDIATE) so that
        read-then-write never deadlocks; PostgreSQL relies on row locks and constraints."""
        c = self.conn
        c.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def init_schema(self):
        with self.transaction():
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    self.execute(stmt)
            self.execute("INSERT INTO accounts (id, name, currency, balance, created) "
                         "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                         (CLEARING, "bank clearing", "000", 0, now()))
            self.execute("INSERT INTO accounts (id, name, currency, balance, created) "
                         "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                         (TRANSIT, "transit cards' value", "000", 0, now()))
            self.execute("INSERT INTO business_day (id, day, opened) VALUES (1, 1, ?) "
                         "ON CONFLICT DO NOTHING", (now(),))

    def close(self):
        with self._all_lock:
            for c in self._all:
                c.close()
            self._all.clear()
        self._local = threading.local()


class Ledger:
    """The bank's books over a Database."""

    def __init__(self, db):
        self.db = db

    # ---- accounts ----------------------------------------------------------------------------

    def create_account(self, account_id, name, currency, balance=0):
        if len(account_id) > 28 or not (currency.isdigit() and len(currency) == 3):
            raise LedgerError("an account id has at most 28 characters (DE102), a currency 3 digits")
        if balance < 0:
            raise LedgerError("an opening balance is 0 or more (minor units), not %d" % balance)
        try:
            with self.db.transaction():
                self.db.execute("INSERT INTO accounts (id, name, currency, balance, created) "
                                "VALUES (?, ?, ?, ?, ?)", (account_id, name, currency, balance, now()))
        except Conflict:
            raise Conflict("account %s exists" % account_id) from None

    def account(self, account_id):
        row = self.db.one("SELECT id, name, currency, balance FROM accounts WHERE id = ?",
                          (account_id,))
        if row is None:
            return None
        held = self.db.one("SELECT COALESCE(SUM(amount), 0) FROM holds "
                           "WHERE account_id = ? AND active = 1", (account_id,))[0]
        return {"id": row[0], "name": row[1], "currency": row[2], "balance": int(row[3]),
                "held": int(held), "available": int(row[3]) - int(held)}

    def accounts(self):
        return [self.account(r[0]) for r in self.db.all("SELECT id FROM accounts ORDER BY id")]

    def place_hold(self, hold_id, account_id, amount, reason):
        if amount <= 0:
            raise LedgerError("a hold is a positive amount (minor units), not %d" % amount)
        with self.db.transaction():
            self.db.execute("INSERT INTO holds (id, account_id, amount, reason, active, created) "
                            "VALUES (?, ?, ?, ?, 1, ?)", (hold_id, account_id, amount, reason, now()))

    def release_hold(self, hold_id):
        with self.db.transaction():
            if self.db.execute("UPDATE holds SET active = 0 WHERE id = ? AND active = 1",
                               (hold_id,)).rowcount != 1:
                raise LedgerError("no active hold %s" % hold_id)

    def debit(self, account_id, amount):
        """Take amount from an account if its available balance (balance - active holds) covers
        it; False otherwise. One conditional UPDATE: atomic on both databases."""
        cur = self.db.execute(
            "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance - ? >= "
            "(SELECT COALESCE(SUM(amount), 0) FROM holds WHERE account_id = ? AND active = 1)",
            (amount, account_id, amount, account_id))
        return cur.rowcount == 1

    def credit(self, account_id, amount):
        self.db.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, account_id))

    def post(self, rrn, account_id, amount):
        """One posting of a transaction (negative = debit); (rrn, account) is unique, so a
        transaction never posts twice to an account."""
        self.db.execute("INSERT INTO postings (rrn, account_id, amount, created) VALUES (?, ?, ?, ?)",
                        (rrn, account_id, amount, now()))

    def postings(self, account_id=None):
        q = "SELECT rrn, account_id, amount, created FROM postings"
        rows = (self.db.all(q + " WHERE account_id = ? ORDER BY created", (account_id,))
                if account_id else self.db.all(q + " ORDER BY created"))
        return [{"rrn": r[0], "account": r[1], "amount": int(r[2]), "created": r[3]} for r in rows]

    # ---- cards -------------------------------------------------------------------------------

    def add_card(self, token, pan_hash, pan_masked, expiry, psn, pvv, issuer_key_id, account_id):
        if self.card_by_hash(pan_hash) is not None:
            raise Conflict("card %s is issued already" % pan_masked)
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO cards (token, pan_hash, pan_masked, expiry, psn, pvv, issuer_key_id, "
                "account_id, pin_tries, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 'active')",
                (token, pan_hash, pan_masked, expiry, psn, pvv, issuer_key_id, account_id))

    def card_by_hash(self, pan_hash):
        row = self.db.one("SELECT token, pan_masked, expiry, psn, pvv, issuer_key_id, account_id, "
                          "pin_tries, status FROM cards WHERE pan_hash = ?", (pan_hash,))
        if row is None:
            return None
        keys = ("token", "pan_masked", "expiry", "psn", "pvv", "issuer_key_id", "account_id",
                "pin_tries", "status")
        return dict(zip(keys, row))

    def cards(self):
        return [dict(zip(("token", "pan_masked", "expiry", "account_id", "pin_tries", "status"), r))
                for r in self.db.all("SELECT token, pan_masked, expiry, account_id, pin_tries, "
                                     "status FROM cards ORDER BY token")]

    def pin_tries(self, token):
        return int(self.db.one("SELECT pin_tries FROM cards WHERE token = ?", (token,))[0])

    def count_pin_try(self, token):
        """One more wrong PIN (an atomic increment: the row stays locked until commit); the
        new count."""
        self.db.execute("UPDATE cards SET pin_tries = pin_tries + 1 WHERE token = ?", (token,))
        return self.pin_tries(token)

    def reset_pin_tries(self, token):
        self.db.execute("UPDATE cards SET pin_tries = 0 WHERE token = ?", (token,))

    # ---- devices -----------------------------------------------------------------------------

    def add_device(self, serial, cert_sha256, merchant_account=None, ikid=None):
        """A device, its certificate pinned by SHA-256; ikid (16 hex digits): the DUKPT
        initial key id it was loaded with, which every KSN it sends must start with."""
        with self.db.transaction():
            self.db.execute("INSERT INTO devices (serial, cert_sha256, status, merchant_account, "
                            "ikid, created) VALUES (?, ?, 'active', ?, ?, ?)",
                            (serial, cert_sha256, merchant_account, ikid, now()))

    def pin_initial_key(self, serial, ikid):
        """From now on the device is served only under the initial key id ikid (16 hex digits):
        the one its last injection loaded."""
        with self.db.transaction():
            self.db.execute("UPDATE devices SET ikid = ? WHERE serial = ?", (ikid, serial))

    def device(self, serial):
        row = self.db.one("SELECT serial, cert_sha256, status, merchant_account, ikid FROM devices "
                          "WHERE serial = ?", (serial,))
        return dict(zip(("serial", "cert_sha256", "status", "merchant_account", "ikid"), row)) \
            if row else None

    def devices(self):
        return [self.device(r[0]) for r in self.db.all("SELECT serial FROM devices ORDER BY serial")]

    def set_device_status(self, serial, status):
        """'active' (in production), 'blocked' (its connections refused) or 'revoked' (refused
        at sign-on with 62, and told so)."""
        if status not in ("active", "blocked", "revoked"):
            raise LedgerError("a device is active, blocked or revoked")
        with self.db.transaction():
            if self.db.execute("UPDATE devices SET status = ? WHERE serial = ?", (status, serial)).rowcount != 1:
                raise LedgerError("no device %s" % serial)

    def signed_on(self, serial, fw, svn, cfg, files=None):
        """What the device reported at its sign-on (DE48), and when (files None: a firmware
        from before files updates, which does not report them)."""
        self.db.execute("INSERT INTO device_versions (serial, fw, svn, cfg, files, last_sign_on) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET fw = excluded.fw, "
                        "svn = excluded.svn, cfg = excluded.cfg, files = excluded.files, "
                        "last_sign_on = excluded.last_sign_on", (serial, fw, svn, cfg, files, now()))

    def fleet(self):
        """Every device: serial, status, and what it reported at its last sign-on (None before)."""
        cols = ("serial", "status", "fw", "svn", "cfg", "files", "last_sign_on")
        return [dict(zip(cols, r)) for r in self.db.all(
            "SELECT d.serial, d.status, v.fw, v.svn, v.cfg, v.files, v.last_sign_on FROM devices d "
            "LEFT JOIN device_versions v ON v.serial = d.serial ORDER BY d.serial")]

    # ---- update packages (tools/bank/updates.py) ---------------------------------------------

    def add_package(self, pid, kind, version, svn, size, sha256):
        with self.db.transaction():
            self.db.execute("INSERT INTO packages (id, kind, version, svn, size, sha256, created) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", (pid, kind, version, svn, size, sha256, now()))

    def package(self, pid):
        cols = ("id", "kind", "version", "svn", "size", "sha256", "created")
        row = self.db.one("SELECT %s FROM packages WHERE id = ?" % ", ".join(cols), (pid,))
        return dict(zip(cols, row)) if row else None

    def latest_package(self, kind):
        """The id and version of a kind's newest package, or None."""
        row = self.db.one("SELECT id, version FROM packages WHERE kind = ? ORDER BY version DESC LIMIT 1", (kind,))
        return (row[0], int(row[1])) if row else None

    def bind(self, serial, account_id, role="owner"):
        """Bind an account to a device: role 'owner' (the device may debit it) or 'payee' (a
        saved transfer destination)."""
        if role not in ("owner", "payee"):
            raise LedgerError("a binding is 'owner' or 'payee'")
        with self.db.transaction():
            self.db.execute("INSERT INTO device_accounts (serial, account_id, role) VALUES (?, ?, ?)",
                            (serial, account_id, role))

    def binding(self, serial, account_id):
        row = self.db.one("SELECT role FROM device_accounts WHERE serial = ? AND account_id = ?",
                          (serial, account_id))
        return row[0] if row else None

    def bindings(self, serial):
        return self.db.all("SELECT account_id, role FROM device_accounts WHERE serial = ? "
                           "ORDER BY account_id", (serial,))

    # ---- payment identifiers (tools/bank/alias.py) --------------------------------------------

    def alias_of(self, serial):
        """The device's live alias, or None."""
        row = self.db.one("SELECT alias FROM aliases WHERE serial = ? AND status = 'active'", (serial,))
        return row[0] if row else None

    def device_by_alias(self, alias):
        """The serial of the device whose live alias this is; None for one never issued and for
        one retired alike (the merchant API answers both the same)."""
        row = self.db.one("SELECT serial FROM aliases WHERE alias = ? AND status = 'active'", (alias,))
        return row[0] if row else None

    def give_alias(self, serial, alias):
        """Make alias (new: never issued) the device's live one, retiring the one it had: inside
        the caller's transaction, so that both happen or neither. Conflict if alias was issued
        before (to anyone), or if another rotation of this device committed first (the index
        aliases_live holds one live alias a device)."""
        stamp = now()
        self.db.execute("UPDATE aliases SET status = 'retired', retired = ? WHERE serial = ? AND status = 'active'",
                        (stamp, serial))
        self.db.execute("INSERT INTO aliases (alias, serial, status, created) VALUES (?, ?, 'active', ?)",
                        (alias, serial, stamp))

    def aliases(self, serial):
        """[(alias, status)] the device has had, oldest first (the admin's view)."""
        return [tuple(r) for r in self.db.all("SELECT alias, status FROM aliases WHERE serial = ? ORDER BY created, alias",
                                              (serial,))]

    # ---- replay guards: a device's DUKPT counter, a card's ATC -------------------------------

    def _advance(self, table, key_cols, key, col, value):
        # One upsert that writes only upwards: atomic on both databases, between host processes
        # too (PostgreSQL re-checks the WHERE on the row a concurrent writer committed).
        cols = key_cols + (col,)
        return self.db.execute(
            "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %s = excluded.%s "
            "WHERE %s.%s < excluded.%s" % (table, ", ".join(cols), ", ".join("?" * len(cols)),
                                           ", ".join(key_cols), col, col, table, col, col),
            tuple(key) + (value,)).rowcount == 1

    def advance_ksn(self, serial, ikid, counter):
        """Take a device's DUKPT transaction counter under initial key id ikid (hex) if it is
        above every one the device sent under that key before; False (nothing written) for one
        used already or lower: a message played again, or a device whose key store was put
        back to an earlier copy (rolled back or cloned). Per initial key: a unit provisioned
        again gets a new one (tools/provision/inject.py, its generation) whose counter starts
        at 1, while the old key's counter stays where it was."""
        return self._advance("dukpt_counters", ("serial", "ikid"), (serial, ikid), "counter", counter)

    def ksn_counter(self, serial, ikid):
        row = self.db.one("SELECT counter FROM dukpt_counters WHERE serial = ? AND ikid = ?",
                          (serial, ikid))
        return int(row[0]) if row else None

    def advance_atc(self, card_token, psn, atc):
        """Take a card's application transaction counter (per card and PAN sequence number) if
        it is above every one seen; False for a cryptogram's ATC seen already or lower (the
        same ARQC played again, or a clone of the card)."""
        return self._advance("card_atcs", ("card_token", "psn"), (card_token, psn), "atc", atc)

    def take_offline_tc(self, card_token, psn, atc):
        """Record that an advice of this card's TC (its ATC) is posted; False if one was already
        (the same TC in another advice: a replay)."""
        if self.db.one("SELECT 1 FROM offline_tcs WHERE card_token = ? AND psn = ? AND atc = ?",
                       (card_token, psn, atc)) is not None:
            return False
        self.db.execute("INSERT INTO offline_tcs (card_token, psn, atc) VALUES (?, ?, ?)", (card_token, psn, atc))
        return True

    # ---- transactions, idempotency -----------------------------------------------------------

    def answer_for(self, serial, stan, dt):
        row = self.db.one("SELECT answer FROM idempotency WHERE serial = ? AND stan = ? AND dt = ?",
                          (serial, stan, dt))
        return bytes.fromhex(row[0]) if row else None

    def remember_answer(self, serial, stan, dt, answer):
        self.db.execute("INSERT INTO idempotency (serial, stan, dt, answer, created) "
                        "VALUES (?, ?, ?, ?, ?)", (serial, stan, dt, bytes(answer).hex(), now()))

    def log(self, rrn, serial, stan, dt, mti, kind, amount, currency, rc, account_id=None,
            card_token=None, auth_code=None, request_id=None, reverses=None):
        self.db.execute(
            "INSERT INTO transactions (rrn, serial, stan, dt, mti, kind, amount, currency, "
            "account_id, card_token, rc, auth_code, request_id, reverses, reversed, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (rrn, serial, stan, dt, mti, kind, amount, currency, account_id, card_token, rc,
             auth_code, request_id, reverses, now()))

    def original(self, serial, stan, dt):
        """The transaction a reversal names, locked until the reversal's transaction ends."""
        keys = ("rrn", "mti", "kind", "rc", "reversed", "request_id", "amount", "currency", "created")
        row = self.db.one("SELECT %s FROM transactions WHERE serial = ? AND stan = ? AND dt = ?%s"
                          % (", ".join(keys), self.db.for_update), (serial, stan, dt))
        if row is None:
            return None
        orig = dict(zip(keys, row))
        orig["amount"] = int(orig["amount"])
        return orig

    def reverse(self, original_rrn, reversal_rrn):
        """Undo every posting of a transaction under a new transaction reversal_rrn (logged by
        the caller first); the original is marked reversed, once."""
        if self.db.execute("UPDATE transactions SET reversed = 1 WHERE rrn = ? AND reversed = 0",
                           (original_rrn,)).rowcount != 1:
            return False
        for account_id, amount in self.db.all("SELECT account_id, amount FROM postings WHERE rrn = ?",
                                              (original_rrn,)):
            self.credit(account_id, -int(amount))
            self.post(reversal_rrn, account_id, -int(amount))
        # A void or refund reversed (its 0210 never reached the device): the purchase it named
        # stands again, in whole (a void) or by that much more (a refund's row no longer counts).
        link = self.db.one("SELECT t.rrn, t.request_id FROM refunds r JOIN transactions t "
                           "ON t.rrn = r.original WHERE r.rrn = ?", (original_rrn,))
        if link is not None:
            self.db.execute("DELETE FROM refunds WHERE rrn = ?", (original_rrn,))
            self.db.execute("UPDATE transactions SET reversed = 0 WHERE rrn = ?", (link[0],))
            if link[1]:
                self.db.execute("UPDATE payment_requests SET status = 'paid' WHERE id = ? "
                                "AND status IN ('voided', 'refunded')", (link[1],))
        return True

    def transaction(self, rrn, lock=False):
        """A transaction by its RRN (None if there is none); lock: its row held until the
        transaction ends (what a void or refund of it decides on)."""
        keys = ("rrn", "serial", "mti", "kind", "amount", "currency", "account_id", "rc", "request_id",
                "reversed", "created")
        row = self.db.one("SELECT %s FROM transactions WHERE rrn = ?%s"
                          % (", ".join(keys), self.db.for_update if lock else ""), (rrn,))
        if row is None:
            return None
        txn = dict(zip(keys, row))
        txn["amount"] = int(txn["amount"])
        return txn

    def posted(self, rrn):
        """{account: amount} a transaction posted (negative = debited)."""
        return {r[0]: int(r[1]) for r in self.db.all("SELECT account_id, amount FROM postings "
                                                     "WHERE rrn = ?", (rrn,))}

    # ---- voids and refunds, the business day ---------------------------------------------------

    def refunded(self, original_rrn):
        """How much of a purchase its voids and refunds gave back so far."""
        return int(self.db.one("SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE original = ?",
                               (original_rrn,))[0])

    def add_refund(self, rrn, original_rrn, amount):
        """Link a void or refund (logged first) to the purchase it gives back (part of)."""
        self.db.execute("INSERT INTO refunds (rrn, original, amount, created) VALUES (?, ?, ?, ?)",
                        (rrn, original_rrn, amount, now()))

    def refunds(self, original_rrn):
        """[{rrn, kind, amount, created}] of a purchase, oldest first."""
        return [{"rrn": r[0], "kind": r[1], "amount": int(r[2]), "created": r[3]} for r in self.db.all(
            "SELECT r.rrn, t.kind, r.amount, r.created FROM refunds r JOIN transactions t ON t.rrn = r.rrn "
            "WHERE r.original = ? ORDER BY r.created, r.rrn", (original_rrn,))]

    def refund_by_reference(self, who, reference):
        """The refund a merchant API call made under its reference (logged with serial who and
        the reference as its STAN): {rrn, original, amount}, or None."""
        row = self.db.one("SELECT r.rrn, r.original, r.amount FROM refunds r JOIN transactions t "
                          "ON t.rrn = r.rrn WHERE t.serial = ? AND t.stan = ?", (who, reference))
        return {"rrn": row[0], "original": row[1], "amount": int(row[2])} if row else None

    def business_day(self, lock=False):
        """(day number, when it opened): what was approved since then can still be voided.
        lock: held until the transaction ends, so that a cut-over waits for the voids deciding
        on the day it closes (and they for it)."""
        row = self.db.one("SELECT day, opened FROM business_day WHERE id = 1%s"
                          % (self.db.for_update if lock else ""))
        return int(row[0]), row[1]

    def cutover(self):
        """Close the business day: from now on its purchases are refunded, no longer voided.
        {day, opened, closed, transactions, approved} of the day closed."""
        with self.db.transaction():
            day, opened = self.business_day(lock=True)
            count, approved = self.db.one(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN rc = '00' THEN 1 ELSE 0 END), 0) "
                "FROM transactions WHERE created >= ?", (opened,))
            closed = now()
            self.db.execute("INSERT INTO cutovers (day, opened, closed, transactions, approved) "
                            "VALUES (?, ?, ?, ?, ?)", (day, opened, closed, int(count), int(approved)))
            self.db.execute("UPDATE business_day SET day = ?, opened = ? WHERE id = 1", (day + 1, closed))
        return {"day": day, "opened": opened, "closed": closed, "transactions": int(count),
                "approved": int(approved)}

    def transactions(self):
        keys = ("rrn", "serial", "stan", "mti", "kind", "amount", "currency", "account_id", "rc",
                "auth_code", "reversed", "created")
        return [dict(zip(keys, r)) for r in self.db.all(
            "SELECT rrn, serial, stan, mti, kind, amount, currency, account_id, rc, auth_code, "
            "reversed, created FROM transactions ORDER BY created")]

    # ---- payment requests --------------------------------------------------------------------

    def add_request(self, request_id, serial, merchant_id, merchant, order_no, amount, currency,
                    expires, alias=None):
        """A pushed request; alias: the payment identifier the merchant named the device by
        (the merchant is then shown that, never the serial: request_alias)."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO payment_requests (id, serial, merchant_id, merchant, order_no, amount, "
                "currency, status, rrn, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, 'pushed', "
                "NULL, ?, ?)", (request_id, serial, merchant_id, merchant, order_no, amount,
                                currency, now(), expires))
            if alias is not None:
                self.db.execute("INSERT INTO request_aliases (request_id, alias) VALUES (?, ?)",
                                (request_id, alias))

    def request_alias(self, request_id):
        row = self.db.one("SELECT alias FROM request_aliases WHERE request_id = ?", (request_id,))
        return row[0] if row else None

    def request(self, request_id=None, serial=None, order_no=None, lock=False):
        """A payment request by id, or by device and order; lock: its row held until the
        transaction ends, so that two payments of it at once are decided one after the other."""
        cols = "id, serial, merchant_id, merchant, order_no, amount, currency, status, rrn, created, expires"
        tail = self.db.for_update if lock else ""
        if request_id is not None:
            row = self.db.one("SELECT %s FROM payment_requests WHERE id = ?%s" % (cols, tail),
                              (request_id,))
        else:
            row = self.db.one("SELECT %s FROM payment_requests WHERE serial = ? AND order_no = ?%s"
                              % (cols, tail), (serial, order_no))
        if row is None:
            return None
        req = dict(zip(("id", "device", "merchant_id", "merchant", "order", "amount", "currency",
                        "status", "rrn", "created", "expires"), row))
        req["amount"] = int(req["amount"])
        if req["status"] == "pushed" and req["expires"] < now():
            req["status"] = "expired"
        return req

    def set_request_status(self, request_id, status, rrn=None, only_from="pushed"):
        return self.db.execute("UPDATE payment_requests SET status = ?, rrn = ? WHERE id = ? "
                               "AND status = ?", (status, rrn, request_id, only_from)).rowcount == 1

    # ---- merchants (the merchant API's clients) ----------------------------------------------

    def add_merchant(self, merchant_id, name, role, account_id, key_id, sealed_secret, rekey=False):
        """A merchant (role 'merchant') or the bank's operator ('operator': reads the message
        trace), with its API key: key_id public, the HMAC secret sealed by the HSM. rekey: a
        merchant that exists takes these (its old key no longer signs)."""
        upsert = (" ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, "
                  "account_id = excluded.account_id, key_id = excluded.key_id, secret = excluded.secret"
                  if rekey else "")
        try:
            with self.db.transaction():
                self.db.execute("INSERT INTO merchants (id, name, role, account_id, key_id, secret, "
                                "created) VALUES (?, ?, ?, ?, ?, ?, ?)" + upsert,
                                (merchant_id, name, role, account_id, key_id, bytes(sealed_secret).hex(),
                                 now()))
        except Conflict:
            raise Conflict("merchant %s exists" % merchant_id) from None

    def merchant_by_key(self, key_id):
        row = self.db.one("SELECT id, name, role, account_id, key_id, secret FROM merchants "
                          "WHERE key_id = ?", (key_id,))
        if row is None:
            return None
        m = dict(zip(("id", "name", "role", "account_id", "key_id", "secret"), row))
        m["secret"] = bytes.fromhex(m["secret"])
        return m

    def merchants(self):
        return [dict(zip(("id", "name", "role", "account_id", "key_id"), r)) for r in self.db.all(
            "SELECT id, name, role, account_id, key_id FROM merchants ORDER BY id")]

    def use_nonce(self, key_id, nonce, forget_before):
        """Record a signed request's nonce; False if this key used it already (a replay). Nonces
        older than forget_before (ISO time) are dropped: a request that old is refused by its
        timestamp anyway."""
        try:
            with self.db.transaction():
                self.db.execute("DELETE FROM merchant_nonces WHERE created < ?", (forget_before,))
                self.db.execute("INSERT INTO merchant_nonces (key_id, nonce, created) VALUES (?, ?, ?)",
                                (key_id, nonce, now()))
        except Conflict:
            return False
        return True

    def dump(self):
        """Every table's rows, for the admin's `show` and the tests' secret scan."""
        out = {}
        for table in ("accounts", "cards", "devices", "device_accounts", "holds", "transactions",
                      "postings", "payment_requests", "idempotency", "dukpt_counters", "card_atcs",
                      "merchants", "merchant_nonces", "aliases", "request_aliases", "business_day",
                      "cutovers", "refunds"):
            out[table] = [tuple(r) for r in self.db.all("SELECT * FROM %s" % table)]
        return out
