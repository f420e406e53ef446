"""Start a virtual handheld as a child process and wait until its REPL is there (tests, tools).

    with VDeviceProcess(image, state_dir) as vd:
        dev = Device(vd.repl)
        vd.rig.call("flash_writes")
"""

import subprocess
import sys
import threading
import time
from pathlib import Path

from tools.rig.client import RigClient

from . import VDeviceError

ROOT = Path(__file__).resolve().parent.parent.parent


class VDeviceProcess:
    def __init__(self, image, state_dir, heap=None, extra_args=(), start_timeout=20, bare=True):
        """bare: no peripheral models attached at start (tests attach what they need)."""
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.state_dir / "vdevice.log"
        args = [sys.executable, "-m", "tools.vdevice", "--image", str(image), "--state-dir", str(state_dir)]
        if heap:
            args += ["--heap", str(heap)]
        if bare:
            args.append("--bare")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args + list(extra_args), cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self.repl = None
        self.lines = []
        deadline = time.monotonic() + start_timeout
        while self.repl is None:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                self.log.close()
                raise VDeviceError("the virtual handheld did not start (exit %s):\n%s"
                                   % (self.proc.returncode, self.log_path.read_text()))
            self.lines.append(line.rstrip())
            if line.startswith("REPL on "):
                self.repl = line.split(None, 2)[2].strip()
            elif time.monotonic() > deadline:
                self.stop()
                raise VDeviceError("no `REPL on` line from the virtual handheld within %d s" % start_timeout)
        # Keep reading what it prints (a pty line per attached UART model), so it never blocks.
        threading.Thread(target=self._drain, daemon=True).start()
        self.rig = RigClient.from_state(self.state_dir)
        self.wait_booted()

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_booted(self, after_boots=0, timeout=10):
        """Wait until a boot (later than boot number after_boots) has left boot.py: connecting
        earlier would interrupt boot.py, as on a board. Returns the device's status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.rig.call("device")
            if status["boots"] > after_boots and status["phase"] in ("main.py", "repl"):
                return status
            if time.monotonic() > deadline:
                raise VDeviceError("the virtual handheld is still at %s after %d s" % (status["phase"], timeout))
            time.sleep(0.02)

    def log_tail(self, lines=20):
        """The end of the virtual handheld's log (its own messages, the device's stderr)."""
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "rig"):
            self.rig.close()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
