# The virtual handheld's "ROM": what the ESP32 port does in C before and around the firmware.
#
# Frozen into the board-faithful unix port (tools/vdevice/build.py) with the firmware, as the
# board's C is in its flash, and started by tools/vdevice, never by hand:
#   micropython -X heapsize=56K -m launcher <flash image> <control block> <friendly|raw>
# It mounts the flash image at / through VfsLfs2 on vflash.Partition (tools/vdevice/port: the
# block device in C, as the ESP32's esp32.Partition), runs boot.py and main.py as the ESP32 port
# does (the frozen ones, as the firmware freezes them), and then serves the REPL (friendly, raw and raw-paste, the
# protocol of MicroPython's shared/runtime/pyexec.c) on stdin/stdout, which tools/vdevice bridges
# to a pseudo-terminal. A soft reset runs every finaliser (open files are closed), ends the process
# with SOFT_RESET_* and tools/vdevice starts a fresh interpreter on the same image: a clean heap,
# as on the board.
#
# The control block is a small file shared with tools/vdevice: the flash operation counter, the
# operation at which power is to be cut, and whether code is running (so that tools/vdevice turns
# Ctrl-C into SIGINT only then, as the board's UART turns it into KeyboardInterrupt), how far
# the boot has come, and whether the REPL is refused (a production unit).
#
# The chip's eFuses are the file vdevice.efuse beside the control block (espefuse's --virt format:
# `espefuse --chip esp32 --virt --path-efuse-file <state dir>/vdevice.efuse summary`), made by
# tools/vdevice (a blank chip's) if there was none: they belong to the chip, so a flash image
# written or restored leaves them as they are. Before anything else, as firmware/pt_lock.c does on
# the board, the launcher reads the production lock there (BLOCK3 bit 255; lib/production.py): on
# a production unit no byte of the serial port is ever read, from reset on. No keyboard interrupt,
# no raw REPL, no soft reset from the host: boot.py and main.py run, a crash or their end never
# opens the REPL (main.py resets the board; if it did not, the port would stay deaf, as
# pt_lock.c's disconnected RX line keeps the board's REPL deaf).
import sys
import os
import vfs
import struct

import vflash

SOFT_RESET_FRIENDLY = 64  # exit codes understood by tools/vdevice
SOFT_RESET_RAW = 65
BAD_IMAGE = 66
HARD_RESET = 67

CTRL_C = 3
CTRL_D = 4
EFUSE_FILE = "vdevice.efuse"
EFUSE_SIZE = 0x120  # the eFuse controller's registers (0x3FF5A000-0x3FF5A11F)
# The production lock, read as firmware/pt_lock.c reads it: EFUSE_BLK3_RDATA7_REG bit 31, or
# BLOCK3 read-protected (RD_DIS bit 2 in EFUSE_BLK0_RDATA0_REG), which would hide it: fail closed.
EFUSE_BLK0_RDATA0 = 0x000
EFUSE_BLK3_RDATA7 = 0x094
BANNER = "MicroPython v%d.%d.%d on %s; Pocket Terminal virtual handheld with ESP32\r\nType \"help()\" for more information.\r\n"


class Control:
    """The control block shared with tools/vdevice (see tools/vdevice/__init__.py); the flash
    operation counter in it is vflash's (C, as the board's flash driver)."""

    def __init__(self, path):
        self.f = open(path, "r+b")

    def executing(self, flag):
        self.f.seek(8)
        self.f.write(b"\x01" if flag else b"\x00")

    def phase(self, n):
        """0 mounting, 1 boot.py, 2 main.py, 3 REPL: how far this boot has come."""
        self.f.seek(9)
        self.f.write(bytes((n,)))

    def refuse_repl(self):
        self.f.seek(10)
        self.f.write(b"\x01")


