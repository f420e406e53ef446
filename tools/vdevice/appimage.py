"""ESP32 app images as ESP-IDF's build makes them, for the virtual handheld's OTA slots and for
update packages (kind 1): esptool's image format (header for chip revision 3, segments,
checksum, SHA-256 appended), the first segment starting with esp_app_desc_t, which carries the
version and the secure version (ESP-IDF's CONFIG_BOOTLOADER_APP_SECURE_VERSION) that the
bootloader's anti-rollback reads. esptool writes them and reads them back (image_info), so the
format is its, not this module's.

In the virtual handheld the image stands for the frozen firmware (tools/vdevice/esp32.py): its
code is never run, its descriptor is what the launcher reports and the firmware reads.
"""

import hashlib
import struct

from esptool import bin_image

DROM = 0x3F400020  # where ESP-IDF links .flash.appdesc: the image's first bytes after the headers
DESC_MAGIC = 0xABCD5432
# esp_app_desc_t (256 bytes): magic, secure_version, reserv1[2], version[32], project_name[32],
# time[16], date[16], idf_ver[32], app_elf_sha256[32], min/max eFuse block revision, MMU page
# size, reserved.
DESC = struct.Struct("<II8x32s32s16s16s32s32sHHB3x72x")
# The app the virtual handheld's factory puts in ota_0: the frozen firmware's stand-in.
FACTORY_VERSION, FACTORY_SECURE_VERSION = 1, 0


def build(version, secure_version, size=8192, project=b"pocket-terminal"):
    """An app image of about `size` bytes (descriptor, then filler standing for the code)."""
    filler = hashlib.sha256(b"%d" % version).digest() * (max(0, size - DESC.size - 80) // 32)
    desc = DESC.pack(DESC_MAGIC, secure_version, str(version).encode(), project, b"00:00:00", b"Dec  5 2026",
                     b"v5.4.2", hashlib.sha256(filler).digest(), 0, 0xFFFF, 16)
    image = bin_image.ESP32FirmwareImage()
    image.entrypoint = DROM
    image.min_rev_full = 300  # CONFIG_ESP32_REV_MIN_FULL (firmware/sdkconfig.board)
    image.flash_mode, image.flash_size_freq = 2, 0x20  # DIO, 4 MB
    image.segments = [bin_image.ImageSegment(DROM, desc + filler)]
    return image.save(None)


def describe(data):
    """(version string, secure version) from an image's descriptor, read by esptool."""
    image = bin_image.LoadFirmwareImage("esp32", data)
    image.verify()
    fields = DESC.unpack(image.segments[0].data[:DESC.size])
    assert fields[0] == DESC_MAGIC
    return fields[2].rstrip(b"\0").decode(), fields[1]
