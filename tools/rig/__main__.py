"""`python -m tools.rig`: the rig on its own, for host software to talk to its models.

The virtual handheld (`python -m tools.vdevice`) starts its own rig; run this one alone to reach
the models from independent host software over their ptys (build/rig/<device>.tty).
"""

import argparse
import asyncio

from .rig import Rig


async def serve(state_dir, attach, handheld):
    rig = Rig(state_dir)
    await rig.start()
    if handheld:
        rig.attach_handheld()
    for spec in attach:
        bus, model = spec.split(":", 1)
        rig.cmd_attach(bus, model)
    state = rig.write_state()
    print("rig: buses on %s, control API on %s" % (state["bus"], state["control"]), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        rig.close()
        await asyncio.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(prog="python -m tools.rig", description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", default="build", help="where rig.json and rig/<device>.tty go")
    parser.add_argument("--handheld", action="store_true",
                        help="attach the reference handheld's peripherals (display, touch, fingerprint sensor)")
    parser.add_argument("--attach", action="append", default=[], metavar="BUS:MODEL",
                        help="attach a model at start, e.g. uart1:loopback (repeatable)")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.state_dir, args.attach, args.handheld))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
