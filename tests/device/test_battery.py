# lib/battery.py: the charge by the cell's voltage, on AMPOW's LiPo chart's points and between.
import battery


def test_the_charts_points():
    for mv, pct in ((4200, 100), (4110, 90), (4020, 80), (3950, 70), (3870, 60), (3840, 50), (3800, 40),
                    (3770, 30), (3730, 20), (3690, 10), (3610, 5), (3270, 0)):
        assert battery.percent(mv) == pct, (mv, battery.percent(mv))


def test_between_and_beyond():
    assert battery.percent(3900) == 63  # 3870-3950 mV: 60-70 %
    assert battery.percent(3600) == 4
    for mv in (4201, 5000, 10**9):
        assert battery.percent(mv) == 100
    for mv in (3269, 0, -1):
        assert battery.percent(mv) == 0
    last = 0
    for mv in range(3200, 4300, 7):  # never goes down as the voltage goes up
        pct = battery.percent(mv)
        assert last <= pct <= 100, (mv, pct)
        last = pct


def test_low_is_where_the_charge_is_gone():
    assert battery.percent(battery.LOW_MV) <= 1 and battery.percent(battery.LOW_MV + 400) > 5
