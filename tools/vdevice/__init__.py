"""The virtual handheld: the MicroPython unix port on the flash image, its REPL on a pty, the rig.

The device process is the board-faithful MicroPython (tools/vdevice/build.py: v1.28.0, 32-bit, the
firmware and tools/vdevice/launcher.py frozen, the ESP32's heap and stack) running the launcher;
this side
(CPython, asyncio) owns what the board's hardware would: the serial port (a pty, bridged to the
process's stdin/stdout), the power supply (restarts after a soft reset, power cuts), and the rig.

The control block (<state_dir>/vdevice.ctl) is shared with the launcher:
  offset 0  u32 LE  flash operations so far (an erase or a program each)
  offset 4  u32 LE  the operation at which power is cut (0: none)
  offset 8  u8      1 while code runs (so Ctrl-C becomes SIGINT: KeyboardInterrupt), else 0
  offset 9  u8      how far this boot has come: 0 mounting the flash, 1 boot.py, 2 main.py, 3 REPL
  offset 10 u8      1 once the firmware refused the REPL (a production unit), for this boot
"""

import asyncio
import fcntl
import os
import shutil
import signal
import struct
import sys
import termios
import time
import tty
from pathlib import Path

from tools.rig.rig import Rig

# The ESP32 port's GC heap (ports/esp32/mpconfigport.h, MICROPY_GC_INITIAL_HEAP_SIZE): 56 KB at
# start, grown once into ESP-IDF's heap to 111,936 bytes usable (tools/vdevice/port/esp32heap.c).
# The firmware's bytecode is frozen, so in flash, as on the board: the heap holds what the board's
# holds. A heap size given instead is a fixed heap that never grows (benchmarks bisect with it).
BOARD_HEAP = "56K"
# What stands for the board's C is Python here, and its module objects sit in the GC heap where
# the board has none of them (its C and constants are in flash): the launcher's globals (the
# port's start-up and REPL; `import launcher` in a fresh interpreter: 1,296 bytes),
# board/sim.py's (machine's buses; `import board`, less what board and board.handheld hold,
# which the board has too: 4,432 bytes) and tools/vdevice/esp32.py's (the port's esp32 module:
# partitions, OTA; imported by the launcher's bootloader and kept: 1,232 bytes). The device's
# first heap area is larger by exactly that,
# so that the firmware has the board's room and the benchmarks measure the firmware's heap, not
# the stand-ins'; the growth (PT_IDF_HEAP) is the board's. tests/host/test_vdevice_heap.py
# measures both and fails when they drift from this; the device sees it as PT_STAND_INS.
STAND_INS = 1296 + 4432 + 1232
SOFT_RESET_FRIENDLY, SOFT_RESET_RAW, BAD_IMAGE, HARD_RESET = 64, 65, 66, 67  # launcher.py's exit codes
PHASES = ("mounting", "boot.py", "main.py", "repl")
BLOCK_SIZE = 4096
CTRL_C = 3
OUTPUT_BACKLOG = 1 << 20
# A device process that dies (not a reset, not a power cut) this often this fast is broken:
# give up, with its output.
CRASH_LOOP = (3, 10.0)


class VDeviceError(Exception):
    pass


def _die_with_parent():
    # In the child before exec: if this process dies however hard, the device dies with it
    # (Linux PR_SET_PDEATHSIG), instead of running on as an orphan.
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


def micropython_exe():
    """The board-faithful interpreter, rebuilt first if anything frozen into it changed."""
    from . import build

    try:
        return str(build.ensure())
    except build.BuildError as e:
        raise VDeviceError("the board-faithful MicroPython could not be built: %s" % e) from None


# The chip's eFuses: <state dir>/vdevice.efuse, espefuse's --virt file (its register space,
# 0x120 bytes, each register stored back to front). A new one is a blank reference chip,
# revision v3.0 (ECO3): CHIP_VER_REV1 (EFUSE_BLK0_RDATA3_REG bit 15) and CHIP_VER_REV2
# (EFUSE_BLK0_RDATA5_REG bit 20), which Espressif's factory burns. The launcher reads and burns
# them (board/sim.py's mem32); `tools.provision secure --dry-run-virtual` burns them with espefuse.
EFUSE_FILE = "vdevice.efuse"
EFUSE_SIZE = 0x120
BLANK_CHIP = ((0x00C, 1 << 15), (0x014, 1 << 20))


def chip_efuses(path):
    """path, the chip's eFuse file: a blank chip's made there if there is none."""
    path = Path(path)
    if not path.exists():
        blank = bytearray(EFUSE_SIZE)
        for offset, value in BLANK_CHIP:
            blank[EFUSE_SIZE - 4 - offset:EFUSE_SIZE - offset] = value.to_bytes(4, "big")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(blank))
    return path


