"""The handheld's Li-ion cell: its voltage (through the divider in front of the ADC) and the charge
it means, for the status bar and for diag.

    battery.millivolts()      # e.g. 3900
    battery.percent(3900)     # 63
"""

import board
from board import handheld as hw
from micropython import const

# Below this the cell has ~0% left (the curve's end): diag calls it a fault, a payment should not
# start on it.
LOW_MV = const(3300)

# A single LiPo cell at rest, state of charge by voltage (mV, %), from AMPOW's "LiPo voltage
# chart" (blog.ampow.com/lipo-voltage-chart): read between the points. Under load the voltage
# sags, so the figure reads low while the radio transmits: a fuel gauge would do better.
_CURVE = ((4200, 100), (4110, 90), (4020, 80), (3950, 70), (3870, 60), (3840, 50), (3800, 40),
          (3770, 30), (3730, 20), (3690, 10), (3610, 5), (3270, 0))


def millivolts():
    return board.buses.battery_adc().read_uv() * hw.BATTERY_DIVIDER // 1000


def percent(mv):
    """The charge left, 0-100, for a cell at mv millivolts."""
    high_mv, high = _CURVE[0]
    if mv >= high_mv:
        return 100
    for low_mv, low in _CURVE[1:]:
        if mv >= low_mv:
            return low + (high - low) * (mv - low_mv) // (high_mv - low_mv)
        high_mv, high = low_mv, low
    return 0
