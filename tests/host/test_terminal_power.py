"""Power cuts in the money flows: a card purchase the bank approved is never left standing when
the power fails before the card completed it.

- The uplink's journal (lib/uplink/journal.py, records written in place) at each flash operation
  of the write that arms a reversal: after the cut and the boot the queue holds the entry whole,
  either as it was (68, queued before the 0200) or armed (06), and the other entries untouched;
  and of the write that queues a new one: the entry whole, or none (its name, created empty at
  the open, is dropped).
- End to end on the demo terminal (terminalfix): a contact purchase whose card is kept busy
  (NULL procedure bytes, as a slow card sends them) at the command after the bank's approval;
  the power is cut while the terminal waits for it; after the boot the 0400 (reason 06) reaches
  the bank and the ledger is as before. A purchase that completes leaves no 0400, even after a
  reboot.
"""

import re
import time

import terminalfix
from test_power import vd  # noqa: F401 (the fixture: a bare virtual handheld of its own)
from test_terminal_card import done, shop, start  # noqa: F401 (shop: the fixture, a terminal of its own)
from tools import demo
from tools.device import Device

# ---- end to end: the bank approved, the power fails before the card completes ---------------------

def wait_for(what, timeout=60, every=0.1):
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        assert time.monotonic() < deadline, "not within %d s" % timeout
        time.sleep(every)


def boot_again(t):
    """The device boots by itself after a cut; the fixture's console follows the new boot's pty
    once the handheld has been reset (t.restart), at the lock screen."""
    if t.console is not None:
        t.console.close()
        t.console = None
    t.restart()


def sign_ons(t):
    return t.bank.log().count(terminalfix.SIGNED_ON)


def test_power_cut_between_the_approval_and_the_cards_completion_reverses_it_at_the_next_boot(shop):
    t = shop
    before = t.ledger()
    start(t, "3100")
    t.insert("emv:mastercard-sda")
    t.screen("Card PIN")  # the online PIN: the card has given its cryptogram, the bank is next
    # The card's next command is the bank's answer going to it (EXTERNAL AUTHENTICATE or the
    # second GENERATE AC): it will send NULL procedure bytes for 8 s before answering.
    t.rig.call("do", name="card", action="fault", kind="nulls", count=400)
    try:
        t.type_pin("1234")
        approved = wait_for(lambda: re.search(r"0200/000000 STAN (\d{6}) amount 000000003100 card \S+ -> 00",
                                              t.bank.log()))
        stan = approved.group(1)
        # The answer on the device (armed), the card's command sent: the card answers with NULLs.
        card = wait_for(lambda: (lambda c: c if c["counters"]["nulls"] >= 10 else None)(
            t.rig.call("model", name="card")))
        assert card["powered"] and card["faults"]["nulls"] == 0, card
        boots = t.rig.call("device")["boots"]
        t.rig.call("power_cut")
        t.vdevice.wait_booted(after_boots=boots, timeout=20)
    finally:
        t.rig.call("do", name="card", action="fault", kind="none")
        t.remove_card()
    assert "reverses STAN %s" % stan not in t.bank.log()  # nothing was sent before the cut
    assert t.ledger()[demo.SHOP] == before[demo.SHOP] + 3100  # posted: only a reversal undoes it
    boot_again(t)
    reversal = wait_for(lambda: re.search(r"0400 STAN (\d{6}) reverses STAN %s \(reason (\d\d)\)" % stan,
                                          t.bank.log()))
    assert reversal.group(2) == "06"  # answered in time, not completed (not 68: late)
    assert re.search(r"0400/000000 STAN %s amount 000000003100 -> 00" % reversal.group(1), t.bank.log())
    assert t.ledger() == before
    t.unlock()


