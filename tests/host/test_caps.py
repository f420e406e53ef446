"""The terminal's stores at their caps, end to end on the demo terminal (tests/host/terminalfix.py)
against the real bank host: what the bank does with a push beyond uplink.REQUESTS, what the owner
sees when the reversal journal is full (uplink.journal.REVERSALS) and when the vault holds its
most fingerprints (vault.FINGERPRINTS). (The APIs' own errors at each cap: tests/device.)

The terminal's tests share one terminal and run in order; the journal's power cuts run on a bare
virtual handheld of their own."""

import time

from terminalfix import terminal  # noqa: F401 (the fixture)
from test_power import vd  # noqa: F401 (the fixture: a bare virtual handheld of its own)
from tools import demo, steadystate
from tools.device import Device

REFUSE_FULL = "05"  # uplink.REFUSE_FULL: the 0620's DE39 when the terminal declines a push itself

_UNLOCK = "import vault\nv = vault.Vault().open()\nv.verify_pin(bytearray(%r))\n" % demo.DEMO_PIN.encode()

# The journal at its cap with 0400s of 0200s the bank never saw (it answers them 25), as
# tools/steadystate fills it.
_FILL_JOURNAL = """
from uplink.journal import REVERSALS, Journal
j = Journal()
for i in range(REVERSALS - len(j.keys())):
    key = '%06d' % (900000 + i) + '0101%06d' % i
    j.queue({'key': key, 'stan': j.next_stan(), 'de7': '0101%06d' % i, 'de3': '000000', 'de4': '%012d' % (1250 + i),
             'de49': '978', 'de90': '0200' + key + '0' * 22, 'de39': '68'})
print(repr((REVERSALS, len(j.keys()), j.full)))
"""


def status(t, pushed):
    return t.bank.get("/payment-requests/" + pushed["id"], pushed["merchant_id"])["status"]


def locked_with(t, n, timeout=30):
    """Wait for the lock screen to count n waiting requests."""
    title = "Locked: %d request%s" % (n, "" if n == 1 else "s")
    deadline = time.monotonic() + timeout
    while not any(s["title"] == title for s in t.screens[t.seen:]):
        assert time.monotonic() < deadline, "no %r screen" % title
        time.sleep(0.2)


def test_a_push_beyond_the_cap_is_declined_at_the_bank_and_those_waiting_stay(terminal):
    t = terminal
    t.screen(lambda s: s["title"].startswith("Locked"))
    # A burst: every 0600 is MAC'd under the key of the device's latest KSN as the bank knows it,
    # while the device's 0610s to the first ones take new KSNs (uplink.PUSH_KEYS keeps the keys).
    waiting = [t.push("Shop %02d" % i, "ORD-CAP-%02d" % i, 500 + 25 * i) for i in range(steadystate.REQUESTS)]
    locked_with(t, steadystate.REQUESTS)
    trace = t.bank.get("/trace")["next"]
    beyond = t.push("Shop 08", "ORD-CAP-08", 900)
    deadline = time.monotonic() + 30
    while status(t, beyond) != "refused":
        assert time.monotonic() < deadline, "the push beyond the cap was not declined"
        time.sleep(0.2)
    refusals = [m["fields"] for m in t.bank.get("/trace?since=%d" % trace)["messages"] if m["mti"] == "0620"]
    assert [(f["37"], f["39"]) for f in refusals] == [(beyond["id"], REFUSE_FULL)], refusals
    assert [status(t, p) for p in waiting] == ["pushed"] * 8
    # The owner's list is the 8 that came first: no ninth arrived on the lock screen.
    time.sleep(1.5)  # a redraw for an arrival would come within the status bar's second
    titles = {s["title"] for s in t.screens if s["title"].startswith("Locked: ")}
    assert "Locked: 8 requests" in titles and "Locked: 9 requests" not in titles, titles


