"""A wait with a timeout that never loses its caller's cancel.

    import timeouts
    data = await timeouts.wait_for_ms(stream.read(300), 50)   # asyncio.TimeoutError after 50 ms

asyncio.wait_for_ms of MicroPython (v1.28, extmod/asyncio/funcs.py) runs the awaitable in a
runner task and sleeps out the timeout. When the timeout comes first it cancels the runner and
*awaits the runner task*; a task that awaits a task has its cancel forwarded to that task
(Task.cancel), so a cancel of the caller in that moment goes to the runner, which is ending
anyway, and the caller goes on as if it had only timed out. The touch driver waits that way
every 250 ms: the "Insert or tap card" screen's Cancel button, cancelled once the card was
found, lived on in about 1 run in 4 of tests/host/test_terminal_card.py, took the next screens'
taps for its own, and the terminal lost PIN keys and the home menu's taps. Its runner also
cancels, once more, a caller that handled its cancel and went on to sleep.
(tests/device/test_timeouts.py shows both, and that this module does neither.)

Here the caller, once timed out, waits for the runner's end on an Event, which a cancel reaches
as it reaches any wait; and the runner wakes its caller only while it still waits (`ended` is
set when it has left), never a task that has gone on to other things.
"""

import asyncio


async def _run(waiter, aw, ended):
    try:
        result = await aw
        status = True
    except BaseException as e:  # the caller raises it (a CancelledError of the timeout included)
        result = None
        status = e
    if not ended.is_set() and waiter.data is None:
        # The caller still sleeps out its timeout: woken by a cancel that carries the outcome,
        # as asyncio's own runner does; a cancel from outside replaces it with a bare one.
        if waiter.cancel():
            waiter.data = asyncio.CancelledError(status, result)
    ended.set()


async def wait_for_ms(aw, ms):
    """aw's result, or asyncio.TimeoutError after ms (aw then cancelled and ended), or aw's
    exception; a cancel of the caller always raises CancelledError here."""
    ended = asyncio.Event()
    runner = asyncio.create_task(_run(asyncio.current_task(), aw, ended))
    try:
        try:
            await asyncio.sleep_ms(ms)
        except asyncio.CancelledError as e:
            status = e.args[0] if e.args else None  # the runner's outcome, or none: from outside
            if status is None:
                runner.cancel()
                raise
            if status is True:
                return e.args[1]
            raise status
        runner.cancel()
        await ended.wait()  # not the runner itself: a cancel now is this task's own
        raise asyncio.TimeoutError
    finally:
        ended.set()  # the caller has left: the runner wakes nobody after this
