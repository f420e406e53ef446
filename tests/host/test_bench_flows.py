"""`python -m tools.bench flows`' machinery (tools/flowbench.py) on a quick run: both flows, run
by the terminal's own code on the demo's handheld, end approved at the demo's bank (its ledger),
and the figures it prints are measured and consistent. Not a timed test: no figure is compared
with a budget.
"""

import shutil

import pytest

from tools import demo, flowbench


@pytest.fixture(scope="module")
def rig(request, tmp_path_factory):
    if request.config.getoption("--port"):
        pytest.skip("drives the virtual handheld's rig; this run is on a real board")
    with flowbench.FlowRig(tmp_path_factory.mktemp("flows")) as r:
        yield r


@pytest.fixture(scope="module")
def measured(rig):
    return {kind: rig.measured(kind, 2) for kind in flowbench.FLOWS}


RATIO = 100.0  # any positive pystone ratio: figures() only scales the CPU time by it


@pytest.mark.parametrize("kind, account, amount", [("contactless", demo.card_account(flowbench.CARD), flowbench.AMOUNT),
                                                   ("request", demo.ACCOUNTS[0][0], flowbench.REQUEST_AMOUNT)])
def test_flow_approved_at_the_bank_with_consistent_figures(rig, measured, kind, account, amount):
    runs, debited = measured[kind]
    assert debited == 2 * amount  # each run posted once, on the account the flow debits
    assert all(len(r["rrn"]) == 12 for r in runs) and len({r["rrn"] for r in runs}) == 2
    row = flowbench.figures(kind, runs, debited, None, rig.imports, RATIO)
    assert row["total"] > 0 and row["network"] > 0 and row["cpu"] >= 0
    assert row["cpu_esp32"] == pytest.approx(row["cpu"] * RATIO)
    for r in runs:
        elapsed, cpu, wire, net = r["flow"]
        assert 0 <= wire <= elapsed and 0 < net < elapsed and cpu < elapsed
    assert rig.imports < row["resident"] * 1024  # the session holds memory of its own
    if kind == "contactless":
        assert row["wire"] > 0 and 0 < row["field"] < row["total"]
        for r in runs:
            assert r["outcome"] == "approved" and r["commands"] >= 6
            f_elapsed, _, f_wire, f_net = r["field"]
            assert 0 < f_wire < f_elapsed and f_net == 0  # the card leaves before the bank is asked
    else:
        assert row["wire"] == 0 and row["field"] is None  # no card: nothing on the I2C bus


def test_the_working_set_is_found_between_imports_and_the_full_heap(rig, measured):
    # The flow cannot complete in the heap the imports alone fill, and does in the bench's heap:
    # a coarse bisection between them ends on a heap size in that range.
    floor_kb, top_kb = rig.imports // 1024, int(flowbench.HEAP.rstrip("K"))
    assert not rig.completes_in("contactless", floor_kb)
    smallest = rig.smallest_heap("contactless", floor_kb, top_kb, step_kb=64)
    assert floor_kb < smallest <= top_kb
    assert rig.completes_in("contactless", smallest)
    row = flowbench.figures("contactless", *measured["contactless"], smallest, rig.imports, RATIO)
    assert 0 < row["working_set"] == pytest.approx(smallest - rig.imports / 1024)


@pytest.mark.skipif(not shutil.which("heaptrack"), reason="heaptrack measures the TLS session (a system package)")
def test_the_tls_session_holds_mbedtls_record_buffers_outside_the_gc_heap():
    # MicroPython's mbedTLS configuration (extmod/mbedtls/mbedtls_config_common.h): a 16384-byte
    # input and a 4096-byte output record buffer, each with its header and MAC/padding room, plus the
    # context, the session and the keys: more than the two buffers, far less than a second set.
    held = flowbench.tls_session_bytes()
    assert 16384 + 4096 < held < 2 * (16384 + 4096)
    row = flowbench.figures("request", [{"resident": 1, "flow": [1, 1, 0, 1], "rrn": "0" * 12}], 0, 100, 50 * 1024,
                            RATIO, held)
    assert row["working_set"] == 50 and row["tls"] == pytest.approx(held / 1024)
