// Pocket Terminal reference board: ESP32-WROOM-32E (chip revision 3), 4 MB flash, no PSRAM.
#define MICROPY_HW_BOARD_NAME "Pocket Terminal"
#define MICROPY_HW_MCU_NAME "ESP32"

// The UART REPL stays compiled in: the factory injects the unit's secrets through it
// (python -m tools.provision inject). A production unit refuses it at run time: the frozen
// boot.py calls production.enforce(), which turns Ctrl-C off and never lets main.py end in the
// REPL once the vault carries the production flag (firmware/README.md, "No REPL").
