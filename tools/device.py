"""Talk to a Pocket Terminal's REPL from the host: the board on a serial port, or the virtual
handheld's pty. Built on mpremote's own transport, so it behaves as `mpremote` does.

    dev = Device("/dev/ttyUSB0")          # or "build/vdevice.tty"
    dev.exec("import diag; diag.report()")
    dev.eval("1 + 1")                     # -> 2
    dev.soft_reset()
"""

import os
import time
from pathlib import Path

from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport


class DeviceError(Exception):
    """The device could not be reached, or did not answer as a MicroPython REPL does."""


class DeviceExecError(DeviceError):
    """Code run on the device raised; the message is the device's own traceback."""

    def __init__(self, traceback, output=""):
        super().__init__(traceback)
        self.traceback = traceback
        self.output = output


class Device:
    def __init__(self, port, timeout=10):
        self.port = str(port)
        self.timeout = timeout
        self.transport = None
        self._test_module = None
        self.connect()

    def connect(self):
        """Open the port and take the REPL into raw mode (interrupting whatever runs)."""
        self.close()
        path = os.path.realpath(self.port)
        if not os.path.exists(path):
            raise DeviceError("no serial port at %s: is the device connected (or `make run` running)?" % self.port)
        try:
            # A read timeout: a silent device makes calls fail instead of hanging. Generous,
            # because mpremote reads some answers with a single read (the raw-paste handshake)
            # and a busy machine can take over a second to give them.
            self.transport = SerialTransport(path, baudrate=115200, timeout=5)
        except TransportError as e:
            raise DeviceError("cannot open %s: %s" % (self.port, e)) from None
        self._raw_repl(soft_reset=False)

    def _raw_repl(self, soft_reset):
        try:
            self.transport.enter_raw_repl(soft_reset=soft_reset, timeout_overall=self.timeout)
        except (TransportError, OSError) as e:
            raise DeviceError("no MicroPython REPL answered on %s within %d s (%s): is the device powered "
                              "and running, not stuck with interrupts off?" % (self.port, self.timeout, e)) from None

    def exec(self, code, timeout=None):
        """Run code in the raw REPL; return its output. Raises DeviceExecError with the
        device's traceback if the code raised."""
        try:
            out, err = self.transport.exec_raw(code, timeout=timeout or self.timeout)
        except (TransportError, OSError) as e:
            raise DeviceError("the REPL on %s stopped answering: %s" % (self.port, e)) from None
        out = out.decode(errors="replace")
        if err:
            raise DeviceExecError(err.decode(errors="replace").replace("\r\n", "\n"), out)
        return out.replace("\r\n", "\n")

    def eval(self, expression, timeout=None):
        """Evaluate an expression on the device; its repr (the last line printed: what the
        expression's code printed before, such as the screens' lines, comes first) is parsed back
        into a value."""
        import ast

        return ast.literal_eval(self.exec("print(repr(%s))" % expression, timeout).strip().splitlines()[-1])

    def soft_reset(self):
        """Ctrl-D: a fresh interpreter (and heap); boot.py runs again, main.py does not."""
        self._raw_repl(soft_reset=True)
        self._test_module = None

    def reconnect(self, within=20, attempt=4):
        """After a reset or power cut: wait for the REPL to come back and take it again, in
        attempts of `attempt` seconds each (as a person presses Ctrl-C again when the first
        press went to a device that was still starting)."""
        deadline = time.monotonic() + within
        timeout, self.timeout = self.timeout, attempt
        try:
            while True:
                try:
                    return self.connect()
                except DeviceError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            self.timeout = timeout

    def run_test(self, module, name, timeout=60):
        """Run test function `name` of the test module `module` in /tests on the device.

        Each module starts in a fresh interpreter (a soft reset), so that the heap and state
        one module leaves do not leak into the next."""
        if self._test_module != module:
            self.soft_reset()
            self._test_module = module
        self.exec("import sys\nif '/tests' not in sys.path: sys.path.append('/tests')\n"
                  "import %s\n%s.%s()" % (module, module, name), timeout=timeout)

    # ---- files ---------------------------------------------------------------------------

    def write_file(self, path, data):
        self.makedirs(path.rpartition("/")[0])
        try:
            self.transport.fs_writefile(path, data, chunk_size=1024)
        except (TransportError, TransportExecError) as e:
            raise DeviceError("writing %s failed: %s" % (path, e)) from None

    def read_file(self, path):
        return self.transport.fs_readfile(path)

    def makedirs(self, path):
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if not self.transport.fs_exists(d):
                self.transport.fs_mkdir(d)

    def deploy(self, tree):
        """Copy a file tree to the device's file system; return the device paths written."""
        tree = Path(tree)
        written = []
        for src in sorted(tree.rglob("*")):
            if src.is_file():
                written.append("/" + src.relative_to(tree).as_posix())
                self.write_file(written[-1], src.read_bytes())
        return written

    def frozen_firmware(self):
        """Whether the device runs this project's firmware frozen into its application image (our
        board's image, the virtual handheld): a firmware module imports with no file of it on the
        file system. Files deployed there would never run (.frozen comes first on sys.path) and
        would only fill the data partition (512 KB beside two OTA slots: no room for them)."""
        return self.exec("import os\ntry:\n import pinblock\n f = 1\nexcept ImportError:\n f = 0\n"
                         "try:\n os.stat('/lib/pinblock.py')\n f = 0\nexcept OSError:\n pass\nprint(f)").strip() == "1"

    def deploy_firmware(self):
        """This tree's firmware, as for the board (tools.image, without board/sim.py), onto a
        board running stock MicroPython; nothing onto one that has the firmware frozen in (its
        firmware changes by a new image or an update: docs/updates.md)."""
        import tempfile

        from tools import image

        if self.frozen_firmware():
            return []
        with tempfile.TemporaryDirectory() as staging:
            image.stage(Path(staging) / "fs", board="handheld")
            return self.deploy(Path(staging) / "fs")

    def close(self):
        if self.transport is not None:
            try:
                self.transport.close()
            except OSError:
                pass
            self.transport = None


def main(argv=None):
    """`python -m tools.device --port /dev/ttyUSB0 deploy`: put this tree's firmware on a board."""
    import argparse
    import sys

    from tools import image

    parser = argparse.ArgumentParser(prog="python -m tools.device", description=main.__doc__.split(":")[0])
    parser.add_argument("--port", required=True, help="the board's serial port, or the virtual handheld's pty")
    parser.add_argument("command", choices=("deploy",))
    args = parser.parse_args(argv)
    try:
        dev = Device(args.port)
        files = dev.deploy_firmware()
        if files:
            print("deployed %d files to %s; reset the board to start them" % (len(files), args.port))
        else:
            print("%s runs the firmware frozen into its image: nothing deployed (a new image, or an "
                  "update from the bank, changes it: docs/updates.md)" % args.port)
        dev.close()
    except (DeviceError, image.ImageError) as e:
        print("device: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
