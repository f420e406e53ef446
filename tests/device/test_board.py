# The board layer: the handheld's buses, as the firmware sees them.
import errno

import board
from board import handheld
from expect import raises


def test_buses_are_built_once_and_shared():
    assert board.buses.i2c() is board.buses.i2c()
    assert board.buses.display_spi() is board.buses.display_spi()


def test_absent_i2c_address_is_a_nack():
    i2c = board.buses.i2c()
    absent = [a for a in range(0x08, 0x78) if a not in i2c.scan()][0]
    with raises(OSError) as e:
        i2c.writeto(absent, b"\x00")
    assert e.value.errno == errno.ENODEV, e.value
    with raises(OSError) as e:
        i2c.readfrom(absent, 1)
    assert e.value.errno == errno.ENODEV, e.value


def test_standby_key_is_released_at_rest():
    assert board.buses.standby_key().value() == 1


def test_pin_map_keeps_off_the_repl_uart_and_flash():
    used = [getattr(handheld, n) for n in dir(handheld) if n.startswith("PIN_")]
    assert len(used) == len(set(used)), "a GPIO is wired twice"
    for gpio in (1, 3, 6, 7, 8, 9, 10, 11):
        assert gpio not in used, gpio
    for gpio in (handheld.PIN_TOUCH_INT, handheld.PIN_NFC_IRQ, handheld.PIN_FINGERPRINT_WAKEUP,
                 handheld.PIN_BATTERY_SENSE):
        assert 34 <= gpio <= 39, "input-only pins are for inputs"
