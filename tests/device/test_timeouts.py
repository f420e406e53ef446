# lib/timeouts.py: a wait with a timeout that never loses its caller's cancel, against asyncio's
# own wait_for_ms (MicroPython v1.28), which does in the same scenario.
import asyncio

import timeouts


async def _cancels_lost(wait_for_ms, rounds=90):
    """A screen's tap waits on a flag with a 10 ms timeout, again and again (as the touch driver
    does every 250 ms), and is cancelled at about its timeout: how many cancels did not end it."""
    flag = asyncio.ThreadSafeFlag()

    async def screen():
        while True:
            try:
                await wait_for_ms(flag.wait(), 10)
            except asyncio.TimeoutError:
                pass

    lost = 0
    for i in range(rounds):
        task = asyncio.create_task(screen())
        await asyncio.sleep_ms(10 + i % 3)  # just before, at and after the timeout
        task.cancel()
        await asyncio.sleep_ms(25)
        if not task.done():
            lost += 1
            while not task.done():
                task.cancel()
                await asyncio.sleep_ms(3)
    return lost


def test_a_cancel_at_the_timeout_is_never_lost():
    assert asyncio.run(_cancels_lost(timeouts.wait_for_ms)) == 0
    # The scenario bites: asyncio's own loses some of the same cancels (about 1 in 3 here).
    assert asyncio.run(_cancels_lost(asyncio.wait_for_ms)) > 0


async def _slow(ms=100):
    await asyncio.sleep_ms(ms)
    return "late"


def test_the_result_the_error_and_the_timeout():
    async def value():
        await asyncio.sleep_ms(5)
        return 42

    async def fails():
        await asyncio.sleep_ms(5)
        raise ValueError("from the awaitable")

    async def run():
        out = [await timeouts.wait_for_ms(value(), 50)]
        try:
            await timeouts.wait_for_ms(fails(), 50)
        except ValueError as e:
            out.append(str(e))
        flag = asyncio.ThreadSafeFlag()
        try:
            await timeouts.wait_for_ms(flag.wait(), 20)
        except asyncio.TimeoutError:
            out.append("timeout")
        flag.set()  # the timed-out wait was ended: the flag is the next wait's
        await timeouts.wait_for_ms(flag.wait(), 20)
        try:
            await timeouts.wait_for_ms(_slow(), 10)
        except asyncio.TimeoutError:
            out.append("timeout")
        return out

    assert asyncio.run(run()) == [42, "from the awaitable", "timeout", "timeout"]


def test_a_caller_that_goes_on_after_its_cancel_is_not_cancelled_again():
    # asyncio's runner, ending after its caller's cancel, cancels the caller once more if it
    # sleeps then: a screen that handles its cancel and goes on would be ended by a ghost.
    async def caller(log, wait_for_ms):
        try:
            await wait_for_ms(_slow(), 50)
        except asyncio.CancelledError:
            log.append("cancelled")
        try:
            await asyncio.sleep_ms(60)
            log.append("went on")
        except asyncio.CancelledError:
            log.append("cancelled again")

    async def run(wait_for_ms):
        log = []
        task = asyncio.create_task(caller(log, wait_for_ms))
        await asyncio.sleep_ms(20)
        task.cancel()
        await asyncio.sleep_ms(120)
        return log

    assert asyncio.run(run(timeouts.wait_for_ms)) == ["cancelled", "went on"]
    assert asyncio.run(run(asyncio.wait_for_ms)) == ["cancelled", "cancelled again"]
