# terminal.supervise: crashes are logged and the application restarted; a clean return ends it.
import crashlog
import terminal

runs = []


async def crashes_twice():
    runs.append(1)
    if len(runs) <= 2:
        raise RuntimeError("crash %d" % len(runs))


def test_restarts_after_crashes_and_logs_them():
    crashlog.clear()
    runs.clear()
    crashes = terminal.supervise(crashes_twice, backoff_ms=10)
    assert crashes == 2, crashes
    assert len(runs) == 3, runs
    assert crashlog.count() == 2
    assert "RuntimeError: crash 2" in crashlog.read()
    crashlog.clear()


async def always_crashes():
    raise OSError(5)


def test_bounded_runs_for_a_crash_loop():
    crashlog.clear()
    assert terminal.supervise(always_crashes, backoff_ms=1, max_runs=4) == 4
    assert crashlog.count() == 4
    crashlog.clear()
