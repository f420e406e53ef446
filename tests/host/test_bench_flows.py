"""`python -m tools.bench flows`' machinery (tools/flowbench.py) on a quick run on the
board-faithful handheld: the flows, run by the terminal's own code on the demo's handheld, end
approved at the demo's bank (its ledger); the figures the bench prints are measured and
consistent with each other; what heapstat (tools/vdevice/port/esp32mem.c) measures for it agrees
with what the interpreter does. Not a timed test: no figure is compared with a budget (the bench
reports those), and the flows are run with room to grow (flowbench.BEYOND) so that the machinery
is checked whether or not a flow fits the board's heap today.
"""

import os
import subprocess

import pytest

from tools import demo, flowbench
from tools.vdevice import micropython_exe

RATIO = 100.0  # any positive pystone ratio: the model only scales by it


def interpreter(code, **env):
    """Run code in the board-faithful interpreter on the board's heap: its stdout lines. From /,
    so that an import finds the frozen modules, not the source tree's (compiled into the heap)."""
    out = subprocess.run([micropython_exe(), "-X", "heapsize=56K", "-c", code], capture_output=True, text=True, cwd="/",
                         timeout=60, env=dict(os.environ, **{k: str(v) for k, v in env.items()}))
    return out.stdout.split("\n"), out.stderr


PROBE = """
import gc
import asyncio, board, parts, vault, terminal.app, terminal.link, ui.screens, vault.session
gc.collect()
a = gc.mem_alloc()
import flowprobe
gc.collect()
print(flowprobe.__file__, gc.mem_alloc() - a)
"""


def test_the_probe_is_frozen_and_holds_little_heap():
    # tools/flowprobe.py is frozen into the virtual handheld: its code is in flash, and what
    # importing it holds (with the app's modules it uses already there) is its module's dict and
    # functions, ~1 KB; compiled from the REPL it was ~6 KB of bytecode and names in the heap.
    where, held = interpreter(PROBE)[0][0].split()
    assert where == "flowprobe.py" and 256 < int(held) < 2048, (where, held)


DEEP = """
import heapstat
def down(n):
    return 0 if n == 0 else 1 + down(n - 1)
heapstat.reset()
try:
    down(40)
    print('ok', heapstat.stack())
except RuntimeError:
    print('failed', heapstat.stack())
"""


def test_the_deepest_stack_is_the_smallest_task_stack_the_code_runs_in():
    # heapstat.stack() is the usage at the stack checks, where the limit (PT_STACK less the 1 KB
    # margin) is enforced: with a byte more than it the code runs, with a few bytes less it fails.
    status, deepest = interpreter(DEEP)[0][0].split()
    deepest = int(deepest)
    assert status == "ok" and 40 * 100 < deepest < flowbench.TASK_STACK - flowbench.STACK_MARGIN
    assert interpreter(DEEP, PT_STACK=deepest + flowbench.STACK_MARGIN + 16)[0][0].split()[0] == "ok"
    assert interpreter(DEEP, PT_STACK=deepest + flowbench.STACK_MARGIN - 16)[0][0].split()[0] == "failed"


def test_native_parts_count_their_calls_bytes_and_time():
    # hashlib's SHA-256 and SHA-1, cryptolib's AES and pow(a, b, m) each land in their own part;
    # the AES inside a part (none here) would not be counted twice.
    lines, err = interpreter("""
import heapstat, hashlib, cryptolib
a = heapstat.native()
hashlib.sha256(b'x' * 1000).digest()
hashlib.sha1(b'y' * 130).digest()
cryptolib.aes(b'k' * 16, 1).encrypt(b'a' * 64)
pow(3, 65537, (1 << 1024) - 105)
b = heapstat.native()
print([tuple(q - p for p, q in zip(x, y)) for x, y in zip(a, b)])
""")
    parts = dict(zip(flowbench.PARTS, eval(lines[0])))
    assert parts["TLS"] == (0, 0, 0)
    assert parts["SHA-256"][:2] == (2, 1000) and parts["SHA-1"][:2] == (2, 130)  # update, finish
    assert parts["AES"][:2] == (5, 64)  # the key set, then one ECB call per 16-byte block
    assert parts["pow"][:2] == (1, 0) and parts["pow"][2] > 0


