// Pocket Terminal reference board: ESP32-WROOM-32E (chip revision 3), 4 MB flash, no PSRAM.
#define MICROPY_HW_BOARD_NAME "Pocket Terminal"
#define MICROPY_HW_MCU_NAME "ESP32"

// The UART REPL stays compiled in: the factory injects the unit's secrets through it
// (python -m tools.provision inject), then burns the production eFuse bit. From then on the
// board's start-up hook (pt_lock.c) cuts the REPL UART's input before MicroPython starts, and
// the frozen boot.py and main.py add their own locks (firmware/README.md, "No REPL").
#define MICROPY_BOARD_STARTUP pt_board_startup
void pt_board_startup(void);
