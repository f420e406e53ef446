"""Uncaught errors, kept on flash in a bounded log: at the REPL, `import crashlog; crashlog.show()`.

Bounded by two files of at most MAX_BYTES each: when the current one is full it becomes the
previous one (a rename, atomic on LittleFS) and a new one starts, so a crash loop can neither
fill the flash nor lose the newest entries. Tracebacks carry no local values, so no secret
reaches the log unless an exception's own message holds one; raise with names, not values.
"""

import os
import sys
import time

from micropython import const

MAX_BYTES = const(2048)
PATH = "/crash.log"
PREVIOUS = "/crash.log.1"


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


def record(exc, context=""):
    """Append one crash: uptime, context, the traceback."""
    import io

    text = io.StringIO()
    text.write("--- %s at uptime %d ms\n" % (context or "crash", time.ticks_ms()))
    sys.print_exception(exc, text)
    entry = text.getvalue()
    if _size(PATH) + len(entry) > MAX_BYTES:
        os.rename(PATH, PREVIOUS)
    with open(PATH, "a") as f:
        f.write(entry[-MAX_BYTES:])


def read():
    """The log, oldest first."""
    out = ""
    for path in (PREVIOUS, PATH):
        try:
            with open(path) as f:
                out += f.read()
        except OSError:
            pass
    return out


def count():
    return read().count("--- ")


def show():
    print(read() or "crash log empty")


def clear():
    for path in (PREVIOUS, PATH):
        try:
            os.remove(path)
        except OSError:
            pass
