"""Updates from the issuer: signed packages (update.package), their installers (update.ota:
firmware application image, update.files: vfs files, update.config: terminal parameters).

The uplink and the link read the versions and the bank's endpoint through `call`, which lets
go of the modules it imported for it: they sign on in the background of every flow, where
update.package and update.config would otherwise stay in the heap (1.8 KB) for good.

    update.call("update.package", "versions")      # (firmware, security, parameters, files versions)
    await update.follow(up, offer, done)           # a sign-on's offer (DE48), by the uplink's task
"""


# The issuer's CAs for the bank host (update.config's bank_ca section), looked for by the uplink's
# TLS context on every unit (here: it imports update.config only when the file is there).
BANK_CA = "/config/bank-ca.der"


def call(module, name, *args):
    """module.name(*args), the modules imported for it let go after."""
    import sys

    before = set(sys.modules)
    try:
        return getattr(__import__(module, None, None, (name,)), name)(*args)
    finally:
        _let_go(before)


async def follow(up, offer, done):
    """update.package.follow(up, offer), in the uplink's task after a sign-on that offers
    something, and this package's modules imported for it let go after: a unit with a firmware
    offer waiting for its owner kept update.package and update.config (2 KB) in the heap through
    every flow. Only update.*: a flow running beside the task may have imported the others.
    done: an asyncio.Event, set at the end whatever happened (unset, the uplink would follow no
    later offer)."""
    import sys

    try:
        before = set(sys.modules)
        try:
            from update import package

            await package.follow(up, offer)
        finally:
            _let_go(before, "update.")
    finally:
        done.set()


def _let_go(before, within=""):
    import sys

    import parts

    # parts.unload, not a bare `del sys.modules[...]`: the package kept (update) would go on
    # naming the old submodule, and `from update import ota` would find that one while the
    # next __import__("update.ota") makes another (ota's confirmation then lost between them).
    parts.unload([m for m in sys.modules if m not in before and m.startswith(within)])
