# boot.py: runs at every reset, before main.py. Kept to the least that must happen first: a
# failure here leaves only the REPL.
import safemode

safemode.check()
