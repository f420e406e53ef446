"""Firmware updates (packages of kind 1, lib/update/package.py): the ESP32 app image written to
the OTA slot that is not running, switched to only after a whole verified write; the new image
confirms itself once it has booted and works, or the bootloader falls back to the old one
(ESP-IDF's app rollback); a lower security version than the chip's is refused (its
anti-rollback, the SECURE_VERSION eFuse). docs/updates.md has the lifecycle.

Through MicroPython's `esp32.Partition` only (the virtual handheld's is tools/vdevice/esp32.py):

    ota.running()   # (version, security version) of the running image, from its app descriptor
    ota.floor()     # the chip's secure version (eFuse): no image below it boots
    ota.confirm()   # the running image works: ESP-IDF marks it valid and raises the eFuse to
                    # its security version (a no-op once done)
    ota.on_trial()  # whether the running image has yet to confirm itself (otadata says so)
    ota.Installer() # package.installer_for(1)

A power cut at any write leaves the old image booting (the slot written is not the booted
one; otadata's two sectors are written one at a time), or, once set_boot() has written
otadata, the new one, on trial until it confirms itself.
"""

from micropython import const

_SECTOR = const(4096)
_DESC_AT = const(32)  # esp_app_desc_t: after the image header (24 bytes) and the first segment's (8)
_DESC_MAGIC = const(0xABCD5432)
_IMAGE_MAGIC = const(0xE9)
_ALIGN = const(16)  # flash encryption writes 16-byte blocks: records are written in whole ones
_SECURE_VERSION_BITS = const(32)  # CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD
# The SECURE_VERSION eFuse (ESP-IDF's esp32 eFuse table: EFUSE_BLK3 bits 128..159,
# EFUSE_BLK3_RDATA4_REG): a thermometer code, the version is the number of bits burned.
_EFUSE_BLK3_RDATA4 = const(0x3FF5A088)
# otadata (ESP-IDF's esp_ota_select_entry_t, one per sector): u32 ota_seq, u8 seq_label[20],
# u32 ota_state, u32 crc (crc32_le(UINT32_MAX, ota_seq)); the sequence names the slot:
# (ota_seq - 1) % slots.
_OTADATA = const(0x00)  # ESP_PARTITION_SUBTYPE_DATA_OTA
_OTA_0 = const(0x10)  # ESP_PARTITION_SUBTYPE_APP_OTA_0
_ENTRY = const(32)
_PENDING_VERIFY = const(1)  # esp_ota_img_states_t


def _refused(why):
    from update.package import Refused

    return Refused(why)


def _describe(part):
    """(version, security version) of the app descriptor at the start of a slot, or None."""
    desc = bytearray(48)
    part.readblocks(0, desc, _DESC_AT)
    if int.from_bytes(desc[0:4], "little") != _DESC_MAGIC:
        return None
    version = bytes(desc[16:48]).rstrip(b"\0")
    return int(version) if version.isdigit() else 0, int.from_bytes(desc[4:8], "little")


def running():
    from esp32 import Partition

    # The stubs' Partition takes a label only; the port takes RUNNING and BOOT too.
    return _describe(Partition(Partition.RUNNING)) or (0, 0)  # type: ignore


def floor():
    import board

    word = board.buses.machine.mem32[_EFUSE_BLK3_RDATA4] & 0xFFFFFFFF
    n = 0
    while word:
        n += word & 1
        word >>= 1
    return n


def confirm():
    """The running image has proved itself (the app reached its home screen, the vault opened):
    no rollback to the previous one from now on (a no-op once done: ESP-IDF writes otadata only
    for an image on trial)."""
    from esp32 import Partition

    try:
        Partition.mark_app_valid_cancel_rollback()
    except OSError:
        # ESP_FAIL: no otadata entry names the running image (the bootloader found none it
        # could use and booted the first app that verified): nothing is on trial.
        pass


