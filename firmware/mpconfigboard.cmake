# Pocket Terminal reference board (MicroPython ports/esp32, ESP-IDF v5.4):
#   cd micropython/ports/esp32 && make BOARD_DIR=/path/to/pocket-terminal/firmware
set(IDF_TARGET esp32)

# The partition table lives beside this file; ESP-IDF resolves a relative name against the
# port's folder, so the fragment naming it is written with the absolute path at configure time.
file(WRITE ${CMAKE_BINARY_DIR}/sdkconfig.partitions
     "CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"${MICROPY_BOARD_DIR}/partitions.csv\"\n")

# sdkconfig.base: the port's defaults. No boards/sdkconfig.ble: the terminal has no Bluetooth
# (Wi-Fi only), which keeps the NimBLE stack (~300 KB) out of the 1.875 MB app partition.
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    ${MICROPY_BOARD_DIR}/sdkconfig.board
    ${CMAKE_BINARY_DIR}/sdkconfig.partitions
)

# The production lock's C half (pt_lock.c: MICROPY_BOARD_STARTUP, mpconfigboard.h).
set(MICROPY_SOURCE_BOARD ${MICROPY_BOARD_DIR}/pt_lock.c)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
