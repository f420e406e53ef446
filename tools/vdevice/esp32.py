# The virtual handheld's `esp32` module: what the ESP32 port's C gives the firmware of ESP-IDF's
# partitions and OTA (ports/esp32/esp32_partition.c over esp_partition, esp_ota_ops and the
# bootloader's bootloader_utility.c, ESP-IDF v5.4, with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE and
# CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK as firmware/sdkconfig.board sets them). Frozen into the
# board-faithful interpreter beside the launcher (tools/vdevice/port/manifest.py), so the
# firmware's `import esp32` is the same line on the board and here; it stands for C, as the
# launcher does, and is no firmware file.
#
# What is modelled (docs/updates.md, "What the virtual handheld models"):
# - the partitions the firmware reaches: the binary partition table (firmware/partitions.csv)
#   and otadata, ota_0 and ota_1 as files in the state dir (flash-<label>.bin, made by
#   tools/vdevice), vfs as the flash image; each a vflash.Partition, so every erase and program
#   is counted and the power can be cut at any of them, as on the vfs;
# - otadata as ESP-IDF keeps it: two sectors, one esp_ota_select_entry_t each (ota_seq,
#   seq_label, ota_state, crc = crc32_le(UINT32_MAX, ota_seq)); set_boot() writes the sector
#   that is not active (a torn write leaves the old choice), mark_app_valid_cancel_rollback()
#   rewrites the active one and then raises the SECURE_VERSION eFuse;
# - the bootloader (boot(), run by the launcher before anything else): a PENDING_VERIFY image
#   that is booted again was not confirmed: ABORTED, and the other slot boots; a NEW one becomes
#   PENDING_VERIFY; an image is bootable only if it verifies (ESP32 image format: magic,
#   segments, checksum, SHA-256 appended) and its secure version is not below the eFuse's.
# Not modelled: the interpreter cannot run another binary, so the slot's image stands for the
# frozen firmware (its app descriptor's version and secure version are what is reported);
# Secure Boot v2's signature block (the package's issuer signature is checked by the firmware).
import vflash
from micropython import const

_SECTOR = const(4096)
_TABLE_ENTRY = const(32)
_OTA_0 = const(0x10)
_SUBTYPE_OTADATA = const(0x00)
_ENTRY = const(32)  # esp_ota_select_entry_t: u32 ota_seq, u8 seq_label[20], u32 ota_state, u32 crc
_UNSET = const(0xFFFFFFFF)
NEW, PENDING_VERIFY, VALID, INVALID, ABORTED = 0, 1, 2, 3, 4  # esp_ota_img_states_t
STATES = {NEW: "NEW", PENDING_VERIFY: "PENDING_VERIFY", VALID: "VALID", INVALID: "INVALID", ABORTED: "ABORTED",
          _UNSET: "UNDEFINED"}
_IMAGE_MAGIC = const(0xE9)
_DESC_MAGIC = const(0xABCD5432)  # esp_app_desc_t, first in the image's first segment (offset 32)
_DESC_AT = const(32)
# The SECURE_VERSION eFuse (ESP-IDF's esp32 eFuse table: EFUSE_BLK3 bits 128..159): a
# thermometer code, the secure version is the number of bits set (esp_efuse_read_secure_version).
_EFUSE_BASE = const(0x3FF5A000)
_EFUSE_SIZE = const(0x120)
_BLK3_RDATA4 = const(0x3FF5A088)
_BLK3_WDATA4 = const(0x3FF5A0E8)
_EFUSE_CONF = const(0x3FF5A0FC)
_EFUSE_CMD = const(0x3FF5A104)
_CONF_WRITE = const(0x5A5A)
_CMD_PGM = const(2)
_ESP_ERR_OTA_VALIDATE_FAILED = const(0x1503)
_ESP_ERR_OTA_SMALL_SEC_VER = const(0x1506)


def _hw():
    import _vdevice

    return _vdevice


