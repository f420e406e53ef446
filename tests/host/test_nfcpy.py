"""The PN532 model checked by nfcpy (a third independent host stack, after libnfc and Adafruit's
library in test_pn532_model.py): its pn532 driver opens the chip over the model's pty, senses an
ISO/IEC 14443-A card, activates an ISO-DEP card (Type 4A) and exchanges APDUs with it, at 115200
and at 921600 after the driver's own SetSerialBaudRate.

nfcpy's path syntax ("tty:<name>:pn532") only finds names directly under /dev (its PATH regex
takes no "/"), so /dev/pts/N cannot be named; the tests do what nfc.clf.device.connect() does
for a tty path once found: nfc.clf.pn532.init(nfc.clf.transport.TTY(<pty>)), on a
ContactlessFrontend.

nfcpy's init switches to 921600 when `stty` can set that rate, then writes its ACK and at once
flushes its output and reopens the port. A pty has no transmit FIFO: that flush takes back the
ACK whenever the kernel has not handed it to the rig yet (its workqueue; 11 of 40 opens on an
idle machine, with a reader thread), which no reader can prevent; the model then rightly stays
at 115200 and the open fails. So the open here runs with no `stty` on PATH (nfcpy's own
fallback: it stays at 115200, as on a port that cannot go faster), and the switch is nfcpy's
chipset.set_serial_baudrate() and the transport's new rate, which is what its close() does to
go back to 115200.
"""

import time

import nfc
import nfc.clf.pn532
import nfc.clf.transport
import nfc.tag
import nfc.tag.tt2
import pytest
import serial
from nfc.clf import RemoteTarget

from pn532fix import ACK, WAKE, answer, cmd, nfc_list, pn532  # noqa: F401 (pn532: the fixture)

UID = "04A1B2C3D4E5F6"
AID = "A0000000031010"


@pytest.fixture
def open_nfcpy(monkeypatch, tmp_path):
    """nfcpy's pn532 driver on the chip's pty, its init run with a PATH without stty (it keeps
    115200; see the module's docstring)."""
    def open_(chip):
        clf = nfc.ContactlessFrontend()
        with monkeypatch.context() as env:
            env.setenv("PATH", str(tmp_path))
            clf.device = nfc.clf.pn532.init(nfc.clf.transport.TTY(chip.pty))
        return clf
    return open_


def sense_and_exchange(clf):
    target = clf.sense(RemoteTarget("106A"))
    assert target is not None
    assert target.sdd_res.hex().upper() == UID and target.sel_res == b"\x20" and target.sens_res == b"\x44\x00"
    tag = nfc.tag.activate(clf, target)
    assert tag.type == "Type4Tag" and tag.identifier.hex().upper() == UID
    # The echo applet: SELECT answers an FCI naming the AID, any other APDU echoes its data.
    fci = tag.transceive(bytes.fromhex("00A4040007" + AID + "00"))
    assert fci[:2] == b"\x6f\x11" and fci[2:4] == b"\x84\x07" and fci[4:11].hex().upper() == AID
    assert fci[-2:] == b"\x90\x00"
    assert tag.transceive(bytes.fromhex("8001000004DEADBEEF")) == bytes.fromhex("DEADBEEF9000")
    # 200 bytes back: more than the 64-byte frames nfcpy's ISO-DEP layer chains.
    assert tag.transceive(bytes.fromhex("80EE00C8")) == bytes(range(200)) + b"\x90\x00"


def test_nfcpy_opens_senses_and_exchanges_apdus(pn532, open_nfcpy):
    pn532.do("place", kind="iso-dep", uid=UID, ats="0578807002")
    clf = open_nfcpy(pn532)
    try:
        assert clf.device.chipset.transport.baudrate == 115200
        sense_and_exchange(clf)
        assert pn532.state()["card"]["apdus"] == 3

        # A UID-only tag (SAK 00): nfcpy takes it for a Type 2 Tag, which answers no READ.
        pn532.do("place", kind="uid-only", uid="5C3E9A17")
        target = clf.sense(RemoteTarget("106A"))
        assert target.sdd_res == bytes.fromhex("5C3E9A17") and target.sel_res == b"\x00"
        tag = nfc.tag.activate(clf, target)
        assert tag.type == "Type2Tag"
        with pytest.raises(nfc.tag.tt2.Type2TagCommandError, match="timeout"):
            tag.read(4)

        pn532.do("remove")
        assert clf.sense(RemoteTarget("106A")) is None
    finally:
        clf.close()
    # nfcpy's close leaves the chip in PowerDown at 115200: libnfc opens it next.
    assert pn532.state()["baud"] == 115200
    pn532.do("place", kind="iso-dep", uid=UID)
    assert "UID (NFCID1): 04  a1  b2  c3  d4  e5  f6" in nfc_list(pn532)


def test_nfcpy_switches_the_line_to_921600_and_back(pn532, open_nfcpy):
    pn532.do("place", kind="iso-dep", uid=UID, ats="0578807002")
    clf = open_nfcpy(pn532)
    try:
        chipset = clf.device.chipset
        chipset.set_serial_baudrate(921600)  # answered at 115200, then nfcpy's ACK
        chipset.transport.baudrate = 921600
        sense_and_exchange(clf)
        assert pn532.state()["baud"] == 921600
    finally:
        clf.close()  # SetSerialBaudRate(115200) at 921600, its ACK, then PowerDown at 115200
    state = pn532.state()
    assert state["baud"] == 115200 and state["stats"]["line_errors"] == 0
    assert "UID (NFCID1): 04  a1  b2  c3  d4  e5  f6" in nfc_list(pn532)


def test_each_byte_is_judged_at_the_rate_it_was_sent(pn532):
    """nfcpy's init without its flush: the ACK at 115200, the port at 921600 0.3 ms later, while
    the ACK (0.52 ms on the wire) is still arriving. The model used to judge it at the rate the
    pty had when the ACK was delivered (921600): a line error, no switch."""
    with serial.Serial(pn532.tty, 115200, timeout=1) as port:
        port.write(WAKE + cmd(0x14, 0x01))
        assert port.read(15) == ACK + answer(0x15)
        port.write(cmd(0x10, 0x07))
        assert port.read(15) == ACK + answer(0x11)
        port.write(ACK)
        time.sleep(0.0003)
        port.baudrate = 921600
        port.write(cmd(0x02))
        assert port.read(19) == ACK + answer(0x03, 0x32, 0x01, 0x06, 0x07)
    state = pn532.state()
    assert state["baud"] == 921600 and state["stats"]["line_errors"] == 0
