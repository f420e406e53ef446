"""The virtual handheld's "machine": Pin, UART, I2C, SPI and ADC over loopback sockets to the rig.

The only firmware module that knows it runs on the MicroPython unix port. The classes take the
arguments and behave as machine's do on the ESP32 (errors included: an I2C NACK is
OSError(ENODEV)), so board/handheld.py builds the same buses on them and drivers cannot tell.
The wire protocol is tools/rig/PROTOCOL.md; the rig's address comes from $PT_RIG.
"""

import errno
import io
import os
import select
import socket
import struct
import time

import _thread
import micropython
from micropython import const

NAME = "sim"

# Status bytes of the rig's answers (tools/rig/rig.py has the same table).
_OK = const(0)
_NACK = const(1)

_IPPROTO_TCP = const(6)  # not exported by the unix port's socket module
_TCP_NODELAY = const(1)
_MP_STREAM_POLL = const(3)
_MP_STREAM_GET_FILENO = const(10)
_POLL_RD = const(1)
_PEEK = const(16)  # UART.any()'s look at what is waiting (see there)
_POLL_WR = const(4)
_SMALL = const(64)  # a frame's payload up to this goes out of the link's own buffer


class RigUnreachable(OSError):
    pass


def _connect(hello):
    """A connection to the rig for one bus object, introduced by its hello line."""
    address = os.getenv("PT_RIG")
    if not address:
        raise RigUnreachable(errno.ENODEV, "PT_RIG is not set: the virtual handheld (python -m tools.vdevice) sets it")
    host, port = address.rsplit(":", 1)
    sock = socket.socket()
    try:
        sock.connect(socket.getaddrinfo(host, int(port))[0][-1])
    except OSError as e:
        sock.close()
        raise RigUnreachable(e.errno, "no rig at %s:%s for %s: start python -m tools.vdevice" % (host, port, hello))
    # Every frame is a request waiting for its answer: Nagle's algorithm would hold back the
    # second small write of a frame until the first is acknowledged (tens of milliseconds).
    sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
    sock.write(hello.encode() + b"\n")
    answer = sock.readline()
    if answer != b"ok\n":
        sock.close()
        raise RigUnreachable(errno.ENODEV, "rig refused %s: %s" % (hello, answer.decode().strip()))
    return sock


class _Link:
    """Request/response frames: op(1) length(2) payload -> status(1) length(2) payload.

    A frame allocates nothing of its own where it can: the board's buses do not, and the
    benchmarks' heap figures on this handheld are to be the firmware's, not the simulator's.
    Small frames go out of one kept buffer in one write; a large payload (a display strip is
    7.5 KB) goes out as it is, after its header."""

    def __init__(self, hello):
        self.hello = hello
        self.sock = _connect(hello)
        self.head = bytearray(3)
        self.out = bytearray(3 + _SMALL)
        self.busy = False

    def send(self, op, payload=b"", prefix=b"", atomic=False):
        """A frame whose payload is prefix + payload (prefix: a few bytes, say an address).
        atomic: in one write, whatever its size (a copy: for a stream that must never be
        restarted, the UART's); else an interruption between the header and a large payload
        restarts the connection."""
        n, p = len(payload), len(prefix)
        out = self.out
        out[0] = op[0]
        out[1] = (n + p) >> 8
        out[2] = (n + p) & 0xFF
        out[3:3 + p] = prefix
        if n + p <= _SMALL:
            out[3 + p:3 + p + n] = payload
            self.sock.write(out, 3 + p + n)
            return
        if atomic:
            self.sock.write(bytes(out[:3 + p]) + payload)
            return
        try:
            self.sock.write(out, 3 + p)
            self.sock.write(payload)
        except BaseException:
            self._restart()
            raise

    def _restart(self):
        # Interrupted mid-exchange (Ctrl-C, a lost rig): the stream may hold half a frame,
        # so start a clean one, as a bus controller aborts a transfer.
        self.sock.close()
        self.sock = _connect(self.hello)

    def request(self, op, payload=b"", prefix=b"", into=None):
        """(status, the answer's payload); with into (a buffer) an answer of its length is
        read into it, and the payload returned is into itself."""
        self.send(op, payload, prefix)
        try:
            head = self.head
            self.sock.readinto(head)
            n = head[1] << 8 | head[2]
            if into is not None and n == len(into):
                self.sock.readinto(into)
                return head[0], into
            return head[0], self.sock.read(n) if n else b""
        except BaseException:
            self._restart()
            raise

    def close(self):
        self.sock.close()