def _table():
    """[(type, subtype, address, size, label, encrypted)] of the binary partition table."""
    # Through vflash, as every partition: once the vfs is mounted at /, open() reaches only it.
    parts = []
    table = _device("partition-table")
    e = bytearray(_TABLE_ENTRY)
    for at in range(0, 0xC00, _TABLE_ENTRY):
        table.readblocks(0, e, at)
        if e[:2] != b"\xaa\x50":
            return parts
        parts.append((e[2], e[3], int.from_bytes(e[4:8], "little"), int.from_bytes(e[8:12], "little"),
                      bytes(e[12:28]).rstrip(b"\0").decode(), bool(e[28] & 1)))
    return parts


_devices = {}  # label -> vflash.Partition: one each (each holds two open files, never closed)


def _device(label):
    dev = _devices.get(label)
    if dev is None:
        hw = _hw()
        path = hw.image if label == "vfs" else hw.flash_dir + "/flash-" + label + ".bin"
        dev = _devices[label] = vflash.Partition(path, hw.control_path)
    return dev


def _err(code, name):
    # What the port's check_esp_err raises for an ESP-IDF error it has no errno for.
    return OSError(-code, name)


def secure_version():
    """The SECURE_VERSION eFuse: the bits burned (read from the chip's eFuse file as the
    launcher reads the production bit: the register at offset o, stored back to front)."""
    f = _hw().efuse
    f.seek(_EFUSE_SIZE - 4 - (_BLK3_RDATA4 - _EFUSE_BASE))
    word = int.from_bytes(f.read(4), "big")
    n = 0
    while word:
        n += word & 1
        word >>= 1
    return n


def _raise_secure_version(version):
    # esp_efuse_update_secure_version: burn the bits up to `version`, never clear one, through
    # the eFuse controller's programming sequence (board/sim.py's mem32 models the controller).
    if version <= secure_version() or version > 32:
        return
    from board import sim

    mem = sim.mem32
    mem[_BLK3_WDATA4] = (1 << version) - 1 if version < 32 else -1
    mem[_EFUSE_CONF] = _CONF_WRITE
    mem[_EFUSE_CMD] = _CMD_PGM
    mem[_BLK3_WDATA4] = 0


# ---- otadata -------------------------------------------------------------------------------

def _crc(seq):
    import binascii

    return binascii.crc32(seq.to_bytes(4, "little"), _UNSET)


def _read_otadata(dev):
    """[(seq, state, crc ok)] of the two sectors."""
    entries = []
    buf = bytearray(_ENTRY)
    for i in (0, 1):
        dev.readblocks(i, buf)
        seq = int.from_bytes(buf[0:4], "little")
        entries.append((seq, int.from_bytes(buf[24:28], "little"), int.from_bytes(buf[28:32], "little") == _crc(seq)))
    return entries


def _usable(entry):
    # bootloader_common_ota_select_valid
    seq, state, crc_ok = entry
    return seq != _UNSET and crc_ok and state not in (INVALID, ABORTED)


def _write_otadata(dev, i, seq, state):
    # rewrite_ota_seq / the bootloader's write_otadata: erase the sector, then write the entry.
    entry = bytearray(b"\xff" * _ENTRY)
    entry[0:4] = seq.to_bytes(4, "little")
    entry[24:28] = state.to_bytes(4, "little")
    entry[28:32] = _crc(seq).to_bytes(4, "little")
    dev.ioctl(6, i)
    dev.writeblocks(i, entry, 0)


def _active(entries, allowed=(True, True)):
    """The otadata sector whose entry chooses (the highest usable sequence), or -1."""
    best = -1
    for i in (0, 1):
        if allowed[i] and _usable(entries[i]) and (best < 0 or entries[i][0] > entries[best][0]):
            best = i
    return best


def _slots():
    return [p for p in _table() if p[0] == 0 and p[1] >= _OTA_0]


def _otadata():
    for p in _table():
        if p[0] == 1 and p[1] == _SUBTYPE_OTADATA:
            return _device(p[4])
    raise OSError(2, "no otadata partition")