class Hardware:
    """What board/sim.py reaches of the virtual hardware beyond the rig, as `import _vdevice`:
    the ESP32's reset, and its production configuration without a REPL."""

    def __init__(self):
        self.repl_refused = False
        self.resetting = False
        self.efuse = None  # the chip's eFuse file, open: board.sim's mem32 reads and burns it
        # The flash beyond the vfs (tools/vdevice/esp32.py): the image, the control block, the
        # state dir holding flash-<partition>.bin, and the OTA slot the bootloader started.
        self.image = self.control_path = self.flash_dir = self.running = None

    def read_efuses(self, control_path):
        """Open the chip's eFuses (tools/vdevice makes a blank chip's file beside the control
        block when there is none); is it a production unit?"""
        path = control_path.rsplit("/", 1)[0] + "/" + EFUSE_FILE if "/" in control_path else EFUSE_FILE
        # Each register is stored back to front (espefuse's BitStream of the register space):
        # the one at offset o in the 4 bytes that end EFUSE_SIZE - o from the file's start.
        self.efuse = open(path, "r+b")
        words = self.efuse.read()
        if len(words) != EFUSE_SIZE:
            raise ValueError("%s is no ESP32 eFuse file (%d bytes, not %d)" % (path, len(words), EFUSE_SIZE))

        def word(offset):
            return int.from_bytes(words[EFUSE_SIZE - 4 - offset:EFUSE_SIZE - offset], "big")

        return bool(word(EFUSE_BLK3_RDATA7) >> 31 or word(EFUSE_BLK0_RDATA0) >> 18 & 1)

    def refuse_repl(self):
        # From now on (this boot) no byte of the serial port is read: no Ctrl-C, no REPL.
        self.repl_refused = True
        control.executing(False)
        control.refuse_repl()

    def reset(self):
        self.resetting = True
        raise SystemExit


hardware = Hardware()
sys.modules["_vdevice"] = hardware


def second_stage_bootloader():
    """ESP-IDF's bootloader: which OTA slot runs (tools/vdevice/esp32.py, the otadata writes of
    its rollback included), reported in <state dir>/vdevice.boot as "<slot> <version> <secure
    version> <otadata state>"; False if no slot holds a bootable app (the board resets for ever).
    The esp32 module stays imported, as the port's C module is always there: its heap is a
    stand-in's (tools.vdevice.STAND_INS), not the firmware's."""
    import esp32

    hardware.running = esp32.boot()
    if hardware.running is None:
        sys.stderr.write("bootloader: no bootable app partitions in the partition table\n")
        return False
    version, secure = esp32.describe(hardware.running)
    state = esp32.STATES.get(esp32.state(hardware.running), "UNDEFINED")
    with open(hardware.flash_dir + "/vdevice.boot", "w") as f:
        f.write("%s %s %d %s\n" % (hardware.running, version, secure, state))
    return True


# ---- the REPL, after shared/runtime/pyexec.c -------------------------------------------------

out = sys.stdout.buffer
inp = sys.stdin.buffer
control = None
globals_main = {"__name__": "__main__"}
history = []
LAUNCHER_FRAME = '  File "%s"' % __file__


def write(s):
    out.write(s if isinstance(s, bytes) else s.encode())


pushback = b""  # input read ahead by ctrl_c_pending()


def getch():
    """One byte of input; a Ctrl-C that arrives as SIGINT counts as the byte."""
    global pushback
    if pushback:
        c, pushback = pushback[0], pushback[1:]
        return c
    try:
        b = inp.read(1)
    except KeyboardInterrupt:
        return CTRL_C
    if not b:  # tools/vdevice went away: power off
        sys.exit(0)
    return b[0]


def ctrl_c_pending():
    """Did a Ctrl-C arrive as a byte just before code started? tools/vdevice turns Ctrl-C into
    SIGINT only once the executing flag is up; one that came a moment earlier sits in the
    input, and would otherwise go unseen until the code ends (if it ever does)."""
    global pushback
    import select

    poller = select.poll()
    poller.register(inp, select.POLLIN)
    while poller.poll(0):
        b = inp.read(1)
        if not b:
            break
        pushback += b
    last = pushback.rfind(b"\x03")
    # As at the REPL, Ctrl-C discards what was typed before it.
    pushback = pushback[last + 1:]
    return last >= 0


