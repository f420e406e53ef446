"""Uncaught errors, kept on flash in a bounded log: at the REPL, `import crashlog; crashlog.show()`.

Bounded by two files: once the current one holds MAX_BYTES it becomes the previous one (a
rename, atomic on LittleFS) and a new one starts, so each holds at most MAX_BYTES and one entry,
and a crash loop can neither fill the flash nor lose the newest entries. An entry is printed
straight into the file, not built in RAM first: the crash that matters most on the board is a
MemoryError, and recording it must not need a block of the heap that has just run out.
Tracebacks carry no local values, so no secret reaches the log unless an exception's own
message holds one; raise with names, not values.
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
    """Append one crash: uptime, context, the traceback (print writes each piece to the file
    as it goes; nothing but the open file is allocated)."""
    if _size(PATH) >= MAX_BYTES:
        os.rename(PATH, PREVIOUS)
    with open(PATH, "a") as f:
        print("---", context or "crash", "at uptime", time.ticks_ms(), "ms", file=f)
        sys.print_exception(exc, f)


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
