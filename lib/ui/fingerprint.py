"""Fingerprint flows on screen: enrol (guided capture by capture), unlock by fingerprint, delete;
and the owner's proof that every payment needs (confirm_owner: the fingerprint, else the PIN),
one function for the terminal's own payments and the shop confirmation of lib/nfc/confirm.

The templates live in the sensor (drivers.r503); the vault keeps which template ids are the
owner's. Enrolment stores in the sensor first and records the id in the vault after, deletion
removes the id from the vault first: a power cut in between leaves at worst a template in the
sensor that the vault does not accept, never an id that unlocks without its template.
"""

from drivers.r503 import (STEP_CAPTURED, STEP_LIFT, STEP_PLACE, STEP_PLACE_AGAIN, STEP_STORED, EnrollMismatch,
                          FingerNotLifted, FingerprintError, FingerprintTimeout, ImageError, LibraryFull, NoFinger,
                          NoMatch)

CAPTURES = 3  # images merged into one template at enrolment

GUIDE = {
    STEP_PLACE: "Place your finger on the sensor",
    STEP_CAPTURED: "Got it",
    STEP_LIFT: "Lift your finger",
    STEP_PLACE_AGAIN: "Place the same finger again",
    STEP_STORED: "Saved",
}


async def _failed(ui, e):
    """The screen for a sensor failure, with what to do. Returns None."""
    if isinstance(e, ImageError):
        await ui.message("Not readable", "The sensor could not read your finger.",
                         remedy="Dry your finger and press it flat on the whole ring, then try again.", error=True)
    elif isinstance(e, EnrollMismatch):
        await ui.message("Different fingers", "The captures were not of the same finger.",
                         remedy="Use the same finger each time and try again.", error=True)
    elif isinstance(e, LibraryFull):
        await ui.message("Sensor full", "The sensor has no room for another fingerprint.",
                         remedy="Delete a fingerprint you no longer use in Settings.", error=True)
    elif isinstance(e, (NoFinger, FingerNotLifted)):
        await ui.message("Too slow", "No finger was placed (or lifted) in time.", remedy="Try again.", error=True)
    elif isinstance(e, FingerprintTimeout):
        await ui.message("Sensor not answering", "The fingerprint sensor does not answer.",
                         remedy="Restart the terminal; if it happens again, have it serviced.", error=True)
    else:
        await ui.message("Sensor error", "The fingerprint sensor reported an error (%s)." % type(e).__name__,
                         remedy="Try again; if it happens again, restart the terminal.", error=True)
    return None


async def enroll(ui, sensor, vault, captures=CAPTURES, activity=None):
    """Enrol a finger of the (unlocked) owner; the template id, or None after an error screen
    (also when the vault holds its most fingerprints: nothing is captured then).
    activity() (Session.activity) is called at each capture step: a finger placed or lifted as
    the screen asks is the owner at work, so the idle timeout does not lock mid-enrolment."""
    def guide(step, n):
        if activity is not None:
            activity()
        done = n if step in (STEP_CAPTURED, STEP_LIFT) else n - 1
        if step == STEP_STORED:
            done = captures
        ui.progress("Add fingerprint", "%s (%d of %d)" % (GUIDE[step], min(n, captures), captures)
                    if step != STEP_STORED else GUIDE[step], done / captures)

    if vault.fingers_full:
        # Said before a capture: a template stored in the sensor for a finger the vault then
        # refused would be taken for nothing.
        from vault import FINGERPRINTS

        await ui.message("Fingerprints full", "%d fingerprints are saved, the most this terminal keeps." % FINGERPRINTS,
                         remedy="Delete one you no longer use (Settings > Fingerprints), then add this one.",
                         error=True)
        return None
    try:
        template_id = await sensor.enroll(captures=captures, on_step=guide)
    except FingerprintError as e:
        return await _failed(ui, e)
    vault.enroll_finger(template_id)
    await ui.message("Fingerprint added", "You can now unlock with this finger.", timeout_ms=3000)
    return template_id


