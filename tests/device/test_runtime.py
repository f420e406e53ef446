# The runtime the firmware can count on, on the board and in the virtual handheld alike.
import gc
import os
import sys

from expect import raises


def test_search_path_is_the_esp32_ports():
    assert sys.path[:3] == ["", ".frozen", "/lib"], sys.path


def test_boot_and_main_are_on_flash():
    names = os.listdir("/")
    assert "boot.py" in names and "main.py" in names, names


def test_file_system_is_littlefs_with_4k_blocks():
    bsize, frsize, blocks = os.statvfs("/")[:3]
    assert bsize == 4096 and frsize == 4096, (bsize, frsize)
    assert blocks >= 256, blocks


def test_allocating_past_the_heap_raises_memory_error():
    gc.collect()
    free = gc.mem_free()
    with raises(MemoryError):
        bytearray(free + 4096)
    # The heap is really there: half of what is free can be had in one piece.
    block = bytearray(free // 2)
    assert len(block) == free // 2


def test_heap_matches_the_budget():
    # tools.vdevice.DEFAULT_HEAP: 512 KB in the virtual handheld, the ESP32's ~110 KB (no PSRAM)
    # plus the terminal's bytecode, which the board keeps frozen in flash.
    gc.collect()
    total = gc.mem_free() + gc.mem_alloc()
    assert 90 * 1024 <= total <= 520 * 1024, total


def test_firmware_packages_are_bytecode():
    for d in ("/lib", "/board"):
        for name in os.listdir(d):
            if not name.startswith(".") and os.stat(d + "/" + name)[0] & 0x8000:
                assert name.endswith(".mpy"), d + "/" + name
