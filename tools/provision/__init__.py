"""Factory provisioning of Pocket Terminals: `python -m tools.provision` (see its --help and
tools/provision/README.md). Subcommands: image, flash, secure, inject."""