def test_the_tls_session_holds_mbedtls_record_buffers_outside_the_gc_heap():
    # MicroPython's mbedTLS configuration (extmod/mbedtls/mbedtls_config_common.h), as the ESP32
    # port's sdkconfig (CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN): a 16384-byte input and a 4096-byte
    # output record buffer, each with its header and MAC/padding room, plus the context, the
    # session and the keys: more than the two buffers, far less than a second set; the handshake
    # holds more than the open session (the peer's chain, the ECDHE keys).
    session = flowbench.tls_session_bytes()
    peak, held = session["peak"], session["held"]
    assert 16384 + 4096 < held < peak < 2 * (16384 + 4096)
    small, large = session["buffers"]
    assert 4096 + 13 < small < 4096 + 512 and 16384 + 13 < large < 16384 + 512
    # The largest records: the server's certificate message in, the client's out (one P-256
    # certificate each: a few hundred bytes), never past the buffers.
    assert 300 < session["records"]["in"] < 4096 and 300 < session["records"]["out"] < 4096
    fixed = flowbench.idf_budget(session, {})
    assert "%.1f KB held while open" % (held / 1024) in fixed[2]
    assert "OVER" in fixed[-1]  # Wi-Fi and this session overrun ESP-IDF's ~40 KB: why the board has dynamic buffers
    board = flowbench.board_sdkconfig()
    assert board["CONFIG_MBEDTLS_DYNAMIC_BUFFER"] == "y"
    dyn_peak, dyn_held = flowbench.tls_on_board(session, board)
    assert dyn_held == held - small - large + 2 * flowbench.DYNAMIC_IDLE
    assert peak - small - large < dyn_peak < peak - small - large + 2 * 4096
    assert "OVER" not in flowbench.idf_budget(session)[-1]


@pytest.fixture(scope="module")
def rig(request, tmp_path_factory):
    if request.config.getoption("--port"):
        pytest.skip("drives the virtual handheld's rig; this run is on a real board")
    with flowbench.FlowRig(tmp_path_factory.mktemp("flows")) as r:
        yield r


@pytest.fixture(scope="module")
def measured(rig):
    return {kind: rig.measured(kind, 2, flowbench.BEYOND) for kind in ("contactless", "request", "unlock")}


@pytest.mark.parametrize("kind, account, amount", [("contactless", demo.card_account(flowbench.CARD), flowbench.AMOUNT),
                                                   ("request", demo.ACCOUNTS[0][0], flowbench.REQUEST_AMOUNT),
                                                   ("unlock", demo.ACCOUNTS[0][0], 0)])
def test_flow_completes_with_consistent_figures(rig, measured, kind, account, amount):
    runs, mems, debited = measured[kind]
    assert runs is not None, "the %s flow did not complete: run %s, %s" % (kind, mems, debited)
    assert debited == 2 * amount  # each run posted once, on the account the flow debits
    if amount:
        assert all(len(r["rrn"]) == 12 for r in runs) and len({r["rrn"] for r in runs}) == 2
    row = flowbench.figures(kind, runs, mems, debited, RATIO)
    for r in runs:
        elapsed, cpu, sim, wire, net, native = r["flow"]
        bytecode, native_host, esp32 = flowbench.esp32_us(r["flow"], RATIO)
        # time.clock() counts whole milliseconds: the CPU of a window, and the simulator's part
        # of it (a difference of such windows: -1 us seen), are good to 1 ms
        assert -1000 < sim <= cpu + 1000 and cpu < elapsed + 1000 and 0 <= wire < elapsed
        assert bytecode + native_host == pytest.approx(cpu - sim, abs=1)  # the CPU split in three
        assert esp32 >= bytecode * RATIO + (elapsed - cpu - net)  # the waits and the network are kept
        assert len(native) == len(flowbench.PARTS) and all(c >= 0 and b >= 0 and t >= 0 for c, b, t in native)
        assert (net > 0) == (kind != "unlock")  # the bank is asked in a payment, not in an unlock
    for m in mems:
        # After boot < set up with the session < the flow's peak (all live at once) < the most heap
        # it could have (the first area and the growth it was allowed).
        assert 0 < m["boot"] < m["resident"] <= m["live"] < 56 * 1024 + flowbench.BEYOND
        assert 0 < m["largest"] < m["live"] and 0 < m["stack"] < flowbench.TASK_STACK - flowbench.STACK_MARGIN
        held, peak = m["tls"]
        assert 16384 + 4096 < held <= peak  # the bank session's mbedTLS heap, outside the GC heap
    assert row["resident"] == max(m["resident"] for m in mems)
    if kind == "contactless":
        assert row["wire"] > 0 and 0 < row["field"] < row["total"] and row["field_esp32"] > 0
        for r in runs:
            assert "field" in r, "the card's exchange was not seen (drivers.pn532.IsoDep.transceive)"
            assert r["commands"] >= 6
            f_elapsed, _, _, f_wire, f_net, _ = r["field"]
            assert 0 < f_wire < f_elapsed and f_net == 0  # the card leaves before the bank is asked
        parts = dict(zip(flowbench.PARTS, row["native_parts"]))
        assert parts["pow"][0] >= 1 and parts["SHA-1"][0] >= 1  # ODA: RSA and the certificates' hashes
    else:
        assert row["field"] is None
    text = flowbench.verdict(row)
    assert (text is None) == (kind not in flowbench.TARGETS)
    # Each run's own estimate, and the verdict on the worst of them.
    each = row["field_esp32_each"] if kind == "contactless" else row["esp32_each"]
    assert len(each) == 2 and all(v > 0 for v in each)
    if text is not None:
        assert "(runs %.0f-%.0f ms)" % (min(each), max(each)) in text, text
        limit = flowbench.TARGETS[kind][1]
        assert ("MISSES" in text or "over 1 s" in text) == (max(each) > limit), text