def on_trial():
    """Whether the running image is still on trial: the otadata entry that names its slot says
    PENDING_VERIFY (ESP-IDF's esp_ota_get_state_partition, which esp32.Partition does not
    offer). Read from flash, where the bootloader keeps it, not kept in this module: the module
    is let go of and imported again (the app after each screen; update.__init__ after a
    sign-on's offer, beside a flow that imported it), and a flag set in one import was not in
    the next: a confirmed image refused its update."""
    import binascii

    from esp32 import Partition

    slot = Partition(Partition.RUNNING).info()[1] - _OTA_0  # type: ignore  # (as in running())
    slots = sum(1 for p in Partition.find(Partition.TYPE_APP) if p.info()[1] >= _OTA_0)
    otadata = Partition.find(Partition.TYPE_DATA, _OTADATA)
    if slot < 0 or not otadata:
        return False  # a factory app, or no otadata: nothing is ever on trial
    entry = bytearray(_ENTRY)
    newest, state = -1, None
    for sector in (0, 1):
        otadata[0].readblocks(sector, entry)
        seq = int.from_bytes(entry[0:4], "little")
        crc = int.from_bytes(entry[28:32], "little")
        # bootloader_common_ota_select_valid: a sector being written (its crc wrong) or blank
        # does not count.
        if seq in (0, 0xFFFFFFFF) or crc != binascii.crc32(entry[0:4], 0xFFFFFFFF) or (seq - 1) % slots != slot:
            continue
        if seq > newest:
            newest, state = seq, int.from_bytes(entry[24:28], "little")
    return state == _PENDING_VERIFY


class Installer:
    """package.installer_for(1): see lib/update/package.py for the protocol."""

    def __init__(self):
        # head and slot come with begin()
        self._erased = 0  # sectors of the slot erased so far (each just before it is written)
        self._tail = b""  # the last record's bytes short of a 16-byte block

    def installed(self):
        return running()

    def begin(self, head):
        """Refuses, before any write: an update from an image not yet confirmed; a security
        version below the chip's, or beyond what its eFuse can hold; an image larger than the slot."""
        from esp32 import Partition

        if on_trial():
            # The slot written would be the one this image falls back to (ESP-IDF refuses it
            # too: ESP_ERR_OTA_ROLLBACK_INVALID_STATE): only a confirmed image updates.
            raise _refused("the running firmware has not confirmed itself yet")
        low = floor()
        if head.svn < low:
            raise _refused("firmware of security version %d, below this unit's %d" % (head.svn, low))
        if head.svn > _SECURE_VERSION_BITS:
            raise _refused("security version %d: the eFuse holds %d" % (head.svn, _SECURE_VERSION_BITS))
        slot = Partition(Partition.RUNNING).get_next_update()  # type: ignore  # (as in running())
        size = slot.info()[3]
        if head.length > size:
            raise _refused("a %d-byte image does not fit the %d-byte slot" % (head.length, size))
        self.head, self.slot, self._erased, self._tail = head, slot, 0, b""

    def write(self, offset, chunk):
        if offset == 0:
            self._check_start(chunk)
        # Records are whole 16-byte blocks but the last (package.RECORD is 960): written from
        # the record itself, a copy only where a block spans two records.
        data = memoryview(self._tail + bytes(chunk) if self._tail else chunk)
        whole = len(data) - len(data) % _ALIGN
        self._program(offset - len(self._tail), data[:whole])
        self._tail = bytes(data[whole:])

    def _check_start(self, chunk):
        # The image's own header and descriptor say what the signed package header says, or
        # nothing is written: the bootloader judges the slot by the descriptor alone.
        head = self.head
        if len(chunk) < _DESC_AT + 48 or chunk[0] != _IMAGE_MAGIC:
            raise _refused("not an ESP32 app image")
        desc = bytes(chunk[_DESC_AT:_DESC_AT + 48])
        if (int.from_bytes(desc[0:4], "little") != _DESC_MAGIC or int.from_bytes(desc[4:8], "little") != head.svn
                or desc[16:48].rstrip(b"\0") != b"%d" % head.version):
            raise _refused("the image's descriptor does not match the package (version %d, security version %d)"
                           % (head.version, head.svn))

    def _program(self, at, data):
        if not len(data):
            return
        end = at + len(data)
        while self._erased * _SECTOR < end:  # as esp_ota_write: a sector erased as it is reached
            self.slot.ioctl(6, self._erased)
            self._erased += 1
        self.slot.writeblocks(0, data, at)

    def finish(self):
        """The image whole (its SHA-256 checked by the caller): the rest written, then the boot
        switched to it (set_boot() verifies it first). It runs after the next reset."""
        if self._tail:
            self._program(self.head.length - len(self._tail),
                          self._tail + b"\xff" * (_ALIGN - len(self._tail)))
            self._tail = b""
        try:
            self.slot.set_boot()
        except OSError as e:
            raise _refused("the bootloader would not boot the image (%s)" % (e,))

    def abort(self):
        # Nothing to undo: the slot written is never booted until set_boot(), and the next
        # download erases each sector again before writing it.
        self._tail = b""
