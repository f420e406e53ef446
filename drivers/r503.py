"""Grow R503 fingerprint module (the R30x / AS608 / ZFM packet family) on a UART.

    import board
    from board import handheld as hw
    from drivers.r503 import R503, NoMatch
    fp = R503(board.buses.fingerprint_uart(), wakeup=board.buses.pin(hw.PIN_FINGERPRINT_WAKEUP))
    await fp.open()                                   # password, system parameters
    template_id = await fp.enroll(on_step=show)       # show("place", 1), show("lift", 1), ...
    template_id, score = await fp.identify()          # or NoMatch
    ok, detail = await fp.self_test()

Packets (both ways): 0xEF01 · address (4) · PID (command 0x01, data 0x02, ack 0x07, end of
data 0x08) · length (2: payload + checksum) · payload · checksum (2: low 16 bits of the sum of
PID, length and payload). Every packet received is checked: the header is searched for (bytes
before it are skipped, a false header is scanned past), the address, PID and length must make
sense, the checksum must match, and an ack must have the length its command's answer has (a late
answer to an earlier command is dropped). Input left over from before is discarded before each
command is sent. A damaged or missing answer is retried once where repeating the command is
harmless (everything but SetPwd and RegModel), and always when the module says it received a
damaged packet (0x01: it did nothing). A module that asks for the password (0x21: it was power
cycled) gets it, once, and the command is repeated.

Errors are typed, each with the module's confirmation code in `code` (None for what the driver
itself found: a timeout, a broken packet): FingerprintError and its subclasses below. Messages
never hold the password.

The WAKEUP line is the module's touch output (low while a finger is on the ring); if given, the
driver waits on it before asking for an image, so an idle sensor costs no UART traffic.
"""

import struct
import time

import asyncio
import timeouts
from micropython import const

# ---- packets ---------------------------------------------------------------------------------
_HEADER_0 = const(0xEF)
_HEADER_1 = const(0x01)
DEFAULT_ADDRESS = const(0xFFFFFFFF)
_PID_COMMAND = const(0x01)
_PID_DATA = const(0x02)
_PID_ACK = const(0x07)
_PID_END = const(0x08)
_MAX_LENGTH = const(258)  # a 256-byte data packet and its checksum

# ---- instruction codes (the datasheet's names) -----------------------------------------------
_GEN_IMG = const(0x01)  # GenImg: take an image into the image buffer
_IMG2TZ = const(0x02)  # Img2Tz: features of the image into char buffer 1 or 2
_MATCH = const(0x03)  # Match: char buffer 1 against 2 (1:1)
_SEARCH = const(0x04)  # Search: a char buffer against a range of the library (1:N)
_REG_MODEL = const(0x05)  # RegModel: merge char buffers 1 and 2 into a template (both buffers)
_STORE = const(0x06)  # Store: a char buffer into the library at a page id
_LOAD_CHAR = const(0x07)  # LoadChar: a template of the library into a char buffer
_DELETE_CHAR = const(0x0C)  # DeleteChar: N templates from a page id on
_EMPTY = const(0x0D)  # Empty: the whole library
_READ_SYS_PARA = const(0x0F)  # ReadSysPara: status register and basic parameters
_SET_PWD = const(0x12)  # SetPwd: the module's 32-bit password
_VFY_PWD = const(0x13)  # VfyPwd: verify the password (required first when it is not 0)
_TEMPLATE_NUM = const(0x1D)  # TempleteNum: how many templates are stored
_READ_INDEX_TABLE = const(0x1F)  # ReadIndexTable: a 256-slot page of the library as a bitmap
_AURA_LED_CONFIG = const(0x35)  # AuraLedConfig: the ring LED

# Payload length (confirmation code included) of each command's ack.
_ACK_BYTES = {_MATCH: 3, _SEARCH: 5, _READ_SYS_PARA: 17, _TEMPLATE_NUM: 3, _READ_INDEX_TABLE: 33}

