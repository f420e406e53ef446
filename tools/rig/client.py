"""A small client for the rig's control API (tools/rig/PROTOCOL.md).

    from tools.rig.client import RigClient
    rig = RigClient.from_state("build")        # the rig that `make run` started
    rig.attach("uart1", "loopback")            # -> {"name": "loopback", "pty": "/dev/pts/7"}
    rig.set_pin("standby_key", 0)              # hold the standby key down
    rig.call("status")
"""

import json
import socket
from pathlib import Path


class RigClientError(Exception):
    pass


class RigClient:
    def __init__(self, addr, timeout=30):
        host, port = addr.rsplit(":", 1)
        self.addr = addr
        try:
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        except OSError as e:
            raise RigClientError("no rig control API at %s (%s): is the rig running?" % (addr, e)) from None
        self.file = self.sock.makefile("rwb")

    @classmethod
    def from_state(cls, state_dir="build", **kw):
        """Connect to the rig whose state file is <state_dir>/rig.json."""
        path = Path(state_dir) / "rig.json"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise RigClientError("no rig state at %s (%s): start `make run` or `python -m tools.rig`"
                                 % (path, e)) from None
        return cls(state["control"], **kw)

    def call(self, cmd, **args):
        """Send one command; return its result or raise RigClientError with the rig's message."""
        try:
            self.file.write(json.dumps({"cmd": cmd, "args": args}).encode() + b"\n")
            self.file.flush()
            line = self.file.readline()
        except OSError as e:
            raise RigClientError("rig at %s: %s" % (self.addr, e)) from None
        if not line:
            raise RigClientError("rig at %s closed the connection" % self.addr)
        response = json.loads(line)
        if not response["ok"]:
            raise RigClientError(response["error"])
        return response["result"]

    def attach(self, bus, model, **where):
        return self.call("attach", bus=bus, model=model, **where)

    def detach(self, name):
        return self.call("detach", name=name)

    def set_pin(self, pin, level):
        return self.call("set_pin", pin=pin, level=level)

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
