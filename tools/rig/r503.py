"""Grow R503 fingerprint module (the R30x / AS608 / ZFM packet family), at the wire level.

The module as the firmware (drivers/r503.py) and host software (Adafruit's CircuitPython
library on pyserial, through the pty) see it on its UART: 57600 baud 8N1, fixed; bytes sent at
another rate are framing garbage to it and go unanswered. Every packet is

    0xEF01 · address (4, default 0xFFFFFFFF) · PID (1: command 0x01, data 0x02, ack 0x07,
    end of data 0x08) · length (2: payload + checksum) · payload · checksum (2: the low 16 bits
    of the sum of PID, length and payload bytes)

A command whose checksum is wrong is answered with confirmation code 0x01; a command for another
address is ignored; bytes before a header are skipped. Each command takes a processing time of
the datasheet's order (GenImg 160 ms with a finger on the glass, Img2Tz 90 ms, Search a few ms
plus ~0.5 ms a stored template, flash writes ~35 ms; `timing` scales them) before the module
answers; commands that arrive meanwhile wait their turn, as on the single-threaded module.

State: the password (default 0; while it is not 0, every command but VfyPwd/HandShake answers
0x21 until it is verified), the system parameters (library of 200 templates, security level 3,
128-byte data packets, baud N=6), the image buffer, two char buffers, the template library
(kept across `power_cycle`, as the module's flash). A finger is an identity string: its
features, hence its char files and templates, are a deterministic function of that string
(512 bytes from SHAKE-256), so a finger enrolled once is found again by Search and Match, and
an unknown one is not. Scores: a genuine pair scores 100..249, another finger 0..29; the
threshold rises with the security level (1: 30 ... 5: 80).

Implemented instructions: GenImg 0x01 (and GetImageEx 0x28), Img2Tz 0x02, Match 0x03, Search
0x04 (and HighSpeedSearch 0x1B), RegModel 0x05, Store 0x06, LoadChar 0x07, UpChar 0x08,
DeleteChar 0x0C, Empty 0x0D, SetSysPara 0x0E (4 baud N, from the next power-on; 5 security
level; 6 packet size), ReadSysPara 0x0F, SetPwd 0x12, VfyPwd 0x13, GetRandomCode 0x14, SetAdder
0x15, TemplateNum 0x1D, ReadIndexTable 0x1F, AuraLedConfig 0x35, CheckSensor 0x36, SoftReset
0x3D (ack, then the 0x55 handshake byte), HandShake 0x40, GetEcho 0x53 (confirmation 0x55, the
module's "I work" byte: not in the R503 manual v1.1 of 2019; answered as Adafruit's library's
check_module() expects a module to), DownChar 0x09 and DownImage 0x0B (ack 00, then the host's
data packets, 02 ... 08 the last, unanswered, go to the char buffer / image buffer; a damaged
one drops the transfer), UpImage 0x0A (ack, then the image in data packets: 192 x 192 pixels,
4 bits each, two to a byte, 18,432 bytes; 0x0F with no image). Anything else: 0xFC
(unsupported).

An image is a function of the finger and its quality, as a char file is; an image downloaded
to the module is one it uploaded before (then Img2Tz knows whose it is) or a stranger's picture
(Img2Tz: 0x07, too few feature points).

The WAKEUP line (board pin "fingerprint_wakeup", GPIO 35) is the module's touch output: high
while nothing touches the ring, low while a finger does.

Control-API actions (`{"cmd": "do", "args": {"name": "r503", "action": ..., ...}}`):
  place(finger, quality="good", presses=None)
        a finger on the sensor. finger: an identity string ("alice-index"), enrolled or not.
        quality: "good"; "wet" (Img2Tz answers 0x06, image too messy); "partial" (Img2Tz 0x07,
        too few feature points); "faulty" (GenImg 0x03, the sensor cannot image it).
        presses=N: a user who follows the prompts: the finger is lifted after each captured
        image and put back once the host has seen it lifted (a GenImg that found no finger),
        N captures in all, then it stays off. None: it stays until `lift`.
  lift()                 the finger off the sensor.
  garble(n=1)            corrupt the checksum of the next n replies.
  noise(data=None)       put bytes on the line before the next reply (hex string; default a
                         burst of junk holding a stray 0xEF and a false header).
  mute(on=True)          the module stops answering (commands are lost) until mute(on=False).
  power_cycle()          RAM state lost (buffers, password verification, LED), a baud rate set
                         by SetSysPara takes effect; library and password stay.
  timing(scale=1.0)      scale the processing times (tests use a fraction).
  enroll(finger, location)  put a finger's template in the library directly (test set-up).
The `model` command returns the state (finger, buffers, library slots with the identity they
hold, LED, counters); never the password.
"""