# Commands that take the module a while (imaging, feature extraction, flash): longer timeout.
_SLOW = (_GEN_IMG, _IMG2TZ, _SEARCH, _REG_MODEL, _STORE, _DELETE_CHAR, _EMPTY, _SET_PWD)
# Commands not repeated after a lost answer: the first may have taken effect, and doing it again
# is not the same (a second merge; a password that may already be the new one).
_NO_RETRY = (_SET_PWD, _REG_MODEL)

# ---- confirmation codes ----------------------------------------------------------------------
_OK = const(0x00)
_RECV_ERROR = const(0x01)  # error when receiving the packet
_NO_FINGER = const(0x02)  # no finger on the sensor
_IMAGE_FAIL = const(0x03)  # failed to take the image
_IMAGE_MESSY = const(0x06)  # image too disorderly (wet, smudged) for features
_FEATURE_FAIL = const(0x07)  # too few feature points (partial, small image)
_NO_MATCH = const(0x08)  # finger does not match (Match)
_NOT_FOUND = const(0x09)  # no matching finger (Search)
_ENROLL_MISMATCH = const(0x0A)  # failed to combine the char files (not the same finger)
_BAD_LOCATION = const(0x0B)  # page id beyond the library
_INVALID_TEMPLATE = const(0x0C)  # error reading the template, or it is invalid
_UPLOAD_FAIL = const(0x0D)  # error uploading the template
_RECV_DATA_FAIL = const(0x0E)  # module cannot receive the following data packets
_IMAGE_UPLOAD_FAIL = const(0x0F)  # error uploading the image
_DELETE_FAIL = const(0x10)  # failed to delete the template
_CLEAR_FAIL = const(0x11)  # failed to clear the library
_WRONG_PASSWORD = const(0x13)  # wrong password
_INVALID_IMAGE = const(0x15)  # no valid primary image in the image buffer
_FLASH_ERROR = const(0x18)  # error writing flash
_UNDEFINED = const(0x19)  # no definition error
_INVALID_REG = const(0x1A)  # invalid register number
_BAD_REG_CONFIG = const(0x1B)  # incorrect register configuration
_BAD_NOTEPAD_PAGE = const(0x1C)  # wrong notepad page number
_PORT_FAIL = const(0x1D)  # failed to operate the communication port
_LIBRARY_FULL = const(0x1F)  # fingerprint library is full
_BAD_ADDRESS = const(0x20)  # the address code is incorrect
_PASSWORD_REQUIRED = const(0x21)  # the password must be verified
_TEMPLATE_EMPTY = const(0x22)  # fingerprint template is empty
_LIBRARY_EMPTY = const(0x24)  # fingerprint library is empty
_MODULE_TIMEOUT = const(0x26)  # timeout (the automatic modes, waiting for a finger)
_ALREADY_EXISTS = const(0x27)  # the fingerprint already exists
_SENSOR_ERROR = const(0x29)  # sensor hardware error
_UNSUPPORTED = const(0xFC)  # unsupported command
_HARDWARE_ERROR = const(0xFD)  # hardware error
_EXEC_FAIL = const(0xFE)  # command execution failure

# ---- the ring LED (AuraLedConfig) ------------------------------------------------------------
LED_BREATHING = const(1)
LED_FLASHING = const(2)
LED_ON = const(3)
LED_OFF = const(4)
LED_FADE_IN = const(5)
LED_FADE_OUT = const(6)
LED_RED = const(1)
LED_BLUE = const(2)
LED_PURPLE = const(3)
LED_GREEN = const(4)  # green to white: modules from 2021 on (manual v1.2)
LED_YELLOW = const(5)
LED_CYAN = const(6)
LED_WHITE = const(7)