def test_a_flow_that_runs_out_of_memory_is_reported_not_raised(rig):
    # No growth at all: the 56 KB first area cannot hold the app set up with its bank session;
    # the run says where it stopped (a MemoryError, or a device that no longer answers at setup
    # or in the flow).
    (status, why), mem = rig.trial("request", 0)
    # (or no session: the uplink's own task is what ran out, and a task's error ends it unseen)
    assert status == "failed" and ("MemoryError" in why or why.startswith("at setup") or "stopped answering" in why
                                   or why.startswith("no session")), why
    assert "resident" not in mem  # it never reached the flow


def test_the_growth_bisection_ends_on_a_growth_the_flow_completed_in(rig):
    growth, why, mem = rig.smallest_growth("request", step=16 * 1024)
    assert growth is not None and 0 < growth <= flowbench.BEYOND
    assert (why is None) == (growth <= flowbench.BOARD_GROWTH)  # the board's heap failed only if it needs more
    assert 0 < mem["live"] < 56 * 1024 + growth
    line = flowbench.memory_line("request", {"growth": growth, "why": why, "mem": mem})
    assert "%.1f" % ((flowbench.BOARD_GROWTH - growth) / 1024) in line


def test_purchases_in_a_row_report_the_heap_after_each(rig):
    # Two in a row on one boot, then every flow once more on it: the heap in use is read before
    # each and after the last, and the ledger took them all.
    account = flowbench.debited_account("contactless")
    before = rig.bank.balance(account)
    done, why, used, block, after = flowbench.in_a_row(rig, 2, flowbench.BEYOND)
    assert (done, why, len(used)) == (2, None, 3)
    assert all(0 < u < 56 * 1024 + flowbench.BEYOND for u in used) and 0 < block
    assert after == {kind: "ok" for kind in flowbench.FLOWS}
    # A top-up before the row and before each card flow after it; two purchases in the row, then
    # a contactless and a contact one, the card-paid request, and the offline flow's two (the
    # online one that resets the card's offline counters, then the one approved offline).
    assert flowbench.CARD_FLOWS == ("contactless", "contact", "request_card", "offline")
    topped = (1 + len(flowbench.CARD_FLOWS)) * 100 * flowbench.AMOUNT
    paid = (2 + 1 + 1 + 2) * flowbench.AMOUNT + flowbench.REQUEST_AMOUNT
    assert rig.bank.balance(account) - before == topped - paid


# parts.unload with a record of the modules still alive right after an offline approval lets go
# of the card's (the slot's driver and the kernel), before its advice is written.
AFTER_THE_CARD = """
import heapstat, parts
STRAY = []
_unload = parts.unload
def _recorded(names):
    _unload(names)
    if 'drivers.iso7816_slot' in names and 'terminal.card' not in names:  # (not the flow's end)
        STRAY.append(heapstat.stray_modules())
parts.unload = _recorded
"""


def test_an_offline_approval_lets_go_of_the_card_before_its_advice_is_written(rig):
    # The card's part of the payment runs in a coroutine of its own (terminal.card._with_card):
    # run in pay_by_card's frame, whose value stack still held the slot's driver when the
    # kernel and the driver were let go of, the driver and iso7816.atr/.pps (2.6 KB) stayed
    # alive through the advice's write and forward.
    rig.top_up_card("offline")
    rig.boot(flowbench.BEYOND)
    assert rig.setup() is None
    rig.dev.exec(AFTER_THE_CARD)
    (status, why), _ = rig.run("offline")
    assert status == "ok", why
    assert rig.dev.eval("STRAY") == [[]]