def chip_flash(state_dir):
    """The flash beside the vfs, as files in the state dir (flash-<partition>.bin; what
    tools/vdevice/esp32.py reads): the partition table (firmware/partitions.csv, written at each
    start, as a firmware built from this tree would be flashed with it), and, made once, otadata
    and the OTA slots as the factory leaves them: otadata blank (its bootloader boots ota_0),
    ota_0 holding the factory's app image (tools/vdevice/appimage.py), ota_1 erased."""
    from tools.provision import partitions

    from . import appimage

    table = partitions.parse()
    state = Path(state_dir)
    (state / "flash-partition-table.bin").write_bytes(partitions.to_binary(table).ljust(partitions.TABLE_SIZE, b"\xff"))
    factory = partitions.app_slot(table)
    for p in table:
        path = state / ("flash-%s.bin" % p.name)
        if (p.type == "app" or (p.type, p.subtype) == ("data", partitions.OTADATA)) and not path.exists():
            content = appimage.build(appimage.FACTORY_VERSION, appimage.FACTORY_SECURE_VERSION) if p is factory else b""
            path.write_bytes(content + b"\xff" * (p.size - len(content)))


def flash_files(state_dir):
    """The flash-<partition>.bin files of a state dir: what a snapshot of the whole flash adds to the vfs image."""
    return sorted(Path(state_dir).glob("flash-*.bin"))


def heap_args(heap=None, launcher=False):
    """(argv, environment) for micropython: the board's growing heap, or a fixed one. launcher:
    the interpreter runs the launcher and board/sim.py, whose heap the first area adds
    (STAND_INS)."""
    if heap is None:
        if launcher:
            return ["-X", "heapsize=%d" % (parse_size(BOARD_HEAP) + STAND_INS)], {"PT_STAND_INS": str(STAND_INS)}
        return ["-X", "heapsize=" + BOARD_HEAP], {}
    return ["-X", "heapsize=%d" % parse_size(heap)], {"PT_IDF_HEAP": "0"}


def parse_size(text):
    text = str(text).strip().upper()
    scale = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
    try:
        return int(text.rstrip("KM")) * scale
    except ValueError:
        raise VDeviceError("bad heap size %r (e.g. 256K, 1M, 131072)" % text) from None


def check_image(path):
    path = Path(path)
    if not path.is_file():
        raise VDeviceError("no flash image at %s: build it with `make image`" % path)
    size = path.stat().st_size
    if size == 0 or size % BLOCK_SIZE:
        raise VDeviceError("%s is not a flash image: %d bytes is not a whole number of %d-byte blocks"
                           % (path, size, BLOCK_SIZE))
    with open(path, "rb") as f:
        head = f.read(64)
    if b"littlefs" not in head:
        raise VDeviceError("%s holds no LittleFS superblock: rebuild it with `make image`" % path)


