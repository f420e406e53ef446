# The board-faithful virtual handheld (tools/vdevice/build.py builds it: CC="gcc -m32").
# Neither libffi nor Berkeley DB is in the source the project builds from, nor on the board.
MICROPY_PY_FFI = 0
MICROPY_PY_BTREE = 0
FROZEN_MANIFEST ?= $(VARIANT_DIR)/manifest.py
# py/gc.c's heap growth (MICROPY_GC_SPLIT_HEAP_AUTO, compiled by the ESP32 port and no unix
# variant) adds to a void pointer, which the unix port's warnings make an error.
$(BUILD)/py/gc.o: CFLAGS += -Wno-pointer-arith
# heapstat (esp32mem.c) sees every allocation made from outside py/gc.c.
LDFLAGS_EXTRA += -Wl,--wrap=gc_alloc -Wl,--wrap=gc_realloc
