"""The merchant HTTP API (aiohttp): create payment requests that the host pushes to a device,
read them back, and read account balances; and the host's message trace (masked, see
tools/bank/host.py) for the web simulator. JSON in and out; see tools/bank/README.md.
"""

import datetime
import secrets
import string

from aiohttp import web

from tools.bank.host import PushError
from tools.bank.ledger import Conflict

REQUEST_TTL = datetime.timedelta(minutes=10)  # a request's life unless its body says "ttl" (seconds)
MAX_TTL = datetime.timedelta(days=1)  # the device counts a request's life in ticks: a day at most
_ID_CHARS = string.ascii_uppercase + string.digits


def _error(status, message):
    return web.json_response({"error": message}, status=status)


def make_app(host):
    ledger = host.state.ledger
    app = web.Application()

    async def create(request):
        try:
            body = await request.json()
            device, merchant, order = str(body["device"]), str(body["merchant"]), str(body["order"])
            amount, currency = int(body["amount"]), str(body["currency"])
            ttl = datetime.timedelta(seconds=int(body["ttl"])) if "ttl" in body else REQUEST_TTL
        except (ValueError, KeyError, TypeError):
            return _error(400, "a JSON body with device, merchant, order, amount (minor units) "
                               "and currency (ISO 4217 numeric) is needed, and ttl in seconds if given")
        merchant_id = str(body.get("merchant_id") or "".join(c for c in merchant.upper()
                                                             if c.isalnum())[:15] or "MERCHANT")
        if amount <= 0 or not (currency.isdigit() and len(currency) == 3) or not order \
                or len(order) > 60 or len(merchant) > 40 or len(merchant_id) > 15 \
                or not datetime.timedelta(seconds=1) <= ttl <= MAX_TTL:
            return _error(400, "amount > 0, currency 3 digits, order 1..60 chars, merchant up to "
                               "40 chars, merchant_id up to 15, ttl 1..86400 s")
        if await host.call(ledger.device, device) is None:
            return _error(404, "no device %s" % device)
        session = host.sessions.get(device)
        if session is None or not session.signed_on:
            return _error(409, "device %s is not signed on" % device)
        req_id = "".join(secrets.choice(_ID_CHARS) for _ in range(12))
        expires = (datetime.datetime.now(datetime.timezone.utc) + ttl).isoformat(
            timespec="milliseconds")
        try:
            await host.call(ledger.add_request, req_id, device, merchant_id, merchant, order,
                            amount, currency, expires)
        except Conflict:
            return _error(409, "order %s already requested from %s" % (order, device))
        req = await host.call(lambda: ledger.request(request_id=req_id))
        try:
            await host.push(req)
        except (PushError, ConnectionError) as e:
            await host.call(ledger.set_request_status, req_id, "expired")
            return _error(409, str(e))
        return web.json_response(req, status=201)

    async def show(request):
        req = await host.call(lambda: ledger.request(request_id=request.match_info["id"]))
        return web.json_response(req) if req else _error(404, "no such payment request")

    async def account(request):
        acct = await host.call(ledger.account, request.match_info["id"])
        return web.json_response(acct) if acct else _error(404, "no such account")

    async def trace(request):
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return _error(400, "since is a message number")
        return web.json_response(host.trace.since(since))

    app.router.add_post("/payment-requests", create)
    app.router.add_get("/trace", trace)
    app.router.add_get("/payment-requests/{id}", show)
    app.router.add_get("/accounts/{id}", account)
    return app


async def start(host, address, port):
    """Serve the API; returns (runner, (address, port))."""
    runner = web.AppRunner(make_app(host), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, address, port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[:2]
