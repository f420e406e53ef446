"""A pseudo-terminal through which host software reaches a UART model, as if it were the device.

libnfc's nfc-list, Adafruit's libraries on pyserial or a terminal program open the pty; the rig
reads what they write and paces it at the baud rate they set on their side (termios), and the
model's answers come back at that rate too.

The rate a chunk was sent at is the client's rate when the rig reads it. A pty does not say
when a client changed its rate relative to what it wrote, so a chunk read after a change may
have been written before it (nfcpy writes its ACK to SetSerialBaudRate and reopens the port at
the new rate 0.2 ms later; the rig, on a loaded machine, reads the ACK after that). Such a chunk
goes to the model with the rate of the previous read as the one it may also have been sent at
(`earlier`); the model decides what an ambiguous chunk means to it (the PN532 reads it at its
own rate only while a speed change awaits its ACK). Not modelled either: a UART's transmit
FIFO. A client that flushes its output at once after writing (nfcpy's reopen) takes back what
the rig has not read yet; a UART would have sent it.
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
        self.last_char_time = self.char_time()  # the client's rate at the previous read
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
            char_time, earlier = self.char_time(), self.last_char_time
            self.last_char_time = char_time
            self.port.from_host("pty", data, char_time, earlier if earlier != char_time else None)

    def _write(self, data, _char_time, _earlier):
        try:
            os.write(self.master, data)
        except BlockingIOError:
            pass  # nobody is reading the pty: the bytes are lost, as on an unread serial line

    def close(self):
        asyncio.get_running_loop().remove_reader(self.master)
        self.port.hosts.pop("pty", None)
        if self.port.active == "pty":
            # The port's next model answers the device (an ATR goes out before the device has
            # sent a byte to claim the line).
            self.port.active = "device"
        os.close(self.master)
        os.close(self.slave)
        if os.path.islink(self.link):
            os.unlink(self.link)
