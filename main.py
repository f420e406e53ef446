# main.py: the terminal. Ctrl-C lands in the REPL (a development unit); a crash is logged and
# the app restarted; on a production unit its end or an escaping error resets the board.
import safemode

try:
    if not safemode.active:
        import terminal

        terminal.run()
finally:
    import production

    production.after_main()
