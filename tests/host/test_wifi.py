"""The rig's access point (tools/rig/wifi.py) and board/sim.py's WLAN on the virtual handheld:
scan and association as the ESP32 reports them, and the AP as the device's only route out: a
TCP forwarder that carries bytes both ways to its target while the station is associated,
resets connections from a station that is not, cuts every forwarded connection when the AP
goes down and refuses new ones until it is up again.
"""

import time

import pytest
from uplinkfix import TcpServer

# ESP-IDF station codes (MicroPython network.STAT_*)
GOT_IP, IDLE, NO_AP, WRONG_PASSWORD, BEACON_TIMEOUT = 1010, 1000, 201, 202, 200

SETUP = """
import board, socket, time
w = board.wlan()
def join(ssid, key, ms=3000):
    w.active(True)
    w.connect(ssid, key)
    t = time.ticks_ms()
    while w.status() == 1001 and time.ticks_diff(time.ticks_ms(), t) < ms:
        time.sleep_ms(20)
    return w.status()
def dial():
    s = socket.socket()
    try:
        s.connect(socket.getaddrinfo(*board.route('bank.example', 8583))[0][-1])
    except OSError as e:
        s.close()
        return 'error %d' % e.errno
    return s
def echo(s, data):
    s.write(data)
    got = b''
    while len(got) < len(data):
        chunk = s.read(len(data) - len(got))
        if not chunk:
            return got
        got += chunk
    return got
def read_end(s):
    try:
        return s.read(1)
    except OSError as e:
        return 'error %d' % e.errno
"""


def echo_upper(conn):
    """The far end: echoes what comes in, in upper case."""
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data.upper())


@pytest.fixture(scope="module")
def ap(vdevice, device):
    rig = vdevice.rig
    server = TcpServer(echo_upper)
    rig.attach("wlan0", "wifi", name="wifi")
    rig.call("do", name="wifi", action="networks", networks=[
        {"ssid": "PocketNet", "password": "correct horse", "rssi": -58},
        {"ssid": "Cafe", "password": "", "rssi": -81}])
    rig.call("do", name="wifi", action="target", host="127.0.0.1", port=server.address[1])
    device.exec(SETUP)

    class AP:
        def do(self, action, **args):
            return rig.call("do", name="wifi", action=action, **args)

        def status(self):
            return rig.call("model", name="wifi")

    try:
        yield AP()
    finally:
        device.exec("w.active(False)")
        rig.detach("wifi")
        server.close()
        device.soft_reset()


def test_scan_lists_the_networks_with_rssi_and_security(device, ap):
    device.exec("w.active(True)")
    assert device.eval("sorted((s.decode(), r, sec) for s, _, _, r, sec, _ in w.scan())") == [
        ("Cafe", -81, 0), ("PocketNet", -58, 3)]


def test_wrong_password_and_unknown_network_fail_as_on_the_esp32(device, ap):
    assert device.eval("join('PocketNet', 'wrong')") == WRONG_PASSWORD
    assert device.eval("w.isconnected()") is False
    assert device.eval("join('Nowhere', 'x')") == NO_AP
    assert device.eval("w.ifconfig()") == ("0.0.0.0",) * 4


def test_associated_station_gets_an_address_rssi_and_its_essid(device, ap):
    assert device.eval("join('PocketNet', 'correct horse')") == GOT_IP
    assert device.eval("(w.isconnected(), w.status('rssi'), w.config('essid'), w.ifconfig()[0])") == (
        True, -58, "PocketNet", "192.168.4.2")
    ap.do("rssi", ssid="PocketNet", rssi=-77)
    assert device.eval("w.status('rssi')") == -77
    ap.do("rssi", ssid="PocketNet", rssi=-58)


def test_forwarding_carries_bytes_both_ways_to_the_target(device, ap):
    assert device.eval("join('PocketNet', 'correct horse')") == GOT_IP
    device.exec("s = dial()")
    assert device.eval("echo(s, b'0800 sign-on' * 100)") == b"0800 SIGN-ON" * 100
    st = ap.status()
    assert st["open"] == 1 and st["bytes_up"] >= 1200 and st["bytes_down"] >= 1200
    device.exec("s.close()")


def test_down_cuts_open_connections_and_refuses_new_ones_until_up(device, ap):
    assert device.eval("join('PocketNet', 'correct horse')") == GOT_IP
    device.exec("s = dial()")
    assert device.eval("echo(s, b'ping')") == b"PING"
    ap.do("down")
    # The open connection is reset by the AP, as a lost link ends it.
    assert device.eval("read_end(s)") in (b"", "error 104")
    device.exec("s.close()")
    assert device.eval("w.status()") == BEACON_TIMEOUT
    assert device.eval("w.scan()") == []
    assert device.eval("dial()") == "error 111"  # ECONNREFUSED: nothing listens while down
    ap.do("up")
    assert device.eval("w.isconnected()") is False  # the station must associate again
    assert device.eval("join('PocketNet', 'correct horse')") == GOT_IP
    device.exec("s = dial()")
    assert device.eval("echo(s, b'again')") == b"AGAIN"
    device.exec("s.close()")


def test_a_station_that_is_not_associated_has_no_route(device, ap):
    device.exec("w.disconnect()")
    assert device.eval("w.status()") == IDLE
    refused = ap.status()["refused"]
    device.exec("s = dial()")
    # Accepted by the listener, then reset: the AP forwards nothing for a stranger.
    assert device.eval("read_end(s)") in (b"", "error 104")
    device.exec("s.close()")
    deadline = time.time() + 2
    while ap.status()["refused"] == refused and time.time() < deadline:
        time.sleep(0.05)
    assert ap.status()["refused"] == refused + 1
