# The uplink's journal (lib/uplink/journal.py) on the device's flash: the STAN counter and the
# reversal queue, read back by a new Journal as after a reboot; an entry replaced in place by its
# key (the armed reversal of an approved card purchase); what a cut mid-write leaves behind; the
# cap (REVERSALS) and a record per reversal; the older firmware's queue taken over; a write
# stopped half way by an exception. (Cuts at each flash write: tests/host/test_terminal_power.py.)
import gc
import json
import os

import flashfs
from expect import raises
from torn import stopped_at
from uplink.journal import REVERSALS, Journal, JournalFull

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


def test_done_of_an_unknown_key_changes_nothing():
    j = fresh()
    j.queue(entry("000001" + "1121101500"))
    before = sorted(os.listdir(ROOT))
    j.done("999999" + "1121101500")
    assert before == ["1.0000011121101500"] and sorted(os.listdir(ROOT)) == before
    assert [e["key"] for e in Journal(ROOT).pending()] == ["000001" + "1121101500"]


def test_a_write_a_cut_stopped_is_ignored_then_removed():
    # A record is written in place: a cut before its close leaves the old record whole, and a new
    # record's name empty (LittleFS creates it at the open). The older firmware's ".tmp" files
    # (any part of one) are a cut write too.
    j = fresh()
    j.queue(entry("000001" + "1121101500"))
    open(ROOT + "/2.0000021121101501", "w").close()
    for name in ("3.0000031121101502.tmp", "1.0000011121101500.tmp"):
        with open(ROOT + "/" + name, "w") as f:
            f.write('{"key": "0000')
    again = Journal(ROOT)
    assert [(e["key"], e["de39"]) for e in again.pending()] == [("000001" + "1121101500", "68")]
    assert sorted(os.listdir(ROOT)) == ["1.0000011121101500"]
    again.queue(entry("000002" + "1121101501"))
    assert [e["key"][:6] for e in Journal(ROOT).pending()] == ["000001", "000002"]


def test_records_are_written_in_place():
    # No temporary file and no rename (a pass over the folder's log on the flash chip).
    import uplink.journal as module

    class NoRename:  # the journal's os, any rename refused
        def __getattr__(self, name):
            assert name != "rename", "the journal renamed a file"
            return getattr(os, name)

    j = fresh()
    key = "000001" + "1121101500"
    j.queue(entry(key))
    j.next_stan()
    module.os = NoRename()
    try:
        j.queue(entry(key, "06", armed=True))
        j.queue(entry("000002" + "1121101501"))
        assert j.next_stan() == "000002"
    finally:
        module.os = os
    assert sorted(os.listdir(ROOT)) == ["1.0000011121101500", "2.0000021121101501", "stan"]
    assert Journal(ROOT).entry(key)["de39"] == "06"


def test_a_record_per_reversal_and_no_new_one_past_the_cap():
    j = fresh()
    keys = ["%06d" % (i + 1) + "1121101500" for i in range(REVERSALS)]
    for key in keys:
        assert not j.full
        j.queue(entry(key))
    assert REVERSALS == 16 and j.full
    # Each reversal its own small file: an operation reads or writes one.
    sizes = [os.stat(ROOT + "/" + name)[6] for name in os.listdir(ROOT)]
    assert len(sizes) == REVERSALS and max(sizes) < 256, sizes
    with raises(JournalFull):
        j.queue(entry("000099" + "1121101500"))
    assert len(os.listdir(ROOT)) == REVERSALS  # nothing written for it
    # At the cap, an entry queued again still replaces its own (arming needs no room).
    j.queue(entry(keys[3], "06", armed=True))
    again = Journal(ROOT)
    assert again.full and again.keys() == keys
    assert again.entry(keys[3])["de39"] == "06" and again.entry("000099" + "1121101500") is None
    # One acknowledged: room for one, queued after the others (oldest first, across a reboot).
    again.done(keys[0])
    again.queue(entry("000099" + "1121101500"))
    assert Journal(ROOT).keys() == keys[1:] + ["000099" + "1121101500"]


def test_the_journal_at_its_cap_keeps_only_names_in_ram():
    j = fresh()
    for i in range(REVERSALS):
        j.queue(entry("%06d" % (i + 1) + "1121101500"))
    del j
    gc.collect()
    before = gc.mem_alloc()
    j = Journal(ROOT)
    gc.collect()
    kept = gc.mem_alloc() - before
    # 16 names of ~20 characters and their list; the queue read whole kept 4,752 bytes.
    assert kept < 1200, kept
    assert j.full


def test_the_older_firmwares_whole_queue_is_moved_into_records():
    fresh()
    old = [entry("000001" + "1121101500"), entry("000002" + "1121101501", "06", armed=True)]
    with open(ROOT + "/reversals", "w") as f:
        json.dump(old, f)
    j = Journal(ROOT)
    assert j.pending() == old
    assert sorted(os.listdir(ROOT)) == ["1.0000011121101500", "2.0000021121101501"]


def test_stan_stored_before_it_is_handed_out():
    j = fresh()
    assert [j.next_stan() for _ in range(3)] == ["000001", "000002", "000003"]
    assert Journal(ROOT).next_stan() == "000004"


def test_a_first_stan_cut_before_its_close_starts_again_at_one():
    # The name created empty, nothing stored: 000001 was never handed out.
    fresh()
    open(ROOT + "/stan", "w").close()
    assert Journal(ROOT).next_stan() == "000001"


def test_a_write_stopped_half_way_by_an_exception_leaves_the_old_or_the_new():
    # The heap out (at the open, on the board) or a Ctrl-C while a record or the STAN is
    # written: json.dump into the file left half a record, which no longer read (a reversal
    # lost, or every later STAN refused). The record replaced in place (a reversal armed) and
    # the STAN, each write stopped half way: the journal read afresh has the old or the new.
    key = "000001" + "1121101500"
    j = fresh()
    j.queue(entry(key))
    stan = j.next_stan()
    cut = 1
    while True:
        new = entry(key, de39="%02d" % cut)
        if not stopped_at(cut, lambda: j.queue(new), (flashfs,)):
            break
        j = Journal(ROOT)
        assert j.entry(key) in (entry(key, de39="%02d" % (cut - 1) if cut > 1 else "68"), new), (cut, j.entry(key))
        j.queue(new)
        cut += 1
    for _ in range(3):
        stopped = stopped_at(1, j.next_stan, (flashfs,))
        j = Journal(ROOT)
        after = j.next_stan()
        assert stopped and int(after) in (int(stan) + 1, int(stan) + 2), (stan, after)
        stan = after
