# boot.py: runs at every reset, before main.py. Kept to the least that must happen first: a
# failure here leaves only the REPL (on a development unit; a production unit's C never reads
# the serial port: lib/production.py).
import sys

# The frozen firmware before the file system: a file on the flash (at its root, searched
# first as '') never stands in for a frozen module, production's and the vault's included.
sys.path.insert(0, sys.path.pop(sys.path.index(".frozen")))

import production

production.enforce()

# A set of files an update was replacing when the power went (lib/update/files.py): finished
# or dropped before anything reads them; its code let go of after.
from update import files

files.recover()
del files, sys.modules["update.files"], sys.modules["update"]

import safemode

safemode.check()
