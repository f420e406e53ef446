"""`python -m tools.websim`: the virtual handheld in a browser page, with the bank host.

Prints `REPL on <pty>` (mpremote works on it as with `make run`) and
`web simulator on http://127.0.0.1:<port>/`.

The demo works out of the box (tools/demo.py): the bank's state in <state-dir>/bank is seeded
once and kept; a virtual handheld not yet set up (a fresh image) is provisioned and
personalised at start, so the page shows its lock screen, opened by the demo's owner PIN (it is
printed). --reset starts over: a new bank state and a fresh flash image.
"""

import argparse
import asyncio
import sys
from pathlib import Path

from tools.vdevice import VDeviceError

from . import serve

ROOT = Path(__file__).resolve().parent.parent.parent


def main():
    parser = argparse.ArgumentParser(prog="python -m tools.websim", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="the page's port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--no-bank", action="store_true", help="do not start the reference bank host")
    parser.add_argument("--image", default=str(ROOT / "build" / "flash.img"), help="flash image (make image)")
    parser.add_argument("--heap", default=None, help="a fixed MicroPython heap instead of the board's")
    parser.add_argument("--state-dir", default=str(ROOT / "build"), help="where vdevice.tty and rig.json go")
    parser.add_argument("--reset", action="store_true",
                        help="start over: a new bank state (<state-dir>/bank) and a fresh flash image")
    args = parser.parse_args()
    try:
        failure = asyncio.run(serve(args))
    except (VDeviceError, OSError) as e:
        print("websim: %s" % e, file=sys.stderr)
        return 1
    if failure:
        print("websim: %s" % failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
