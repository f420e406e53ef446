"""A pseudo-terminal through which host software reaches a UART model, as if it were the device.

libnfc's nfc-list, Adafruit's libraries on pyserial or a terminal program open the pty; the rig
reads what they write and paces it at the baud rate they set on their side (termios), and the
model's answers come back at that rate too.
"""

import asyncio
import os
import termios
import tty

from .buses import Line, char_bits

BAUDS = {getattr(termios, n): int(n[1:]) for n in dir(termios) if n[0] == "B" and n[1:].isdigit()}


class PtyHost:
    def __init__(self, port, link):
        self.port = port
        self.master, self.slave = os.openpty()
        # Raw, so that no line discipline rewrites bytes before a client sets its own mode; our
        # open slave also keeps the master readable while no client has the pty open.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.link = link
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(self.path, link)
        port.hosts["pty"] = (Line(self._write), self.char_time)
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def char_time(self):
        attrs = termios.tcgetattr(self.slave)
        baud = BAUDS.get(attrs[5], 9600) or 9600
        cflag = attrs[2]
        bits = {termios.CS5: 5, termios.CS6: 6, termios.CS7: 7, termios.CS8: 8}[cflag & termios.CSIZE]
        parity = None if not cflag & termios.PARENB else "odd" if cflag & termios.PARODD else "even"
        return char_bits(bits, parity, 2 if cflag & termios.CSTOPB else 1) / baud

    def _readable(self):
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        if data:
            self.port.from_host("pty", data)

    def _write(self, data):
        try:
            os.write(self.master, data)
        except BlockingIOError:
            pass  # nobody is reading the pty: the bytes are lost, as on an unread serial line

    def close(self):
        asyncio.get_running_loop().remove_reader(self.master)
        self.port.hosts.pop("pty", None)
        os.close(self.master)
        os.close(self.slave)
        if os.path.islink(self.link):
            os.unlink(self.link)
