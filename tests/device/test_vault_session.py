# Sessions: idle timeout and standby lock, and the interrupted operation resumed after unlock.
from vault.session import LOCKED, UNLOCKED, Session

from vaultfix import PIN, personalized


class Millis:
    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


def test_idle_timeout_locks():
    v = personalized(idle_s=60)
    clock = Millis()
    s = Session(v, clock)
    clock.now = 59_999
    assert s.tick() == UNLOCKED
    s.activity()
    clock.now += 59_999
    assert s.tick() == UNLOCKED
    clock.now += 1
    assert s.tick() == LOCKED and s.lock_reason == "idle" and not v.unlocked


def test_standby_key_locks_at_once():
    v = personalized()
    s = Session(v, Millis())
    s.lock("standby")
    assert s.state == LOCKED and v.data_key is None


def test_interrupted_operation_resumes_after_pin():
    v = personalized(idle_s=60)
    clock = Millis()
    s = Session(v, clock)
    payment = {"order": "A-1001", "amount": 1250, "step": "confirm"}
    s.begin(payment)
    clock.now = 61_000
    s.tick()
    assert s.state == LOCKED and s.operation is None
    typed = bytearray(PIN)
    assert s.unlock_with_pin(typed) is payment
    assert typed == bytearray(len(PIN))  # the session wiped the PIN it was handed
    assert s.operation is payment and s.state == UNLOCKED
    s.end()
    s.lock()
    assert s.unlock_with_pin(bytearray(PIN)) is None  # nothing was interrupted this time


def test_interrupted_operation_resumes_after_fingerprint():
    v = personalized()
    v.enroll_finger(1)
    s = Session(v, Millis())
    s.begin("transfer")
    s.lock("standby")
    v.fingerprint_attempt()  # counted before the sensor's answer (ui.fingerprint.unlock)
    assert s.unlock_with_fingerprint(1) == "transfer"


def test_standby_key_irq_locks():
    # The key's interrupt handler locks: here driven through a Pin-like stand-in; the rig-driven
    # version (a real edge on the virtual handheld) is in tests/host/test_vault_host.py.
    class Key:
        IRQ_FALLING = 2

        def irq(self, handler, trigger):
            self.handler = handler

    v = personalized()
    s = Session(v, Millis())
    key = Key()
    s.watch_standby(key)
    key.handler(key)
    assert s.state == LOCKED and s.lock_reason == "standby"
