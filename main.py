# main.py: the terminal. Ctrl-C lands in the REPL; a crash is logged and the app restarted.
import safemode

if not safemode.active:
    import terminal

    terminal.run()

import production

production.after_main()
