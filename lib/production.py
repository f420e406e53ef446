"""The production lock: a unit the factory marked as production refuses the REPL.

boot.py holds Ctrl-C (board.hold_repl) and calls enforce() first thing. On a production unit
Ctrl-C stays off and main.py never hands over to the REPL (when the terminal stops, the board
resets instead); safe mode, which exists to reach the REPL, is refused too. Development units
get Ctrl-C back and keep the REPL.
"""

locked = False


def enforce():
    global locked
    import sys

    import board
    import vault

    try:
        if vault.is_production():
            locked = True
            board.refuse_repl()
        else:
            board.allow_repl()
    finally:
        # boot.py needs the vault for this one question: its modules (~4.8 KB of heap) are let
        # go, so that the REPL (safe mode, a development unit) has that heap; the terminal
        # imports them anew. Nothing of them is kept here.
        for name in ("vault.store", "vault.crypto", "vault"):
            sys.modules.pop(name, None)
    return locked


def after_main():
    """main.py is ending: on a production unit that means a reset, never the REPL."""
    if locked:
        import board

        board.reset()
