"""What drawing a screen costs: `python -m tools.bench screens`.

For every screen of the toolkit's catalogue (tools/screenshots.py SCREENS), on the virtual
handheld (the MicroPython unix port, its heap as the board's), with the garbage collector
disabled around each measure so that gc.mem_alloc() counts every byte allocated:

    first     the screen drawn the first time after a soft reset (opens its fonts: their index)
    again     the screen drawn again: layout, the strips, the console line, asyncio
    render    the canvas alone re-rendering that screen's widgets (ui.canvas.render): the cost
              of drawing proper, what every redraw pays
    peak      the smallest free heap in which the screen is drawn again (its working set:
              bisected with the heap filled down to 16-byte blocks, tools/bench.py WORKING_SET),
              against SCREEN_BUDGET, and in which the canvas re-renders its widgets (render peak)
    CPU       a redraw's time here, and the ESP32 estimate (tools/bench.py esp32_estimate)

The display is one that discards the strips: the virtual handheld's SPI bus allocates on every
transfer, which the board's does not.
"""

from tools.bench import ALLOCATED, WORKING_SET, esp32_estimate
from tools.screenshots import SCREENS, SETUP, handheld_with_display

# shared/DESIGN.md: the board has ~110 KB of heap for everything; a screen may take at most
# this much of it while it draws.
SCREEN_BUDGET = 32 * 1024

# The UI drawing into a display that discards the strips; ui.canvas.render wrapped to keep the
# widgets of the last screen drawn, so that they can be rendered again on their own.
NULL_DISPLAY = """
import time
class NullDisplay:
    width, height = display.width, display.height
    def begin(self, x, y, w, h):  # (not *args: a tuple a render would be the bench's)
        pass
    def write(self, pixels):
        pass
    def end(self):
        pass
_status = ui.status
ui = UI(NullDisplay(), NoTouch(), _status)
_render = ui.canvas.render
_items = None
def _keep(items, region=None):
    global _items
    _items = items
    _render(items, region)
ui.canvas.render = _keep
"""


def measure(dev, expr):
    """(first, again, render, peak, render peak) in bytes, and a redraw's CPU time in µs, for the
    screen that expr draws, on a fresh heap: the peaks first, right after the first draw (the allocation measures leave
    garbage and holes behind them that would move the bisection)."""
    dev.soft_reset()
    dev.exec(SETUP + WORKING_SET + ALLOCATED + NULL_DISPLAY, timeout=60)
    dev.exec("_code = compile(%r, 'screen', 'exec')\n_draw = lambda: exec(_code, globals())" % expr)
    first = dev.eval("allocated(_draw)", timeout=60)
    peak = dev.eval("working_set(_draw)", timeout=300)
    render_peak = dev.eval("working_set(lambda: _render(_items))", timeout=300)
    again = min(dev.eval("allocated(_draw)", timeout=60) for _ in range(2))
    render = dev.eval("allocated(lambda: _render(_items))", timeout=60)
    cpu_us = min(dev.eval("(lambda t: (_draw(), time.ticks_diff(time.ticks_us(), t))[1])(time.ticks_us())")
                 for _ in range(3))
    return (first, again, render, peak, render_peak), cpu_us


def main():
    with handheld_with_display() as (dev, vd, tmp):
        print("heap per screen drawn (KB; allocated with the collector off; peak: the working set, budget %d KB)"
              % (SCREEN_BUDGET // 1024))
        print("  %-18s %8s %8s %8s %8s %12s %12s" % ("screen", "first", "again", "render", "peak", "render peak",
                                                   "CPU here/ESP32 ms"))
        for name, expr in SCREENS.items():
            heap, cpu_us = measure(dev, expr)
            print("  %-18s %8.1f %8.1f %8.1f %8.1f %12.1f %7.1f / %.0f%s"
                  % ((name,) + tuple(n / 1024 for n in heap) + (cpu_us / 1000, esp32_estimate(cpu_us / 1e6) * 1000,
                     "" if heap[3] <= SCREEN_BUDGET else "  OVER BUDGET")), flush=True)


if __name__ == "__main__":
    main()
