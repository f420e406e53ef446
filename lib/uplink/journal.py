"""What the uplink keeps on flash across reboots: the STAN counter and the reversal queue.

    j = Journal()                 # in /journal (not /uplink: a folder named like a package at
                                  # the root of the flash would hide /lib/uplink from import)
    stan = j.next_stan()          # "000042": stored past it before it is returned
    j.queue(entry) / j.done(key)  # the store-and-forward queue of 0400s (PROTOCOL.md)
    j.pending()                   # the queued entries, oldest first

Both are rewritten whole and atomically (a new file renamed over the old one: LittleFS commits
a file at its close and a rename in one metadata commit), so a power cut leaves the old or the
new version, never a mix; a half-written ".tmp" left by a cut is overwritten by the next write.
A reversal is queued BEFORE its 0200 is sent, and a STAN is stored as used BEFORE a message
carries it: a cut can skip one, never reuse it.

An entry is replaced in place by one queued with the same key (one write: the entry a 0200's
answer arms, the reason a card's refusal gives it), so that there is never a moment on flash
with none or two for one original.
"""

import json
import os

from micropython import const

STAN_MAX = const(999_999)


class Journal:
    def __init__(self, root="/journal"):
        self.root = root
        try:
            os.mkdir(root)
        except OSError:
            pass  # exists
        self._queue = self._read("reversals", [])

    def _path(self, name):
        return self.root + "/" + name

    def _read(self, name, default):
        try:
            with open(self._path(name)) as f:
                return json.load(f)
        except OSError:
            return default

    def _write(self, name, value):
        tmp = self._path(name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(value, f)
        os.rename(tmp, self._path(name))

    def next_stan(self):
        """The next STAN, 000001..999999 then 000001 again; stored as used before it is returned."""
        n = self._read("stan", 1)
        self._write("stan", n % STAN_MAX + 1)
        return "%06d" % n

    def queue(self, entry):
        """Add a reversal (a dict of JSON values with a "key"), or replace the one with its key
        where it stands, and store the queue."""
        key = entry["key"]
        queue = [entry if e["key"] == key else e for e in self._queue]
        if not any(e["key"] == key for e in self._queue):
            queue.append(entry)
        self._write("reversals", queue)
        self._queue = queue

    def done(self, key):
        """Remove the reversal with this key (acknowledged, or its original was answered)."""
        left = [e for e in self._queue if e["key"] != key]
        if len(left) != len(self._queue):
            self._queue = left
            self._write("reversals", left)

    def pending(self):
        return list(self._queue)
