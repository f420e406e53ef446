// The ESP32's GC heap policy (ports/esp32: MICROPY_GC_SPLIT_HEAP_AUTO): the interpreter starts
// with MICROPY_GC_INITIAL_HEAP_SIZE (56 KB, `-X heapsize=56K` here) and, when an allocation fails
// after a collection, py/gc.c asks for a new heap area of at most gc_get_max_new_split() bytes,
// the largest free block of ESP-IDF's heap. On the board that is what Wi-Fi and mbedTLS leave;
// its design point is one growth that doubles the heap (111,936 bytes usable), leaving ~40 KB to
// ESP-IDF. Here ESP-IDF's heap is a budget: PT_IDF_HEAP bytes (default: one doubling) that new
// heap areas take from, never given back, as the board never gives a grown area back either.

#include <stdlib.h>

#include "py/gc.h"
#include "py/mpstate.h"

// The first area as py/gc.c sizes a new one (57,344 bytes for 56 KB): one growth of that fits.
#define ONE_GROWTH (56 * 1024)

static size_t idf_free = (size_t)-1;

size_t gc_get_max_new_split(void) {
    if (idf_free == (size_t)-1) {
        const char *budget = getenv("PT_IDF_HEAP");
        idf_free = budget ? (size_t)strtoul(budget, NULL, 0) : ONE_GROWTH;
    }
    return idf_free;
}

// MP_PLAT_ALLOC_HEAP (mpconfigvariant.h): a new area is taken from the budget.
void *esp32heap_alloc(size_t size) {
    if (size > gc_get_max_new_split()) {
        return NULL;
    }
    idf_free -= size;
    return malloc(size);
}

void esp32heap_free(void *ptr) {
    free(ptr);
}
