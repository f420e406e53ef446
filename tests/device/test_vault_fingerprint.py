# Fingerprint unlock policy: only within the window after a PIN, and under 5 failures in a row.
import vault

from expect import raises
from vaultfix import PIN, personalized, reopened

HOUR = 3600


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
    v.unlock_with_fingerprint(7)
    assert v.unlocked


def test_fingerprint_needs_a_pin_after_the_window():
    v = enrolled()
    v.clock.now += 72 * HOUR
    assert not v.fingerprint_allowed()
    with raises(vault.PinRequired):
        v.unlock_with_fingerprint(7)
    assert not v.unlocked
    # The wrap that fingerprint unlock needs is gone: turning the clock back does not help.
    v.clock.now -= 72 * HOUR
    assert not v.fingerprint_allowed()
    with raises(vault.PinRequired):
        v.unlock_with_fingerprint(7)
    v.verify_pin(PIN)
    v.lock()
    v.unlock_with_fingerprint(7)
    assert v.unlocked


def test_a_clock_gone_backwards_needs_the_pin():
    v = enrolled()
    v.clock.now -= 10
    assert not v.fingerprint_allowed()


def test_five_failures_in_a_row_need_the_pin():
    v = enrolled()
    for _ in range(4):
        v.fingerprint_failed()
    assert v.fingerprint_allowed()
    v.unlock_with_fingerprint(3)  # a success resets the count
    v.lock()
    for _ in range(5):
        v.fingerprint_failed()
    v = reopened(v)  # the count is on flash
    assert v.meta["fp_fails"] == 5 and not v.fingerprint_allowed()
    with raises(vault.PinRequired):
        v.unlock_with_fingerprint(3)
    v.verify_pin(PIN)
    assert v.meta["fp_fails"] == 0
    v.lock()
    v.unlock_with_fingerprint(3)


def test_unknown_template_is_refused():
    v = enrolled()
    with raises(vault.PinRequired):
        v.unlock_with_fingerprint(99)
    assert not v.unlocked


def test_no_fingers_no_fingerprint_unlock():
    v = personalized()
    v.lock()
    assert not v.fingerprint_allowed()