# ---- the chip ------------------------------------------------------------------------------

class WDT:
    """machine.WDT: once started it cannot be stopped; not fed within its timeout, the device
    resets, whatever it is doing (vflash.watchdog: a timer in C, as the chip's)."""

    def __init__(self, id=0, timeout=5000):
        import vflash

        self.timeout = timeout
        vflash.watchdog(timeout)

    def feed(self):
        import vflash

        vflash.watchdog(self.timeout)


def reset():
    """machine.reset(): the virtual handheld boots afresh."""
    import _vdevice

    _vdevice.reset()


def refuse_repl():
    """A production unit: the virtual handheld's REPL says so and hangs up; Ctrl-C is ignored."""
    import _vdevice

    _vdevice.refuse_repl()


# The eFuse controller (ESP32 TRM, chapter "eFuse Controller"; espefuse's esp32 mem_definition):
# its registers from 0x3FF5A000, kept in the virtual chip's eFuse file in espefuse's --virt
# format (the register space, 0x120 bytes, stored back to front), which the launcher opened.
_EFUSE_BASE = const(0x3FF5A000)
_EFUSE_SIZE = const(0x120)
_BLK0_RDATA0 = const(0x000)  # WR_DIS [15:0], RD_DIS [19:16]
_BLK3_RDATA = const(0x078)
_BLK3_WDATA = const(0x0D8)
_CONF = const(0x0FC)
_CMD = const(0x104)
_CONF_WRITE = const(0x5A5A)
_CMD_READ = const(1)
_CMD_PGM = const(2)
_WR_DIS_BLOCK3 = const(1 << 9)
_RD_DIS_BLOCK3 = const(1 << 18)


class _Mem32:
    """machine.mem32, for the one peripheral the firmware reaches through it: the eFuse
    controller. Reads give what the chip's registers give (signed, as MicroPython's mem32 does
    on the ESP32); programming (BLOCK3 only: what the factory's production lock burns, the
    other blocks being espefuse's on the host) ORs the write registers into the eFuses, never
    clears a bit, and leaves a write-protected block as it is."""

    def __init__(self):
        self._word = bytearray(4)

    def _offset(self, address):
        offset = address - _EFUSE_BASE
        if not 0 <= offset < _EFUSE_SIZE or offset & 3:
            raise ValueError("mem32[0x%08x]: the virtual handheld models the eFuse controller only" % address)
        return offset

    def _get(self, offset):
        import _vdevice

        f = _vdevice.efuse
        f.seek(_EFUSE_SIZE - 4 - offset)
        f.readinto(self._word)
        value = int.from_bytes(self._word, "big")
        return value - (1 << 32) if value & 0x80000000 else value

    def _put(self, offset, value):
        import _vdevice

        f = _vdevice.efuse
        f.seek(_EFUSE_SIZE - 4 - offset)
        f.write((value & 0xFFFFFFFF).to_bytes(4, "big"))
        f.flush()

    def __getitem__(self, address):
        return self._get(self._offset(address))

    def __setitem__(self, address, value):
        offset = self._offset(address)
        if offset != _CMD:
            self._put(offset, value)
            return
        if value == _CMD_PGM and self._get(_CONF) == _CONF_WRITE:
            # A write-protected block burns nothing; a read-protected one nothing that reads back.
            if not self._get(_BLK0_RDATA0) & (_WR_DIS_BLOCK3 | _RD_DIS_BLOCK3):
                for i in range(0, 32, 4):
                    self._put(_BLK3_RDATA + i, self._get(_BLK3_RDATA + i) | self._get(_BLK3_WDATA + i))
        elif value not in (_CMD_READ, _CMD_PGM):
            raise ValueError("eFuse command %d: 1 (read) or 2 (program)" % value)
        self._put(_CMD, 0)  # done at once


