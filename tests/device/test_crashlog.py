import crashlog


def setup():
    crashlog.clear()


def test_records_the_traceback():
    setup()
    try:
        raise ValueError("reader said no")
    except ValueError as e:
        crashlog.record(e, "unit test")
    text = crashlog.read()
    assert "--- unit test at uptime" in text, text
    assert "ValueError: reader said no" in text, text
    assert crashlog.count() == 1


def test_stays_bounded_and_keeps_the_newest():
    setup()
    for i in range(200):
        try:
            raise RuntimeError("crash number %d" % i)
        except RuntimeError as e:
            crashlog.record(e)
    entry = len(crashlog.read()) - len(crashlog.read().rsplit("--- ", 1)[0])
    text = crashlog.read()
    # Each file is started afresh once it holds MAX_BYTES: at most that and one entry.
    assert len(text) <= 2 * (crashlog.MAX_BYTES + entry), (len(text), entry)
    assert "crash number 199" in text
    assert "crash number 0\n" not in text
    crashlog.clear()
    assert crashlog.read() == ""


# What the heap has left when a MemoryError reaches the supervisor: one hole (the allocation
# that failed was larger). Building the entry in RAM first (a StringIO grown to the whole
# traceback) needed ~1.2 KB; printed into the file, the open file's 252 bytes are all it takes.
HOLE = 512


def _fill():
    """Every block the heap can give (growth included), held in a chain."""
    held, size = None, 4096
    while size:
        try:
            held = (bytearray(size), held)
        except MemoryError:
            size //= 2
    return held


def test_records_a_memory_error_with_the_heap_full():
    import gc

    setup()
    gc.collect()
    hole = bytearray(HOLE)
    held = _fill()
    try:
        bytearray(1024)
        raise AssertionError("the heap is not full")
    except MemoryError as e:
        error = e
    hole = None
    try:
        crashlog.record(error, "heap full")
    finally:
        held = None
        gc.collect()
    text = crashlog.read()
    assert "--- heap full at uptime" in text, text
    assert "MemoryError" in text, text
    assert crashlog.count() == 1
    crashlog.clear()
