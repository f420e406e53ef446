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
    text = crashlog.read()
    assert len(text) <= 2 * crashlog.MAX_BYTES, len(text)
    assert "crash number 199" in text
    assert "crash number 0\n" not in text
    crashlog.clear()
    assert crashlog.read() == ""