import asyncio
import hashlib
import random
import struct

from .buses import readable_at
from .models import Model

BAUD = 57600
HEADER = b"\xef\x01"
DEFAULT_ADDRESS = 0xFFFFFFFF

# Packet identifiers.
PID_COMMAND = 0x01
PID_DATA = 0x02
PID_ACK = 0x07
PID_END = 0x08

# Instruction codes.
GEN_IMG = 0x01
IMG2TZ = 0x02
MATCH = 0x03
SEARCH = 0x04
REG_MODEL = 0x05
STORE = 0x06
LOAD_CHAR = 0x07
UP_CHAR = 0x08
DELETE_CHAR = 0x0C
EMPTY = 0x0D
SET_SYS_PARA = 0x0E
READ_SYS_PARA = 0x0F
SET_PWD = 0x12
VFY_PWD = 0x13
GET_RANDOM_CODE = 0x14
SET_ADDER = 0x15
HIGH_SPEED_SEARCH = 0x1B
TEMPLATE_NUM = 0x1D
READ_INDEX_TABLE = 0x1F
GET_IMAGE_EX = 0x28
AURA_LED_CONFIG = 0x35
CHECK_SENSOR = 0x36
SOFT_RESET = 0x3D
HANDSHAKE = 0x40
GET_ECHO = 0x53
DOWN_CHAR = 0x09
UP_IMAGE = 0x0A
DOWN_IMAGE = 0x0B

# Confirmation codes the model gives.
OK = 0x00
RECV_ERROR = 0x01
NO_FINGER = 0x02
IMAGE_FAIL = 0x03
IMAGE_MESSY = 0x06
FEATURE_FAIL = 0x07
NO_MATCH = 0x08
NOT_FOUND = 0x09
ENROLL_MISMATCH = 0x0A
BAD_LOCATION = 0x0B
INVALID_TEMPLATE = 0x0C
DELETE_FAIL = 0x10
INVALID_IMAGE = 0x15
INVALID_REG = 0x1A
BAD_REG_CONFIG = 0x1B
PASSWORD_REQUIRED = 0x21
TEMPLATE_EMPTY = 0x22
UPLOAD_FAIL = 0x0F
UNSUPPORTED = 0xFC
ECHO_OK = 0x55  # GetEcho's answer: the module works normally (also its power-on handshake byte)

LIBRARY_SIZE = 200
CHAR_SIZE = 512
IMAGE_SIZE = 192 * 192 // 2  # the R503's sensor array, 4-bit pixels two to a byte on upload
FEATURE_KEY = 32  # the leading bytes of a char file that say whose finger it is
THRESHOLDS = {1: 30, 2: 40, 3: 50, 4: 65, 5: 80}  # match score needed, by security level
PACKET_SIZES = (32, 64, 128, 256)
QUALITIES = ("good", "wet", "partial", "faulty")

# Processing times in ms (before the answer leaves), of the datasheet's order.
TIMES_MS = {GEN_IMG: 160, GET_IMAGE_EX: 160, IMG2TZ: 90, REG_MODEL: 40, STORE: 35, LOAD_CHAR: 10,
            MATCH: 10, DELETE_CHAR: 30, EMPTY: 120, SET_PWD: 35, SET_SYS_PARA: 35, SET_ADDER: 35,
            SOFT_RESET: 50}