# ---- app images ----------------------------------------------------------------------------

def describe(label):
    """(version, secure version) of the app image's descriptor in slot `label`, or None."""
    buf = bytearray(48)
    _device(label).readblocks(0, buf, _DESC_AT)
    if int.from_bytes(buf[0:4], "little") != _DESC_MAGIC:
        return None
    return bytes(buf[16:48]).rstrip(b"\0").decode(), int.from_bytes(buf[4:8], "little")


def verify(label, size):
    """Does slot `label` hold a whole ESP32 app image (esp_image_verify: magic, segments within
    the partition, checksum, the SHA-256 appended)?"""
    import hashlib

    dev = _device(label)
    head = bytearray(24)
    dev.readblocks(0, head)
    if head[0] != _IMAGE_MAGIC or not head[23]:  # hash_appended
        return False
    digest = hashlib.sha256(head)
    pos, checksum, buf = 24, 0xEF, bytearray(512)
    seg = bytearray(8)
    for _ in range(head[1]):
        if pos + 8 > size:
            return False
        dev.readblocks(0, seg, pos)
        digest.update(seg)
        n = int.from_bytes(seg[4:8], "little")
        pos += 8
        if pos + n + 48 > size:
            return False
        while n:
            chunk = memoryview(buf)[:min(n, len(buf))]
            dev.readblocks(0, chunk, pos)
            digest.update(chunk)
            for b in chunk:
                checksum ^= b
            pos += len(chunk)
            n -= len(chunk)
    tail = bytearray(16 - pos % 16)  # zero padding, the checksum byte last
    dev.readblocks(0, tail, pos)
    digest.update(tail)
    pos += len(tail)
    appended = bytearray(32)
    dev.readblocks(0, appended, pos)
    return tail[-1] == checksum and digest.digest() == appended


def _secure_ok(label):
    # check_anti_rollback: the image's secure version is not below the eFuse's
    desc = describe(label)
    return desc is not None and desc[1] >= secure_version()


def _bootable(part):
    # check_anti_rollback and try_load_partition
    return _secure_ok(part[4]) and verify(part[4], part[3])


def boot():
    """The second-stage bootloader's choice (bootloader_utility_get_selected_boot_partition and
    bootloader_utility_load_boot_image, rollback and anti-rollback on): the label of the slot
    that runs, after the otadata writes it makes; None if no slot holds a bootable app."""
    slots = _slots()
    dev = _otadata()
    entries = _read_otadata(dev)
    for i in (0, 1):
        if entries[i][1] == PENDING_VERIFY:  # booted once and never confirmed: fall back
            _write_otadata(dev, i, entries[i][0], ABORTED)
            entries[i] = (entries[i][0], ABORTED, entries[i][2])
    initial = all(seq == _UNSET or not ok for seq, _, ok in entries)
    start = -1
    if not initial:
        # get_active_otadata_with_check_anti_rollback
        active = _active(entries, [_usable(e) and _secure_ok(slots[(e[0] - 1) % len(slots)][4]) for e in entries])
        if active >= 0:
            seq, state, _ = entries[active]
            start = (seq - 1) % len(slots)
            if state == NEW:
                _write_otadata(dev, active, seq, PENDING_VERIFY)
            elif state == VALID:
                _raise_secure_version(describe(slots[start][4])[1])
    # From the chosen slot down, then up: the first image that loads.
    for index in list(range(start, -1, -1)) + list(range(start + 1, len(slots))):
        if index >= 0 and _bootable(slots[index]):
            if initial:  # set_actual_ota_seq: a blank otadata gets its first entry
                _write_otadata(dev, 0, index + 1, VALID)
                _raise_secure_version(describe(slots[index][4])[1])
            return slots[index][4]
    return None


def state(label):
    """The otadata state of slot `label` if the active entry names it, else None."""
    slots = [p[4] for p in _slots()]
    entries = _read_otadata(_otadata())
    active = _active(entries)
    if active < 0 or slots[(entries[active][0] - 1) % len(slots)] != label:
        return None
    return entries[active][1]


