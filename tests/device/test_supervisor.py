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


heap = []  # (in use at the run's start, what its imports took)


async def imports_a_kernel_then_runs_out():
    import gc

    gc.collect()
    start = gc.mem_alloc()
    import emv.kernel  # noqa: F401 (a flow's modules: ~10 KB of heap)

    gc.collect()
    heap.append((start, gc.mem_alloc() - start))
    if len(heap) == 1:
        raise MemoryError


def test_a_restart_gets_the_crashed_runs_modules_heap_back():
    # After a MemoryError the crashed run's modules are let go of: the next run starts with the
    # heap the first one had, not with the first's imports still held (and imports them anew).
    import sys

    import parts

    parts.unload([name for name in sys.modules if name == "emv" or name.startswith("emv.")])
    crashlog.clear()
    heap.clear()
    assert terminal.supervise(imports_a_kernel_then_runs_out, backoff_ms=1) == 1
    (first, imported), (second, again) = heap
    assert imported > 4096 and abs(again - imported) < 1024, heap  # imported anew: the same cost
    assert abs(second - first) < imported // 4, heap
    assert "MemoryError" in crashlog.read()
    crashlog.clear()


class _RunsOut:
    """A touch panel whose read finds the heap run out: the app crashes inside its screen."""

    async def event(self, timeout_ms=None):
        raise MemoryError


apps = []  # (in use at the run's start, what its App took)


async def an_app_that_runs_out():
    import gc

    import board
    import vaultfix
    from drivers.st7789 import ST7789
    from board import handheld as h
    from terminal.app import App
    from ui.screens import UI
    from vault.session import Session

    gc.collect()
    start = gc.mem_alloc()
    pin = board.buses.machine.Pin
    display = ST7789(board.buses.display_spi(), board.buses.pin(h.PIN_DISPLAY_CS, pin.OUT, value=1),
                     board.buses.pin(h.PIN_DISPLAY_DC, pin.OUT, value=0))
    await display.init()
    app = App(UI(display, _RunsOut()), Session(vaultfix.factory()), standby_key=board.buses.standby_key())
    gc.collect()
    apps.append((start, gc.mem_alloc() - start))
    if len(apps) == 1:
        await app.run()


def test_a_restart_after_the_app_ran_out_of_heap_starts_from_the_heap_of_the_first():
    # The app's standby key handler is the board's (the pin's IRQ table, a GC root): left
    # registered, it kept the crashed run's App, and through it the UI, the session, the vault
    # (the monkey's seed 20261205: ~38 KB), and every restart ran out of heap in Vault.open().
    import board
    import vaultfix  # noqa: F401 (imported before the supervisor: not a run's module)

    board.buses.standby_key()
    crashlog.clear()
    apps.clear()
    assert terminal.supervise(an_app_that_runs_out, backoff_ms=1) == 1
    (first, made), (second, again) = apps
    assert made > 4096 and abs(again - made) < 1024, apps  # the same App made again
    assert abs(second - first) < made // 4, apps
    assert "MemoryError" in crashlog.read()
    crashlog.clear()
