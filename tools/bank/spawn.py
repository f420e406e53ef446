"""The reference bank host as a child process on free ports, for tests and benchmarks:

    host = HostProcess(state_dir)        # python -m tools.bank over a seeded state dir
    host.address, host.api               # ("127.0.0.1", port) of ISO 8583 over TLS, merchant API URL
    host.post("/payment-requests", {...}, merchant="Corner Bakery"), host.get("/trace"), host.log()
    host.stop()

The addresses are read from what the host prints as it starts (tools/bank/__main__.py). The
merchant API's calls are signed with the credentials the admin CLI wrote in the state dir
(tools/bank/merchant.py): a merchant's by name or id (the class's `merchant` when none is
given), the operator's (OPERATOR) for the trace.
"""

import json
import re
import subprocess
import sys
import threading
import urllib.error
from pathlib import Path

from tools.bank.merchant import Client, load_credentials

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"bank listening on ([\d.]+):(\d+)")
MERCHANT_API = re.compile(r"merchant API on (http://[\d.:]+)")


OPERATOR = "OPERATOR"


class HostProcess:
    merchant = None  # who signs get() and post() when they do not say

    def __init__(self, state_dir, database=None):
        self.dir = Path(state_dir)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.bank", "--state-dir", str(self.dir), "--listen", "127.0.0.1:0",
             "--merchant-api", "127.0.0.1:0"] + (["--database", database] if database else []),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.address = self.api = None
        while self.address is None or self.api is None:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the bank host ended (exit %s)" % self.proc.wait())
            if m := LISTENING.search(line):
                self.address = (m[1], int(m[2]))
            if m := MERCHANT_API.search(line):
                self.api = m[1]
        # Its output read to the end, so that the host never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def log(self):
        return (self.dir / "bank.log").read_text()

    def client(self, merchant=None):
        """A merchant API client signing as merchant (name or id; the trace's: the operator)."""
        return Client(self.api, load_credentials(self.dir, merchant or self.merchant))

    def _call(self, method, path, body, merchant):
        status, answer = self.client(merchant).call(method, path, body)
        if status >= 400:
            raise urllib.error.HTTPError(self.api + path, status, json.dumps(answer), {}, None)
        return answer

    def get(self, path, merchant=None):
        return self._call("GET", path, None, merchant or (OPERATOR if path.startswith("/trace") else None))

    def post(self, path, body, merchant=None):
        return self._call("POST", path, body, merchant)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
