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
//   heapstat.stray_modules()  after a collection, the names of the module objects alive that
//                        sys.modules does not hold (let go of, yet something still refers to them)

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "py/gc.h"
#include "py/runtime.h"
#include "py/cstack.h"
#include "py/smallint.h"  // MICROPY_PY_TIME_TICKS_PERIOD

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

// The C stack at its deepest: every stack check (MP_STACK_CHECK, py/cstack.h) comes here, and
// this is the check (py/cstack.c's, made where the usage is measured: calling the original from
// here would compare a frame deeper than the one recorded).
static size_t stack_peak;

void __wrap_mp_cstack_check(void) {
    size_t used = mp_cstack_usage();
    stack_peak = used > stack_peak ? used : stack_peak;
    if (used >= MP_STATE_THREAD(stack_limit)) {
        mp_raise_recursion_depth();
    }
}

// The heap after each collection (py/gc.c collects through gc_collect() when an allocation
// fails, gc.collect() does too).
static size_t live_peak, free_block_least = (size_t)-1;

void __real_gc_collect(void);

void __wrap_gc_collect(void) {
    __real_gc_collect();
    gc_info_t info;
    gc_info(&info);
    size_t block = info.max_free * MICROPY_BYTES_PER_GC_BLOCK;
    live_peak = info.used > live_peak ? info.used : live_peak;
    free_block_least = block < free_block_least ? block : free_block_least;
}

// mbedTLS's heap: its calloc'd blocks kept in a table (address -> size) so that free() can tell
// them from the interpreter's own malloc'd blocks (heap areas, threads), which it also frees.
#define TLS_SLOTS 4096 // a power of two; an open session holds a few hundred blocks
static struct { void *ptr; size_t size; } tls_blocks[TLS_SLOTS];
static size_t tls_now, tls_peak;
static bool tls_overflow; // more blocks than slots: the figures would be wrong, so say so

void *__real_calloc(size_t nmemb, size_t size);
void __real_free(void *ptr);

static size_t tls_slot(void *ptr) {
    return ((uintptr_t)ptr >> 3) & (TLS_SLOTS - 1);
}

void *__wrap_calloc(size_t nmemb, size_t size) {
    void *ptr = __real_calloc(nmemb, size);
    if (ptr != NULL) {
        size_t i = tls_slot(ptr), n;
        for (n = 0; n < TLS_SLOTS && tls_blocks[i].ptr != NULL; n++) {
            i = (i + 1) & (TLS_SLOTS - 1);
        }
        if (n == TLS_SLOTS) {
            tls_overflow = true;
        } else {
            tls_blocks[i].ptr = ptr;
            tls_blocks[i].size = nmemb * size;
            tls_now += nmemb * size;
            tls_peak = tls_now > tls_peak ? tls_now : tls_peak;
        }
    }
    return ptr;
}

void __wrap_free(void *ptr) {
    if (ptr != NULL) {
        size_t i = tls_slot(ptr);
        for (size_t n = 0; n < TLS_SLOTS && tls_blocks[i].ptr != NULL; n++) {
            if (tls_blocks[i].ptr == ptr) {
                tls_now -= tls_blocks[i].size;
                // Backward-shift deletion keeps every later block of the run findable.
                size_t j = i;
                for (;;) {
                    j = (j + 1) & (TLS_SLOTS - 1);
                    if (tls_blocks[j].ptr == NULL) {
                        break;
                    }
                    size_t home = tls_slot(tls_blocks[j].ptr);
                    if (((j - home) & (TLS_SLOTS - 1)) >= ((j - i) & (TLS_SLOTS - 1))) {
                        tls_blocks[i] = tls_blocks[j];
                        i = j;
                    }
                }
                tls_blocks[i].ptr = NULL;
                break;
            }
            i = (i + 1) & (TLS_SLOTS - 1);
        }
    }
    __real_free(ptr);
}

// The native parts' host CPU time, calls and bytes (heapstat.native()). The flash's: LittleFS
// (its C, less the block device's work, which is the host's file I/O here) and the block
// device's reads, programs and erases (vflash, modvflash.c), each counted with its bytes, for the
// time model to price as the board's SPI flash does (tools/flowbench.py). Last, the timing's own
// cost: reading the process's CPU clock is a system call (~0.5 us here, where a LittleFS call
// in the file's cache takes less), two for each call timed; each part is given its time without
// it, and that part has it all, so that it is neither the parts' nor the bytecode's.
enum { PART_TLS, PART_AES, PART_SHA256, PART_SHA1, PART_POW, PART_LFS, PART_READ, PART_PROGRAM, PART_ERASE,
       PART_TIMING, PARTS };