LIBRARY_SIZE = const(200)  # the R503's, until ReadSysPara says otherwise
_ANSWER_MS = const(1000)  # an answer's timeout, beyond the wire time
_SLOW_MS = const(2000)  # added for _SLOW commands
_POLL_MS = const(50)  # between images while waiting for a finger to come or go
_FINGER_MS = const(10000)  # how long a person gets to place or lift a finger

# Steps of enroll(), passed to on_step(step, n).
STEP_PLACE = "place"  # n = 1: put the finger on the sensor
STEP_CAPTURED = "captured"  # image n taken and its features extracted
STEP_LIFT = "lift"  # after capture n: lift the finger
STEP_PLACE_AGAIN = "place again"  # n = the capture about to be taken
STEP_STORED = "stored"  # n = the template id


class FingerprintError(Exception):
    """Base of the driver's errors. `code`: the module's confirmation code, or None."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class FingerprintTimeout(FingerprintError):
    """The module did not answer in time (unpowered, unwired, wrong baud or address)."""


class BadPacket(FingerprintError):
    """A packet failed its checks (here: checksum, length; or the module's 0x01)."""


class NoFinger(FingerprintError):
    """No finger on the sensor (or none placed within the wait)."""


class FingerNotLifted(FingerprintError):
    """The finger stayed on the sensor when it should have been lifted."""


class ImageError(FingerprintError):
    """The image cannot be used: ask for the finger again."""


class ImageFail(ImageError):
    """The sensor could not take an image, or there is none to use."""


class ImageMessy(ImageError):
    """Image too disorderly: a wet or smudged finger (wipe it)."""


class TooFewFeatures(ImageError):
    """Too few feature points: a partial or off-centre touch (press flatter)."""


class NoMatch(FingerprintError):
    """The finger is not the one asked for, or not in the library."""


class LibraryEmpty(NoMatch):
    """No template stored: nothing can match."""


class EnrollMismatch(FingerprintError):
    """The captures of an enrolment are not of the same finger."""


class BadLocation(FingerprintError):
    """A template id beyond the library."""


class TemplateError(FingerprintError):
    """No valid template there (an empty slot, or an empty char buffer)."""


class AlreadyEnrolled(FingerprintError):
    """That finger is already in the library."""


class WrongPassword(FingerprintError):
    """The module refused the password."""


class PasswordRequired(FingerprintError):
    """The module wants the password verified first."""


class LibraryFull(FingerprintError):
    """No free slot in the template library."""


class ModuleError(FingerprintError):
    """The module failed (flash, sensor, registers, transfer, unsupported command)."""


# The confirmation codes of the R503 manual (each code, its kind: an index into the classes in
# error(), and what it means). Bytes and a tuple of strings are constants in the firmware's
# flash; the table as (code, class, text) tuples was built in the heap at import and held for as
# long as the driver is (~1 KB through a fingerprint unlock), as the PN532's was.
_ERROR_CODES = b"\x01\x02\x03\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x13\x15\x18\x19\x1a\x1b\x1c\x1d\x1f\x20\x21\x22\x24\x26\x27\x29\xfc\xfd\xfe"
_ERROR_KINDS = b"\x00\x01\x02\x03\x04\x05\x05\x06\x07\x08\x09\x09\x09\x09\x09\x0a\x02\x09\x09\x09\x09\x09\x09\x0b\x09\x0c\x08\x0d\x01\x0e\x09\x09\x09\x09"
_ERROR_TEXTS = (
    "the module received a damaged packet",  # _RECV_ERROR
    "no finger on the sensor",  # _NO_FINGER
    "the sensor failed to take the image",  # _IMAGE_FAIL
    "image too messy (wet or smudged finger)",  # _IMAGE_MESSY
    "too few feature points (partial touch)",  # _FEATURE_FAIL
    "the finger does not match",  # _NO_MATCH
    "no matching finger in the library",  # _NOT_FOUND
    "the captures are not of the same finger",  # _ENROLL_MISMATCH
    "template id beyond the library",  # _BAD_LOCATION
    "no valid template at that id",  # _INVALID_TEMPLATE
    "error uploading the template",  # _UPLOAD_FAIL
    "the module cannot receive the data packets",  # _RECV_DATA_FAIL
    "error uploading the image",  # _IMAGE_UPLOAD_FAIL
    "failed to delete the template",  # _DELETE_FAIL
    "failed to clear the library",  # _CLEAR_FAIL
    "wrong module password",  # _WRONG_PASSWORD
    "no valid image to extract features from",  # _INVALID_IMAGE
    "error writing the module's flash",  # _FLASH_ERROR
    "undefined error",  # _UNDEFINED
    "invalid register number",  # _INVALID_REG
    "incorrect register configuration",  # _BAD_REG_CONFIG
    "wrong notepad page number",  # _BAD_NOTEPAD_PAGE
    "the module failed to operate its port",  # _PORT_FAIL
    "fingerprint library is full",  # _LIBRARY_FULL
    "the address code is incorrect",  # _BAD_ADDRESS
    "the password must be verified first",  # _PASSWORD_REQUIRED
    "fingerprint template is empty",  # _TEMPLATE_EMPTY
    "fingerprint library is empty",  # _LIBRARY_EMPTY
    "the module timed out waiting for a finger",  # _MODULE_TIMEOUT
    "fingerprint already enrolled",  # _ALREADY_EXISTS
    "sensor hardware error",  # _SENSOR_ERROR
    "unsupported command",  # _UNSUPPORTED
    "hardware error",  # _HARDWARE_ERROR
    "command execution failure",  # _EXEC_FAIL
)


def error(code):
    """The typed error for a confirmation code (a reserved one is a ModuleError)."""
    i = _ERROR_CODES.find(bytes((code,)))
    if i < 0:
        return ModuleError("R503: reserved confirmation code 0x%02X" % code, code)
    cls = (BadPacket, NoFinger, ImageFail, ImageMessy, TooFewFeatures, NoMatch, EnrollMismatch, BadLocation,
           TemplateError, ModuleError, WrongPassword, LibraryFull, PasswordRequired, LibraryEmpty,
           AlreadyEnrolled)[_ERROR_KINDS[i]]
    return cls("R503: %s (0x%02X)" % (_ERROR_TEXTS[i], code), code)


def _checksum(pid, length, payload):
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


class R503:
    """The R503 on `uart` (57600 8N1, the module's default), its WAKEUP line on `wakeup`."""

    def __init__(self, uart, wakeup=None, address=DEFAULT_ADDRESS, password=0, timeout_ms=_ANSWER_MS):
        self._uart = uart
        self._reader = asyncio.StreamReader(uart)
        self._writer = asyncio.StreamWriter(uart, {})
        self._wakeup = wakeup
        self._lock = asyncio.Lock()
        self._pending = b""  # bytes read past a false header, scanned again
        self._password = password
        self.address = address
        self.timeout_ms = timeout_ms
        self.library_size = LIBRARY_SIZE
        # Line statistics, for diagnosis: bytes skipped looking for a header, packets that
        # failed their checks, commands repeated, answers that never came.
        self.skipped = 0
        self.bad_packets = 0
        self.retries = 0
        self.timeouts = 0

    # ---- the packet layer --------------------------------------------------------------------

    def _packet(self, pid, payload):
        length = len(payload) + 2
        out = bytearray(9 + length)
        out[0] = _HEADER_0
        out[1] = _HEADER_1
        struct.pack_into(">IBH", out, 2, self.address, pid, length)
        out[9:7 + length] = payload
        struct.pack_into(">H", out, 7 + length, _checksum(pid, length, payload))
        return out

    def _discard_input(self):
        # Whatever is waiting now is not the answer to the command about to go out.
        self._pending = b""
        n = self._uart.any()
        while n:
            self.skipped += n
            self._uart.read(n)
            n = self._uart.any()

    async def _read(self, n):
        pending = self._pending
        if not pending:
            return await self._reader.readexactly(n)
        if len(pending) >= n:
            self._pending = pending[n:]
            return pending[:n]
        self._pending = b""
        return pending + await self._reader.readexactly(n - len(pending))

    async def _receive(self):
        """The next packet that passes its checks: (pid, payload). Raises BadPacket on a
        checksum that does not match."""
        while True:
            b = (await self._read(1))[0]
            if b != _HEADER_0:
                self.skipped += 1
                continue
            b = (await self._read(1))[0]
            if b != _HEADER_1:
                self.skipped += 1
                self._pending = bytes((b,)) + self._pending  # it may start the real header
                continue
            head = await self._read(7)
            address, pid, length = struct.unpack(">IBH", head)
            if (address != self.address or pid not in (_PID_DATA, _PID_ACK, _PID_END)
                    or not 3 <= length <= _MAX_LENGTH):
                # A false header in noise: scan on from the byte after its 0xEF.
                self.skipped += 1
                self._pending = b"\x01" + head + self._pending
                continue
            body = await self._read(length)
            payload = body[:-2]
            if _checksum(pid, length, payload) != (body[-2] << 8 | body[-1]):
                raise BadPacket("R503: packet checksum does not match")
            return pid, payload

    async def _receive_ack(self, answer_bytes):
        while True:
            pid, payload = await self._receive()
            if pid == _PID_ACK and (len(payload) == answer_bytes or (len(payload) == 1 and payload[0] != _OK)):
                return payload
            self.skipped += len(payload) + 11  # not the answer to this command: a late one

    async def _command(self, instruction, params=b""):
        """Send a command; return (confirmation code, rest of the ack payload)."""
        async with self._lock:
            code, data = await self._exchange(instruction, params)
            if code == _PASSWORD_REQUIRED and instruction != _VFY_PWD:
                # The module was power cycled: it wants the password again; then the command.
                code, _ = await self._exchange(_VFY_PWD, struct.pack(">I", self._password))
                if code != _OK:
                    raise error(code)
                code, data = await self._exchange(instruction, params)
            return code, data

    async def _exchange(self, instruction, params):
        timeout = self.timeout_ms + (_SLOW_MS if instruction in _SLOW else 0)
        answer_bytes = _ACK_BYTES.get(instruction, 1)
        attempts = 1 if instruction in _NO_RETRY else 2
        attempt = 0
        while True:
            attempt += 1
            self._discard_input()
            self._writer.write(self._packet(_PID_COMMAND, bytes((instruction,)) + params))
            await self._writer.drain()
            try:
                payload = await timeouts.wait_for_ms(self._receive_ack(answer_bytes), timeout)
                if payload[0] != _RECV_ERROR:
                    return payload[0], payload[1:]
                failure = error(_RECV_ERROR)
                attempts = 2  # the module did nothing with the damaged packet: always safe to resend
            except asyncio.TimeoutError:
                self.timeouts += 1
                failure = FingerprintTimeout("R503: no answer within %d ms" % timeout)
            except BadPacket as e:
                failure = e
            if not isinstance(failure, FingerprintTimeout):
                self.bad_packets += 1
            if attempt >= attempts:
                raise failure
            self.retries += 1

    async def _check(self, instruction, params=b""):
        code, data = await self._command(instruction, params)
        if code != _OK:
            raise error(code)
        return data

    # ---- commands ----------------------------------------------------------------------------

    async def verify_password(self):
        """VfyPwd with the password given at construction. Raises WrongPassword."""
        await self._check(_VFY_PWD, struct.pack(">I", self._password))

    async def set_password(self, password):
        """SetPwd: the module's new 32-bit password (kept in its flash; 0 = none)."""
        await self._check(_SET_PWD, struct.pack(">I", password))
        self._password = password

    async def read_sys_para(self):
        """ReadSysPara: {"status", "system_id", "library_size", "security_level", "address",
        "packet_size" (bytes), "baud"}."""
        data = await self._check(_READ_SYS_PARA)
        status, system_id, size, level, address, packet_code, baud_n = struct.unpack(">HHHHIHH", data)
        self.library_size = size
        return {"status": status, "system_id": system_id, "library_size": size, "security_level": level,
                "address": address, "packet_size": 32 << packet_code, "baud": 9600 * baud_n}

    async def gen_image(self):
        """GenImg: an image of the finger into the image buffer. Raises NoFinger, ImageFail."""
        await self._check(_GEN_IMG)

    async def image_to_tz(self, buffer=1):
        """Img2Tz: the image's features into char buffer 1 or 2. Raises ImageMessy (wet),
        TooFewFeatures (partial), ImageFail."""
        await self._check(_IMG2TZ, bytes((buffer,)))

    async def reg_model(self):
        """RegModel: merge char buffers 1 and 2 into a template. Raises EnrollMismatch."""
        await self._check(_REG_MODEL)

    async def store(self, template_id, buffer=1):
        """Store: a char buffer into the library at template_id. Raises BadLocation."""
        await self._check(_STORE, struct.pack(">BH", buffer, template_id))

    async def load_char(self, template_id, buffer=2):
        """LoadChar: the template at template_id into a char buffer. Raises TemplateError."""
        await self._check(_LOAD_CHAR, struct.pack(">BH", buffer, template_id))

    async def match(self):
        """Match: char buffer 1 against 2; the score. Raises NoMatch."""
        return struct.unpack(">H", await self._check(_MATCH))[0]

    async def search(self, buffer=1, start=0, count=None):
        """Search: a char buffer against the library; (template id, score). Raises NoMatch."""
        count = self.library_size - start if count is None else count
        data = await self._check(_SEARCH, struct.pack(">BHH", buffer, start, count))
        return struct.unpack(">HH", data)

    async def delete_char(self, template_id, count=1):
        """DeleteChar: count templates from template_id on."""
        await self._check(_DELETE_CHAR, struct.pack(">HH", template_id, count))

    async def empty(self):
        """Empty: delete every template."""
        await self._check(_EMPTY)

    async def template_num(self):
        """TempleteNum: how many templates are stored."""
        return struct.unpack(">H", await self._check(_TEMPLATE_NUM))[0]

    async def read_index_table(self, page=0):
        """ReadIndexTable: 32 bytes, bit i of byte j set when template page*256 + 8j + i is there."""
        return await self._check(_READ_INDEX_TABLE, bytes((page,)))

    async def led(self, mode=LED_BREATHING, colour=LED_BLUE, speed=0x80, count=0):
        """AuraLedConfig: the ring LED (mode LED_*, colour LED_*, speed 0..255, count 0 = forever)."""
        await self._check(_AURA_LED_CONFIG, bytes((mode, speed, colour, count)))

    # ---- what the application uses -----------------------------------------------------------

    async def open(self):
        """Verify the password and read the system parameters; returns them."""
        await self.verify_password()
        return await self.read_sys_para()

    def finger_present(self):
        """From the WAKEUP line: True while a finger touches the ring; None without the line."""
        return None if self._wakeup is None else self._wakeup.value() == 0

    async def wait_finger(self, timeout_ms=_FINGER_MS):
        """Wait for a finger and take its image. Raises NoFinger if none comes in time."""
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while True:
            if self._wakeup is None or self._wakeup.value() == 0:
                try:
                    return await self.gen_image()
                except NoFinger:
                    pass
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                raise NoFinger("R503: no finger placed within %d ms" % timeout_ms, _NO_FINGER)
            await asyncio.sleep_ms(_POLL_MS)

    async def wait_lift(self, timeout_ms=_FINGER_MS):
        """Wait until the sensor finds no finger. Raises FingerNotLifted."""
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while True:
            try:
                await self.gen_image()
            except NoFinger:
                return
            except ImageFail:
                pass
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                raise FingerNotLifted("R503: finger not lifted within %d ms" % timeout_ms)
            await asyncio.sleep_ms(_POLL_MS)

    async def capture(self, buffer=1, timeout_ms=_FINGER_MS):
        """Wait for a finger, image it, its features into a char buffer."""
        await self.wait_finger(timeout_ms)
        await self.image_to_tz(buffer)

    async def enroll(self, location=None, captures=2, on_step=None, timeout_ms=_FINGER_MS):
        """Enrol a finger from `captures` images (2 or more); store it at `location` (None: the
        first free slot). on_step(step, n) is called at each STEP_* so the screen can guide.
        Returns the template id. Raises LibraryFull, NoFinger, FingerNotLifted, ImageError (ask
        again), EnrollMismatch (not the same finger each time), BadLocation."""
        if captures < 2:
            raise ValueError("an enrolment needs 2 captures or more")
        if location is None:
            location = await self._free_slot()
        elif not 0 <= location < self.library_size:
            raise BadLocation("R503: template id %d beyond the library of %d" % (location, self.library_size),
                              _BAD_LOCATION)
        for n in range(1, captures + 1):
            if n > 1:
                _step(on_step, STEP_LIFT, n - 1)
                await self.wait_lift(timeout_ms)
            _step(on_step, STEP_PLACE if n == 1 else STEP_PLACE_AGAIN, n)
            # The first capture goes to char buffer 1; each later one to buffer 2 and is merged
            # into the template, which RegModel leaves in both buffers.
            await self.capture(1 if n == 1 else 2, timeout_ms)
            _step(on_step, STEP_CAPTURED, n)
            if n > 1:
                await self.reg_model()
        await self.store(location, 1)
        _step(on_step, STEP_STORED, location)
        return location

    async def identify(self, timeout_ms=_FINGER_MS):
        """Whose finger is this: (template id, score). Raises NoMatch, NoFinger, ImageError."""
        await self.capture(1, timeout_ms)
        return await self.search(1)

    async def verify(self, template_id, timeout_ms=_FINGER_MS):
        """Is this the finger stored at template_id (LoadChar + Match)? The score, or NoMatch."""
        await self.capture(1, timeout_ms)
        await self.load_char(template_id, 2)
        return await self.match()

    async def delete(self, template_id):
        await self.delete_char(template_id, 1)

    async def template_count(self):
        return await self.template_num()

    async def templates(self):
        """The ids of the stored templates, from the index table."""
        ids = []
        for page in range((self.library_size + 255) // 256):
            table = await self.read_index_table(page)
            for j in range(32):
                bits = table[j]
                for i in range(8):
                    if bits & (1 << i):
                        ids.append(page * 256 + j * 8 + i)
        return ids

    async def _free_slot(self):
        used = await self.templates()
        for template_id in range(self.library_size):
            if template_id not in used:
                return template_id
        raise LibraryFull("R503: all %d template slots are used" % self.library_size, _LIBRARY_FULL)

    async def self_test(self):
        """(ok, detail) for diag: the module answers, accepts the password, gives its parameters."""
        try:
            await self.verify_password()
        except FingerprintTimeout:
            return False, "no answer on the UART (power, TX/RX wiring, 57600 baud)"
        except WrongPassword:
            return False, "answers, but refuses the password"
        except FingerprintError as e:
            return False, "password check failed: %s" % e
        try:
            p = await self.read_sys_para()
            n = await self.template_num()
        except FingerprintError as e:
            return False, "password ok; parameters unreadable: %s" % e
        return True, "%d of %d templates, security level %d, %d baud, address %08X" % (
            n, p["library_size"], p["security_level"], p["baud"], p["address"])


def _step(on_step, step, n):
    if on_step is not None:
        on_step(step, n)
