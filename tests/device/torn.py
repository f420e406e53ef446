# Writes stopped half way by an exception, for on-device tests: the heap out on the board, or a
# Ctrl-C at a developer's REPL, in the middle of a write to flash. Not a power cut (the rig cuts
# those: tests/host/*power*): the interpreter lives on, and the file being written is closed
# with what it had, which LittleFS then makes current.
import builtins


class _Torn:
    """A file opened for writing whose writes are counted in count[0]; the cut-th (over every
    file) writes half its data, then raises MemoryError."""

    def __init__(self, f, count, cut):
        self.f, self.count, self.cut = f, count, cut

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def close(self):
        self.f.close()

    def write(self, data):
        self.count[0] += 1
        if self.count[0] == self.cut:
            self.f.write(data[:len(data) // 2])
            raise MemoryError("a write stopped half way")
        return self.f.write(data)

    def read(self, *n):
        return self.f.read(*n)

    def readinto(self, buf):
        return self.f.readinto(buf)

    def seek(self, *a):
        return self.f.seek(*a)


def stopped_at(cut, call, modules):
    """call() with the cut-th write to a file that modules' code opens for writing stopped half
    way by an exception: whether it was (False: call made fewer writes)."""
    count = [0]

    def torn_open(path, mode="r"):
        f = builtins.open(path, mode)
        return _Torn(f, count, cut) if "w" in mode or "+" in mode else f

    for m in modules:
        m.open = torn_open  # the module's global, found before the builtin
    try:
        call()
        return False
    except MemoryError:
        return True
    finally:
        for m in modules:
            del m.open
