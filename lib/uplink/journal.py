"""What the uplink keeps on flash across reboots: the STAN counter and the reversal queue.

    j = Journal()                 # in /journal (not /uplink: a folder named like a package at
                                  # the root of the flash would hide /lib/uplink from import)
    stan = j.next_stan()          # "000042": stored past it before it is returned
    j.queue(entry) / j.done(key)  # the store-and-forward queue of 0400s (PROTOCOL.md)
    j.keys(), j.entry(key)        # the queued keys, oldest first; one entry read from flash
    j.full                        # REVERSALS queued: queue() takes no new key (JournalFull)
    j.pending()                   # every queued entry, oldest first (tests and tools: reads all)

The queue is a record per reversal: one small file each, named "<seq>.<key>" (seq: the order
of queuing), so an operation reads or writes one entry and RAM holds only the file names. A
record and the STAN counter are each written in place, whole or not at all: LittleFS makes a
file's new contents current at its close, in one metadata commit, and until then the file is
what it was. So a power cut leaves the old or the new version, never a mix. A name LittleFS
created at its open (a new record, the first STAN) is empty until that close: Journal() drops an
empty file as a write a cut stopped (its record never was: queue() had not returned, so its 0200
never went out). Not a temporary file renamed over the old one: each rename was a pass over the
folder's metadata log, 120-800 reads of the flash chip growing with the log (~0.01-0.06 s each
on the ESP32, three or four a payment: tools/flowbench.py). A reversal is queued BEFORE its
0200 is sent, and a STAN is stored as used BEFORE a message carries it: a cut can skip one,
never reuse it. done() removes the record's file (one metadata commit).

An entry is replaced in place by one queued with the same key (one write to its own file: the
entry a 0200's answer arms, the reason a card's refusal gives it), so that there is never a
moment on flash with none or two for one original.
"""

import json
import os

import flashfs
from micropython import const
from uplink.tls import UplinkError

STAN_MAX = const(999_999)
# Reversals waiting for the bank, at most (issue 16). Each is a 0200 the terminal sent that is
# not settled: there is never more than one in flight (a flow at a time), so a full journal
# means the bank has not taken the 0400s of 16 transactions in a row (offline, or refusing
# them); a terminal in that state should stop, not pile up more. While full, no new reversible
# 0200 is sent: a terminal that could not record its reversal must not send it (JournalFull).
REVERSALS = const(16)
_LEGACY = "reversals"  # the whole queue in one JSON list, as firmware before records kept it


class JournalFull(UplinkError):
    """REVERSALS reversals wait for the bank: no new transaction that might need one."""


class Journal:
    def __init__(self, root="/journal"):
        self.root = root
        try:
            os.mkdir(root)
        except OSError:
            pass  # exists
        self._names = []  # the records' file names, oldest first
        self._seq = 0  # the last record's seq
        found = []
        for entry in os.ilistdir(root):
            name = entry[0]
            if len(entry) == 4 and not entry[3] or name.endswith(".tmp"):
                # A write a cut stopped before its close (empty: LittleFS lists each file's size
                # fourth, see above; ".tmp": the older firmware's temporary file): its record, or
                # its first STAN, never was.
                os.remove(self._path(name))
            elif "." in name:
                found.append((int(name.split(".")[0]), name))
        found.sort()
        for seq, name in found:
            self._names.append(name)
            self._seq = seq
        self._migrate()

    def _migrate(self):
        # A queue of the older firmware, moved into records then removed: a cut in between
        # moves it again, each entry onto its own record (queued by key).
        try:
            with open(self._path(_LEGACY)) as f:
                legacy = json.load(f)
        except OSError:
            return
        for entry in legacy:
            self._put(entry)
        os.remove(self._path(_LEGACY))

    def _path(self, name):
        return self.root + "/" + name

    def _name(self, key):
        for name in self._names:
            if name.endswith(key) and name[-len(key) - 1] == ".":
                return name
        return None

    def _write(self, name, value):
        # In place (see the module's docstring), whole: an exception half way through json.dump
        # into the file would leave a record or a STAN that no longer reads.
        flashfs.write_whole(self._path(name), json.dumps(value))

    def next_stan(self):
        """The next STAN, 000001..999999 then 000001 again; stored as used before it is returned."""
        try:
            with open(self._path("stan")) as f:
                n = json.load(f)
        except OSError:
            n = 1
        self._write("stan", n % STAN_MAX + 1)
        return "%06d" % n

    @property
    def full(self):
        return len(self._names) >= REVERSALS

    def queue(self, entry):
        """Add a reversal (a dict of JSON values with a "key"), or replace the one with its key
        where it stands; on flash when this returns. JournalFull for a new key while full."""
        if self._name(entry["key"]) is None and self.full:
            raise JournalFull("%d reversals wait for the bank, the most the terminal keeps" % REVERSALS)
        self._put(entry)

    def _put(self, entry):
        key = entry["key"]
        name = self._name(key)
        if name is None:
            self._seq += 1
            name = "%d.%s" % (self._seq, key)
            self._write(name, entry)
            self._names.append(name)
        else:
            self._write(name, entry)

    def done(self, key):
        """Remove the reversal with this key (acknowledged, or its original was answered)."""
        name = self._name(key)
        if name is not None:
            os.remove(self._path(name))
            self._names.remove(name)

    def keys(self):
        """The queued reversals' keys, oldest first (a copy: done() may run meanwhile)."""
        return [name[name.find(".") + 1:] for name in self._names]

    def entry(self, key):
        """The queued reversal with this key, read from flash; None if there is none."""
        name = self._name(key)
        if name is None:
            return None
        with open(self._path(name)) as f:
            return json.load(f)

    def pending(self):
        return [self.entry(key) for key in self.keys()]