mem32 = _Mem32()


# ---- Pin -----------------------------------------------------------------------------------

_pin_links = []
_irq_handlers = {}  # GPIO -> (Pin, handler)


def _pin_request(op, payload, prefix):
    # A soft IRQ handler may read a pin in the middle of another pin request (scheduled code
    # runs between any two VM instructions); a nested request takes a connection of its own
    # so that the two never interleave on one wire.
    for link in _pin_links:
        if not link.busy:
            break
    else:
        link = _Link("pins")
        _pin_links.append(link)
    link.busy = True
    try:
        return link.request(op, payload, prefix)[1]
    finally:
        link.busy = False


def _irq_listener(sock):
    # A thread of its own, as the ESP32's GPIO interrupt is: each edge the rig reports is
    # handed to the VM as a soft IRQ (micropython.schedule), as machine.Pin's handlers are.
    while True:
        event = sock.read(2)
        if not event or len(event) < 2:
            return
        _edge(event[0])


def _edge(pin_id):
    # A call of its own: this thread's stack is a GC root, and a handler left in the listener's
    # frame until the next edge kept its driver in the heap after the app had let go of it
    # (the PN532's through a contact payment's card reading); the board's ISR keeps nothing.
    entry = _irq_handlers.get(pin_id)
    if entry:
        try:
            micropython.schedule(entry[1], entry[0])
        except RuntimeError:  # schedule queue full: the edge is lost, as on the board
            pass


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_FALLING = 2
    IRQ_RISING = 1
    _irq_thread = False

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._pin = bytes((id,))  # every request's prefix
        self._level = bytearray(1)
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        mode = {self.IN: 0, self.OUT: 1, self.OPEN_DRAIN: 2}.get(mode, 0) if mode != -1 else 0
        pull = {self.PULL_UP: 1, self.PULL_DOWN: 2}.get(pull, 0) if pull not in (-1, None) else 0
        self._request(b"M", bytes((mode, pull, 255 if value is None else int(bool(value)))))

    def _request(self, op, rest=b""):
        return _pin_request(op, rest, self._pin)

    def value(self, v=None):
        if v is None:
            return self._request(b"G")[0]
        self._level[0] = 1 if v else 0
        self._request(b"V", self._level)

    __call__ = value

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING):
        if handler is None:
            _irq_handlers.pop(self.id, None)
            trigger = 0
        else:
            _irq_handlers[self.id] = (self, handler)
            if not Pin._irq_thread:
                Pin._irq_thread = True
                _thread.start_new_thread(_irq_listener, (_connect("irq"),))
        # The rig's trigger bits: 1 falling, 2 rising.
        rig_trigger = (1 if trigger & self.IRQ_FALLING else 0) | (2 if trigger & self.IRQ_RISING else 0)
        self._request(b"I", bytes((rig_trigger,)))


class PWM:
    """machine.PWM (the ESP32's LEDC): a clock or a duty cycle on a pin, as the rig sees it
    (the contact slot's card clock comes from one)."""

    def __init__(self, pin, freq=5000, duty_u16=32768):
        self.pin = pin
        self._freq = freq
        self._duty = duty_u16
        self._send()

    def _send(self):
        _pin_request(b"P", struct.pack(">IH", self._freq, self._duty), self.pin._pin)

    def freq(self, value=None):
        if value is None:
            return self._freq
        self._freq = value
        self._send()

    def duty_u16(self, value=None):
        if value is None:
            return self._duty
        self._duty = value
        self._send()

    def deinit(self):
        self._freq, self._duty = 0, 0
        self._send()


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    # Full-scale input of the ESP32's ADC at each attenuation, in microvolts.
    _FULL_SCALE_UV = (950_000, 1_250_000, 1_750_000, 2_450_000)

    def __init__(self, pin, atten=ATTN_0DB):
        self.pin = pin
        self._atten = atten

    def atten(self, atten):
        self._atten = atten

    def read_uv(self):
        uv = struct.unpack(">I", self.pin._request(b"A"))[0]
        return min(uv, self._FULL_SCALE_UV[self._atten])

    def read_u16(self):
        return self.read_uv() * 65535 // self._FULL_SCALE_UV[self._atten]


