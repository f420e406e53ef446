"""The owner's session: LOCKED <-> UNLOCKED, idle timeout and the standby key, and resuming
the operation that a lock interrupted.

    session = Session(vault)
    session.begin(payment)          # an operation that needs the owner starts
    ...                             # idle for longer than the policy allows: session.tick() locks
    resumed = session.unlock_with_pin(pin)   # -> payment: carry on where it stopped
    session.end()                   # the operation is done

The app calls tick() from its loop and activity() on every touch or key; watch_standby() makes
the standby key lock. A lock wipes the data key at once; what the session keeps is the
operation object, so that after re-authentication the app continues it instead of starting
over. A PIN handed to the session is wiped once it has been checked.
"""

import time

LOCKED = "LOCKED"
UNLOCKED = "UNLOCKED"


class Session:
    def __init__(self, vault, clock_ms=time.ticks_ms):
        self.vault = vault
        self.clock_ms = clock_ms
        self.last_activity = clock_ms()
        self.operation = None  # what the owner is doing now
        self.interrupted = None  # what a lock interrupted, to resume after unlock
        self.lock_reason = None

    @property
    def state(self):
        return UNLOCKED if self.vault.unlocked else LOCKED

    def activity(self):
        """A touch, a key: the owner is still there."""
        self.last_activity = self.clock_ms()

    def tick(self):
        """Lock if the session has been idle for longer than the policy's idle_s."""
        if self.vault.unlocked:
            idle = time.ticks_diff(self.clock_ms(), self.last_activity)
            if idle >= self.vault.policy["idle_s"] * 1000:
                self.lock("idle")
        return self.state

    def lock(self, reason="standby"):
        if self.vault.unlocked:
            self.vault.lock()
            self.lock_reason = reason
            if self.operation is not None:
                self.interrupted, self.operation = self.operation, None

    def begin(self, operation):
        """An operation that needs the owner begins; it is kept if a lock interrupts it."""
        self.operation = operation
        self.activity()

    def end(self):
        self.operation = None

    def _resume(self):
        self.activity()
        self.lock_reason = None
        resumed, self.interrupted = self.interrupted, None
        if resumed is not None:
            self.operation = resumed
        return resumed

    def watch_standby(self, key):
        """Lock when the standby key (a machine.Pin, pressed = low) goes down."""
        key.irq(handler=lambda pin: self.lock("standby"), trigger=key.IRQ_FALLING)

    def unlock_with_pin(self, pin):
        """Unlock with the PIN (a bytearray, wiped here after the check; vault rules apply).
        Returns the interrupted operation, if any."""
        from vault.crypto import wipe

        try:
            self.vault.verify_pin(pin)
        finally:
            wipe(pin)
        return self._resume()

    async def unlock_with_pin_waiting(self, pin, waiting):
        """unlock_with_pin for the app: the wrong-PIN delay spent in the event loop (the screen
        and the watchdog's feeder live on), waiting(ms left) called as each second of it begins."""
        import asyncio

        from vault.crypto import wipe

        try:
            left = self.vault.count_pin_attempt(pin)
            while left > 0:
                waiting(left)
                step = min(left, 1000)
                await asyncio.sleep_ms(step)
                left -= step
            self.vault.check_pin(pin)
        finally:
            wipe(pin)
        return self._resume()

    def unlock_with_fingerprint(self, template_id):
        self.vault.unlock_with_fingerprint(template_id)
        return self._resume()
