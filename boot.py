# boot.py: runs at every reset, before main.py. Kept to the least that must happen first: a
# failure here leaves only the REPL (on a development unit).
import board

board.hold_repl()  # before anything else: see lib/production.py

import production

production.enforce()

import safemode

safemode.check()
