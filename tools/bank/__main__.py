"""python -m tools.bank [--listen HOST:PORT] [--database URL] [--merchant-api HOST:PORT]
[--state-dir build/bank]: the reference bank host (tools/bank/README.md).

Creates what the state directory lacks (HSM keys, CA and host certificate, the ledger's
tables), then serves devices over TLS and the merchant API over HTTP, and prints both addresses.
"""

import argparse
import asyncio
import signal

from tools.bank import merchant
from tools.bank.host import Host
from tools.bank.state import DEFAULT_DIR, State


def host_port(text):
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def serve(args):
    state = State(args.state_dir, args.database).init()
    state.log_to_file()
    host = Host(state, workers=args.workers)
    bank_addr = await host.start(*args.listen)
    runner, api_addr = await merchant.start(host, *args.merchant_api)
    print("bank listening on %s:%d (TLS, client certificates from %s)" % (
        bank_addr[0], bank_addr[1], state.pki_dir / "ca.pem"), flush=True)
    print("merchant API on http://%s:%d" % api_addr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await host.stop()
    state.close()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.bank", description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", type=host_port, default=("127.0.0.1", 8583))
    p.add_argument("--merchant-api", type=host_port, default=("127.0.0.1", 8080))
    p.add_argument("--database", default=None,
                   help="sqlite:///path or postgresql://... (default: BANK_DATABASE_URL, else "
                        "SQLite in the state dir)")
    p.add_argument("--state-dir", default=DEFAULT_DIR)
    p.add_argument("--workers", type=int, default=8, help="ledger/HSM threads")
    asyncio.run(serve(p.parse_args(argv)))


if __name__ == "__main__":
    main()