static struct { uint64_t calls, bytes, ns; } parts[PARTS];
static int part_depth;
static uint64_t flash_ns;  // what the block device's operations have taken, timing and all
static uint64_t clock_ns;  // one reading of the clock, measured at the first (0: not yet)

static uint64_t cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t heapstat_cpu_ns(void);

uint64_t heapstat_cpu_ns(void) {
    if (clock_ns == 0) {
        uint64_t t0 = cpu_now(), t = t0;
        for (int i = 0; i < 1000; i++) {
            t = cpu_now();
        }
        clock_ns = (t - t0) / 1000 + 1;
    }
    return cpu_now();
}

// A timed window's time without the clock reading inside it (about one of its two), and both
// readings to the timing's part.
static uint64_t untimed(uint64_t ns) {
    parts[PART_TIMING].calls++;
    parts[PART_TIMING].ns += 2 * clock_ns;
    return ns > clock_ns ? ns - clock_ns : 0;
}

// Around a wrapped call: counted only when outermost.
#define PART_BEGIN() uint64_t part_t0 = part_depth++ ? 0 : heapstat_cpu_ns()
#define PART_END(part, nbytes) do { \
        if (--part_depth == 0) { \
            parts[part].ns += untimed(heapstat_cpu_ns() - part_t0); \
            parts[part].calls++; \
            parts[part].bytes += (nbytes); \
        } \
} while (0)

int __real_mbedtls_ssl_handshake(void *ssl);
int __real_mbedtls_ssl_read(void *ssl, unsigned char *buf, size_t len);
int __real_mbedtls_ssl_write(void *ssl, const unsigned char *buf, size_t len);
int __real_mbedtls_aes_setkey_enc(void *ctx, const unsigned char *key, unsigned int keybits);
int __real_mbedtls_aes_setkey_dec(void *ctx, const unsigned char *key, unsigned int keybits);
int __real_mbedtls_aes_crypt_ecb(void *ctx, int mode, const unsigned char *in, unsigned char *out);
int __real_mbedtls_aes_crypt_cbc(void *ctx, int mode, size_t length, unsigned char *iv, const unsigned char *in,
    unsigned char *out);
int __real_mbedtls_aes_crypt_ctr(void *ctx, size_t length, size_t *nc_off, unsigned char *nonce_counter,
    unsigned char *stream_block, const unsigned char *in, unsigned char *out);
int __real_mbedtls_sha256_update(void *ctx, const unsigned char *in, size_t len);
int __real_mbedtls_sha256_finish(void *ctx, unsigned char *out);
int __real_mbedtls_sha1_update(void *ctx, const unsigned char *in, size_t len);
int __real_mbedtls_sha1_finish(void *ctx, unsigned char *out);
void __real_mpz_pow3_inpl(void *dest, const void *lhs, const void *rhs, const void *mod);

int __wrap_mbedtls_ssl_handshake(void *ssl) {
    PART_BEGIN();
    int r = __real_mbedtls_ssl_handshake(ssl);
    PART_END(PART_TLS, 0);
    return r;
}

int __wrap_mbedtls_ssl_read(void *ssl, unsigned char *buf, size_t len) {
    PART_BEGIN();
    int r = __real_mbedtls_ssl_read(ssl, buf, len);
    PART_END(PART_TLS, r > 0 ? r : 0);
    return r;
}

int __wrap_mbedtls_ssl_write(void *ssl, const unsigned char *buf, size_t len) {
    PART_BEGIN();
    int r = __real_mbedtls_ssl_write(ssl, buf, len);
    PART_END(PART_TLS, r > 0 ? r : 0);
    return r;
}

int __wrap_mbedtls_aes_setkey_enc(void *ctx, const unsigned char *key, unsigned int keybits) {
    PART_BEGIN();
    int r = __real_mbedtls_aes_setkey_enc(ctx, key, keybits);
    PART_END(PART_AES, 0);
    return r;
}

