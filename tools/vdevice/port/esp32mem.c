// The ESP32's memory as the board-faithful virtual handheld has it, and a module that measures it.
//
// The GC heap (ports/esp32: MICROPY_GC_SPLIT_HEAP_AUTO): the interpreter starts with
// MICROPY_GC_INITIAL_HEAP_SIZE (56 KB, `-X heapsize=56K` here) and, when an allocation fails
// after a collection, py/gc.c asks for a new heap area of at most gc_get_max_new_split() bytes,
// the largest free block of ESP-IDF's heap. On the board that is what Wi-Fi and mbedTLS leave;
// its design point is one growth that doubles the heap (111,936 bytes usable), leaving ~40 KB to
// ESP-IDF. Here ESP-IDF's heap is a budget: PT_IDF_HEAP bytes (default: one doubling) that new
// heap areas take from, and that an area gives back when py/gc.c frees it (it frees a grown
// area as soon as a collection finds it empty, so the heap shrinks back to 56 KB and may grow
// again later, as on the board).
//
// The C stack: the MicroPython task's 16 KB (MICROPY_TASK_STACK_SIZE), or PT_STACK bytes.
//
//   heapstat.largest()   the largest single allocation (bytes asked of the GC) since reset()
//   heapstat.reset()
//   heapstat.grown()     bytes the heap has taken from ESP-IDF's so far, in all (given back or not)

#include <stdlib.h>

#include "py/gc.h"
#include "py/runtime.h"

// The first area as py/gc.c sizes a new one (57,344 bytes for 56 KB): one growth of that fits.
#define ONE_GROWTH (56 * 1024)
#define TASK_STACK (16 * 1024)

static size_t budget(const char *name, size_t otherwise) {
    const char *value = getenv(name);
    return value ? (size_t)strtoul(value, NULL, 0) : otherwise;
}

static size_t idf_free = (size_t)-1;
static size_t idf_taken;  // in all, for heapstat.grown()

// The areas taken and their sizes (free() does not say): a handful at most, as each growth at
// least doubles the heap.
#define MAX_AREAS (8)
static struct {
    void *ptr;
    size_t size;
} areas[MAX_AREAS];

size_t gc_get_max_new_split(void) {
    if (idf_free == (size_t)-1) {
        idf_free = budget("PT_IDF_HEAP", ONE_GROWTH);
    }
    return idf_free;
}

// MP_PLAT_ALLOC_HEAP (mpconfigvariant.h): a new area is taken from the budget.
void *esp32heap_alloc(size_t size) {
    if (size > gc_get_max_new_split()) {
        return NULL;
    }
    for (size_t i = 0; i < MAX_AREAS; i++) {
        if (areas[i].ptr == NULL) {
            void *ptr = malloc(size);
            if (ptr != NULL) {
                areas[i].ptr = ptr;
                areas[i].size = size;
                idf_free -= size;
                idf_taken += size;
            }
            return ptr;
        }
    }
    return NULL;
}

void esp32heap_free(void *ptr) {
    for (size_t i = 0; i < MAX_AREAS; i++) {
        if (areas[i].ptr == ptr) {
            idf_free += areas[i].size;
            areas[i].ptr = NULL;
        }
    }
    free(ptr);
}

size_t esp32stack_size(void) {
    return budget("PT_STACK", TASK_STACK);
}

// Every allocation from outside py/gc.c goes through these (the linker's --wrap,
// mpconfigvariant.mk): m_malloc, m_realloc and their kin.
static size_t largest;

void *__real_gc_alloc(size_t n_bytes, unsigned int alloc_flags);
void *__real_gc_realloc(void *ptr, size_t n_bytes, bool allow_move);

void *__wrap_gc_alloc(size_t n_bytes, unsigned int alloc_flags) {
    largest = n_bytes > largest ? n_bytes : largest;
    return __real_gc_alloc(n_bytes, alloc_flags);
}

void *__wrap_gc_realloc(void *ptr, size_t n_bytes, bool allow_move) {
    largest = n_bytes > largest ? n_bytes : largest;
    return __real_gc_realloc(ptr, n_bytes, allow_move);
}

static mp_obj_t heapstat_largest(void) {
    return mp_obj_new_int_from_uint(largest);
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_largest_obj, heapstat_largest);

static mp_obj_t heapstat_reset(void) {
    largest = 0;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_reset_obj, heapstat_reset);

static mp_obj_t heapstat_grown(void) {
    return mp_obj_new_int_from_uint(idf_taken);
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_grown_obj, heapstat_grown);

static const mp_rom_map_elem_t heapstat_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_heapstat) },
    { MP_ROM_QSTR(MP_QSTR_largest), MP_ROM_PTR(&heapstat_largest_obj) },
    { MP_ROM_QSTR(MP_QSTR_reset), MP_ROM_PTR(&heapstat_reset_obj) },
    { MP_ROM_QSTR(MP_QSTR_grown), MP_ROM_PTR(&heapstat_grown_obj) },
};
static MP_DEFINE_CONST_DICT(heapstat_module_globals, heapstat_module_globals_table);

const mp_obj_module_t mp_module_heapstat = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&heapstat_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_heapstat, mp_module_heapstat);
