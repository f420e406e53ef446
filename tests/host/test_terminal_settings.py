"""Every entry of Settings opened as the owner opens it, on the demo terminal (terminalfix): each
shows its screen and comes back to Settings with the app still running (no restart to the lock
screen, nothing in the crash log). Two of them crashed the terminal once: Diagnostics ran the
drivers' self-tests in an event loop of their own inside the app's (a segfault seconds later),
and Lock timeout called a factory-only vault operation (WrongState, the app restarted locked)."""

import time

from terminalfix import terminal  # noqa: F401 (the fixture)
from tools import demo

ENTRIES = ("Wi-Fi", "Change PIN", "Fingerprints", "Lock timeout", "Diagnostics")


def settings(t):
    """From the home menu to Settings (its screen)."""
    t.choose("Settings")
    return t.screen("Settings")


def open_entry(t, label):
    """From the home menu, Settings > label: the screen count before (for home())."""
    since = len(t.screens)
    settings(t)
    t.choose(label)
    return since


def home(t, since):
    """From Settings back to the home menu, the app still running: no lock screen (the app
    restarting) and no crash since the screen count `since`."""
    t.tap("Back")
    t.screen("Pocket Terminal")
    titles = [s["title"] for s in t.screens[since:]]
    assert not any(title.startswith("Locked") for title in titles), titles
    assert "Traceback" not in t.log() and "Something went wrong" not in t.log(), t.log()[-2000:]


def test_the_lock_screen_and_the_home_menu_have_no_back_that_does_nothing(terminal):
    # Nothing is behind either: their Back redrew the same screen.
    t = terminal
    locked = t.screen(lambda s: s["title"].startswith("Locked"))
    assert "PIN" in locked["buttons"] and "Back" not in locked["buttons"], locked["buttons"]
    home = t.unlock()
    assert "Settings" in home["buttons"] or "More" in home["buttons"], home["buttons"]
    assert "Back" not in home["buttons"], home["buttons"]


def test_settings_lists_every_entry(terminal):
    t = terminal
    page = settings(t)
    labels = set(page["buttons"]) - {"More", "Back"}
    while "More" in page["buttons"]:  # "More" turns the pages; the last has "First"
        t.tap("More")
        page = t.screen("Settings")
        labels |= set(page["buttons"]) - {"More", "First", "Back"}
    assert labels == set(ENTRIES), labels
    t.tap("Back")
    t.screen("Pocket Terminal")


def test_diagnostics_shows_its_result_and_the_terminal_lives_on(terminal):
    t = terminal
    since = open_entry(t, "Diagnostics")
    t.screen("Diagnostics")  # "Testing every part", then the result (or each fault, named)
    result = t.screen(lambda s: s["title"] != "Diagnostics" or "Testing" not in s.get("text", ""), timeout=60)
    while result["title"] != "Settings":
        t.tap(sorted(result["buttons"])[0])  # OK / Back on each result screen
        result = t.screen(lambda s: True, timeout=30)
    time.sleep(5)  # the crash came seconds after the result
    home(t, since)


def test_change_pin_can_be_left_without_a_change(terminal):
    t = terminal
    since = open_entry(t, "Change PIN")
    t.screen(lambda s: s.get("pin_pad"))
    x, y, w, h = t.keypad["Cancel"]  # the pad's Cancel key (Del once a digit is typed)
    t.tap_at(x + w // 2, y + h // 2)
    t.screen("Settings")
    home(t, since)


def change_pin(t, current, new, again):
    """Settings > Change PIN: the three pads typed; the screen that follows."""
    since = open_entry(t, "Change PIN")
    for pin, prompt in ((current, "Your current PIN"), (new, "The new PIN"), (again, "The new PIN again")):
        pad = t.screen(lambda s: s.get("pin_pad") and s["text"] == prompt)
        assert pad["title"] == "Change PIN", pad
        t.type_pin(pin)
    return since, t.screen(lambda s: s["title"] in ("PINs differ", "PIN changed", "Wrong PIN"))


def test_the_new_pin_is_typed_twice_and_a_slip_changes_nothing(terminal):
    # A stray touch on the one new-PIN pad once set a PIN the owner did not know; ten tries later
    # the terminal was blocked (the monkey, seed 20261207). A repeat that differs changes nothing
    # and costs no attempt; the same twice changes it.
    t = terminal
    since, shown = change_pin(t, demo.DEMO_PIN, "13579", "135791")
    assert shown["title"] == "PINs differ" and "nothing changed" in shown["text"], shown
    t.tap("OK")
    t.screen("Settings")
    home(t, since)
    since, shown = change_pin(t, demo.DEMO_PIN, "13579", "13579")
    assert shown["title"] == "PIN changed", shown
    t.tap("OK")
    t.screen("Settings")
    home(t, since)
    t.standby()
    t.unlock("13579")  # the new one unlocks: the slip before it changed nothing, the second did
    since, shown = change_pin(t, "13579", demo.DEMO_PIN, demo.DEMO_PIN)  # back, for the others
    assert shown["title"] == "PIN changed", shown
    t.tap("OK")
    t.screen("Settings")
    home(t, since)


def test_wifi_and_fingerprints_open_and_come_back(terminal):
    t = terminal
    for entry in ("Wi-Fi", "Fingerprints"):
        since = open_entry(t, entry)
        # Wi-Fi looks for networks first (a progress screen), then lists them
        t.screen(lambda s: s["title"] == entry and "Back" in s.get("buttons", {}), timeout=30)
        t.tap("Back")
        t.screen("Settings")
        home(t, since)


def test_the_lock_timeout_chosen_is_the_one_the_terminal_keeps(terminal):
    t = terminal
    if not t.screens or t.screens[-1]["title"].startswith("Locked"):  # run alone (make test: it times the lock)
        t.unlock()
    since = open_entry(t, "Lock timeout")
    choices = t.screen("Lock after")["buttons"]
    assert {"30 s", "1 min", "2 min", "More"} <= set(choices), choices  # "5 min" on the next page
    t.tap("30 s")
    t.screen("Settings")
    home(t, since)
    # Left alone, it locks after 30 s, not the 60 s it had.
    chosen = time.monotonic()
    t.screen(lambda s: s["title"].startswith("Locked"), timeout=50)
    assert 25 < time.monotonic() - chosen < 50
