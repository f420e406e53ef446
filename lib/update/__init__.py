"""Updates from the issuer: signed packages (update.package), their installers (update.ota:
firmware application image, update.files: vfs files, update.config: terminal parameters).

The uplink and the link read the versions and the bank's endpoint through `call`, which lets
go of the modules it imported for it: they sign on in the background of every flow, where
update.package and update.config would otherwise stay in the heap (1.8 KB) for good.

    update.call("update.package", "versions")      # (firmware, security, parameters, files versions)
"""


# The issuer's CAs for the bank host (update.config's bank_ca section), looked for by the uplink's
# TLS context on every unit (here: it imports update.config only when the file is there).
BANK_CA = "/config/bank-ca.der"


def call(module, name, *args):
    """module.name(*args), the modules imported for it let go after."""
    import sys

    import parts

    before = set(sys.modules)
    try:
        return getattr(__import__(module, None, None, (name,)), name)(*args)
    finally:
        # parts.unload, not a bare `del sys.modules[...]`: the package kept (update) would go on
        # naming the old submodule, and `from update import ota` would find that one while the
        # next __import__("update.ota") makes another (ota's confirmation then lost between them).
        parts.unload([m for m in sys.modules if m not in before])
