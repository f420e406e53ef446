"""`python -m tools.vdevice`: the virtual handheld, with its rig, until interrupted.

Prints `REPL on <pty>` and links it as <state-dir>/vdevice.tty, so that stock mpremote works:
    mpremote connect build/vdevice.tty fs ls :/
"""

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from . import VDevice, VDeviceError

ROOT = Path(__file__).resolve().parent.parent.parent


async def serve(args):
    device = VDevice(args.image, args.state_dir, args.heap, args.power_cut_at)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, device.stop)
    try:
        await device.start()
        if not args.bare:
            device.rig.attach_handheld()
        for spec in args.attach:
            bus, model = spec.split(":", 1)
            device.rig.cmd_attach(bus, model)
        print("REPL on %s" % device.repl_path, flush=True)
        device.say("rig buses on %s, control API on %s (state in %s)"
                   % (device.rig.bus_addr, device.rig.control_addr, Path(args.state_dir) / "rig.json"))
        await device.exited.wait()
    finally:
        await device.close()
    if device.failure:
        raise VDeviceError(device.failure)


def main():
    parser = argparse.ArgumentParser(prog="python -m tools.vdevice", description=__doc__.split("\n")[0])
    parser.add_argument("--image", default=str(ROOT / "build" / "flash.img"), help="flash image (make image)")
    parser.add_argument("--heap", default=None, help="a fixed MicroPython heap, e.g. 256K, instead of the "
                        "board's (56 KB growing once to 111,936 bytes)")
    parser.add_argument("--state-dir", default=str(ROOT / "build"),
                        help="where vdevice.tty, rig.json and rig/<device>.tty go")
    parser.add_argument("--power-cut-at", type=int, default=0, metavar="N",
                        help="cut power at the Nth flash operation (erase or program) after start")
    parser.add_argument("--bare", action="store_true",
                        help="start with no peripheral models attached (tests attach their own)")
    parser.add_argument("--attach", action="append", default=[], metavar="BUS:MODEL",
                        help="attach a rig model at start, e.g. uart1:loopback (repeatable)")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args))
    except VDeviceError as e:
        print("vdevice: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