def test_a_full_reversal_journal_names_why_and_starts_no_payment_until_the_bank_has_them(terminal):
    t = terminal
    t.wifi(False)
    try:
        assert t.device.exec(_FILL_JOURNAL).strip().splitlines()[-1] == "(16, 16, True)"
        t.restart()
        t.unlock()
        shown = len(t.screens)
        t.purchase("640")
        held = t.screen("Payments on hold")
        assert held["error"] is True and "Nothing was charged" in held["text"], held
        assert "Insert or tap card" not in [s["title"] for s in t.screens[shown:]]  # no card asked for
        t.tap("OK")
        t.screen("Pocket Terminal")
        reversals = t.bank.log().count(": 0400/")
    finally:
        t.wifi(True)
    # Back online: the 16 go after the sign-on (the bank never saw their 0200s: 25, nothing to
    # undo), and the terminal takes payments again.
    deadline = time.monotonic() + 90
    while t.bank.log().count(": 0400/") < reversals + 16:
        assert time.monotonic() < deadline, "the journal's 0400s did not reach the bank"
        time.sleep(0.5)
    assert t.bank.log().count("-> 25") >= 16
    t.purchase("640")
    t.screen("Insert or tap card")
    t.tap("Cancel")
    t.screen("Pocket Terminal")


def test_settings_fingerprints_at_the_cap_says_so_and_captures_nothing(terminal):
    t = terminal
    assert t.device.exec(_UNLOCK + "from drivers.r503 import LIBRARY_SIZE\nfrom vault import FINGERPRINTS\n"
                         "for i in range(LIBRARY_SIZE - FINGERPRINTS, LIBRARY_SIZE):\n    v.enroll_finger(i)\n"
                         "print(len(v.fingers), v.fingers_full)").strip() == "10 True"
    t.restart()
    t.unlock()
    t.choose("Settings")
    t.screen("Settings")
    t.choose("Fingerprints")
    t.screen("Fingerprints")
    t.tap("Add a fingerprint")
    full = t.screen("Fingerprints full")
    assert full["error"] is True and full["text"] == ("10 fingerprints are saved, the most this terminal keeps. Delete"
                                                      " one you no longer use (Settings > Fingerprints), then add this one.")
    assert t.sensor_library() == {}  # nothing was captured, nothing stored in the sensor
    t.tap("OK")
    t.screen("Fingerprints")


# ---- the journal's records, cut at each flash operation of one write ------------------------------
# (Arming an entry, its replacement in place: tests/host/test_terminal_power.py.)

_JOURNAL = """
from uplink.journal import Journal
def entry(key):
    return {'key': key, 'stan': '0001' + key[4:6], 'de7': '1121101501', 'de3': '000000', 'de4': 1250,
            'de49': '978', 'de90': '0200' + key + '0' * 22, 'de39': '68'}
j = Journal('/power-journal')
"""
_OLD, _NEW = "000040" + "1121101459", "000041" + "1121101500"
_KEYS = "print(repr([e['key'] for e in Journal('/power-journal').pending()]))"


def test_a_new_record_and_a_removal_cut_at_each_flash_operation_leave_the_queue_whole(vd):  # noqa: F811
    dev = Device(vd.repl)
    dev.exec(_JOURNAL + "j.queue(entry(%r))" % _OLD)
    queue_new, drop_new = "j.queue(entry(%r))" % _NEW, "j.done(%r)" % _NEW
    for write, undo, before, after in ((queue_new, drop_new, [_OLD], [_OLD, _NEW]),
                                       (drop_new, queue_new, [_OLD, _NEW], [_OLD])):
        dev.exec(undo)  # the queue as before the write
        start = vd.rig.call("flash_writes")
        dev.exec(write)  # how many flash operations it takes
        ops = vd.rig.call("flash_writes") - start
        dev.exec(undo)
        assert ops >= 1, ops
        seen = []
        for k in range(1, ops + 1):
            boots = vd.rig.call("device")["boots"]
            vd.rig.call("power_cut", after=k)
            dev.transport.exec_raw_no_follow(_JOURNAL + write)
            vd.wait_booted(after_boots=boots)
            dev.reconnect()
            keys = eval(dev.exec(_JOURNAL + _KEYS).strip())
            assert keys in (before, after), (write, k, keys)  # the other untouched; this one whole or not at all
            seen.append(keys == after)
            dev.exec(undo)  # as before the write, for the next cut
        # The Journal() after each boot left no ".tmp" behind, whatever the cut stopped.
        names = eval(dev.exec("import os\nprint(repr(os.listdir('/power-journal')))").strip())
        assert not any(n.endswith(".tmp") for n in names), names
        print("%s: %d cut points, done after each: %s" % (write, ops, seen))
    dev.close()