def print_exception(e):
    # The traceback as the board prints it: without this launcher's own frames.
    import io

    buf = io.StringIO()
    sys.print_exception(e, buf)
    for line in buf.getvalue().split("\n"):
        if line and not line.startswith(LAUNCHER_FRAME):
            write(line + "\r\n")


def execute(source, filename, mode="exec", raw=False):
    """Compile and run source in __main__'s globals; True if it asked for a soft reset
    (SystemExit), False if it raised, None if it ran to the end.

    mode "frozen" runs the frozen module whose name is source (pyexec_frozen_module).
    mode "repl" is the friendly REPL's: an expression's value is printed (as the unix port's
    compile() has no "single" mode that prints with the board's line endings).
    In the raw REPL the output is framed for the host: normal output, EOF, error output, EOF."""
    deaf = hardware.repl_refused  # a production unit: the serial port is never read
    control.executing(not deaf)
    error = None
    soft_reset = False
    try:
        try:
            if not deaf and ctrl_c_pending():
                raise KeyboardInterrupt
            if mode == "frozen":
                run_frozen(source)
            else:
                run_source(source, filename, mode)
        finally:
            control.executing(False)
    except SystemExit:
        if hardware.resetting:
            sys.exit(HARD_RESET)
        soft_reset = True
    except BaseException as e:
        error = e
    finish(error, raw)
    return soft_reset or (False if error else None)


def run_source(source, filename, mode):
    if mode == "repl":
        try:
            code, mode = compile(source, filename, "eval"), "eval"
        except SyntaxError:
            code, mode = compile(source + "\n", filename, "exec"), "exec"
    else:
        code = compile(source, filename, mode)
    if mode == "eval":
        result = eval(code, globals_main)
        if result is not None:
            globals_main["_"] = result
            write(repr(result).replace("\n", "\r\n") + "\r\n")
    else:
        exec(code, globals_main)


def finish(error, raw):
    try:
        if raw:
            write(b"\x04")
        if error is not None:
            print_exception(error)
    except KeyboardInterrupt:  # a late Ctrl-C while reporting: the report is all that is lost
        pass
    if raw:
        write(b"\x04")


_UNSEARCHED = "/\x01"  # a prefix no file's path has


def run_frozen(name):
    # Only .frozen is searched: a file of the same name on the flash must not stand in for it.
    # The other entries are kept in place under a prefix no file has, and given back as the
    # script left them: on the board pyexec_frozen_module runs the frozen code with sys.path as
    # it is, and what boot.py does to it (.frozen first) stays for every later import.
    back = {_UNSEARCHED + p: p for p in sys.path if p != ".frozen"}
    sys.path[:] = [p if p == ".frozen" else _UNSEARCHED + p for p in sys.path]
    try:
        __import__(name)
    finally:
        # In place, allocating nothing: the script may have died of a heap run out (boot.py's
        # store check on too small a heap).
        for i in range(len(sys.path)):
            sys.path[i] = back.get(sys.path[i], sys.path[i])
        sys.modules.pop(name, None)


def run_file(path):
    """Run boot.py or main.py, as pyexec_file_if_exists runs a frozen one: True on SystemExit,
    False if it raised, None if it ran to its end."""
    return execute(path[:-3], path, mode="frozen")