def test_a_purchase_the_card_completed_sends_no_reversal_even_after_a_reboot(shop):
    t = shop
    before = t.ledger()
    start(t, "640")
    t.tap_card("emv:visa-classic")
    approved = done(t, "Approved")
    t.lift_card()
    assert approved["text"].startswith("€6.40 from card •••• 0010. Bank reference ")
    stan = re.findall(r"0200/000000 STAN (\d{6}) amount 000000000640 card \S+ -> 00", t.bank.log())[-1]
    signed = sign_ons(t)
    boot_again(t)
    wait_for(lambda: sign_ons(t) > signed)
    time.sleep(2)  # what a journal would send goes right after the sign-on
    assert "reverses STAN %s" % stan not in t.bank.log()
    after = t.ledger()
    assert after[demo.SHOP] - before[demo.SHOP] == 640
    t.unlock()


# ---- the journal, cut at each flash operation of one write ----------------------------------------

KEY, OTHER = "000041" + "1121101500", "000040" + "1121101459"
SETUP = """
from uplink.journal import Journal
def entry(key, reason, **more):
    e = {'key': key, 'stan': '0001' + key[4:6], 'de7': '1121101501', 'de3': '000000', 'de4': 1250,
         'de49': '978', 'de90': '0200' + key + '0' * 22, 'de39': reason}
    e.update(more)
    return e
j = Journal('/power-journal')
"""
QUEUED = "j.queue(entry(%r, '68'))" % KEY  # as before the 0200 went out
ARM = "j.queue(entry(%r, '06', armed=True))" % KEY  # the 0210's approval, before it is acted on
READ = "print(repr([(e['key'], e['de39'], e.get('armed'), e['de4']) for e in Journal('/power-journal').pending()]))"


def cut_at_each_flash_operation(vd, before, write, after):
    """The journal's `write`, from the state `before` sets, cut at each of its flash operations:
    after the boot the other entry is first and untouched, and this one's is one of `after` (as
    it was, or as written; never half of each). Returns (the cut points, what the cuts left)."""
    dev = Device(vd.repl)
    dev.exec("import os\ntry:\n    for n in os.listdir('/power-journal'):\n        os.remove('/power-journal/' + n)\n"
             "except OSError:\n    pass")
    dev.exec(SETUP + "j.queue(entry(%r, '68'))\n" % OTHER + QUEUED)
    # How many flash operations the write takes (the same write as below, twice).
    counts = []
    for _ in range(2):
        dev.exec(before)
        ops = vd.rig.call("flash_writes")
        dev.exec(write)
        counts.append(vd.rig.call("flash_writes") - ops)
    ops = min(counts)
    # At least the metadata commit at the close: a record of up to 256 bytes is inline in it
    # (lib/flashfs.py's read size), a longer one takes a block of its own first.
    assert ops >= 1, counts
    seen = set()
    for k in range(1, ops + 1):
        dev.exec(before)
        boots = vd.rig.call("device")["boots"]
        vd.rig.call("power_cut", after=k)
        dev.transport.exec_raw_no_follow(write)
        vd.wait_booted(after_boots=boots)
        dev.reconnect()
        dev.exec(SETUP)
        queue = eval(dev.exec(READ).strip())
        assert queue[0] == (OTHER, "68", None, 1250), (k, queue)
        assert queue[1:] in after, (k, queue)
        seen.add(repr(queue[1:]))
    dev.close()
    return ops, seen


def test_arming_a_reversal_cut_at_each_flash_operation_leaves_it_whole(vd):
    ops, seen = cut_at_each_flash_operation(vd, QUEUED, ARM, ([(KEY, "68", None, 1250)], [(KEY, "06", True, 1250)]))
    # (a cut at the write's last operation, its commit, leaves the old one)
    print("journal, arming: %d cut points, each left the entry whole: %s" % (ops, sorted(seen)))


def test_queuing_a_reversal_cut_at_each_flash_operation_leaves_it_whole_or_none(vd):
    # A new record's name is created empty at its open: a cut before its close leaves no entry
    # (the next Journal() drops the empty file), never an unreadable one.
    ops, seen = cut_at_each_flash_operation(vd, "j.done(%r)" % KEY, QUEUED, ([], [(KEY, "68", None, 1250)]))
    assert "[]" in seen, seen
    print("journal, queuing: %d cut points, each left the entry whole or none: %s" % (ops, sorted(seen)))