# ---- UART ----------------------------------------------------------------------------------

class UART(io.IOBase):
    """A UART whose far end is the rig. TX is framed (data and line settings); RX is the raw
    byte stream, paced by the rig at the baud rate, so the socket is readable exactly when
    bytes have arrived and select/asyncio can poll its descriptor."""

    def __init__(self, id, baudrate=115200, **kw):
        self.id = id
        self._link = _Link("uart %d" % id)
        self._sock = self._link.sock
        self._poll = select.poll()
        self._poll.register(self._sock, select.POLLIN)
        self._tx_done = time.ticks_us()
        self.rx_chars = 0
        self.bits, self.parity, self.stop, self.timeout, self.timeout_char = 8, None, 1, 0, 1
        self.init(baudrate, **kw)

    def init(self, baudrate=None, bits=None, parity=-1, stop=None, tx=None, rx=None, timeout=None,
             timeout_char=None, rxbuf=None, txbuf=None, **_):
        if baudrate is not None:
            self.baudrate = baudrate
        if bits is not None:
            self.bits = bits
        if parity != -1:
            self.parity = parity
        if stop is not None:
            self.stop = stop
        if timeout is not None:
            self.timeout = timeout
        if timeout_char is not None:
            self.timeout_char = timeout_char
        # The rig's parity code: 0 none, 1 even, 2 odd (machine: None, 0 even, 1 odd).
        parity_code = 0 if self.parity is None else 1 if self.parity == 0 else 2
        self._link.send(b"C", struct.pack(">IBBB", self.baudrate, self.bits, parity_code, self.stop), atomic=True)

    def deinit(self):
        self._link.close()

    def _char_us(self):
        return (1 + self.bits + (self.parity is not None) + self.stop) * 1_000_000 // self.baudrate

    def write(self, buf):
        buf = bytes(buf)
        self._link.send(b"D", buf, atomic=True)
        # The transmitter shifts the bytes out at the baud rate after the ones before them.
        now = time.ticks_us()
        start = self._tx_done if time.ticks_diff(self._tx_done, now) > 0 else now
        self._tx_done = time.ticks_add(start, len(buf) * self._char_us())
        return len(buf)

    def flush(self):
        wait = time.ticks_diff(self._tx_done, time.ticks_us())
        if wait > 0:
            time.sleep_us(wait)

    def txdone(self):
        return time.ticks_diff(self._tx_done, time.ticks_us()) <= 0

    def any(self):
        # Bytes waiting, counted by peeking (the unix port has no FIONREAD): at most _PEEK,
        # which every caller takes as "something is there", or reads that much in a loop. A
        # peek is a heap block of its size at every poll, where the board's UART.any() (C)
        # allocates nothing: 256 bytes at each of a contact card's commands were one of the
        # flows bench's MemoryErrors at a steady unit's fullest heap.
        try:
            return len(self._sock.recv(_PEEK, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except OSError:
            return 0

    def _wait(self, ms):
        return bool(self._poll.poll(ms))

    def readinto(self, buf, nbytes=None):
        n = len(buf) if nbytes is None else nbytes
        got = 0
        mv = memoryview(buf)
        wait = self.timeout
        while got < n and self._wait(wait):
            chunk = self._sock.recv(n - got)
            if not chunk:
                break
            mv[got:got + len(chunk)] = chunk
            got += len(chunk)
            wait = self.timeout_char
        self.rx_chars += got  # for benchmarks: characters that came in off the line
        return got or None

    def read(self, nbytes=-1):
        if nbytes is None or nbytes < 0:
            nbytes = self.any()
            if not nbytes and not self._wait(self.timeout):
                return None
            nbytes = max(nbytes, self.any())
        buf = bytearray(nbytes)
        n = self.readinto(buf)
        return None if n is None else bytes(memoryview(buf)[:n])  # (buf[:n] was one more copy)

    def readline(self):
        line = bytearray()
        while True:
            b = self.read(1)
            if not b:
                break
            line += b
            if b == b"\n":
                break
        return bytes(line) or None

    def ioctl(self, req, arg):
        if req == _MP_STREAM_GET_FILENO:  # lets select.poll and asyncio wait on the socket
            return self._sock.fileno()
        if req == _MP_STREAM_POLL:
            ready = _POLL_WR & arg
            if arg & _POLL_RD and self.any():
                ready |= _POLL_RD
            return ready
        return 0


def _until(start_us, duration_us):
    """Spend what is left of a transfer's wire time since start_us (the rig answers at once)."""
    left = duration_us - time.ticks_diff(time.ticks_us(), start_us)
    if left > 0:
        time.sleep_us(left)


# ---- I2C -----------------------------------------------------------------------------------

class I2C:
    def __init__(self, id, scl=None, sda=None, freq=400000, timeout=50000):
        self._link = _Link("i2c %d" % id)
        self._target = bytearray(2)
        self._length = bytearray(2)
        self.init(freq=freq)

    def init(self, scl=None, sda=None, freq=400000, timeout=None):
        self.freq = freq
        self.transactions = 0
        self.wire_us = 0
        self._link.request(b"F", struct.pack(">I", freq))

    def scan(self):
        return list(self._link.request(b"S")[1])

    def _transfer(self, op, payload, nbytes, into=None):
        # START, the address byte and nbytes of 9 clocks each (8 bits and ACK), STOP.
        start = time.ticks_us()
        status, answer = self._link.request(op, payload, self._target, into)
        wire = (2 + 9 * (1 + nbytes)) * 1_000_000 // self.freq
        self.transactions += 1  # for benchmarks: what the bus did, as a logic analyser counts it
        self.wire_us += wire
        _until(start, wire)
        if status != _OK:
            raise OSError(errno.ENODEV)
        return answer

    def _to(self, addr, stop):
        # Each request's prefix: the address and whether a STOP ends it.
        self._target[0] = addr
        self._target[1] = 1 if stop else 0

    def writeto(self, addr, buf, stop=True):
        self._to(addr, stop)
        acked = self._transfer(b"W", buf, len(buf))
        return acked[0] << 8 | acked[1]

    def writevto(self, addr, vector, stop=True):
        return self.writeto(addr, b"".join(bytes(b) for b in vector), stop)

    def readfrom_into(self, addr, buf, stop=True):
        self._to(addr, stop)
        n = len(buf)
        self._length[0] = n >> 8
        self._length[1] = n & 0xFF
        got = self._transfer(b"R", self._length, n, buf)
        if got is not buf:
            buf[:] = got

    def readfrom(self, addr, nbytes, stop=True):
        buf = bytearray(nbytes)
        self.readfrom_into(addr, buf, stop)
        return bytes(buf)

    def _memaddr(self, memaddr, addrsize):
        return memaddr.to_bytes(addrsize // 8, "big")

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self.writeto(addr, self._memaddr(memaddr, addrsize) + bytes(buf))

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        self.writeto(addr, self._memaddr(memaddr, addrsize), False)
        self.readfrom_into(addr, buf)

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf, addrsize)
        return bytes(buf)


# ---- SPI -----------------------------------------------------------------------------------

class SPI:
    MSB = 0
    LSB = 1

    def __init__(self, id, baudrate=1000000, **kw):
        self._link = _Link("spi %d" % id)
        self.init(baudrate, **kw)

    def init(self, baudrate=1000000, **_):
        self.baudrate = baudrate
        self._link.request(b"C", struct.pack(">I", baudrate))

    def deinit(self):
        self._link.close()

    def _transfer(self, data, read=True):
        # "T" brings MISO back; "W" does not, so a write costs no buffer of its size here.
        start = time.ticks_us()
        answer = self._link.request(b"T" if read else b"W", data)[1]
        _until(start, len(data) * 8_000_000 // self.baudrate)
        return answer

    def write(self, buf):
        self._transfer(buf, read=False)

    def write_readinto(self, write_buf, read_buf):
        read_buf[:] = self._transfer(write_buf)

    def readinto(self, buf, write=0x00):
        buf[:] = self._transfer(bytes((write,)) * len(buf))

    def read(self, nbytes, write=0x00):
        return self._transfer(bytes((write,)) * nbytes)


# ---- WLAN (network.WLAN) -------------------------------------------------------------------
# The ESP32's radio is the rig's `wlan0`, and the access point model in range there is the
# handheld's only route out (tools/rig/wifi.py): its sockets connect to the AP's forwarding
# address on 127.0.0.1 (route()), which reaches the bank only while the station is associated.

STA_IF = const(0)
AP_IF = const(1)
# ESP-IDF station status codes, as MicroPython's network module exposes them on the ESP32.
STAT_IDLE = const(1000)
STAT_CONNECTING = const(1001)
STAT_GOT_IP = const(1010)
STAT_BEACON_TIMEOUT = const(200)
STAT_NO_AP_FOUND = const(201)
STAT_WRONG_PASSWORD = const(202)
STAT_ASSOC_FAIL = const(203)
STAT_HANDSHAKE_TIMEOUT = const(204)
_SECURITY_OPEN = const(0)
_SECURITY_WPA2_PSK = const(3)


class WLAN:
    """network.WLAN(network.STA_IF) of the ESP32: the station, its state kept by the rig's AP."""

    _MAC = b"\x24\x0a\xc4\x00\x00\x01"

    def __init__(self, interface=STA_IF):
        if interface != STA_IF:
            raise ValueError("only the station interface (STA_IF) is simulated")
        self._link = None
        self._ssid = ""

    def _request(self, op, payload=None):
        if self._link is None:
            raise OSError("Wifi Not Started")
        import json

        status, answer = self._link.request(op, json.dumps(payload).encode() if payload is not None else b"")
        if status != _OK:
            raise OSError(errno.EIO, "rig: %s" % answer.decode())
        return json.loads(answer)

    def active(self, on=None):
        if on is None:
            return self._link is not None
        if on and self._link is None:
            self._link = _Link("wlan 0")
        elif not on and self._link is not None:
            self._link.close()  # the radio off: the rig drops the station
            self._link = None

    def connect(self, ssid=None, key=None, *, bssid=None):
        if ssid is not None:
            self._ssid = ssid
        self._request(b"C", [self._ssid, key or ""])

    def disconnect(self):
        self._request(b"D")

    def _station(self):
        return self._request(b"Q")

    def status(self, param=None):
        if param == "rssi":
            rssi = self._station()["rssi"]
            if rssi is None:
                raise OSError("STA is not connected")
            return rssi
        if param is not None:
            raise ValueError("unknown status param")
        if self._link is None:
            return STAT_IDLE
        return self._station()["status"]

    def isconnected(self):
        return self._link is not None and self.status() == STAT_GOT_IP

    def scan(self):
        """(ssid, bssid, channel, RSSI, security, hidden) per network, as the ESP32 returns them."""
        return [(ssid.encode(), self._MAC, 6, rssi, _SECURITY_WPA2_PSK if secured else _SECURITY_OPEN, False)
                for ssid, rssi, secured in self._request(b"S")]

    def ifconfig(self, config=None):
        if config is not None:
            raise OSError(errno.EPERM, "static addresses are not simulated")
        ip = self._station()["ip"] if self._link is not None else None
        return tuple(ip) if ip else ("0.0.0.0",) * 4

    def config(self, param):
        if param in ("essid", "ssid"):
            return self._ssid
        if param == "mac":
            return self._MAC
        if param == "hostname":
            return "pocket-terminal"
        raise ValueError("unknown config param")

    def route(self, host, port):
        """Where a socket to (host, port) goes: the AP's forwarding address, the one route out."""
        route = self._station()["route"]
        if route is None:
            raise OSError(errno.EHOSTUNREACH, "no access point in range")
        return route[0], route[1]
