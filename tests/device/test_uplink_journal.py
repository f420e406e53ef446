# The uplink's journal (lib/uplink/journal.py) on the device's flash: the STAN counter and the
# reversal queue, read back by a new Journal as after a reboot; an entry replaced in place by its
# key (the armed reversal of an approved card purchase); what a cut mid-write leaves behind.
# (Cuts at each flash write: tests/host/test_terminal_power.py.)
import os

from uplink.journal import Journal

ROOT = "/journal-test"


def fresh():
    try:
        for name in os.listdir(ROOT):
            os.remove(ROOT + "/" + name)
    except OSError:
        pass
    return Journal(ROOT)


def entry(key, de39="68", **more):
    e = {"key": key, "stan": "0000" + key[:2], "de7": "1121101500", "de3": "000000", "de4": 1250,
         "de49": "978", "de90": "0200" + key + "0" * 22, "de39": de39}
    e.update(more)
    return e


def test_queue_kept_in_order_across_a_reboot():
    j = fresh()
    j.queue(entry("000001" + "1121101500"))
    j.queue(entry("000002" + "1121101501"))
    j.queue(entry("000003" + "1121101502"))
    j.done("000002" + "1121101501")
    again = Journal(ROOT)
    assert [e["key"][:6] for e in again.pending()] == ["000001", "000003"]
    assert again.pending() == j.pending()


def test_an_entry_queued_again_replaces_the_one_with_its_key_where_it_stands():
    j = fresh()
    first, second = "000001" + "1121101500", "000002" + "1121101501"
    j.queue(entry(first))
    j.queue(entry(second))
    j.queue(entry(first, "06", armed=True))
    pending = Journal(ROOT).pending()
    assert [(e["key"], e["de39"], e.get("armed")) for e in pending] == [(first, "06", True), (second, "68", None)]


def test_done_of_an_unknown_key_writes_nothing():
    j = fresh()
    j.queue(entry("000001" + "1121101500"))
    before = os.stat(ROOT + "/reversals")
    os.remove(ROOT + "/reversals")
    j.done("999999" + "1121101500")  # nothing to remove: the queue is not rewritten
    try:
        os.stat(ROOT + "/reversals")
        written = True
    except OSError:
        written = False
    assert before[6] > 0 and not written


def test_a_half_written_file_left_by_a_cut_is_ignored_then_overwritten():
    # A cut during a write leaves the ".tmp" (any part of it) and the previous queue whole.
    j = fresh()
    j.queue(entry("000001" + "1121101500"))
    with open(ROOT + "/reversals.tmp", "w") as f:
        f.write('[{"key": "0000')
    again = Journal(ROOT)
    assert [e["key"] for e in again.pending()] == ["000001" + "1121101500"]
    again.queue(entry("000002" + "1121101501"))
    assert len(Journal(ROOT).pending()) == 2


def test_stan_stored_before_it_is_handed_out():
    j = fresh()
    assert [j.next_stan() for _ in range(3)] == ["000001", "000002", "000003"]
    assert Journal(ROOT).next_stan() == "000004"