async def unlock(ui, sensor, session, title="Unlock", payment=None):
    """Unlock the session by fingerprint, if the vault's policy allows it now (`title`: the
    screen that asks for the finger; payment: (amount text, payee) a finger confirms, shown).

    Returns the interrupted operation (as Session.unlock_with_fingerprint), True if unlocked with
    nothing to resume, or None (not recognised, policy says PIN: the caller asks for the PIN)."""
    import vault as vault_module

    vault = session.vault
    if not vault.fingerprint_allowed():
        return None
    ui.progress(title, "Place your finger on the sensor" if payment is None
                else "%s\nto %s\nPlace your finger on the sensor" % payment)
    try:
        await sensor.capture(1)  # the finger's features, nothing matched yet: a bad image costs nothing
        # The attempt on flash BEFORE the sensor is asked whose finger it is (the vault's rule,
        # as for the PIN): a power cut once it has said "no match" cannot give the attempt back.
        vault.fingerprint_attempt()
        template_id, _ = await sensor.search(1)
    except NoMatch:
        template_id = None
    except vault_module.PinRequired:
        return None
    except FingerprintError as e:
        return await _failed(ui, e)
    if template_id not in vault.fingers:
        # Unknown to the sensor, or a template the vault does not hold (left by a power cut
        # during enrolment): the same refusal, counted already.
        vault.fingerprint_failed()
        await ui.message("Not recognised", "This finger is not one of the owner's.",
                         remedy="Try again, or use your PIN.", error=True, timeout_ms=3000)
        return None
    try:
        resumed = session.unlock_with_fingerprint(template_id)
    except vault_module.PinRequired:
        return None
    return resumed if resumed is not None else True


async def pin_checked(ui, session, pin):
    """The owner's PIN (a bytearray, wiped) checked by the session, the wrong-PIN delay counted
    down on the screen: True if it was right, False after the wrong-PIN screen, None when it
    blocked the vault (the next screen is the blocked one)."""
    import vault

    def waiting(left_ms):
        ui.progress("Wrong PINs", "Too many wrong PINs in a row: wait %d s, then your PIN is checked."
                    % ((left_ms + 999) // 1000))

    try:
        await session.unlock_with_pin_waiting(pin, waiting)
        return True
    except vault.WrongPin as e:
        await ui.message("Wrong PIN", "That PIN is not right.",
                         remedy="%d attempt%s left before the terminal is blocked."
                         % (e.attempts_left, "" if e.attempts_left == 1 else "s"), error=True)
        return False
    except vault.Blocked:
        return None


async def confirm_owner(ui, session, sensor=None, title="Confirm with PIN", prompt="Your PIN", tries=1,
                        randomize=False, refused=None, payment=None):
    """The owner proves it is them before a payment (the amount is already on screen and
    accepted): by fingerprint when there is a sensor and the vault's policy allows it now, else
    (or when the finger is not recognised) by the PIN on the handheld's own pad, titled `title`,
    up to `tries` entries (Session.unlock_with_pin_waiting checks and wipes each; digits shuffled if
    randomize). True when proven; False when the owner cancels or lets the pad time out. A
    failed proof (wrong PINs, the vault blocked) returns False, or raises refused(...) when an
    exception class is given (the shop confirmation answers it with its own status word).
    payment: (amount text, payee) of what is confirmed, on the fingerprint's screen and the pad."""
    session.activity()
    if sensor is not None and await unlock(ui, sensor, session, "Confirm with fingerprint", payment) is not None:
        return True
    amount, payee = payment if payment is not None else (None, None)
    for _ in range(tries):
        pin = await ui.pin_pad(title, prompt=prompt, randomize=randomize, amount=amount, payee=payee)
        if not isinstance(pin, bytearray):
            return False  # CANCEL or TIMEOUT
        checked = await pin_checked(ui, session, pin)
        if checked:
            return True
        if checked is None:
            break  # blocked: no PIN is checked any more
    if refused is not None:
        raise refused("the owner's PIN was not verified")
    return False


async def delete(ui, sensor, vault, template_id):
    """Remove a fingerprint: from the vault's ids first, then from the sensor."""
    vault.remove_finger(template_id)
    try:
        await sensor.delete(template_id)
    except FingerprintError as e:
        return await _failed(ui, e)
    return True
