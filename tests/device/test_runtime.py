# The runtime the firmware can count on, on the board and in the virtual handheld alike.
import gc
import os
import sys

from expect import raises


def test_search_path_is_the_esp32_ports():
    # The port's ["", ".frozen", "/lib"] as boot.py leaves it: the frozen firmware first, so that
    # no file on the flash stands in for a frozen module (the launcher once gave the port's back
    # after boot.py, and every first import looked the module up on the flash first).
    assert sys.path[:3] == [".frozen", "", "/lib"], sys.path


def test_the_firmware_is_frozen():
    # firmware/manifest.py freezes boot.py, main.py, board/, drivers/ and lib/: their bytecode
    # runs from the firmware's flash, not loaded into the heap from the file system (a module
    # loaded from a file is named by its path there, "/lib/diag.mpy").
    import diag
    import terminal.app

    for module in (diag, terminal.app):
        assert not module.__file__.startswith("/"), module.__file__
    names = os.listdir("/")
    assert "lib" not in names and "boot.py" not in names, names


def test_file_system_is_littlefs_with_4k_blocks():
    bsize, frsize, blocks = os.statvfs("/")[:3]
    assert bsize == 4096 and frsize == 4096, (bsize, frsize)
    assert blocks == 128, blocks  # the vfs partition's 512 KB (firmware/partitions.csv, beside two OTA slots)


def test_allocating_past_the_heap_raises_memory_error():
    gc.collect()
    free = gc.mem_free()
    with raises(MemoryError):  # more than the board's whole heap, grown or not
        bytearray(112 * 1024)
    # The heap is really there: half of what is free can be had in one piece.
    block = bytearray(free // 2)
    assert len(block) == free // 2


def test_heap_is_the_esp32s():
    # ports/esp32: the heap starts at MICROPY_GC_INITIAL_HEAP_SIZE (56 KB) and grows into
    # ESP-IDF's heap when an allocation fails; the board's design point is one growth, to
    # 111,936 bytes, the rest of the internal RAM being Wi-Fi's and mbedTLS's.
    gc.collect()
    held = []
    try:
        while True:
            held.append(bytearray(1024))
    except MemoryError:
        pass
    total = gc.mem_free() + gc.mem_alloc()
    del held
    gc.collect()
    # The virtual handheld's first area is larger by what its stand-ins for the board's C hold
    # (tools.vdevice.STAND_INS, less py/gc.c's tables for it), so the firmware has the board's room.
    stand_ins = int(os.getenv("PT_STAND_INS") or 0) if sys.platform != "esp32" else 0
    assert 111936 + stand_ins * 15 // 16 <= total <= 111936 + stand_ins, (total, stand_ins)


async def _kept_by_the_scheduler(n):
    """The heap a finished task's coroutine held, still held once the task is let go of, while
    the task the scheduler ran before it waits on: n bytes if it is kept, ~0 if not."""
    import asyncio

    gate = asyncio.Event()

    async def waiting():  # a long-lived task (the uplink's reader, say)
        await gate.wait()

    async def holding():  # a flow's short task (a card's removal watcher, say)
        block = bytearray(n)
        await asyncio.sleep_ms(0)
        return len(block)

    def start(coro):  # (made here, the coroutine would stay on this frame's value stack)
        return asyncio.create_task(coro())

    gc.collect()
    before = gc.mem_alloc()
    waiter = start(waiting)
    await start(holding)  # queued after the waiter: its child in the run queue
    await asyncio.sleep_ms(1)  # (the C stack below this frame, where it ran, used again)
    gc.collect()
    kept = gc.mem_alloc() - before
    gate.set()
    await waiter
    return kept


def test_a_finished_task_is_not_kept_by_the_task_run_before_it():
    # asyncio's run queue is a pairing heap (py/pairheap.c) whose nodes are the tasks. v1.28.0
    # left a popped task's last-child pointer set: a long-lived task kept the task queued under
    # it, its coroutine's locals and its function's module, until it next had a child. In the
    # offline flow the uplink's reader kept a contact purchase's card-removal watcher, and with
    # it the card slot's driver and four modules (~5 KB, the flow's peak 96 KB instead of 91).
    # firmware/patches/ clears it; the board's build applies the same patch.
    import asyncio

    kept = asyncio.run(_kept_by_the_scheduler(8192))
    assert kept < 1024, kept
