"""The merchant HTTP API (aiohttp): a merchant creates payment requests that the host pushes to a
device and reads them back, and reads its own account; the bank's operator reads the host's
message trace (masked, see tools/bank/host.py) for the web simulator. JSON in and out; see
tools/bank/README.md.

Every request is signed with an API key the admin CLI gave (`admin merchant`): the key id is
public, the secret is HMAC-SHA256's key (the ledger keeps it sealed by the HSM). Headers:

    X-PT-Key        the key id
    X-PT-Time       Unix seconds; refused more than SKEW seconds from the host's clock
    X-PT-Nonce      16..64 of [A-Za-z0-9_-], never twice for a key (kept SKEW * 2 in the ledger,
                    so that several host processes on one database see each other's)
    X-PT-Signature  hex HMAC-SHA256(secret, method \\n path with query \\n time \\n nonce \\n
                    hex SHA-256 of the body)

sign() makes them; Client is a signing client (urllib) for tools and tests.
"""

import datetime
import hashlib
import hmac
import json
import re
import secrets
import string
import time
import urllib.error
import urllib.request
from pathlib import Path

from aiohttp import web

from tools.bank import alias as aliases
from tools.bank.host import Decline, PushError
from tools.bank.ledger import Conflict

REQUEST_TTL = datetime.timedelta(minutes=10)  # a request's life unless its body says "ttl" (seconds)
MAX_TTL = datetime.timedelta(days=1)  # the device counts a request's life in ticks: a day at most
MAX_AMOUNT = 99_999_999  # minor units: 999,999.99 in a two-decimal currency
SKEW = 300
# The handheld is named by its serial (device) or by the payment identifier its owner gave the
# merchant (alias, tools/bank/alias.py): one of the two.
BODY = ("order", "amount", "currency", "ttl", "device", "alias")
_ID_CHARS = string.ascii_uppercase + string.digits
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}\Z")
# A refund's body: how much, and the merchant's own reference for it, which makes the call
# idempotent (a retry after a lost answer gets the first refund back, nothing more is paid).
REFUND_BODY = ("amount", "reference")
_REFERENCE = re.compile(r"[A-Za-z0-9_-]{1,36}\Z")
# What a refund's decline says (tools/bank/host.py give_back), as HTTP status and text.
REFUND_DECLINES = {
    "12": (409, "the request is not paid, or its payment was reversed or voided already"),
    "13": (409, "more than is left to refund of the payment (on the day it was paid: a void, all of it)"),
    "51": (409, "the account paid cannot cover the refund"),
    "94": (409, "this reference was used for another refund"),
}
MERCHANT_ID = re.compile(r"[A-Z0-9]{1,15}\Z")  # DE42, ans15


