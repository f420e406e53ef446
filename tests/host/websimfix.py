"""The web simulator for tests: `python -m tools.websim` as a child process on its own image and
state dir, and headless Chromium (Debian's, driven by Playwright) on its page."""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from tools.rig.client import RigClient
from tools.vdevice.spawn import VDeviceProcess

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class WebsimProcess(VDeviceProcess):
    """As VDeviceProcess (stop, wait_booted, rig), the device started by the web simulator;
    url is its page."""

    def __init__(self, image, state_dir, bank=True, start_timeout=60):
        self.state_dir = Path(state_dir)
        self.log_path = self.state_dir / "websim.log"
        args = [sys.executable, "-m", "tools.websim", "--port", "0", "--image", str(image),
                "--state-dir", str(state_dir)] + ([] if bank else ["--no-bank"])
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.url = self.repl = None
        self.lines = []
        deadline = time.monotonic() + start_timeout
        while self.url is None:
            line = self.proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the web simulator did not start:\n" + self.log_path.read_text())
            self.lines.append(line.rstrip())
            if line.startswith("REPL on "):
                self.repl = line.split(None, 2)[2].strip()
            elif line.startswith("web simulator on "):
                self.url = line.split()[-1]
        threading.Thread(target=self._drain, daemon=True).start()
        self.rig = RigClient.from_state(self.state_dir)
        self.wait_booted()


def chromium_missing():
    """Why headless Chromium cannot run here (None when it can)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (requirements.txt)"
    if not os.path.exists(CHROMIUM) and not shutil.which("chromium"):
        return "Debian's chromium is not installed (apt-get install chromium)"
    return None


def browser(user_data_dir):
    """(playwright, context): Debian's Chromium, headless, an empty profile."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    context = pw.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
        headless=True, args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 900})
    return pw, context
