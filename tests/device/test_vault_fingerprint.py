# Fingerprint unlock policy: only within the window after a PIN, and under 5 failures in a row;
# each attempt counted on flash before the sensor's answer is used (as the PIN's).
import vault

from expect import raises
from vaultfix import PIN, personalized, reopened

HOUR = 3600


def match(v, template_id):
    """An attempt the sensor matched: counted first (ui.fingerprint.unlock), then used."""
    v.fingerprint_attempt()
    v.unlock_with_fingerprint(template_id)


def no_match(v):
    v.fingerprint_attempt()
    v.fingerprint_failed()


def enrolled(**kw):
    v = personalized(**kw)
    v.enroll_finger(3)
    v.enroll_finger(7)
    v.lock()
    return v


def test_enrolment_needs_the_owner_and_keeps_only_ids():
    v = personalized()
    v.enroll_finger(3)
    v.enroll_finger(3)
    assert v.fingers == [3]
    v.remove_finger(3)
    assert v.fingers == []
    v.lock()
    with raises(vault.Locked):
        v.enroll_finger(4)


def test_fingerprint_unlocks_within_the_window():
    v = enrolled()
    v.clock.now += 71 * HOUR
    assert v.fingerprint_allowed()
    match(v, 7)
    assert v.unlocked


def test_fingerprint_needs_a_pin_after_the_window():
    v = enrolled()
    v.clock.now += 72 * HOUR
    assert not v.fingerprint_allowed()
    with raises(vault.PinRequired):
        match(v, 7)
    assert not v.unlocked
    # The wrap that fingerprint unlock needs is gone: turning the clock back does not help.
    v.clock.now -= 72 * HOUR
    assert not v.fingerprint_allowed()
    with raises(vault.PinRequired):
        match(v, 7)
    v.verify_pin(PIN)
    v.lock()
    match(v, 7)
    assert v.unlocked


def test_a_clock_gone_backwards_needs_the_pin():
    v = enrolled()
    v.clock.now -= 10
    assert not v.fingerprint_allowed()


def test_five_failures_in_a_row_need_the_pin():
    v = enrolled()
    for _ in range(4):
        no_match(v)
    assert v.fingerprint_allowed()
    match(v, 3)  # a success resets the count
    v.lock()
    for _ in range(5):
        no_match(v)
    v = reopened(v)  # the count is on flash
    assert v.meta["fp_fails"] == 5 and not v.fingerprint_allowed()
    with raises(vault.PinRequired):
        match(v, 3)
    v.verify_pin(PIN)
    assert v.meta["fp_fails"] == 0
    v.lock()
    match(v, 3)


def test_the_attempt_is_on_flash_before_the_sensor_answers():
    v = enrolled()
    v.fingerprint_attempt()
    # The power fails here, as the sensor says "no match": the attempt is counted all the same.
    v = reopened(v)
    assert v.meta["fp_fails"] == 1
    for _ in range(4):
        v.fingerprint_attempt()
        v = reopened(v)
    assert v.meta["fp_fails"] == 5 and not v.fingerprint_allowed()
    with raises(vault.PinRequired):
        v.fingerprint_attempt()
    assert v.meta["fp_wrap"] is None  # only a PIN brings fingerprint unlock back


def test_the_last_allowed_attempt_is_checked_before_the_pin_is_required():
    v = enrolled()
    for _ in range(4):
        no_match(v)
    match(v, 7)  # the 5th attempt, counted, matches: it unlocks
    assert v.unlocked and v.meta["fp_fails"] == 0
    v.lock()
    for _ in range(5):
        no_match(v)
    assert v.meta["fp_wrap"] is None and not v.fingerprint_allowed()


def test_a_match_needs_a_counted_attempt():
    v = enrolled()
    with raises(vault.PinRequired):
        v.unlock_with_fingerprint(7)  # no attempt counted: a caller cannot skip the count
    match(v, 7)
    v.lock()
    with raises(vault.PinRequired):
        v.unlock_with_fingerprint(7)  # one count, one answer: not used twice
    assert not v.unlocked


def test_unknown_template_is_refused():
    v = enrolled()
    with raises(vault.PinRequired):
        match(v, 99)
    assert not v.unlocked


def test_no_fingers_no_fingerprint_unlock():
    v = personalized()
    v.lock()
    assert not v.fingerprint_allowed()