class VDevice:
    def __init__(self, image, state_dir="build", heap=None, power_cut_at=0, log=sys.stderr):
        """heap: None for the board's (56 KB growing once), or a fixed size such as "128K"."""
        self.image = Path(image)
        self.state_dir = Path(state_dir)
        self.heap = heap
        heap_args(heap)  # a bad size is an error here, not at boot
        self.log = log
        self.power_cut_at = power_cut_at
        self.proc = None
        self.master = self.slave = self.image_lock = None
        self.boots = 0
        self.power_cuts = 0
        self.crashes = []  # when the device process last died of something else than a reset
        self.last_stderr = []
        self.exited = asyncio.Event()
        self.failure = None
        self._last_sigint = (None, 0.0)  # (pid, when)
        self._cr = False
        self._out = bytearray()  # device output the pty has not taken yet
        self._writer_armed = False
        self.repl_closed = False  # a production unit refused the REPL: the pty says so, then is dead
        self.rig = Rig(self.state_dir)
        for name in ("power_cut", "flash_writes", "reset", "device", "snapshot", "restore"):
            self.rig.command(name, getattr(self, "cmd_" + name))

    def say(self, text):
        print("vdevice: " + text, file=self.log, flush=True)

    # ---- the control block ---------------------------------------------------------------

    def _ctl(self, offset, fmt, value=None):
        with open(self.ctl_path, "r+b") as f:
            f.seek(offset)
            if value is None:
                return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
            f.write(struct.pack(fmt, value))

    def flash_ops(self):
        return self._ctl(0, "<I")

    def executing(self):
        return self._ctl(8, "<B") == 1

    def phase(self):
        return PHASES[self._ctl(9, "<B")]

    def repl_refused(self):
        return self._ctl(10, "<B") == 1

    # ---- start, the REPL bridge ----------------------------------------------------------

    async def start(self):
        check_image(self.image)
        self.exe = micropython_exe()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # One device per image: two interpreters writing one flash would corrupt it.
        self.image_lock = open(self.image, "rb")
        try:
            fcntl.flock(self.image_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise VDeviceError("%s is in use by another virtual handheld" % self.image) from None
        self.ctl_path = self.state_dir / "vdevice.ctl"
        self.ctl_path.write_bytes(struct.pack("<IIB", 0, self.power_cut_at, 0).ljust(16, b"\0"))
        chip_efuses(self.state_dir / EFUSE_FILE)  # beside the control block, where the launcher reads them
        chip_flash(self.state_dir)
        await self.rig.start()
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.repl_path = os.ttyname(self.slave)
        self.link = self.state_dir / "vdevice.tty"
        if os.path.lexists(self.link):
            os.unlink(self.link)
        os.symlink(self.repl_path, self.link)
        asyncio.get_running_loop().add_reader(self.master, self._from_host)
        self.rig.write_state({"repl": self.repl_path, "image": str(self.image.resolve())})
        await self._boot("friendly")
        # Announce the device only once it has mounted its flash: a bad image is an error
        # at start, not a REPL that never answers.
        deadline = time.monotonic() + 10
        while self.phase() == "mounting" and not self.exited.is_set():
            if time.monotonic() > deadline:
                raise VDeviceError("the device did not mount its flash within 10 s:\n" + "\n".join(self.last_stderr))
            await asyncio.sleep(0.01)
        if self.failure:
            raise VDeviceError(self.failure)

    async def _boot(self, mode):
        # A process killed while code ran leaves "executing" at 1: cleared, or a Ctrl-C in the
        # next boot's first milliseconds would become a SIGINT the board would not have.
        for offset in (8, 9, 10):
            self._ctl(offset, "<B", 0)
        heap, heap_env = heap_args(self.heap, launcher=True)
        env = dict(os.environ, PT_RIG=self.rig.bus_addr, **heap_env)
        self.proc = await asyncio.create_subprocess_exec(
            self.exe, *heap, "-m", "launcher", str(self.image), str(self.ctl_path), mode,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
            preexec_fn=_die_with_parent)
        self.boots += 1
        asyncio.get_running_loop().create_task(self._run(self.proc))

    async def _run(self, proc):
        out = asyncio.ensure_future(self._pump_stdout(proc))
        err = asyncio.ensure_future(self._pump_stderr(proc))
        code = await proc.wait()
        await asyncio.gather(out, err)
        if proc is not self.proc:  # replaced by a reset ordered through the control API
            return
        if code in (SOFT_RESET_FRIENDLY, SOFT_RESET_RAW):
            await self._boot("raw" if code == SOFT_RESET_RAW else "friendly")
        elif code == HARD_RESET:
            await self._boot("friendly")
        elif code == -signal.SIGKILL:
            self.power_cuts += 1
            self.say("power cut at flash operation %d; powering up again" % self.flash_ops())
            self._ctl(4, "<I", 0)
            await self._boot("friendly")
        elif code == BAD_IMAGE:
            self.stop("the device could not mount its flash: " + " ".join(self.last_stderr))
        else:
            now = time.monotonic()
            self.crashes = [t for t in self.crashes if now - t < CRASH_LOOP[1]] + [now]
            if len(self.crashes) >= CRASH_LOOP[0]:
                self.stop("the device process keeps dying (exit %s):\n%s" % (code, "\n".join(self.last_stderr)))
            else:
                self.say("device process ended (exit %s); booting again" % code)
                await self._boot("friendly")

    async def _pump_stdout(self, proc):
        while data := await proc.stdout.read(4096):
            self._to_host(data)

    async def _pump_stderr(self, proc):
        self.last_stderr = []
        while line := await proc.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self.last_stderr = self.last_stderr[-20:] + [text]
            self.say("device stderr: " + text)

    def _to_host(self, data):
        if self.repl_closed:
            return
        # The board's console turns "\n" into "\r\n" (print is "cooked" on the ESP32's UART);
        # the unix port does not, so do it here, leaving "\r\n" that is already there alone.
        for b in data:
            if b == 10 and not self._cr:
                self._out.append(13)
            self._out.append(b)
            self._cr = b == 13
        # A host that reads slowly (or not at all) must not lose what the device said: keep
        # it until the pty takes it, up to OUTPUT_BACKLOG; beyond that the oldest goes.
        del self._out[:-OUTPUT_BACKLOG]
        self._flush_out()

    def _flush_out(self):
        loop = asyncio.get_running_loop()
        try:
            while self._out:
                del self._out[:os.write(self.master, self._out)]
        except BlockingIOError:
            if not self._writer_armed:
                self._writer_armed = True
                loop.add_writer(self.master, self._flush_out)
            return
        if self._writer_armed:
            self._writer_armed = False
            loop.remove_writer(self.master)

    def _from_host(self):
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        if self.repl_refused():
            # A production unit: no keyboard interrupt, no REPL. Say so, and from then on the
            # port is dead: nothing read, nothing written.
            self._out[:] = b"\r\nREPL refused: this is a production unit\r\n"
            self._flush_out()
            self.repl_closed = True
            asyncio.get_running_loop().remove_reader(self.master)
            # (The kernel moves written bytes to the reading side a moment later.)
            asyncio.get_running_loop().call_later(0.05, self._hang_up_when_read, time.monotonic() + 2)
            return
        if CTRL_C in data and self.executing():
            # As the ESP32's UART does while code runs: Ctrl-C becomes KeyboardInterrupt and
            # is not queued as input. (The unix port exits on a second SIGINT that arrives
            # before the first is handled, hence one per 100 ms to one process.)
            now = time.monotonic()
            last_pid, last_time = self._last_sigint
            if self.proc and self.proc.returncode is None and (self.proc.pid != last_pid or now - last_time > 0.1):
                self._last_sigint = (self.proc.pid, now)
                self.proc.send_signal(signal.SIGINT)
            data = data.replace(bytes((CTRL_C,)), b"")
        if data and self.proc and self.proc.returncode is None:
            self.proc.stdin.write(data)

    def _hang_up_when_read(self, deadline):
        # A hang-up drops what the client has not read yet: wait (a little) until it has.
        unread = struct.unpack("i", fcntl.ioctl(self.slave, termios.FIONREAD, b"\0\0\0\0"))[0]
        if (unread or self._out) and time.monotonic() < deadline:
            asyncio.get_running_loop().call_later(0.02, self._hang_up_when_read, deadline)
        else:
            self._close_repl()

    def _close_repl(self):
        """Hang up the REPL's pty (its client reads EOF or EIO); the device runs on."""
        if self.master is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.master)
        loop.remove_writer(self.master)
        self.repl_closed = True
        if os.path.islink(self.link) and os.readlink(self.link) == self.repl_path:
            os.unlink(self.link)
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = None

    # ---- control API commands ------------------------------------------------------------

    def cmd_power_cut(self, at=None, after=None):
        """Cut power now, or at flash operation `at`, or `after` more operations from now."""
        if at is None and after is None:
            self._ctl(4, "<I", 0)
            self.proc.kill()
            return {"cut_at": self.flash_ops()}
        cut_at = at if at is not None else self.flash_ops() + after
        if cut_at <= self.flash_ops():
            raise VDeviceError("flash operation %d has already happened" % cut_at)
        self._ctl(4, "<I", cut_at)
        return {"cut_at": cut_at}

    def cmd_flash_writes(self):
        """Flash operations (erases and programs) since the virtual handheld started."""
        return self.flash_ops()

    async def cmd_reset(self):
        """Hard reset (the EN button): the process is killed and the device boots afresh."""
        old = self.proc
        await self._boot("friendly")
        old.kill()
        return {"boots": self.boots}

    def cmd_snapshot(self, path):
        """Copy the flash as it is now to path (with the device idle at its REPL, every file
        is closed and so complete on the image); its other partitions (OTA slots, otadata) to
        path.<flash-partition>.bin beside it."""
        shutil.copyfile(self.image, path)
        for part in flash_files(self.state_dir):
            shutil.copyfile(part, "%s.%s" % (path, part.name))
        return {"flash_ops": self.flash_ops()}

    async def cmd_restore(self, path):
        """Power off, write the flash from a snapshot (as a programmer would), power on. The
        partitions a snapshot has beside it are written too; one without them (a vfs image
        alone) leaves them as they are."""
        old, self.proc = self.proc, None
        if old and old.returncode is None:
            old.kill()
            await old.wait()
        shutil.copyfile(path, self.image)
        for part in flash_files(self.state_dir):
            if os.path.exists("%s.%s" % (path, part.name)):
                shutil.copyfile("%s.%s" % (path, part.name), part)
        await self._boot("friendly")
        return {"boots": self.boots}

    def cmd_device(self):
        return {"pid": self.proc.pid if self.proc else None, "boots": self.boots, "phase": self.phase(), "heap": self.heap or "board",
                "power_cuts": self.power_cuts, "flash_ops": self.flash_ops(), "repl": self.repl_path,
                "image": str(self.image)}

    # ---- stop ----------------------------------------------------------------------------

    def stop(self, failure=None):
        self.failure = failure
        self.exited.set()

    async def close(self):
        if self.proc and self.proc.returncode is None:
            self.proc, proc = None, self.proc
            proc.kill()
            await proc.wait()
        self._close_repl()
        self.rig.close()
        await asyncio.sleep(0.05)  # let the rig's connections see their end before the loop does
        if self.image_lock:
            self.image_lock.close()
