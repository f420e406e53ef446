"""The production lock: a unit the factory marked as production refuses the REPL.

boot.py calls enforce() first thing. On the ESP32 that turns Ctrl-C off and main.py never
hands over to the REPL (when the terminal stops, the board resets instead); safe mode, which
exists to reach the REPL, is refused too. Development units keep the REPL.
"""

locked = False


def enforce():
    global locked
    import vault

    if vault.is_production():
        import board

        locked = True
        board.refuse_repl()
    return locked


def after_main():
    """main.py is ending: on a production unit that means a reset, never the REPL."""
    if locked:
        import board

        board.reset()