NO_FINGER_MS = 30  # GenImg that finds the glass empty
DEFAULT_MS = 2
POWER_ON_MS = 50


def features(finger):
    """A finger's char file: a deterministic function of its identity."""
    return hashlib.shake_256(b"R503 finger:" + finger.encode()).digest(CHAR_SIZE)


def picture(finger, quality):
    """The image the sensor takes of a finger (as uploaded): a deterministic function of both."""
    return hashlib.shake_256(b"R503 image:%s:%s" % (finger.encode(), quality.encode())).digest(IMAGE_SIZE)


def checksum(pid, length, payload):
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def packet(address, pid, payload):
    length = len(payload) + 2
    return (HEADER + struct.pack(">IBH", address, pid, length) + bytes(payload)
            + struct.pack(">H", checksum(pid, length, payload)))


class R503(Model):
    """Grow R503 fingerprint module: ZFM packets at 57600 baud, 200 templates, ring LED, WAKEUP line."""

    def __init__(self, port):
        self.port = port
        self.rx = bytearray()
        self.address = DEFAULT_ADDRESS
        self.password = 0
        self.baud = BAUD
        self.flash_baud_n = BAUD // 9600  # SetSysPara 4: applies from the next power-on
        self.security = 3
        self.packet_code = 2  # 128-byte data packets
        self.library = {}  # page id -> template (bytes)
        self.names = {}  # feature key -> finger identity, to show the library readably
        self.pictures = {}  # sha256 of an uploaded image -> (finger, quality), for DownImage
        self.finger = None
        self.quality = "good"
        self.presses = None  # captures left for a prompt-following user (None: finger stays)
        self.returning = False  # that user lifted and puts the finger back once that is seen
        self._returning_finger = None
        self.scale = 1.0
        self.garble = 0
        self.noise = b""
        self.muted = False
        self.stats = {"commands": 0, "captures": 0, "no_finger": 0, "bad_checksum": 0,
                      "other_address": 0, "skipped": 0, "line_errors": 0, "ignored_muted": 0,
                      "data_packets": 0, "downloads_dropped": 0}
        self._pins = None
        self._wakeup = None
        self._power_on()

    def _power_on(self):
        self.verified = self.password == 0
        self.image = None  # (finger, quality) of the last captured image (finger None: a stranger's)
        self.download = None  # (buffer: 1, 2 or "image", bytearray) while the host sends data
        self.char = {1: None, 2: None}
        self.led = {"mode": 4, "speed": 0, "colour": 0, "count": 0}  # off
        self.passed = False  # status register "Pass": the last match found the finger
        self.busy = False
        self.pending = None
        self.random = random.Random(0x503)

    # ---- the WAKEUP line -------------------------------------------------------------------

    def wire(self, bank):
        # The rig gives the pin bank after construction: from then on the module drives WAKEUP.
        self._wakeup = self.gpio("fingerprint_wakeup")
        self._drive_wakeup()

    def _drive_wakeup(self):
        if self._pins is not None:
            self._pins.set_external(self._wakeup, 0 if self.finger is not None else 1)

    def _set_finger(self, finger):
        self.finger = finger
        self._drive_wakeup()

    # ---- the line --------------------------------------------------------------------------

    def receive(self, data):
        if not readable_at(self.port.rx_char_time, self.baud):
            self.stats["line_errors"] += len(data)
            return
        self.rx += data
        self._pump()

    def _pump(self):
        while not self.busy:
            command = self._next_packet()
            if command is None:
                return
            self._execute(*command)

    def _next_packet(self):
        """The next command addressed to us, as (instruction, params), or None if incomplete."""
        rx = self.rx
        while True:
            start = rx.find(HEADER)
            if start < 0:
                keep = 1 if rx.endswith(b"\xef") else 0
                self.stats["skipped"] += len(rx) - keep
                del rx[:len(rx) - keep]
                return None
            if start:
                self.stats["skipped"] += start
                del rx[:start]
            if len(rx) < 9:
                return None
            address, pid, length = struct.unpack(">IBH", rx[2:9])
            if not 3 <= length <= 2 + 256 + 1:  # not a header after all: scan on
                self.stats["skipped"] += 2
                del rx[:2]
                continue
            if len(rx) < 9 + length:
                return None
            payload = bytes(rx[9:7 + length])
            (received,) = struct.unpack(">H", rx[7 + length:9 + length])
            del rx[:9 + length]
            if address != self.address:
                self.stats["other_address"] += 1
                continue
            if self.muted:
                self.stats["ignored_muted"] += 1
                continue
            good = received == checksum(pid, length, payload)
            if self.download is not None and pid in (PID_DATA, PID_END):
                self._take_data(pid, payload, good)
                continue
            if not good or pid != PID_COMMAND:
                self.stats["bad_checksum"] += 1
                return RECV_ERROR, None
            return payload[0], payload[1:]

    def _take_data(self, pid, payload, good):
        """A data packet of DownChar / DownImage: not answered; the end packet stores the lot."""
        if not good:
            self.stats["downloads_dropped"] += 1
            self.download = None
            return
        self.stats["data_packets"] += 1
        target, data = self.download
        data += payload
        if pid != PID_END:
            return
        self.download = None
        if target == "image":
            self.image = self.pictures.get(hashlib.sha256(data).digest(), (None, "good"))
        else:
            self.char[target] = bytes(data)

    def _execute(self, instruction, params):
        self.stats["commands"] += 1
        if params is None:  # a damaged command packet
            reply, ms, after = bytes((RECV_ERROR,)), DEFAULT_MS, None
        elif not self.verified and instruction not in (VFY_PWD, HANDSHAKE):
            reply, ms, after = bytes((PASSWORD_REQUIRED,)), DEFAULT_MS, None
        else:
            handler = self.HANDLERS.get(instruction)
            try:
                reply, ms, after = handler(self, params) if handler else (bytes((UNSUPPORTED,)), DEFAULT_MS, None)
            except (IndexError, struct.error):  # parameters missing: a malformed packet
                reply, ms, after = bytes((RECV_ERROR,)), DEFAULT_MS, None
        self.busy = True
        self.pending = asyncio.get_running_loop().call_later(ms * self.scale / 1000, self._answer, reply, after)

    def _answer(self, reply, after):
        out = packet(self.address, PID_ACK, reply)
        if self.garble:
            self.garble -= 1
            out = out[:-1] + bytes((out[-1] ^ 0x5A,))
        if self.noise:
            out, self.noise = self.noise + out, b""
        self.port.send(out)
        if after is not None:
            after()
            return
        self._idle()

    def _idle(self):
        """The command is done: the next one waiting is taken."""
        self.busy = False
        self.pending = None
        self._pump()

    # ---- instructions: each returns (reply payload, processing ms, then-callback or None) ----

    @staticmethod
    def _code(code, ms=DEFAULT_MS, extra=b""):
        return bytes((code,)) + extra, ms, None

    def _gen_img(self, params):
        if self.finger is None:
            self.stats["no_finger"] += 1
            if self.returning:  # the user saw the prompt and puts the finger back
                self.returning = False
                self._set_finger(self._returning_finger)
            return self._code(NO_FINGER, NO_FINGER_MS)
        if self.quality == "faulty":
            return self._code(IMAGE_FAIL, TIMES_MS[GEN_IMG])
        self.image = (self.finger, self.quality)
        self.stats["captures"] += 1
        if self.presses is not None:
            self.presses -= 1
            self._returning_finger = self.finger
            self.returning = self.presses > 0
            self._set_finger(None)  # the user lifts once the image is taken
        return self._code(OK, TIMES_MS[GEN_IMG])

    def _img2tz(self, params):
        slot = 1 if params[0] == 1 else 2  # other buffer ids count as CharBuffer2
        ms = TIMES_MS[IMG2TZ]
        if self.image is None:
            return self._code(INVALID_IMAGE, ms)
        finger, quality = self.image
        if finger is None:
            return self._code(FEATURE_FAIL, ms)
        if quality == "wet":
            return self._code(IMAGE_MESSY, ms)
        if quality == "partial":
            return self._code(FEATURE_FAIL, ms)
        self.char[slot] = features(finger)
        self.names[self.char[slot][:FEATURE_KEY]] = finger
        return self._code(OK, ms)

    def _score(self, a, b):
        digest = hashlib.sha256(a + b).digest()
        if a[:FEATURE_KEY] == b[:FEATURE_KEY]:
            return 100 + digest[0] % 150
        return digest[0] % 30

    def _match(self, params):
        a, b = self.char[1], self.char[2]
        if a is None or b is None:
            return self._code(TEMPLATE_EMPTY, TIMES_MS[MATCH], b"\x00\x00")
        score = self._score(a, b)
        self.passed = score >= THRESHOLDS[self.security]
        return self._code(OK if self.passed else NO_MATCH, TIMES_MS[MATCH], struct.pack(">H", score))

    def _search(self, params):
        buffer_id, start, count = struct.unpack(">BHH", params[:5])
        probe = self.char[1 if buffer_id == 1 else 2]
        ms = 5 + len(self.library) // 2
        if probe is None:
            return self._code(TEMPLATE_EMPTY, ms, bytes(4))
        best = None
        for page in range(start, min(start + count, LIBRARY_SIZE)):
            template = self.library.get(page)
            if template is not None:
                score = self._score(probe, template)
                if score >= THRESHOLDS[self.security] and (best is None or score > best[1]):
                    best = (page, score)
        self.passed = best is not None
        if best is None:
            return self._code(NOT_FOUND, ms, bytes(4))
        return self._code(OK, ms, struct.pack(">HH", *best))

    def _reg_model(self, params):
        a, b = self.char[1], self.char[2]
        ms = TIMES_MS[REG_MODEL]
        if a is None or b is None or a[:FEATURE_KEY] != b[:FEATURE_KEY]:
            return self._code(ENROLL_MISMATCH, ms)
        self.char[2] = a  # the merged template, in both buffers
        return self._code(OK, ms)

    def _store(self, params):
        buffer_id, page = struct.unpack(">BH", params[:3])
        template = self.char[1 if buffer_id == 1 else 2]
        ms = TIMES_MS[STORE]
        if page >= LIBRARY_SIZE:
            return self._code(BAD_LOCATION, ms)
        if template is None:
            return self._code(TEMPLATE_EMPTY, ms)
        self.library[page] = template
        return self._code(OK, ms)

    def _load_char(self, params):
        buffer_id, page = struct.unpack(">BH", params[:3])
        ms = TIMES_MS[LOAD_CHAR]
        if page >= LIBRARY_SIZE:
            return self._code(BAD_LOCATION, ms)
        if page not in self.library:
            return self._code(INVALID_TEMPLATE, ms)
        self.char[1 if buffer_id == 1 else 2] = self.library[page]
        return self._code(OK, ms)

    def _up_char(self, params):
        data = self.char[1 if params[0] == 1 else 2]
        if data is None:
            return self._code(TEMPLATE_EMPTY)
        return self._sending(data)

    def _sending(self, data):
        size = PACKET_SIZES[self.packet_code]

        def send_data():
            # The data packets follow the ack, at the packet size of the system parameters.
            chunks = [data[i:i + size] for i in range(0, len(data), size)]
            for i, chunk in enumerate(chunks):
                self.port.send(packet(self.address, PID_END if i == len(chunks) - 1 else PID_DATA, chunk))
            self._idle()
        return bytes((OK,)), DEFAULT_MS, send_data

    def _down_char(self, params):
        return self._downloading(1 if params[0] == 1 else 2)

    def _down_image(self, params):
        return self._downloading("image")

    def _downloading(self, target):
        def ready():
            self.download = (target, bytearray())
            self._idle()
        return bytes((OK,)), DEFAULT_MS, ready

    def _up_image(self, params):
        if self.image is None or self.image[0] is None:
            return self._code(UPLOAD_FAIL)
        image = picture(*self.image)
        self.pictures[hashlib.sha256(image).digest()] = self.image
        return self._sending(image)

    def _delete_char(self, params):
        page, count = struct.unpack(">HH", params[:4])
        ms = TIMES_MS[DELETE_CHAR]
        if count == 0 or page + count > LIBRARY_SIZE:
            return self._code(DELETE_FAIL, ms)
        for p in range(page, page + count):
            self.library.pop(p, None)
        return self._code(OK, ms)

    def _empty(self, params):
        self.library.clear()
        return self._code(OK, TIMES_MS[EMPTY])

    def _set_sys_para(self, params):
        number, value = params[0], params[1]
        ms = TIMES_MS[SET_SYS_PARA]
        if number == 4:
            if value not in (1, 2, 4, 6, 12):
                return self._code(BAD_REG_CONFIG, ms)
            self.flash_baud_n = value
        elif number == 5:
            if value not in THRESHOLDS:
                return self._code(BAD_REG_CONFIG, ms)
            self.security = value
        elif number == 6:
            if value > 3:
                return self._code(BAD_REG_CONFIG, ms)
            self.packet_code = value
        else:
            return self._code(INVALID_REG, ms)
        return self._code(OK, ms)

    def _status_register(self):
        # Bits: 0 Busy (never, when it can answer), 1 Pass, 2 PWD verified, 3 ImgBufStat.
        return (2 if self.passed else 0) | (4 if self.verified else 0) | (8 if self.image else 0)

    def _read_sys_para(self, params):
        return self._code(OK, DEFAULT_MS, struct.pack(">HHHHIHH", self._status_register(), 0x0000, LIBRARY_SIZE,
                                                      self.security, self.address, self.packet_code,
                                                      self.flash_baud_n))

    def _set_pwd(self, params):
        (self.password,) = struct.unpack(">I", params[:4])
        return self._code(OK, TIMES_MS[SET_PWD])

    def _vfy_pwd(self, params):
        (password,) = struct.unpack(">I", params[:4])
        if password != self.password:
            return self._code(0x13)
        self.verified = True
        return self._code(OK)

    def _get_random_code(self, params):
        return self._code(OK, DEFAULT_MS, struct.pack(">I", self.random.getrandbits(32)))

    def _set_adder(self, params):
        (address,) = struct.unpack(">I", params[:4])
        self.address = address  # the ack already comes from the new address
        return self._code(OK, TIMES_MS[SET_ADDER])

    def _template_num(self, params):
        return self._code(OK, DEFAULT_MS, struct.pack(">H", len(self.library)))

    def _read_index_table(self, params):
        page = params[0]
        if page > 3:
            return self._code(BAD_LOCATION, DEFAULT_MS, bytes(32))
        table = bytearray(32)
        for p in self.library:
            if p // 256 == page:
                table[(p % 256) // 8] |= 1 << (p % 8)
        return self._code(OK, DEFAULT_MS, bytes(table))

    def _aura_led_config(self, params):
        mode, speed, colour, count = params[:4]
        if not 1 <= mode <= 6 or not 1 <= colour <= 7:
            return self._code(BAD_REG_CONFIG)
        self.led = {"mode": mode, "speed": speed, "colour": colour, "count": count}
        return self._code(OK)

    def _check_sensor(self, params):
        return self._code(OK)

    def _soft_reset(self, params):
        def restarted():
            self._power_on()
            # Ready again after its start-up, which the module says with one byte, 0x55.
            self.busy = True
            self.pending = asyncio.get_running_loop().call_later(POWER_ON_MS * self.scale / 1000, self._ready)
        return bytes((OK,)), DEFAULT_MS, restarted

    def _ready(self):
        self.port.send(b"\x55")
        self._idle()

    def _handshake(self, params):
        return self._code(OK)

    def _get_echo(self, params):
        return self._code(ECHO_OK)

    HANDLERS = {
        GEN_IMG: _gen_img, GET_IMAGE_EX: _gen_img, IMG2TZ: _img2tz, MATCH: _match, SEARCH: _search,
        HIGH_SPEED_SEARCH: _search, REG_MODEL: _reg_model, STORE: _store, LOAD_CHAR: _load_char,
        UP_CHAR: _up_char, DELETE_CHAR: _delete_char, EMPTY: _empty, SET_SYS_PARA: _set_sys_para,
        READ_SYS_PARA: _read_sys_para, SET_PWD: _set_pwd, VFY_PWD: _vfy_pwd,
        GET_RANDOM_CODE: _get_random_code, SET_ADDER: _set_adder, TEMPLATE_NUM: _template_num,
        READ_INDEX_TABLE: _read_index_table, AURA_LED_CONFIG: _aura_led_config,
        CHECK_SENSOR: _check_sensor, SOFT_RESET: _soft_reset, HANDSHAKE: _handshake,
        GET_ECHO: _get_echo, DOWN_CHAR: _down_char, UP_IMAGE: _up_image, DOWN_IMAGE: _down_image,
    }

    # ---- control-API actions ---------------------------------------------------------------

    def do_place(self, finger, quality="good", presses=None):
        if quality not in QUALITIES:
            raise ValueError("quality is one of %s, not %r" % (", ".join(QUALITIES), quality))
        if presses is not None and int(presses) < 1:
            raise ValueError("presses is at least 1")
        self.quality = quality
        self.presses = None if presses is None else int(presses)
        self.returning = False
        self._set_finger(str(finger))
        return self.status()

    def do_lift(self):
        self.presses = None
        self.returning = False
        self._set_finger(None)
        return self.status()

    def do_garble(self, n=1):
        self.garble = int(n)
        return None

    def do_noise(self, data=None):
        # Default: junk with a stray 0xEF, then a false header (wrong address, absurd length).
        self.noise = bytes.fromhex(data) if data else b"\x00\xff\xef\x55\xef\x01\x12\x34\x56\x78\x07\xff\xff\xa5"
        return None

    def do_mute(self, on=True):
        self.muted = bool(on)
        return None

    def do_power_cycle(self):
        if self.pending is not None:
            self.pending.cancel()
        self.rx.clear()
        self.baud = 9600 * self.flash_baud_n
        self._power_on()
        return self.status()

    def do_timing(self, scale=1.0):
        self.scale = float(scale)
        return None

    def do_enroll(self, finger, location):
        if not 0 <= int(location) < LIBRARY_SIZE:
            raise ValueError("location is 0..%d" % (LIBRARY_SIZE - 1))
        template = features(finger)
        self.names[template[:FEATURE_KEY]] = finger
        self.library[int(location)] = template
        return self.status()

    def status(self):
        def who(char):
            return None if char is None else self.names.get(char[:FEATURE_KEY], "?")
        return {
            "finger": self.finger, "quality": self.quality, "presses_left": self.presses,
            "wakeup": None if self._pins is None else self._pins.level(self._wakeup),
            "baud": self.baud, "address": "%08X" % self.address, "password_set": self.password != 0,
            "verified": self.verified, "security_level": self.security,
            "packet_size": PACKET_SIZES[self.packet_code],
            "image": None if self.image is None else {"finger": self.image[0], "quality": self.image[1]},
            "char_buffers": {"1": who(self.char[1]), "2": who(self.char[2])},
            "library": {str(p): who(t) for p, t in sorted(self.library.items())},
            "led": dict(self.led), "muted": self.muted, "garble": self.garble, "stats": dict(self.stats),
        }
