"""Power cuts in a top-up (lib/terminal/topup.py), at each of its flash writes in turn: the
top-up's record, the uplink's reversal queued before the 0200, rewritten armed by the bank's
approval, the transit card credited (named), the reversal dropped, the record removed. After
the cut the virtual handheld boots, terminal.link's start runs topup.recover() (here called as
it does, before any 0400 could leave), and the money must be where it is exactly once:
- the card credited €20.00 and no reversal left for the uplink to send (the top-up completed), or
- the card not credited and the 0200's reversal (reason 68) left to send, or nothing at all sent
  (the cut came before the reversal was on flash: no 0200 left the device either).
Never the card credited with a reversal still queued (the owner paid once, loaded twice), nor an
approval (armed) neither credited nor reversed. recover() run again changes nothing, and the
owner's History gets the outcome once (settle()). The test prints how many cut points it covered.

The uplink's part between the record and the card is done here as Uplink._exchange does it
around the 0200 (the same methods: next_key, _reversal, journal.queue), without a bank: what is
cut is what is written, and the bank's side of each window is tests/host/test_bank_transit_topup.py's.
"""

import pytest

from tools.vaultops import PERSONALIZED, VaultBench

PREAMBLE = """
v = open_vault()
v.verify_pin(PIN)
import uplink
from uplink import Answer, Uplink
from terminal import topup
up = Uplink(v, {'host': 'bank', 'port': 1, 'serial': 'PT000001'})
"""
# The approved top-up, step by step as the flow makes it (TopUp.send, Uplink._exchange, topup.load).
TOP_UP = """
tj = topup._journal()
stan, de7 = up.next_key()
record = {'key': stan + de7, 'amount': 2000, 'currency': '978', 'name': 'Current account'}
tj.queue(record)
entry = up._reversal(record['key'], {3: '920000', 4: 2000, 49: '978'}, uplink.REVERSE_UNANSWERED)
up.journal.queue(entry)
# ... the 0200 goes, the 0210 00 comes:
entry = dict(entry)
entry['de39'], entry['armed'] = uplink.REVERSE_NOT_COMPLETED, True
up.journal.queue(entry)
answer = Answer('0210', {39: '00', 37: '123456789012'})
answer.original = entry
print('LOADED', topup.load(v, up, answer, tj, record))
"""
REPORT = """
r = {}
try:
    v = open_vault()
    from uplink.journal import Journal
    from terminal import topup
    reversals = Journal()
    topup.recover(v, reversals)
    def state():
        applet, key = topup._applet(v)
        return (applet.balance, [(e['de39'], e.get('armed', False)) for e in reversals.pending()],
                [sorted(e.items()) for e in topup._journal().pending()])
    r['after'] = state()
    topup.recover(v, reversals)
    r['again'] = state()
    v.verify_pin(PIN)
    class App:
        vault = v
    topup.settle(App)
    from terminal.history import History
    r['history'] = [(e.kind, e.amount, e.result, e.card) for e in History(v).page(0, 5)]
    r['records'] = topup._journal().keys()
except Exception as e:
    r['error'] = repr(e)
print(repr(r))
"""


@pytest.fixture(scope="module")
def bench(firmware_image, tmp_path_factory):
    with VaultBench(firmware_image, tmp_path_factory.mktemp("topup-power")) as b:
        b.boot_from(b.tmp / "blank.img")
        b.dev.exec(PERSONALIZED, timeout=120)
        b.dev.exec(PREAMBLE + "topup._applet(v)")  # the card exists, empty, before any top-up
        b.start = b.tmp / "personalized.img"
        b.vd.rig.call("snapshot", path=str(b.start))
        yield b


def test_power_cut_at_every_flash_write_of_a_top_up(bench, capsys):
    bench.boot_from(bench.start)
    bench.dev.exec(PREAMBLE)
    start = bench.vd.rig.call("flash_writes")
    assert "LOADED 2000" in bench.dev.exec(TOP_UP)
    writes = bench.vd.rig.call("flash_writes") - start
    assert writes > 0
    seen = {}
    for k in range(1, writes + 1):
        bench.boot_from(bench.start)
        bench.dev.exec(PREAMBLE)
        bench.cut(k, TOP_UP)
        r = bench.report(REPORT)
        assert "error" not in r, (k, r)
        balance, reversals, records = r["after"]
        # Decided at the boot, each record waits for the owner's History (settle), then goes.
        assert len(records) <= 1 and all("done" in dict(rec) for rec in records) and r["records"] == [], (k, r)
        assert r["again"] == r["after"], (k, r)
        if balance == 2000:
            outcome = "completed"
            assert reversals == [], (k, r)  # sent, it would give the money back on top of the card's
            assert r["history"] in ([("Top-up", 2000, "approved", "Current account")], []), (k, r)
        else:
            assert balance == 0, (k, r)
            outcome = "reversed" if reversals else "never sent"
            # Unanswered (68) only: an approval (armed, 06) is credited at the boot, not reversed.
            assert reversals in ([("68", False)], []), (k, r)
            assert r["history"] in ([("Top-up", 2000, "reversed (no answer)", "Current account")],
                                    [("Top-up", 2000, "nothing taken", "Current account")], []), (k, r)
        seen.setdefault(outcome, []).append(k)
    # Each window met: before the reversal, after it, and after the approval.
    assert set(seen) == {"never sent", "reversed", "completed"}, seen
    with capsys.disabled():
        print("\ntop-up: power cut at each of its %d flash writes: %s" % (
            writes, ", ".join("%s %d" % (o, len(ks)) for o, ks in sorted(seen.items()))))
