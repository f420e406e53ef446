"""The board's partition table (firmware/partitions.csv): parsed, checked, and written in
ESP-IDF's binary format, as ESP-IDF's gen_esp32part.py writes it (components/partition_table):
32-byte entries (magic 0xAA50, type, subtype, offset, size, 16-byte label, flags), then an
MD5 entry (0xEBEB, 14 x 0xFF, the MD5 of the entries), padded with 0xFF to 0xC00 bytes.

gen_esp32part.py is not in this venv (it ships with ESP-IDF, not esptool), so this module is
the table's one reader and writer here; tests/host/test_firmware_build.py checks its output
byte by byte against the format and the layout rules ESP-IDF enforces.
"""

import hashlib
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CSV = ROOT / "firmware" / "partitions.csv"

FLASH_SIZE = 0x400000  # ESP32-WROOM-32E: 4 MB
BOOTLOADER_OFFSET = 0x1000  # where the ESP32 ROM loads the second-stage bootloader
TABLE_OFFSET = 0x10000  # CONFIG_PARTITION_TABLE_OFFSET in firmware/sdkconfig.board
TABLE_SIZE = 0x1000  # the sector the table occupies
MAX_TABLE_LENGTH = 0xC00  # gen_esp32part.py MAX_PARTITION_LENGTH
APP_ALIGN = 0x10000  # app partitions start on a 64 KB MMU page
DATA_ALIGN = 0x1000  # everything else on a flash sector (also the flash-encryption unit)

MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb" + b"\xff" * 14
ENTRY = struct.Struct("<2sBBLL16sL")
FLAG_ENCRYPTED = 1 << 0

TYPES = {"app": 0x00, "data": 0x01}
OTA_0, OTA_1, OTADATA = 0x10, 0x11, 0x00  # app subtypes of the two slots; data subtype of otadata
OTADATA_SIZE = 0x2000  # two sectors, one esp_ota_select_entry_t each (ESP-IDF's fixed size)
SUBTYPES = {
    "app": {"factory": 0x00, "ota_0": 0x10, "ota_1": 0x11},
    "data": {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "nvs_keys": 0x04, "fat": 0x81, "spiffs": 0x82, "littlefs": 0x83},
}


class PartitionError(Exception):
    pass


class Partition:
    def __init__(self, name, type_, subtype, offset, size, encrypted):
        self.name, self.type, self.subtype = name, type_, subtype
        self.offset, self.size, self.encrypted = offset, size, encrypted

    @property
    def end(self):
        return self.offset + self.size

    def __repr__(self):
        return "%s %s/0x%02x 0x%06x+0x%06x%s" % (self.name, self.type, self.subtype, self.offset, self.size,
                                                 " encrypted" if self.encrypted else "")


def _number(text, what):
    try:
        return int(text, 0)
    except ValueError:
        raise PartitionError("%s: not a number: %r" % (what, text)) from None


def parse(path=CSV):
    """The partitions of a CSV table, checked (alignment, overlaps, the flash size)."""
    parts = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split(",")] + [""] * 6
        name, type_, subtype, offset, size, flags = fields[:6]
        where = "%s:%d" % (Path(path).name, lineno)
        if type_ not in TYPES:
            raise PartitionError("%s: unknown type %r" % (where, type_))
        code = SUBTYPES[type_].get(subtype)
        if code is None:
            code = _number(subtype, where)
        if not offset or not size:
            raise PartitionError("%s: every partition has an explicit offset and size here" % where)
        if len(name.encode()) > 16:
            raise PartitionError("%s: the label %r is longer than 16 bytes" % (where, name))
        if flags not in ("", "encrypted"):
            raise PartitionError("%s: unknown flags %r" % (where, flags))
        parts.append(Partition(name, type_, code, _number(offset, where), _number(size, where), flags == "encrypted"))
    check(parts)
    return parts


def check(parts):
    """ESP-IDF's layout rules for this board: aligned, after the table, inside 4 MB, no overlap."""
    if len({p.name for p in parts}) != len(parts):
        raise PartitionError("two partitions share a label")
    previous_end, previous = TABLE_OFFSET + TABLE_SIZE, "the partition table"
    for p in sorted(parts, key=lambda p: p.offset):
        align = APP_ALIGN if p.type == "app" else DATA_ALIGN
        if p.offset % align or p.size % DATA_ALIGN:
            raise PartitionError("%s is not aligned (offset to 0x%x, size to 0x%x)" % (p.name, align, DATA_ALIGN))
        if p.offset < previous_end:
            raise PartitionError("%s at 0x%x overlaps %s (ending at 0x%x)" % (p.name, p.offset, previous, previous_end))
        if p.end > FLASH_SIZE:
            raise PartitionError("%s ends at 0x%x, past the 4 MB flash" % (p.name, p.end))
        previous_end, previous = p.end, p.name
    # Firmware updates (lib/update/ota.py): two OTA slots of one size, which the bootloader
    # chooses between by otadata; no factory app (4 MB holds no third one).
    apps = sorted((p.subtype, p.size) for p in parts if p.type == "app")
    if [subtype for subtype, _ in apps] != [OTA_0, OTA_1] or apps[0][1] != apps[1][1]:
        raise PartitionError("the table needs two app partitions, ota_0 and ota_1, of one size (and no factory app)")
    if [p.size for p in parts if p.type == "data" and p.subtype == OTADATA] != [OTADATA_SIZE]:
        raise PartitionError("the table needs one otadata partition (data, ota) of 0x%x bytes" % OTADATA_SIZE)
    return parts


def find(parts, name):
    for p in parts:
        if p.name == name:
            return p
    raise PartitionError("no partition %r in the table" % name)


def app_slot(parts, index=0):
    """The OTA app slot ota_<index>: the factory writes the firmware to ota_0, which a blank
    otadata boots."""
    return [p for p in parts if p.type == "app" and p.subtype == OTA_0 + index][0]


def to_binary(parts):
    """The table as the bootloader reads it at TABLE_OFFSET."""
    body = b"".join(ENTRY.pack(MAGIC, TYPES[p.type], p.subtype, p.offset, p.size, p.name.encode(),
                               FLAG_ENCRYPTED if p.encrypted else 0) for p in parts)
    body += MD5_MAGIC + hashlib.md5(body).digest()
    return body + b"\xff" * (MAX_TABLE_LENGTH - len(body))


def from_binary(data):
    """Read a binary table back (its MD5 checked); the partitions it holds."""
    parts, offset = [], 0
    names = {v: k for k, v in TYPES.items()}
    while offset + ENTRY.size <= len(data):
        chunk = data[offset:offset + ENTRY.size]
        if chunk[:16] == MD5_MAGIC:
            if hashlib.md5(data[:offset]).digest() != chunk[16:]:
                raise PartitionError("the partition table's MD5 does not match its entries")
            return parts
        magic, type_, subtype, start, size, label, flags = ENTRY.unpack(chunk)
        if magic != MAGIC:
            raise PartitionError("no partition entry at table offset 0x%x" % offset)
        parts.append(Partition(label.rstrip(b"\x00").decode(), names.get(type_, type_), subtype, start, size,
                               bool(flags & FLAG_ENCRYPTED)))
        offset += ENTRY.size
    raise PartitionError("the partition table has no MD5 entry")
