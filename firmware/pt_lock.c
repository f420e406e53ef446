// The production lock in C: a production unit's REPL UART never hears a byte, from reset on.
//
// Production is an eFuse fact (lib/production.py): BLOCK3 bit 255, EFUSE_BLK3_RDATA7_REG bit 31
// (ESP32 Technical Reference Manual, chapter "eFuse Controller"; espefuse's esp32 tables name
// the word BLK3_RESERVED_7), burned by the factory last. A read-protected BLOCK3 reads as zeros
// and would hide it, so RD_DIS bit 2 (EFUSE_BLK0_RDATA0_REG bit 18) counts as production too.
//
// Read here, in the board's start-up hook (MICROPY_BOARD_STARTUP, in app_main before the
// MicroPython task exists, as ports/esp32/boards/ARDUINO_NANO_ESP32 hooks its own), and acted on
// in hardware: UART0's RX input is taken off its pin and tied to the GPIO matrix's constant-high
// input (TRM, "IO_MUX and GPIO Matrix": input 0x38 is a constant 1, the idle level of a UART
// line). The REPL's ISR (ports/esp32/uart.c) then never sees a byte: no Ctrl-C becomes a
// KeyboardInterrupt while _boot.py, boot.py or main.py run (pyexec arms it for each), no Ctrl-A,
// Ctrl-D or Ctrl-B reaches pyexec, and if main.py ever ended or crashed without the reset it
// asks for, the REPL loop would wait for input that never comes. Nothing the Python side does,
// fails to do or is made to fail at changes that. uart_stdout_init() (later, in mp_task) sets
// the UART's registers only, not the GPIO matrix; TX stays (boot.py's prints, no input).
//
// The UART REPL itself stays compiled in (mpconfigboard.h): the factory injects a unit's secrets
// through it before it burns the bit (tools/provision/inject.py).

#include <stdbool.h>

#include "esp_rom_gpio.h"
#include "soc/efuse_reg.h"
#include "soc/gpio_sig_map.h"
#include "soc/soc.h"

#include "mpconfigboard.h"

#define PT_PRODUCTION_BIT (1u << 31) // EFUSE_BLK3_RDATA7_REG
#define PT_RD_DIS_BLOCK3 (1u << 18) // EFUSE_BLK0_RDATA0_REG: EFUSE_RD_DIS [19:16], bit 2 = BLOCK3
#define PT_GPIO_MATRIX_CONST_ONE (0x38) // the ESP32's constant-high matrix input (TRM)

void boardctrl_startup(void); // ports/esp32/main.c: NVS, the flash's size, the vfs partition

bool pt_production(void) {
    return (REG_READ(EFUSE_BLK3_RDATA7_REG) & PT_PRODUCTION_BIT) || (REG_READ(EFUSE_BLK0_RDATA0_REG) & PT_RD_DIS_BLOCK3);
}

void pt_board_startup(void) {
    boardctrl_startup();
    if (pt_production()) {
        esp_rom_gpio_connect_in_signal(PT_GPIO_MATRIX_CONST_ONE, U0RXD_IN_IDX, false);
    }
}
