"""python -m tools.provision: the factory line's tool. A blank board becomes a provisioned
Pocket Terminal in four steps, each its own subcommand:

    image   --out DIR [--firmware micropython.bin --bootloader bootloader.bin]
    flash   --port P --images DIR
    secure  (--port P | --dry-run-virtual [--efuse-file F]) --images DIR [--signing-key PEM]
    inject  --port P --serial PT000001 [--bank-state build/bank] [--bank-host H:P]
            [--production-lock] [--reprovision]

Every command appends one audit record (JSONL, --audit) for the unit, whatever its result.
"""

import argparse
import sys

from tools.provision import common
from tools.provision.common import Audit, ProvisionError, err, progress

DEFAULT_AUDIT = "build/provision/audit.jsonl"


def image_hashes(images):
    """The SHA-256 of each image of an `image` output folder, for the audit record."""
    from tools.provision import factory

    return {name: part["sha256"] for name, part in factory.load_layout(images).items()}


def cmd_image(args, audit):
    from tools.provision import factory

    layout = factory.build(args.out, args.firmware, args.bootloader)
    audit["images"] = {name: part["sha256"] for name, part in layout.items()}
    for name, part in sorted(layout.items(), key=lambda kv: kv[1]["offset"]):
        progress("%-16s 0x%06x %8d bytes  sha256 %s" % (name, part["offset"], part["size"], part["sha256"][:16]))


def cmd_flash(args, audit):
    from tools.provision import factory, flash

    layout = factory.load_layout(args.images)
    audit["images"] = image_hashes(args.images)
    audit["written"] = flash.write(args.port, layout)
    progress("written and verified")


def cmd_secure(args, audit):
    from tools.provision import factory, secure

    if not args.port and not args.dry_run_virtual:
        raise ProvisionError(common.USAGE, "secure needs --port, or --dry-run-virtual for virtual eFuses")
    layout = factory.load_layout(args.images)
    audit["images"] = image_hashes(args.images)
    audit["virtual"] = bool(args.dry_run_virtual)
    if args.dry_run_virtual:
        from tools import vdevice

        # The virtual handheld's chip: a blank reference chip (revision 3) if it has none yet,
        # as the virtual handheld makes it; a new file for espefuse would be a revision-0 chip.
        vdevice.chip_efuses(args.efuse_file)
    summary = secure.secure(layout, args.images, args.keys, port=args.port,
                            virtual_file=args.efuse_file if args.dry_run_virtual else None,
                            signing_key=args.signing_key, flash_key=args.flash_encryption_key, audit=audit)
    for name, value in summary.items():
        progress("%-22s %s" % (name, value))


def cmd_inject(args, audit):
    from tools.provision import inject

    if args.images:
        audit["images"] = image_hashes(args.images)
    ikid = bytes.fromhex(args.initial_key_id) if args.initial_key_id else None
    wifi = tuple(args.wifi.split(":", 1)) if args.wifi else None
    state = inject.inject(args.port, args.serial, args.bank_state, args.bank_host, wifi, ikid, args.bdk_id,
                          args.production_lock, args.reprovision, audit)
    progress("%s is %s%s" % (args.serial, state, ", production-locked" if args.production_lock else ""))


def parser():
    codes = "\n".join("  %d  %s" % kv for kv in sorted(common.EXIT_CODES.items()))
    p = argparse.ArgumentParser(prog="python -m tools.provision", description=__doc__.split("\n\n")[0],
                                epilog="exit codes:\n" + codes, formatter_class=argparse.RawDescriptionHelpFormatter)
    unit = argparse.ArgumentParser(add_help=False)
    unit.add_argument("--audit", default=DEFAULT_AUDIT, help="the audit log, JSONL (default %(default)s)")
    unit.add_argument("--serial", help="the unit's serial (8 letters/digits, e.g. PT000001); inject needs it")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("image", parents=[unit], help="the file-system image, and the merged factory image of a firmware build")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--firmware", help="the app image of the firmware build (micropython.bin)")
    s.add_argument("--bootloader", help="the bootloader of the same build (bootloader/bootloader.bin)")
    s.set_defaults(run=cmd_image)

    s = sub.add_parser("flash", parents=[unit], help="write the images (esptool), verify; on the virtual handheld: its files over the REPL")
    s.add_argument("--port", required=True, help="/dev/ttyUSB0, or build/vdevice.tty")
    s.add_argument("--images", required=True, help="the output folder of `image`")
    s.set_defaults(run=cmd_flash)

    s = sub.add_parser("secure", parents=[unit], help="keys, signing, encryption, eFuses: Secure Boot v2 + release flash encryption")
    s.add_argument("--port", help="the board's serial port (ROM bootloader)")
    s.add_argument("--dry-run-virtual", action="store_true", help="on espefuse's virtual eFuses, no board")
    s.add_argument("--efuse-file", default="build/vdevice.efuse",
                   help="where the virtual eFuses persist (default %(default)s: the chip of the virtual "
                        "handheld `make run` starts, <state dir>/vdevice.efuse)")
    s.add_argument("--images", required=True, help="the output folder of `image`")
    s.add_argument("--keys", default="build/provision/keys", help="key folder (mode 0700; default %(default)s)")
    s.add_argument("--signing-key", help="the fleet's Secure Boot v2 signing key (RSA-3072 PEM); "
                                         "without it one is generated in --keys (development only)")
    s.add_argument("--flash-encryption-key", help="take this 256-bit key instead of generating one for the unit "
                                                  "(then not deleted: its keeper holds a copy)")
    s.set_defaults(run=cmd_secure)

    s = sub.add_parser("inject", parents=[unit], help="the unit's secrets into its vault, read back, TLS test, PROVISIONED")
    s.add_argument("--port", required=True, help="/dev/ttyUSB0, or build/vdevice.tty")
    s.add_argument("--bank-state", default="build/bank", help="the bank's state folder: HSM, PKI, ledger (default %(default)s)")
    s.add_argument("--bank-host", help="HOST:PORT of the bank host for the TLS test connection; once it "
                   "signed on, the unit keeps it as its bank (/config/bank.json)")
    s.add_argument("--wifi", help="SSID:PASSWORD of the factory's network for the TLS test (default: the unit's own)")
    s.add_argument("--bdk-id", default="00000001", help="the BDK id, 8 hex digits (default %(default)s)")
    s.add_argument("--initial-key-id", help="the DUKPT initial key id, 16 hex digits (default: BDK id, injection count, the serial's number)")
    s.add_argument("--images", help="the output folder of `image`, for the image hashes in the audit record")
    s.add_argument("--production-lock", action="store_true", help="from the next boot on, the unit refuses the REPL")
    s.add_argument("--reprovision", action="store_true", help="wipe a PROVISIONED or BLOCKED unit first")
    s.set_defaults(run=cmd_inject)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    audit = Audit(args.audit, args.command)
    audit["serial"] = args.serial
    try:
        if args.command == "inject" and not args.serial:
            raise ProvisionError(common.USAGE, "inject needs --serial")
        args.run(args, audit)
    except ProvisionError as e:
        audit.finish("failed", str(e))
        err(str(e))
        return e.code
    except KeyboardInterrupt:
        audit.finish("interrupted")
        err("interrupted")
        return 130
    audit.finish("ok")
    progress("audit record appended to %s" % args.audit)
    return common.OK


if __name__ == "__main__":
    sys.exit(main())
