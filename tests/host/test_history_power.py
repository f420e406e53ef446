"""Power cuts inside History.add and History.clear (lib/terminal/history.py) with the history
full: at each of the operation's flash writes in turn the power fails, the virtual handheld
boots again, and the history must be the old one or the new one, every entry of it readable
(none corrupt, none lost), and it must take the next entry as usual. The test prints how many
cut points it covered.
"""

import pytest

from tools.vaultops import PERSONALIZED, VaultBench

FULL = PERSONALIZED + """
from terminal.history import History, MAX_ENTRIES
h = History(v)
for i in range(MAX_ENTRIES):
    h.add('purchase', i, 'EUR', 'Shop %d' % i, 'approved', card='4761739001010010', reference='%012d' % i)
"""
PREAMBLE = """
v = open_vault()
v.verify_pin(PIN)
from terminal.history import History
h = History(v)
"""
OPERATIONS = {
    "add": "h.add('purchase', 4242, 'EUR', 'Corner Bakery', 'approved', card='4761739001010010')",
    "clear": "h.clear()",
}
# After the cut and the reboot: every amount, newest first, read a page at a time; then one more.
REPORT = """
r = {}
try:
    v = open_vault()
    v.verify_pin(PIN)
    from terminal.history import History
    h = History(v)
    r['count'] = h.count()
    amounts = []
    while True:
        page = h.page(len(amounts), 10)
        if not page:
            break
        amounts += [e.amount for e in page]
    r['amounts'] = amounts
    h.add('balance', 77, 'EUR', 'Current account', 'approved')
    r['next'] = [e.amount for e in h.page(0, 2)]
    r['note'] = bytes(v.get('note'))
except Exception as e:
    r['error'] = repr(e)
print(repr(r))
"""
OLD = list(range(49, -1, -1))
NEW = {"add": [4242] + OLD[:-1], "clear": []}


@pytest.fixture(scope="module")
def bench(firmware_image, tmp_path_factory):
    with VaultBench(firmware_image, tmp_path_factory.mktemp("history-power")) as b:
        b.boot_from(b.tmp / "blank.img")
        b.dev.exec(FULL, timeout=120)
        b.full = b.tmp / "history full.img"
        b.vd.rig.call("snapshot", path=str(b.full))
        yield b


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_power_cut_at_every_flash_write(bench, name, capsys):
    operation = OPERATIONS[name]
    bench.boot_from(bench.full)
    bench.dev.exec(PREAMBLE)
    start = bench.vd.rig.call("flash_writes")
    bench.dev.exec(operation)
    writes = bench.vd.rig.call("flash_writes") - start
    assert writes > 0
    seen = set()
    for k in range(1, writes + 1):
        bench.boot_from(bench.full)
        bench.dev.exec(PREAMBLE)
        bench.cut(k, operation)
        r = bench.report(REPORT)
        assert "error" not in r, (k, r)
        assert r["amounts"] in (OLD, NEW[name]), (k, r)
        assert r["count"] == len(r["amounts"]), (k, r)
        assert r["next"] == [77] + r["amounts"][:1], (k, r)
        assert r["note"] == b"version 1", (k, r)  # the vault's other entries untouched
        seen.add("new" if r["amounts"] == NEW[name] else "old")
    # The cuts fell both before and after the commit.
    assert seen == {"old", "new"}, seen
    with capsys.disabled():
        print("\nHistory.%s with the history full: power cut at each of its %d flash writes, the history old or"
              " new every time" % (name, writes))
