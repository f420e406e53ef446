"""Safe mode: the standby key held at reset skips main.py and leaves only the REPL.

The way back in when the application itself is what breaks the device: boot.py calls check()
before anything else starts, main.py looks at `active`.
"""

active = False


def check():
    global active
    import board
    import production

    if production.locked:  # safe mode is a way to the REPL, which a production unit refuses
        return False

    try:
        held = board.buses.standby_key().value() == 0
    except OSError as e:  # no key to read is no reason to refuse to start
        print("safe mode: standby key unreadable (%s)" % e)
        return False
    if held:
        active = True
        print("safe mode: standby key held at reset; main.py skipped, REPL only")
    return active