def raw_repl():
    """Raw REPL: returns 'friendly' on Ctrl-B, or a SOFT_RESET_* code."""
    write("raw REPL; CTRL-B to exit\r\n")
    while True:
        write(">")
        line = bytearray()
        while True:
            c = getch()
            if c == 1:  # Ctrl-A: reset raw REPL, or raw-paste request "\x05A\x01"
                if len(line) == 2 and line[0] == 5:
                    if line[1] != ord("A"):
                        write(b"R\x00")
                    elif raw_paste():
                        return SOFT_RESET_RAW
                write("raw REPL; CTRL-B to exit\r\n")
                line = bytearray()
                write(">")
            elif c == 2:  # Ctrl-B: friendly REPL
                write("\r\n")
                return "friendly"
            elif c == CTRL_C:
                line = bytearray()
            elif c == CTRL_D:
                break
            else:
                line.append(c)
        write("OK")
        if not line:
            write("\r\n")
            return SOFT_RESET_RAW
        # Held once while it runs, as pyexec.c's vstr holds it: not the bytearray beside a copy.
        source, line = bytes(line), None
        if execute(source, "<stdin>", raw=True):
            return SOFT_RESET_RAW


def raw_paste():
    """Raw-paste mode: flow-controlled upload, then execute; True for a soft reset."""
    window = 512
    write(b"R\x01" + struct.pack("<H", window))
    data = bytearray()
    remain = window
    while True:
        c = getch()
        if c == CTRL_D:
            break
        if c == CTRL_C:  # abandoned upload: acknowledged, then reported as pyexec does
            write(b"\x04")
            finish(KeyboardInterrupt(), raw=True)
            return False
        data.append(c)
        remain -= 1
        if remain == 0:
            write(b"\x01")
            remain = window
    write(b"\x04")  # end of data acknowledged
    source, data = bytes(data), None  # held once while it runs (raw_repl says why)
    return execute(source, "<stdin>", raw=True)


# Friendly REPL -------------------------------------------------------------------------------

COMPOUND = ("if", "while", "for", "try", "with", "def", "class", "async")


def continues(text):
    """mp_repl_continue_with_input(): does this input need more lines?"""
    if not text:
        return False
    first = text.split(None, 1)[0] if text.strip() else ""
    compound = text[0] == "@" or first.rstrip(":") in COMPOUND
    depth = 0
    quote = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif text.startswith(quote, i):
                i += len(quote) - 1
                quote = None
        elif ch == "#":
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif ch in "'\"":
            quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else ch
            i += len(quote) - 1
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        i += 1
    if quote in ("'''", '"""'):
        return True
    if depth > 0 and quote is None:
        return True
    if text.endswith("\\"):
        return True
    return compound and not text.endswith("\n")


def readline(prompt, prefill=""):
    """A line with the few edits a serial console needs; returns str, or a control code."""
    write(prompt + prefill)
    line = prefill
    recall = len(history)
    while True:
        c = getch()
        if c in (13, 10):
            write("\r\n")
            return line
        if c in (1, 2, 5) and not line.strip():
            return c
        if c == CTRL_C:
            return c
        if c == CTRL_D:
            if not line:
                return c
            continue
        if c in (8, 127):
            if line:
                line = line[:-1]
                write("\b \b")
        elif c == 27:  # escape sequence: up/down walk the history
            if getch() != ord("["):
                continue
            key = getch()
            if key in (ord("A"), ord("B")) and history:
                recall = max(0, recall - 1) if key == ord("A") else min(len(history), recall + 1)
                write("\b \b" * len(line))
                line = history[recall] if recall < len(history) else ""
                write(line)
        elif c >= 32:
            line += chr(c)
            write(chr(c))


