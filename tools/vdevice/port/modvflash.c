// The virtual handheld's flash and soft reset: what the ESP32 port does in C, done in C here too,
// so that neither costs the GC heap anything the board does not pay.
//
//   vflash.Partition(image, control)  the vfs partition as esp32.Partition presents it to VfsLfs2:
//                                     NOR flash, 4096-byte sectors, the extended block interface
//                                     (offsets). Programming can only clear bits; an erase sets a
//                                     sector to 0xFF. Every erase and program is counted in the
//                                     control block shared with tools/vdevice, and the one at which
//                                     power is to be cut is torn in the middle and kills the process.
//   vflash.soft_reset(code)           the ESP32's soft reset: every finaliser runs (open files are
//                                     closed, so flushed to flash), then the process ends with code
//                                     and tools/vdevice starts a fresh interpreter.
//   vflash.watchdog(ms)               the ESP32's watchdog (machine.WDT, board/sim.py), armed or fed:
//                                     unless called again within ms, the process ends as a hard
//                                     reset, whatever it is doing (a timer's signal, as the chip's
//                                     timer resets the chip).
//
// The control block (tools/vdevice/__init__.py): offset 0 u32 LE operations so far, offset 4 u32
// LE the operation at which power is cut (0: none).

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "py/gc.h"
#include "py/mperrno.h"
#include "py/runtime.h"
#include "extmod/vfs.h"

#define SECTOR (4096)

// Each read, program and erase goes to heapstat (esp32mem.c) with its bytes and its host CPU time:
// the time model prices them as the board's SPI flash (tools/flowbench.py), not as this file I/O.
enum { OP_READ, OP_PROGRAM, OP_ERASE };  // in heapstat's order
uint64_t heapstat_cpu_ns(void);
void heapstat_flash_op(int op, size_t nbytes, uint64_t ns);

typedef struct _vflash_partition_obj_t {
    mp_obj_base_t base;
    int image;
    int control;
    uint32_t blocks;
} vflash_partition_obj_t;

// Scratch for a program's read-modify-write: static, as the board's flash driver needs no heap.
static uint8_t sector[SECTOR];

static void check(bool ok) {
    if (!ok) {
        mp_raise_OSError(errno ? errno : MP_EIO);
    }
}

static void read_at(vflash_partition_obj_t *self, uint32_t pos, uint8_t *buf, size_t len) {
    check(pread(self->image, buf, len, pos) == (ssize_t)len);
}

// One erase or program: counted, and torn in the middle (then the power dies) if it is the one.
static void program(vflash_partition_obj_t *self, uint32_t pos, const uint8_t *data, size_t len) {
    uint32_t ops[2];
    check(pread(self->control, ops, sizeof(ops), 0) == sizeof(ops));
    ops[0] += 1;
    check(pwrite(self->control, &ops[0], sizeof(ops[0]), 0) == sizeof(ops[0]));
    bool dies = ops[0] == ops[1];
    size_t n = dies ? len / 2 : len;
    check(pwrite(self->image, data, n, pos) == (ssize_t)n);
    if (dies) {
        // A brown-out: no cleanup, no flushing, nothing after this instant.
        kill(getpid(), SIGKILL);
        for (;;) {
            pause();
        }
    }
}

static void erase(vflash_partition_obj_t *self, uint32_t block) {
    uint64_t t0 = heapstat_cpu_ns();
    memset(sector, 0xff, SECTOR);
    program(self, block * SECTOR, sector, SECTOR);
    heapstat_flash_op(OP_ERASE, SECTOR, heapstat_cpu_ns() - t0);
}

static void check_range(vflash_partition_obj_t *self, uint32_t block, uint32_t offset, size_t len) {
    if (block >= self->blocks || (uint64_t)block * SECTOR + offset + len > (uint64_t)self->blocks * SECTOR) {
        mp_raise_OSError(MP_EINVAL);
    }
}

static mp_obj_t vflash_partition_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 2, 2, false);
    vflash_partition_obj_t *self = mp_obj_malloc(vflash_partition_obj_t, type);
    self->image = open(mp_obj_str_get_str(args[0]), O_RDWR | O_CLOEXEC);
    check(self->image >= 0);
    self->control = open(mp_obj_str_get_str(args[1]), O_RDWR | O_CLOEXEC);
    check(self->control >= 0);
    off_t size = lseek(self->image, 0, SEEK_END);
    if (size <= 0 || size % SECTOR) {
        mp_raise_ValueError(MP_ERROR_TEXT("the image is not a whole number of 4096-byte sectors"));
    }
    self->blocks = size / SECTOR;
    return MP_OBJ_FROM_PTR(self);
}

static mp_obj_t vflash_partition_readblocks(size_t n_args, const mp_obj_t *args) {
    vflash_partition_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    uint32_t block = mp_obj_get_int(args[1]);
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_WRITE);
    uint32_t offset = n_args == 4 ? mp_obj_get_int(args[3]) : 0;
    check_range(self, block, offset, buf.len);
    uint64_t t0 = heapstat_cpu_ns();
    read_at(self, block * SECTOR + offset, buf.buf, buf.len);
    heapstat_flash_op(OP_READ, buf.len, heapstat_cpu_ns() - t0);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(vflash_partition_readblocks_obj, 3, 4, vflash_partition_readblocks);