# ---- esp32.Partition -----------------------------------------------------------------------

class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=_SECTOR):
        if block_size != _SECTOR:
            raise ValueError("the virtual handheld models 4096-byte blocks only")
        if id == Partition.RUNNING:
            id = _hw().running
        elif id == Partition.BOOT:
            id = Partition._boot_label()
        elif not isinstance(id, str):
            raise ValueError
        for p in _table():
            if p[4] == id:
                self._info = p
                break
        else:
            raise OSError(2)  # ENOENT, as esp32_partition_new
        self._dev = _device(id)

    @staticmethod
    def _boot_label():
        # esp_ota_get_boot_partition: the active otadata's slot, else the first OTA slot.
        slots = [p[4] for p in _slots()]
        entries = _read_otadata(_otadata())
        active = _active(entries)
        return slots[(entries[active][0] - 1) % len(slots)] if active >= 0 else slots[0]

    @staticmethod
    def find(type=TYPE_APP, subtype=0xFF, label=None, block_size=_SECTOR):
        return [Partition(p[4], block_size) for p in _table()
                if p[0] == type and subtype in (0xFF, p[1]) and label in (None, p[4])]

    def info(self):
        return self._info

    def __repr__(self):
        return "<Partition type=%u, subtype=%u, address=%u, size=%u, label=%s, encrypted=%u>" % self._info

    def readblocks(self, block, buf, offset=0):
        self._dev.readblocks(block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            # The simple write: esp_partition_erase_range over the buffer's length first, which
            # ESP-IDF refuses unless it is whole sectors (ESP_ERR_INVALID_SIZE).
            if len(buf) % _SECTOR:
                raise _err(0x104, "ESP_ERR_INVALID_SIZE")
            for i in range(len(buf) // _SECTOR):
                self._dev.ioctl(6, block + i)
            offset = 0
        self._dev.writeblocks(block, buf, offset)

    def ioctl(self, cmd, arg):
        return self._dev.ioctl(cmd, arg)

    def set_boot(self):
        # esp_ota_set_boot_partition: the image verified (and its secure version not below the
        # eFuse's), then the otadata sector that is not active gets the next sequence for it.
        if self._info[0] != 0:
            raise _err(0x102, "ESP_ERR_INVALID_ARG")
        desc = describe(self._info[4])
        if desc is None or not verify(self._info[4], self._info[3]):
            raise _err(_ESP_ERR_OTA_VALIDATE_FAILED, "ESP_ERR_OTA_VALIDATE_FAILED")
        if desc[1] < secure_version():
            raise _err(_ESP_ERR_OTA_SMALL_SEC_VER, "ESP_ERR_OTA_SMALL_SEC_VER")
        slots = _slots()
        required = self._info[1] - _OTA_0
        dev = _otadata()
        entries = _read_otadata(dev)
        active = _active(entries)
        if active < 0:
            _write_otadata(dev, 0, required + 1, NEW)
            return
        seq, i = entries[active][0], 0
        while seq > (required + 1) % len(slots) + i * len(slots):
            i += 1
        _write_otadata(dev, active ^ 1, (required + 1) % len(slots) + i * len(slots), NEW)

    def get_next_update(self):
        # esp_ota_get_next_update_partition: the OTA slot after this one, round the ring.
        slots = [p[4] for p in _slots()]
        return Partition(slots[(slots.index(self._info[4]) + 1) % len(slots)] if self._info[4] in slots else slots[0])

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        # esp_ota_current_ota_is_workable(true): the active entry VALID (rewritten in place),
        # then, with anti-rollback, the eFuse raised to the running app's secure version.
        dev = _otadata()
        entries = _read_otadata(dev)
        active = _active(entries)
        if active < 0:
            raise _err(-1, "ESP_FAIL")  # "Running firmware is factory": nothing to confirm
        if entries[active][1] != VALID:
            _write_otadata(dev, active, entries[active][0], VALID)
            _raise_secure_version(describe(_hw().running)[1])