def paste_mode():
    write("\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
    text = bytearray()
    while True:
        c = getch()
        if c == CTRL_C:
            write("\r\n")
            return None
        if c == CTRL_D:
            write("\r\n")
            return text.decode()
        text.append(c)
        write("\r\n=== " if c == 13 else bytes((c,)))


def friendly_repl():
    """Friendly REPL: returns 'raw' on Ctrl-A, 'friendly' on Ctrl-B, or a SOFT_RESET_* code."""
    write(BANNER % (sys.implementation.version[:3] + (sys.version.rsplit(" ", 1)[-1],)))
    while True:
        r = readline(">>> ")
        if r == 1:
            write("\r\n")
            return "raw"
        if r == 2:  # Ctrl-B: the friendly REPL afresh, banner and all
            write("\r\n")
            return "friendly"
        if r == CTRL_C:
            write("\r\n")
            continue
        if r == CTRL_D:
            write("\r\n")
            return SOFT_RESET_FRIENDLY
        if r == 5:
            text = paste_mode()
            if text is None:
                continue
            if execute(text.replace("\r", "\n"), "<stdin>"):
                return SOFT_RESET_FRIENDLY
            continue
        text = r
        if not text.strip():
            continue
        history.append(text)
        del history[:-20]
        while continues(text):
            last = text.split("\n")[-1]
            indent = last[: len(last) - len(last.lstrip())] + ("    " if last.rstrip().endswith(":") else "")
            more = readline("... ", indent if text[-1:] != "\n" else "")
            if more == CTRL_C:
                write("\r\n")
                text = None
                break
            if more == CTRL_D or not isinstance(more, str):
                break
            text += "\n" + more if more.strip() else "\n"
        if text is None:
            continue
        if execute(text, "<stdin>", "repl"):
            return SOFT_RESET_FRIENDLY


def main():
    global control
    image, control_path, mode = sys.argv[1:4]
    control = Control(control_path)
    try:
        production = hardware.read_efuses(control_path)
    except (OSError, ValueError) as e:
        sys.stderr.write("the chip's eFuses do not read: %r\n" % (e,))
        sys.exit(BAD_IMAGE)
    if production:
        hardware.refuse_repl()
        mode = "friendly"  # no raw REPL either: boot.py and main.py run as at power-on
    hardware.image, hardware.control_path = image, control_path
    hardware.flash_dir = control_path.rsplit("/", 1)[0] if "/" in control_path else "."
    if not second_stage_bootloader():
        sys.exit(BAD_IMAGE)
    try:
        flash = vflash.Partition(image, control_path)
        vfs.umount("/")
        vfs.mount(flash, "/")
    except (OSError, ValueError) as e:
        sys.stderr.write("flash image %s does not mount: %r\n" % (image, e))
        sys.exit(BAD_IMAGE)
    # The ESP32 port's search path and working directory.
    sys.path[:] = ["", ".frozen", "/lib"]
    os.chdir("/")
    # As the ESP32 port: main.py runs only in the friendly REPL's mode and only if boot.py ran
    # to its end (an error or a Ctrl-C in boot.py leaves the REPL alone).
    soft_reset = False
    try:
        control.phase(1)
        booted = run_file("boot.py")
        soft_reset = booted is True
        if booted is None and mode == "friendly":
            control.phase(2)
            soft_reset = run_file("main.py") is True
    except KeyboardInterrupt:
        # A Ctrl-C that landed just as boot.py or main.py ended, outside their code: the
        # scripts were interrupted, as far as anyone can tell; on to the REPL.
        pass
    if hardware.resetting:
        sys.exit(HARD_RESET)
    if hardware.repl_refused and not soft_reset:
        # A production unit whose boot.py or main.py ended without a reset: the port's REPL
        # loop would run on the board, deaf (firmware/pt_lock.c); here nothing reads the port.
        import time

        while True:
            time.sleep(3600)
    control.phase(3)
    while not soft_reset:
        try:
            result = raw_repl() if mode == "raw" else friendly_repl()
        except KeyboardInterrupt:  # a late Ctrl-C between two reads: a keypress, nothing more
            continue
        if result in (SOFT_RESET_FRIENDLY, SOFT_RESET_RAW):
            mode = "raw" if result == SOFT_RESET_RAW else "friendly"
            break
        mode = result
    write("MPY: soft reboot\r\n")
    vflash.soft_reset(SOFT_RESET_RAW if mode == "raw" else SOFT_RESET_FRIENDLY)


# Run as `-m launcher`; imported, it only defines itself (tools/vdevice/build.py measures what
# it holds in the heap that the board's C does not).
if __name__ == "__main__":
    main()
