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
