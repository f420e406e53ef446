"""Where a bank host keeps its things, and opening them: a state directory (default build/bank)
holding the HSM key file (hsm/keys.json), the PKI (pki/), the update-signing key and the
update packages (update/, tools/bank/updates.py), the log (bank.log) and, unless a
PostgreSQL URL is given (--database or BANK_DATABASE_URL), the SQLite ledger (bank.db).
"""

import logging
import os
from pathlib import Path

from tools.bank import pki
from tools.bank.hsm import Hsm
from tools.bank.ledger import Database, Ledger

DEFAULT_DIR = "build/bank"
LOG = logging.getLogger("tools.bank")


class State:
    def __init__(self, state_dir=DEFAULT_DIR, database=None):
        self.dir = Path(state_dir)
        self.hsm_path = self.dir / "hsm" / "keys.json"
        self.pki_dir = self.dir / "pki"
        self.log_path = self.dir / "bank.log"
        self.database_url = (database or os.environ.get("BANK_DATABASE_URL")
                             or "sqlite:///" + str(self.dir / "bank.db"))
        self._hsm = None
        self._ledger = None

    def init(self):
        """Create what is missing: HSM keys, CA and host certificate, the ledger's tables."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.hsm_path.exists():
            Hsm.create(self.hsm_path)
        if not (self.pki_dir / "ca.pem").exists():
            pki.init(self.pki_dir)
        from tools.bank import updates

        updates.init(self)  # the update-signing key, apart from the PKI's and the HSM's
        self.ledger.db.init_schema()
        return self

    @property
    def hsm(self):
        if self._hsm is None:
            self._hsm = Hsm(self.hsm_path)
        return self._hsm

    @property
    def ledger(self):
        if self._ledger is None:
            self._ledger = Ledger(Database(self.database_url))
        return self._ledger

    def log_to_file(self):
        """Log lines to stderr and <state-dir>/bank.log (they never carry a PIN, key or PAN)."""
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
        handlers = [logging.StreamHandler(), logging.FileHandler(self.log_path)]
        for h in handlers:
            h.setFormatter(fmt)
            LOG.addHandler(h)
        LOG.setLevel(logging.INFO)

    def close(self):
        if self._ledger is not None:
            self._ledger.db.close()