int __wrap_mbedtls_aes_setkey_dec(void *ctx, const unsigned char *key, unsigned int keybits) {
    PART_BEGIN();
    int r = __real_mbedtls_aes_setkey_dec(ctx, key, keybits);
    PART_END(PART_AES, 0);
    return r;
}

int __wrap_mbedtls_aes_crypt_ecb(void *ctx, int mode, const unsigned char *in, unsigned char *out) {
    PART_BEGIN();
    int r = __real_mbedtls_aes_crypt_ecb(ctx, mode, in, out);
    PART_END(PART_AES, 16);
    return r;
}

int __wrap_mbedtls_aes_crypt_cbc(void *ctx, int mode, size_t length, unsigned char *iv, const unsigned char *in,
    unsigned char *out) {
    PART_BEGIN();
    int r = __real_mbedtls_aes_crypt_cbc(ctx, mode, length, iv, in, out);
    PART_END(PART_AES, length);
    return r;
}

int __wrap_mbedtls_aes_crypt_ctr(void *ctx, size_t length, size_t *nc_off, unsigned char *nonce_counter,
    unsigned char *stream_block, const unsigned char *in, unsigned char *out) {
    PART_BEGIN();
    int r = __real_mbedtls_aes_crypt_ctr(ctx, length, nc_off, nonce_counter, stream_block, in, out);
    PART_END(PART_AES, length);
    return r;
}

int __wrap_mbedtls_sha256_update(void *ctx, const unsigned char *in, size_t len) {
    PART_BEGIN();
    int r = __real_mbedtls_sha256_update(ctx, in, len);
    PART_END(PART_SHA256, len);
    return r;
}

int __wrap_mbedtls_sha256_finish(void *ctx, unsigned char *out) {
    PART_BEGIN();
    int r = __real_mbedtls_sha256_finish(ctx, out);
    PART_END(PART_SHA256, 0);
    return r;
}

int __wrap_mbedtls_sha1_update(void *ctx, const unsigned char *in, size_t len) {
    PART_BEGIN();
    int r = __real_mbedtls_sha1_update(ctx, in, len);
    PART_END(PART_SHA1, len);
    return r;
}

int __wrap_mbedtls_sha1_finish(void *ctx, unsigned char *out) {
    PART_BEGIN();
    int r = __real_mbedtls_sha1_finish(ctx, out);
    PART_END(PART_SHA1, 0);
    return r;
}

void __wrap_mpz_pow3_inpl(void *dest, const void *lhs, const void *rhs, const void *mod) {
    PART_BEGIN();
    __real_mpz_pow3_inpl(dest, lhs, rhs, mod);
    PART_END(PART_POW, 0);
}

// One block device operation (vflash, modvflash.c: 0 a read, 1 a program, 2 an erase): its bytes
// and its host CPU time. Always inside a LittleFS call, whose part leaves it out.
void heapstat_flash_op(int op, size_t nbytes, uint64_t ns);

void heapstat_flash_op(int op, size_t nbytes, uint64_t ns) {
    int part = PART_READ + op;
    parts[part].calls++;
    parts[part].bytes += nbytes;
    parts[part].ns += untimed(ns);
    flash_ns += ns + clock_ns;
}

// LittleFS's API as extmod/vfs_lfs.c calls it (lib/littlefs/lfs2.h; its handles are pointers and
// its sizes and offsets 32-bit): each call timed whole when outermost, less its block device work.
#define LFS_CALL(call) \
    uint64_t io0 = flash_ns; \
    PART_BEGIN(); \
    int32_t r = call; \
    if (--part_depth == 0) { \
        uint64_t ns = untimed(heapstat_cpu_ns() - part_t0), io = flash_ns - io0; \
        parts[PART_LFS].ns += ns > io ? ns - io : 0; \
        parts[PART_LFS].calls++; \
    } \
    return r

#define LFS_WRAP(name, params, args) \
    int32_t __real_##name params; \
    int32_t __wrap_##name params; \
    int32_t __wrap_##name params { \
        LFS_CALL(__real_##name args); \
    }

LFS_WRAP(lfs2_mount, (void *lfs, const void *config), (lfs, config))
LFS_WRAP(lfs2_unmount, (void *lfs), (lfs))
LFS_WRAP(lfs2_format, (void *lfs, const void *config), (lfs, config))
LFS_WRAP(lfs2_file_opencfg, (void *lfs, void *file, const char *path, int flags, const void *config),
    (lfs, file, path, flags, config))
