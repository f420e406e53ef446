"""The reference handheld (ESP32-WROOM-32E, rev 3, 4 MB flash, no PSRAM): pin map and buses.

The wiring table with the reasons for each choice is in board/README.md. The buses are built on
a "machine" namespace that board/__init__.py passes in: the real machine module on the board,
board/sim with the same classes over the rig in the virtual handheld. So the pins and the bus
settings below are the single source for both; the rig reads the PIN_* names too.
"""

from micropython import const

# UART0 (GPIO1/GPIO3) is the REPL and is never touched here.

# ST7789 240x320 TFT on SPI2 (HSPI, machine.SPI(1)) at its IO_MUX pins; no MISO.
SPI_DISPLAY = const(1)
SPI_DISPLAY_BAUD = const(40_000_000)
PIN_DISPLAY_SCK = const(14)
PIN_DISPLAY_MOSI = const(13)
PIN_DISPLAY_CS = const(15)
PIN_DISPLAY_DC = const(2)
PIN_DISPLAY_BACKLIGHT = const(23)

# I2C0, shared by the FT6336U touch controller (0x38) and the PN532 (0x24).
I2C_BUS = const(0)
I2C_FREQ = const(400_000)
I2C_TOUCH = const(0x38)
I2C_NFC = const(0x24)
PIN_I2C_SDA = const(21)
PIN_I2C_SCL = const(22)
PIN_TOUCH_INT = const(39)  # input only; pulled up on the touch module
PIN_TOUCH_RESET = const(33)
PIN_NFC_IRQ = const(36)  # input only; pulled up on the PN532 module
PIN_NFC_RESET = const(27)  # RSTPDN: low resets / powers down

# R503 fingerprint module on UART1, remapped to free pins.
UART_FINGERPRINT = const(1)
UART_FINGERPRINT_BAUD = const(57_600)
PIN_FINGERPRINT_TX = const(25)
PIN_FINGERPRINT_RX = const(26)
PIN_FINGERPRINT_WAKEUP = const(35)  # input only; the module pulls it low when touched

# ISO 7816 contact slot: UART2 half-duplex on one I/O line (TX open-drain, RX on the same line:
# every byte sent comes back), CLK from LEDC, RST, VCC enable, card-detect switch.
UART_CARD = const(2)
PIN_CARD_IO_TX = const(17)
PIN_CARD_IO_RX = const(16)
PIN_CARD_CLK = const(5)
PIN_CARD_RESET = const(18)
PIN_CARD_VCC_EN = const(19)
PIN_CARD_DETECT = const(4)  # closed (low) when a card is in; internal pull-up

# Standby key: an RTC GPIO so that it can wake the chip from deep sleep. Held at reset it
# selects safe mode (boot.py). Pressed = low; internal pull-up.
PIN_STANDBY_KEY = const(32)
# Battery through a 1:2 divider into ADC1 (ADC2 is unusable while Wi-Fi runs).
PIN_BATTERY_SENSE = const(34)
BATTERY_DIVIDER = const(2)

# The watchdog resets a hung device; long enough for the slowest legitimate step (the PIN
# key derivation, about half a second), short enough that a hang is noticed.
WATCHDOG_MS = const(8_000)


class Buses:
    """The handheld's buses and lines, built once each on first use and then shared."""

    def __init__(self, machine):
        self.machine = machine
        self._made = {}

    def _once(self, name, make):
        if name not in self._made:
            self._made[name] = make()
        return self._made[name]

    def i2c(self):
        m = self.machine
        return self._once("i2c", lambda: m.I2C(I2C_BUS, scl=m.Pin(PIN_I2C_SCL), sda=m.Pin(PIN_I2C_SDA), freq=I2C_FREQ))

    def display_spi(self):
        m = self.machine
        return self._once("display_spi", lambda: m.SPI(SPI_DISPLAY, baudrate=SPI_DISPLAY_BAUD, polarity=0, phase=0,
                                                       sck=m.Pin(PIN_DISPLAY_SCK), mosi=m.Pin(PIN_DISPLAY_MOSI)))

    def fingerprint_uart(self):
        m = self.machine
        return self._once("fingerprint_uart", lambda: m.UART(
            UART_FINGERPRINT, baudrate=UART_FINGERPRINT_BAUD, tx=PIN_FINGERPRINT_TX, rx=PIN_FINGERPRINT_RX,
            timeout=0, rxbuf=512))

    def card_uart(self):
        # 8E2 at the initial etu (372 clocks at 4 MHz = 10752 baud); the slot driver re-clocks it.
        m = self.machine
        return self._once("card_uart", lambda: m.UART(
            UART_CARD, baudrate=10752, bits=8, parity=0, stop=2, tx=PIN_CARD_IO_TX, rx=PIN_CARD_IO_RX,
            timeout=0, rxbuf=512))

    def pin(self, gpio, mode=None, pull=None, value=None):
        """A GPIO by its number (PIN_* above), configured on first use."""
        m = self.machine
        mode = m.Pin.IN if mode is None else mode
        return self._once(("pin", gpio), lambda: m.Pin(gpio, mode, pull) if value is None else m.Pin(gpio, mode, pull, value=value))

    def standby_key(self):
        return self.pin(PIN_STANDBY_KEY, pull=self.machine.Pin.PULL_UP)

    def battery_adc(self):
        m = self.machine
        return self._once("battery_adc", lambda: m.ADC(m.Pin(PIN_BATTERY_SENSE), atten=m.ADC.ATTN_11DB))
