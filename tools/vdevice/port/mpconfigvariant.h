// The board-faithful virtual handheld: the unix port built 32-bit (CC="gcc -m32") with the
// ESP32 port's memory shape, so that a flow that completes here fits the board
// (ports/esp32/mpconfigport.h and main.c at v1.28.0 are the reference for each line).

// The standard unix variant's features, as the ESP32 port has EXTRA_FEATURES too.
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)
#include "variants/mpconfigvariant_common.h"

// The GC heap: starts at `-X heapsize` (56 KB, as MICROPY_GC_INITIAL_HEAP_SIZE) and grows into
// ESP-IDF's heap as far as it has room (esp32mem.c).
#define MICROPY_GC_SPLIT_HEAP (1)
#define MICROPY_GC_SPLIT_HEAP_AUTO (1)
void *esp32heap_alloc(size_t size);
void esp32heap_free(void *ptr);
#define MP_PLAT_ALLOC_HEAP(size) esp32heap_alloc(size)
#define MP_PLAT_FREE_HEAP(ptr) esp32heap_free(ptr)

// The C stack: the MicroPython task's 16 KB (MICROPY_TASK_STACK_SIZE; esp32mem.c), of which the
// ESP32 port keeps MICROPY_STACK_CHECK_MARGIN for the interrupt that may land on it. main.c sizes
// the limit as `40000 * UNIX_STACK_MULTIPLIER` bytes: left unparenthesised on purpose, the
// expansion is 40000 * esp32stack_size() / 40000, the task's size in integer arithmetic.
size_t esp32stack_size(void);
#define UNIX_STACK_MULTIPLIER esp32stack_size() / 40000
#define MICROPY_STACK_CHECK_MARGIN (1024)

// An import's path buffer, on the C stack once per nested import: 128 bytes as on the ESP32,
// not the unix port's PATH_MAX (4096 bytes; tools/vdevice/build.py lets the variant say so).
#define MICROPY_ALLOC_PATH_MAX (128)