LFS_WRAP(lfs2_file_close, (void *lfs, void *file), (lfs, file))
LFS_WRAP(lfs2_file_sync, (void *lfs, void *file), (lfs, file))
LFS_WRAP(lfs2_file_read, (void *lfs, void *file, void *buffer, uint32_t size), (lfs, file, buffer, size))
LFS_WRAP(lfs2_file_write, (void *lfs, void *file, const void *buffer, uint32_t size), (lfs, file, buffer, size))
LFS_WRAP(lfs2_file_seek, (void *lfs, void *file, int32_t off, int whence), (lfs, file, off, whence))
LFS_WRAP(lfs2_file_tell, (void *lfs, void *file), (lfs, file))
LFS_WRAP(lfs2_remove, (void *lfs, const char *path), (lfs, path))
LFS_WRAP(lfs2_rename, (void *lfs, const char *oldpath, const char *newpath), (lfs, oldpath, newpath))
LFS_WRAP(lfs2_mkdir, (void *lfs, const char *path), (lfs, path))
LFS_WRAP(lfs2_stat, (void *lfs, const char *path, void *info), (lfs, path, info))
LFS_WRAP(lfs2_dir_open, (void *lfs, void *dir, const char *path), (lfs, dir, path))
LFS_WRAP(lfs2_dir_read, (void *lfs, void *dir, void *info), (lfs, dir, info))
LFS_WRAP(lfs2_dir_close, (void *lfs, void *dir), (lfs, dir))
LFS_WRAP(lfs2_fs_traverse, (void *lfs, int (*cb)(void *, uint32_t), void *data), (lfs, cb, data))

static mp_obj_t heapstat_largest(void) {
    return mp_obj_new_int_from_uint(largest);
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_largest_obj, heapstat_largest);

static mp_obj_t heapstat_reset(void) {
    largest = 0;
    stack_peak = 0;
    tls_peak = tls_now;
    live_peak = 0;
    free_block_least = (size_t)-1;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_reset_obj, heapstat_reset);

static mp_obj_t heapstat_grown(void) {
    return mp_obj_new_int_from_uint(idf_taken);
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_grown_obj, heapstat_grown);

static mp_obj_t heapstat_stack(void) {
    return mp_obj_new_int_from_uint(stack_peak);
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_stack_obj, heapstat_stack);

static mp_obj_t heapstat_live(void) {
    mp_obj_t both[2] = { mp_obj_new_int_from_uint(live_peak),
                         free_block_least == (size_t)-1 ? mp_const_none : mp_obj_new_int_from_uint(free_block_least) };
    return mp_obj_new_tuple(2, both);
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_live_obj, heapstat_live);

static mp_obj_t heapstat_tls(void) {
    if (tls_overflow) {
        mp_raise_msg(&mp_type_RuntimeError, MP_ERROR_TEXT("heapstat: more mbedTLS blocks than TLS_SLOTS"));
    }
    mp_obj_t both[2] = { mp_obj_new_int_from_uint(tls_now), mp_obj_new_int_from_uint(tls_peak) };
    return mp_obj_new_tuple(2, both);
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_tls_obj, heapstat_tls);

// The sizes of mbedTLS's live blocks of at least `least` bytes: an open session's record buffers
// (MBEDTLS_SSL_IN_BUFFER_LEN, MBEDTLS_SSL_OUT_BUFFER_LEN), which ESP-IDF's
// CONFIG_MBEDTLS_DYNAMIC_BUFFER replaces by buffers the size of each record (tools/flowbench.py).
static mp_obj_t heapstat_tls_blocks(mp_obj_t least_in) {
    size_t least = mp_obj_get_int(least_in);
    mp_obj_t sizes = mp_obj_new_list(0, NULL);
    for (size_t i = 0; i < TLS_SLOTS; i++) {
        if (tls_blocks[i].ptr != NULL && tls_blocks[i].size >= least) {
            mp_obj_list_append(sizes, mp_obj_new_int_from_uint(tls_blocks[i].size));
        }
    }
    return sizes;
}
static MP_DEFINE_CONST_FUN_OBJ_1(heapstat_tls_blocks_obj, heapstat_tls_blocks);