class Refused(Exception):
    """A request answered with an HTTP error status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def printable(text, longest):
    """True if text is 1..longest printable ASCII characters (what ISO 8583's ans fields carry
    and the device's screen shows)."""
    return isinstance(text, str) and 0 < len(text) <= longest and text.isascii() and text.isprintable()


def id_for(name):
    """A merchant id (DE42) made from a name: its letters and digits, upper case, 15 at most."""
    return "".join(c for c in name.upper() if c.isascii() and c.isalnum())[:15] or "MERCHANT"


def signature(secret, method, path, timestamp, nonce, body):
    text = "\n".join((method.upper(), path, str(timestamp), nonce, hashlib.sha256(body).hexdigest()))
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def sign(credentials, method, path, body=b"", now=None):
    """The headers that sign a request (path with its query) with credentials {key_id, secret}."""
    timestamp = str(int(now if now is not None else time.time()))
    nonce = secrets.token_urlsafe(18)
    secret = bytes.fromhex(credentials["secret"])
    return {"X-PT-Key": credentials["key_id"], "X-PT-Time": timestamp, "X-PT-Nonce": nonce,
            "X-PT-Signature": signature(secret, method, path, timestamp, nonce, body)}


def load_credentials(state_dir, merchant):
    """A merchant's credentials {id, name, role, key_id, secret} as the admin CLI wrote them in
    <state-dir>/merchants/, by merchant id or name."""
    d = Path(state_dir) / "merchants"
    for f in sorted(d.glob("*.json")):
        creds = json.loads(f.read_text())
        if merchant in (creds["id"], creds["name"]):
            return creds
    raise KeyError("no credentials of merchant %r in %s" % (merchant, d))


class Client:
    """A merchant API client that signs every request: call(method, path, body) -> (status, JSON)."""

    def __init__(self, base_url, credentials):
        self.base_url = base_url
        self.credentials = credentials

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        headers = sign(self.credentials, method, path, data)
        headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base_url + path, data if body is not None else None, headers,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


# What the signature middleware leaves on a request for its handler: the merchant whose key
# signed it, and the body it read (and hashed).
MERCHANT, BODY_READ = web.RequestKey("merchant", dict), web.RequestKey("body", bytes)


def _error(status, message):
    return web.json_response({"error": message}, status=status)


def make_app(host):
    ledger, hsm = host.state.ledger, host.state.hsm

    def authenticate(request, body):
        """The merchant whose key signed this request; Refused(401) if none did."""
        h = request.headers
        key_id, timestamp, nonce, sig = (h.get("X-PT-Key"), h.get("X-PT-Time"), h.get("X-PT-Nonce"),
                                         h.get("X-PT-Signature"))
        if not (key_id and timestamp and nonce and sig):
            raise Refused(401, "sign the request: X-PT-Key, X-PT-Time, X-PT-Nonce, X-PT-Signature")
        if not (timestamp.isascii() and timestamp.isdigit()) or abs(int(timestamp) - time.time()) > SKEW:
            raise Refused(401, "X-PT-Time is not within %d s of the bank's clock" % SKEW)
        if not _NONCE.match(nonce):
            raise Refused(401, "X-PT-Nonce is 16..64 of A-Z a-z 0-9 _ -")
        merchant = ledger.merchant_by_key(key_id)
        if merchant is None:
            raise Refused(401, "unknown key")
        secret = hsm.unseal(merchant.pop("secret"), ("merchant-key|" + key_id).encode())
        expected = signature(secret, request.method, request.path_qs, timestamp, nonce, body)
        if not hmac.compare_digest(expected, sig):
            raise Refused(401, "bad signature")
        forget = datetime.datetime.fromtimestamp(time.time() - 2 * SKEW, datetime.timezone.utc)
        if not ledger.use_nonce(key_id, nonce, forget.isoformat(timespec="milliseconds")):
            raise Refused(401, "nonce used already: a replayed request")
        return merchant

    @web.middleware
    async def signed(request, handler):
        body = await request.read()
        try:
            request[MERCHANT] = await host.call(authenticate, request, body)
            request[BODY_READ] = body
            return await handler(request)
        except Refused as e:
            return _error(e.status, str(e))

    def role(request, wanted):
        if request[MERCHANT]["role"] != wanted:
            raise Refused(403, "this key is not a%s %s's" % ("n" if wanted[0] in "aeiou" else "", wanted))
        return request[MERCHANT]

    def parse(body):
        """(device, alias, order, amount, currency, ttl) of a request's body (device or alias
        None: the other names the handheld), or Refused(400)."""
        try:
            doc = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):  # not UTF-8, not JSON, nested past the parser's depth
            raise Refused(400, "the body is not JSON (UTF-8)") from None
        if not isinstance(doc, dict) or set(doc) - set(BODY) or not set(BODY[:3]) <= set(doc) \
                or ("device" in doc) == ("alias" in doc):
            raise Refused(400, "a JSON object with device or alias, order, amount and currency (and "
                               "ttl if wanted), nothing else: the merchant is the key's")
        order, amount, currency = (doc[k] for k in BODY[:3])
        device, named = doc.get("device"), None
        ttl = doc.get("ttl", int(REQUEST_TTL.total_seconds()))
        if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
            raise Refused(400, "amount is an integer of minor units, 1..%d" % MAX_AMOUNT)
        if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isdigit()):
            raise Refused(400, "currency is ISO 4217 numeric, 3 digits in a string")
        if not printable(order, 60):
            raise Refused(400, "order is 1..60 printable ASCII characters")
        if "alias" in doc:
            named = aliases.parse(doc["alias"])
            if named is None:
                raise Refused(400, "alias is a payment identifier as the handheld shows it: %d characters "
                                   "of %s, the last a check character (one is mistyped?)"
                              % (aliases.LENGTH, aliases.ALPHABET))
        elif not printable(device, 8):
            raise Refused(400, "device is a serial, e.g. PT000001")
        if type(ttl) is not int or not 1 <= ttl <= MAX_TTL.total_seconds():
            raise Refused(400, "ttl is an integer of seconds, 1..%d" % MAX_TTL.total_seconds())
        return device, named, order, amount, currency, datetime.timedelta(seconds=ttl)

    def public(req):
        """A request as its merchant sees it: one pushed to an alias named by it, never by the
        serial behind it; with how much of its payment was voided or refunded."""
        named = ledger.request_alias(req["id"])
        if named is not None:
            del req["device"]
            req["alias"] = named
        req["refunded"] = ledger.refunded(req["rrn"]) if req["rrn"] else 0
        return req

    async def create(request):
        merchant = role(request, "merchant")
        device, named, order, amount, currency, ttl = parse(request[BODY_READ])
        if named is not None:
            # Never issued, retired, or another bank's: one answer, which says none of them.
            device = await host.call(ledger.device_by_alias, named)
            if device is None:
                return _error(404, "no handheld has the identifier %s now" % named)
        elif await host.call(ledger.device, device) is None:
            return _error(404, "no device %s" % device)
        who = "the handheld %s" % named if named else "device %s" % device
        session = host.sessions.get(device)
        if session is None or not session.signed_on:
            return _error(409, "%s is not signed on" % who)
        req_id = "".join(secrets.choice(_ID_CHARS) for _ in range(12))
        expires = (datetime.datetime.now(datetime.timezone.utc) + ttl).isoformat(
            timespec="milliseconds")
        try:
            await host.call(ledger.add_request, req_id, device, merchant["id"], merchant["name"], order,
                            amount, currency, expires, named)
        except Conflict:
            return _error(409, "order %s already requested from %s" % (order, who))
        req = await host.call(lambda: ledger.request(request_id=req_id))
        try:
            await host.push(req)
        except BaseException as e:
            # Never left "pushed" when no 0600 went out: the device cannot pay it.
            await host.call(ledger.set_request_status, req_id, "expired")
            if isinstance(e, (PushError, ConnectionError)):
                return _error(409, "%s is not signed on" % who if named else str(e))
            raise
        return web.json_response(await host.call(public, req), status=201)

    async def show(request):
        merchant = role(request, "merchant")
        req = await host.call(lambda: ledger.request(request_id=request.match_info["id"]))
        if req is None or req["merchant_id"] != merchant["id"]:
            return _error(404, "no such payment request of yours")
        return web.json_response(await host.call(public, req))

    async def refund(request):
        """Give back (part of) a request the merchant was paid: a void the day it was paid (all
        of it), a refund after the bank's cut-over. Another merchant's request and one that never
        was are both 404, the same words."""
        merchant = role(request, "merchant")
        try:
            doc = json.loads(request[BODY_READ].decode("utf-8"))
        except (ValueError, RecursionError):
            return _error(400, "the body is not JSON (UTF-8)")
        if not isinstance(doc, dict) or set(doc) != set(REFUND_BODY):
            return _error(400, "a JSON object with amount and reference, nothing else")
        amount, reference = doc["amount"], doc["reference"]
        if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
            return _error(400, "amount is an integer of minor units, 1..%d" % MAX_AMOUNT)
        if not isinstance(reference, str) or not _REFERENCE.match(reference):
            return _error(400, "reference is 1..36 of A-Z a-z 0-9 _ -")
        req = await host.call(lambda: ledger.request(request_id=request.match_info["id"]))
        if req is None or req["merchant_id"] != merchant["id"]:
            return _error(404, "no such payment request of yours")
        try:
            done = await host.call(host.bank.merchant_return, merchant["id"], req, amount, reference)
        except Decline as d:
            status, text = REFUND_DECLINES.get(d.rc, (500, "the bank could not do it (%s)" % d.rc))
            return _error(status, text)
        body = {"rrn": done["rrn"], "kind": done["kind"], "amount": done["amount"], "reference": reference,
                "request": req["id"], "refunded": await host.call(ledger.refunded, done["original"])}
        return web.json_response(body, status=200 if done["again"] else 201)

    async def account(request):
        merchant = role(request, "merchant")
        if request.match_info["id"] != merchant["account_id"]:
            return _error(404, "no such account of yours")
        return web.json_response(await host.call(ledger.account, merchant["account_id"]))

    async def trace(request):
        role(request, "operator")
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return _error(400, "since is a message number")
        return web.json_response(host.trace.since(since))

    app = web.Application(middlewares=[signed])
    app.router.add_post("/payment-requests", create)
    app.router.add_get("/trace", trace)
    app.router.add_get("/payment-requests/{id}", show)
    app.router.add_post("/payment-requests/{id}/refunds", refund)
    app.router.add_get("/accounts/{id}", account)
    return app


async def start(host, address, port):
    """Serve the API; returns (runner, (address, port))."""
    runner = web.AppRunner(make_app(host), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, address, port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[:2]