static mp_obj_t vflash_partition_writeblocks(size_t n_args, const mp_obj_t *args) {
    vflash_partition_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    uint32_t block = mp_obj_get_int(args[1]);
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_READ);
    uint32_t offset = 0;
    if (n_args == 3) {
        // The simple interface: whole sectors, erased first.
        for (uint32_t i = 0; i < buf.len / SECTOR; i++) {
            check_range(self, block + i, 0, SECTOR);
            erase(self, block + i);
        }
    } else {
        offset = mp_obj_get_int(args[3]);
    }
    check_range(self, block, offset, buf.len);
    uint64_t t0 = heapstat_cpu_ns();
    // NOR flash: a program clears bits and never sets one, a sector at a time.
    const uint8_t *src = buf.buf;
    uint32_t pos = block * SECTOR + offset;
    for (size_t done = 0; done < buf.len;) {
        size_t n = buf.len - done < SECTOR ? buf.len - done : SECTOR;
        read_at(self, pos + done, sector, n);
        for (size_t i = 0; i < n; i++) {
            sector[i] &= src[done + i];
        }
        program(self, pos + done, sector, n);
        done += n;
    }
    heapstat_flash_op(OP_PROGRAM, buf.len, heapstat_cpu_ns() - t0);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(vflash_partition_writeblocks_obj, 3, 4, vflash_partition_writeblocks);

static mp_obj_t vflash_partition_ioctl(mp_obj_t self_in, mp_obj_t cmd_in, mp_obj_t arg_in) {
    vflash_partition_obj_t *self = MP_OBJ_TO_PTR(self_in);
    switch (mp_obj_get_int(cmd_in)) {
        case MP_BLOCKDEV_IOCTL_INIT:
        case MP_BLOCKDEV_IOCTL_DEINIT:
        case MP_BLOCKDEV_IOCTL_SYNC:
            return MP_OBJ_NEW_SMALL_INT(0);
        case MP_BLOCKDEV_IOCTL_BLOCK_COUNT:
            return MP_OBJ_NEW_SMALL_INT(self->blocks);
        case MP_BLOCKDEV_IOCTL_BLOCK_SIZE:
            return MP_OBJ_NEW_SMALL_INT(SECTOR);
        case MP_BLOCKDEV_IOCTL_BLOCK_ERASE: {
            uint32_t block = mp_obj_get_int(arg_in);
            check_range(self, block, 0, SECTOR);
            erase(self, block);
            return MP_OBJ_NEW_SMALL_INT(0);
        }
        default:
            return mp_const_none;
    }
}
static MP_DEFINE_CONST_FUN_OBJ_3(vflash_partition_ioctl_obj, vflash_partition_ioctl);

static const mp_rom_map_elem_t vflash_partition_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_readblocks), MP_ROM_PTR(&vflash_partition_readblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_writeblocks), MP_ROM_PTR(&vflash_partition_writeblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&vflash_partition_ioctl_obj) },
};
static MP_DEFINE_CONST_DICT(vflash_partition_locals_dict, vflash_partition_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    vflash_partition_type,
    MP_QSTR_Partition,
    MP_TYPE_FLAG_NONE,
    make_new, vflash_partition_make_new,
    locals_dict, &vflash_partition_locals_dict
    );

static mp_obj_t vflash_soft_reset(mp_obj_t code_in) {
    int code = mp_obj_get_int(code_in);
    // As ports/esp32/main.c before it restarts the interpreter: every finaliser runs, so a file
    // left open is closed (flushed to flash) by its own; nothing of the heap is used after this.
    gc_sweep_all();
    fflush(stdout);
    exit(code);
}
static MP_DEFINE_CONST_FUN_OBJ_1(vflash_soft_reset_obj, vflash_soft_reset);

// launcher.py's HARD_RESET: tools/vdevice boots the device again, as after machine.reset().
#define HARD_RESET (67)

static void watchdog_bites(int sig) {
    (void)sig;
    static const char said[] = "watchdog: not fed in time: the device resets\n";
    (void)!write(STDERR_FILENO, said, sizeof(said) - 1);
    _exit(HARD_RESET);
}

static mp_obj_t vflash_watchdog(mp_obj_t ms_in) {
    mp_int_t ms = mp_obj_get_int(ms_in);
    if (ms <= 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("a watchdog timeout is a number of ms above 0"));
    }
    // SIGALRM: nothing else in the unix port uses it. The interval's real time is the chip's.
    signal(SIGALRM, watchdog_bites);
    struct itimerval t = { { 0, 0 }, { ms / 1000, (ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &t, NULL);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(vflash_watchdog_obj, vflash_watchdog);

static const mp_rom_map_elem_t vflash_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_vflash) },
    { MP_ROM_QSTR(MP_QSTR_Partition), MP_ROM_PTR(&vflash_partition_type) },
    { MP_ROM_QSTR(MP_QSTR_soft_reset), MP_ROM_PTR(&vflash_soft_reset_obj) },
    { MP_ROM_QSTR(MP_QSTR_watchdog), MP_ROM_PTR(&vflash_watchdog_obj) },
};
static MP_DEFINE_CONST_DICT(vflash_module_globals, vflash_module_globals_table);

const mp_obj_module_t mp_module_vflash = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&vflash_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_vflash, mp_module_vflash);
