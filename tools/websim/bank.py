"""The reference bank host (tools/bank) as the web simulator runs it: a child process
(`python -m tools.bank`, on free ports, its state in <state-dir>/bank), its addresses read from what it prints, its merchant API for the
merchant panel and its message trace for the ISO 8583 view.

Read from the host's output: the merchant API's base URL (the first http://127.0.0.1:N it
prints) and the device port (the first other 127.0.0.1:N, the ISO 8583 over TLS listener, which
the Wi-Fi access point forwards to). Calls are signed (tools/bank/merchant.py) with the
credentials the demo's seed left in the state dir: the panel's merchant's, the operator's for
the trace. The trace is GET <merchant API>/trace?since=N, answering
{"next": N, "messages": [{"time", "dir", "mti", "fields": {"2": ..., ...}}]}; a host without it
leaves the ISO 8583 view saying so.
"""

import asyncio
import json
import re
import sys
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout

from tools.bank.merchant import load_credentials, sign
from tools.bank.spawn import OPERATOR

ROOT = Path(__file__).resolve().parent.parent.parent
START_TIMEOUT_S = 20
HTTP = re.compile(r"http://127\.0\.0\.1:(\d+)")
PORT = re.compile(r"(?<!http://)127\.0\.0\.1:(\d+)")


class BankHost:
    def __init__(self, state_dir):
        self.state_dir = Path(state_dir) / "bank"
        self.proc = None
        self.merchant_url = None
        self.iso_port = None
        self.error = None  # why the host is not usable, for the page
        self.trace_error = "not asked yet"
        self.output = []
        self.http = None

    @classmethod
    def if_available(cls, state_dir):
        """A BankHost when tools/bank can run (`python -m tools.bank`), else None."""
        if not (ROOT / "tools" / "bank" / "__main__.py").exists():
            return None
        return cls(state_dir)

    async def start(self):
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tools.bank", "--listen", "127.0.0.1:0", "--merchant-api", "127.0.0.1:0",
            "--state-dir", str(self.state_dir), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        self.http = ClientSession(timeout=ClientTimeout(total=10))
        try:
            await asyncio.wait_for(self._addresses(), START_TIMEOUT_S)
        except asyncio.TimeoutError:
            self.error = "the bank host printed no merchant API address within %d s" % START_TIMEOUT_S
        if self.error:
            print("websim: bank host: %s\n%s" % (self.error, "\n".join(self.output[-10:])), file=sys.stderr)
        asyncio.ensure_future(self._drain())

    async def _addresses(self):
        while self.merchant_url is None:
            line = await self.proc.stdout.readline()
            if not line:
                self.error = "the bank host ended (exit %s)" % await self.proc.wait()
                return
            text = line.decode(errors="replace").rstrip()
            self.output.append(text)
            print("bank: " + text, file=sys.stderr, flush=True)
            m = HTTP.search(text)
            if m:
                self.merchant_url = "http://127.0.0.1:%s" % m.group(1)
            elif self.iso_port is None and PORT.search(text):
                self.iso_port = int(PORT.search(text).group(1))

    async def _drain(self):
        while line := await self.proc.stdout.readline():
            self.output = self.output[-200:] + [line.decode(errors="replace").rstrip()]

    def _signed(self, merchant, method, path, body=b""):
        """The headers that sign a call as merchant (name or id: its credentials in the bank's
        state dir, tools/bank/merchant.py)."""
        try:
            creds = load_credentials(self.state_dir, merchant)
        except KeyError as e:
            raise RuntimeError("%s: a merchant of the demo (tools/demo.py MERCHANTS), or one the "
                               "admin CLI made (python -m tools.bank.admin merchant)" % e.args[0]) from None
        return dict(sign(creds, method, path, body), **{"Content-Type": "application/json"})

    async def payment_request(self, fields):
        """POST the merchant panel's request to <merchant API>/payment-requests, signed as the
        merchant the panel names; the host's answer."""
        if self.merchant_url is None:
            raise RuntimeError(self.error or "the bank host has no merchant API")
        body = {k: fields[k] for k in ("order", "amount", "currency", "device") if fields.get(k) not in (None, "")}
        data = json.dumps(body).encode()
        headers = self._signed(fields.get("merchant", ""), "POST", "/payment-requests", data)
        async with self.http.post(self.merchant_url + "/payment-requests", data=data, headers=headers) as r:
            answer = await r.json(content_type=None)
            return {"status": r.status, "answer": answer}

    async def trace(self, since):
        if self.merchant_url is None:
            raise RuntimeError(self.error or "no merchant API")
        path = "/trace?since=%d" % int(since)
        async with self.http.get(self.merchant_url + path, headers=self._signed(OPERATOR, "GET", path)) as r:
            if r.status != 200:
                raise RuntimeError("the bank host has no message trace (GET /trace: HTTP %d)" % r.status)
            return await r.json()

    async def close(self):
        if self.http is not None:
            await self.http.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