static mp_obj_t heapstat_native(void) {
    mp_obj_t each[PARTS];
    for (size_t i = 0; i < PARTS; i++) {
        mp_obj_t three[3] = { mp_obj_new_int_from_ull(parts[i].calls), mp_obj_new_int_from_ull(parts[i].bytes),
                              mp_obj_new_int_from_ull(parts[i].ns) };
        each[i] = mp_obj_new_tuple(3, three);
    }
    return mp_obj_new_tuple(PARTS, each);
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_native_obj, heapstat_native);

// The process's CPU time in us, in time.ticks_us()'s period (2**30: a small int, allocating
// nothing; differences by time.ticks_diff()). time.clock() counts whole milliseconds (the unix
// port's modtime.c divides clock() by 1000): the flows bench's 6 ms window with a card in the
// field was +-1 ms of it a run, +-180 ms on the ESP32 model.
static mp_obj_t heapstat_cpu_us(void) {
    return MP_OBJ_NEW_SMALL_INT((mp_int_t)((heapstat_cpu_ns() / 1000) & (MICROPY_PY_TIME_TICKS_PERIOD - 1)));
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_cpu_us_obj, heapstat_cpu_us);

// A module let go of (parts.unload) stays in the heap while anything refers to it: a function,
// class or instance of it (in v1.28 a function's context begins with its module object), a
// finished coroutine kept by its task. The next import makes a second copy beside it: a flow's
// peak then holds both (the offline purchase's 5 KB, firmware/patches/pairheap-child-last.patch).
static mp_obj_t heapstat_stray_modules(void) {
    gc_collect();
    mp_obj_t names = mp_obj_new_list(0, NULL);
    mp_map_t *loaded = &MP_STATE_VM(mp_loaded_modules_dict).map;
    for (mp_state_mem_area_t *area = &MP_STATE_MEM(area); area != NULL; area = area->next) {
        for (byte *p = area->gc_pool_start; p < area->gc_pool_end; p += MICROPY_BYTES_PER_GC_BLOCK) {
            if (gc_nbytes(p) == 0 || *(const mp_obj_type_t **)p != &mp_type_module) {
                continue;
            }
            mp_obj_t name = mp_load_attr(MP_OBJ_FROM_PTR(p), MP_QSTR___name__);
            mp_map_elem_t *e = mp_map_lookup(loaded, name, MP_MAP_LOOKUP);
            if (e == NULL || MP_OBJ_TO_PTR(e->value) != p) {
                mp_obj_list_append(names, name);
            }
        }
    }
    return names;
}
static MP_DEFINE_CONST_FUN_OBJ_0(heapstat_stray_modules_obj, heapstat_stray_modules);

static const mp_rom_map_elem_t heapstat_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_heapstat) },
    { MP_ROM_QSTR(MP_QSTR_largest), MP_ROM_PTR(&heapstat_largest_obj) },
    { MP_ROM_QSTR(MP_QSTR_reset), MP_ROM_PTR(&heapstat_reset_obj) },
    { MP_ROM_QSTR(MP_QSTR_grown), MP_ROM_PTR(&heapstat_grown_obj) },
    { MP_ROM_QSTR(MP_QSTR_stack), MP_ROM_PTR(&heapstat_stack_obj) },
    { MP_ROM_QSTR(MP_QSTR_live), MP_ROM_PTR(&heapstat_live_obj) },
    { MP_ROM_QSTR(MP_QSTR_tls), MP_ROM_PTR(&heapstat_tls_obj) },
    { MP_ROM_QSTR(MP_QSTR_tls_blocks), MP_ROM_PTR(&heapstat_tls_blocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_native), MP_ROM_PTR(&heapstat_native_obj) },
    { MP_ROM_QSTR(MP_QSTR_cpu_us), MP_ROM_PTR(&heapstat_cpu_us_obj) },
    { MP_ROM_QSTR(MP_QSTR_stray_modules), MP_ROM_PTR(&heapstat_stray_modules_obj) },
};
static MP_DEFINE_CONST_DICT(heapstat_module_globals, heapstat_module_globals_table);

const mp_obj_module_t mp_module_heapstat = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&heapstat_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_heapstat, mp_module_heapstat);
