"""The PN532 model on its pty, for the tests that talk to it as host software does
(tests/host/test_pn532_model.py, test_nfcpy.py): frames of UM0701-02 built here, not by the
model's code, a pyserial host, the chip attached on uart2 as "pn532" for each test, and libnfc's
nfc-list.
"""

import os
import shutil
import subprocess

import pytest
import serial
from rigfix import Model

FAST = 0.1  # the model's chip and RF times, scaled for the tests

# ---- frames, from UM0701-02 6.2.1 (independent of the model's code) --------------------------------

ACK = bytes.fromhex("0000ff00ff00")
NACK = bytes.fromhex("0000ffff0000")
ERROR = bytes.fromhex("0000ff01ff7f8100")
WAKE = bytes.fromhex("5555") + bytes(14)  # the HSU preamble libnfc and Adafruit send


def frame(tfi, *data):
    """00 00 FF LEN LCS TFI PD.. DCS 00, extended (FF FF LENM LENL LCS) past 255."""
    body = bytes((tfi,)) + b"".join(bytes(d) if not isinstance(d, int) else bytes((d,)) for d in data)
    n = len(body)
    if n > 255:
        head = bytes((0xFF, 0xFF, n >> 8, n & 0xFF, (0x100 - ((n >> 8) + (n & 0xFF)) % 0x100) % 0x100))
    else:
        head = bytes((n, (0x100 - n) % 0x100))
    return b"\x00\x00\xff" + head + body + bytes(((0x100 - sum(body) % 0x100) % 0x100, 0))


def cmd(*data):
    return frame(0xD4, *data)


def answer(*data):
    return frame(0xD5, *data)


class Hsu:
    """A host on the model's pty: writes frames, reads whole frames back."""

    def __init__(self, tty, baud=115200):
        self.port = serial.Serial(tty, baud, timeout=1)

    def close(self):
        self.port.close()

    def send(self, data):
        self.port.write(data)

    def read_frame(self, timeout=1.0):
        """One frame as sent (ACK, NACK, error or information frame), or b"" if none came."""
        self.port.timeout = timeout
        head = self.port.read(5)
        if len(head) < 5:
            return head
        assert head[:3] == b"\x00\x00\xff", head.hex()
        if head[3:5] == b"\x00\xff" or head[3:5] == b"\xff\x00":  # ACK / NACK
            return head + self.port.read(1)
        if head[3:5] == b"\xff\xff":
            ext = self.port.read(3)
            n = (ext[0] << 8) | ext[1]
            assert (ext[0] + ext[1] + ext[2]) % 256 == 0
            return head + ext + self.port.read(n + 2)
        assert (head[3] + head[4]) % 256 == 0, head.hex()
        return head + self.port.read(head[3] + 2)

    def call(self, *data, timeout=1.0):
        """Send a command, expect the ACK, return the answer frame."""
        self.send(cmd(*data))
        assert self.read_frame(timeout) == ACK
        return self.read_frame(timeout)

    def nothing(self, wait=0.15):
        self.port.timeout = wait
        return self.port.read(64) == b""

    def wake(self):
        """The manual's HSU wake-up and SAMConfiguration (normal mode): LowVbat left."""
        self.send(WAKE)
        assert self.call(0x14, 0x01) == answer(0x15)


def payload(f):
    """TFI + PD of an information frame."""
    if f[3:5] == b"\xff\xff":
        n = (f[5] << 8) | f[6]
        return f[8:8 + n]
    return f[5:5 + f[3]]


@pytest.fixture
def pn532(vdevice):
    rig = vdevice.rig
    attached = rig.attach("uart2", "pn532-hsu", name="pn532")

    chip = Model(vdevice, "pn532", attached["pty"])
    try:
        chip.do("timing", scale=FAST)
        yield chip
    finally:
        rig.detach("pn532")


def nfc_list(chip, *args):
    exe = shutil.which("nfc-list")
    assert exe, "nfc-list is missing: `make setup` installs it (Debian package libnfc-bin)"
    env = dict(os.environ, LIBNFC_DEVICE="pn532_uart:" + chip.pty, LIBNFC_AUTO_SCAN="false",
               LIBNFC_LOG_LEVEL="1")
    done = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NFC device: user defined device opened" in done.stdout, done.stdout + done.stderr
    return done.stdout
