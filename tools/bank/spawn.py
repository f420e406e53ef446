"""The reference bank host as a child process on free ports, for tests and benchmarks:

    host = HostProcess(state_dir)        # python -m tools.bank over a seeded state dir
    host.address, host.api               # ("127.0.0.1", port) of ISO 8583 over TLS, merchant API URL
    host.get("/accounts/ACC-OWNER"), host.post("/payment-requests", {...}), host.log()
    host.stop()

The addresses are read from what the host prints as it starts (tools/bank/__main__.py).
"""

import json
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"bank listening on ([\d.]+):(\d+)")
MERCHANT_API = re.compile(r"merchant API on (http://[\d.:]+)")


class HostProcess:
    def __init__(self, state_dir):
        self.dir = Path(state_dir)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.bank", "--state-dir", str(self.dir), "--listen", "127.0.0.1:0",
             "--merchant-api", "127.0.0.1:0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=10) as r:
            return json.load(r)

    def post(self, path, body):
        req = urllib.request.Request(self.api + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
