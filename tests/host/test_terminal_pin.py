"""Wrong PINs on the demo terminal (terminalfix): after the free attempts each PIN check waits,
doubling; the wait is counted down on the screen while the app lives on, instead of a pad that
froze without a word (and, from the 7th wrong PIN, outlasted the board's 8 s watchdog)."""

import re
import time

from terminalfix import terminal  # noqa: F401 (the fixture)
from tools import demo

WRONG = "9999"


def wrong_pin(t):
    t.tap("PIN")
    t.screen("Unlock")
    t.type_pin(WRONG)
    t.screen("Wrong PIN", timeout=30)
    t.tap("OK")
    t.screen(lambda s: s["title"].startswith("Locked"))


def test_the_wrong_pin_delay_counts_down_and_the_right_pin_then_unlocks(terminal):
    t = terminal
    t.screen(lambda s: s["title"].startswith("Locked"))
    for _ in range(3):  # the free attempts: no wait
        wrong_pin(t)
    # The 4th waits 1 s, the 5th 2 s: each second drawn as it begins.
    wrong_pin(t)
    since = len(t.screens)
    t.tap("PIN")
    t.screen("Unlock")
    t.type_pin(WRONG)
    waits = [t.screen("Wrong PINs", timeout=10) for _ in range(2)]
    assert [re.search(r"wait (\d+) s", w["text"]).group(1) for w in waits] == ["2", "1"], waits
    t.screen("Wrong PIN", timeout=30)
    t.tap("OK")
    # The right PIN after 5 wrong ones: 4 s counted down, then the home menu.
    t.screen(lambda s: s["title"].startswith("Locked"))
    t.tap("PIN")
    t.screen("Unlock")
    started = time.monotonic()
    t.type_pin(demo.DEMO_PIN)
    assert "wait 4 s" in t.screen("Wrong PINs", timeout=10)["text"]
    t.screen("Pocket Terminal", timeout=30)
    assert time.monotonic() - started >= 4
    assert "Traceback" not in t.log() and not any(s["title"] == "Something went wrong" for s in t.screens[since:])
