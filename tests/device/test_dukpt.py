# lib/dukpt (and lib/pinblock under its PIN key) on the device, with a real vault. The
# derivation keys asserted are the X9.24-3-2017 supplement's test vectors for the AES-128 BDK
# FEDCBA9876543210F1F1F1F1F1F1F1F1, initial key id 1234567890123456, initial key
# 1273671EA26AC29AFA4D1084127652A1 (the host test derives that initial key and every working
# key with the bank HSM's implementation: tests/host/test_uplink_codec.py).
import cryptolib

import dukpt
import pinblock
import vaultfix
from dukpt import BadState, Dukpt, Exhausted
from vault import Vault
from vault.store import Store

from expect import raises

ROOT = "/test-dukpt"
IK = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")
IKID = bytes.fromhex("1234567890123456")
# Transaction (intermediate derivation) keys of counters 1..8.
FIRST = [bytes.fromhex(h) for h in (
    "4F21B565BAD9835E112B6465635EAE44", "2F34D68DE10F68D38091A73B9E7C437C",
    "031504E530365CF81264238540518318", "0EEFC7ADA628BA68878DA9165A8A1887",
    "C2A7AC328A5DA2D6002D62465BFC028B", "D30F7D9351DA58448A2F5E92B4EE3B7D",
    "A8253CEED9AC042C54F75D35C8352278", "718EE6CF0B27E53D5F7AF99C4D8146A2")]
# Counters 1FFFE, (1FFFF has 17 one bits: skipped), 20000, 20001.
ROLLOVER = ((0x1FFFE, "E21E8C8D347F8561A2BE752DAA85A111"), (0x20000, "F7AE9025468A25D37B7249CFFED224C8"),
            (0x20001, "692C8EA4013645135B36497131DF9D2C"))
# The last four counters.
LAST = ((0xFFFE2000, "48E585B694EB0B18D5C35443E163C0BA"), (0xFFFE4000, "396C2C7CA1EA701C03B86B7D41F0C562"),
        (0xFFFE8000, "0387625F189B58AE03EF0E8CCA41105E"), (0xFFFF0000, "F6BA59389BD14A9855BE9727E7C52E3C"))


def provisioned(ik=IK, ksn=IKID):
    v = vaultfix.factory(ROOT)
    for item, data in vaultfix.ITEMS.items():
        v.provision(item, {"dukpt.ik": ik, "dukpt.ksn": ksn}.get(item, data))
    v.finish_provisioning()
    return v


def reopened():
    return Vault(Store(ROOT)).open()


def state(counter, registers):
    """A stored state (the layout lib/dukpt documents) at counter with {bit: key}."""
    st = bytearray(4 + 32 * 16)
    st[0:4] = counter.to_bytes(4, "big")
    for bit, key in registers.items():
        st[4 + 16 * bit:20 + 16 * bit] = bytes.fromhex(key)
    return bytes(st)


def test_published_keys_from_the_initial_key():
    d = Dukpt(provisioned())
    assert d.ksn() == IKID + b"\x00\x00\x00\x01"
    for i, want in enumerate(FIRST):
        c, key = d._advance()
        assert (c, key) == (i + 1, want)
    assert d.ksn() == IKID + b"\x00\x00\x00\x09"
    # The initial key is gone: the entry now holds the state, which never contains it.
    st = reopened().device_secret("dukpt.ik")
    assert len(st) == 4 + 32 * 16 and IK not in bytes(st) and st[:4] == b"\x00\x00\x00\x09"


def test_rollover_skips_17_one_bits():
    d = Dukpt(provisioned(state(0x1FFFE, {1: ROLLOVER[0][1], 17: ROLLOVER[1][1]})))
    for counter, key in ROLLOVER:
        assert d._advance() == (counter, bytes.fromhex(key))
    assert dukpt.next_counter(0x1FFFE) == 0x20000
    assert dukpt.next_counter(0xFFFF0000) == 1 << 32
    # next_counter against its definition: the smallest larger counter with <= 16 one bits.
    for start in (0, 0xFFFE, 0x7FFF8000, 0xFFFEFFFC, 0x1FFFFFFF):
        c = start
        for _ in range(40):
            n = dukpt.next_counter(c)
            m = c + 1
            while dukpt._ones(m) > 16:
                m += 1
            assert n == m, (c, n, m)
            c = n


def test_last_keys_then_exhausted():
    v = provisioned(state(0xFFFE2000, {13 + i: k for i, (_, k) in enumerate(LAST)}))
    d = Dukpt(v)
    for counter, key in LAST:
        assert d._advance() == (counter, bytes.fromhex(key))
    for f in (d.next_keys, d.ksn):
        with raises(Exhausted):
            f()
    # Stored so: after a reboot, still exhausted, and nothing of the keys is left.
    st = reopened().device_secret("dukpt.ik")
    assert not any(st)
    with raises(Exhausted):
        Dukpt(reopened()).next_keys()


def test_next_keys_and_persistence():
    d = Dukpt(provisioned())
    ksn, pin_key, mac_key = d.next_keys()
    assert ksn == IKID + b"\x00\x00\x00\x01" and len(pin_key) == len(mac_key) == 16
    # The working keys: usage 1000 and 2002 under counter 1's derivation key.
    for usage, key in ((0x1000, pin_key), (0x2002, mac_key)):
        dd = bytes.fromhex("0101%04x00020080" % usage) + IKID[4:] + b"\x00\x00\x00\x01"
        assert key == cryptolib.aes(FIRST[0], 1).encrypt(dd)
    assert pin_key != mac_key
    # A reboot continues after the counter stored, with the same keys as without it.
    d2 = Dukpt(reopened())
    assert d2.next_keys()[0] == IKID + b"\x00\x00\x00\x02"
    assert d2._advance() == (3, FIRST[2])


class PowerCut(Vault):
    """The real vault, with the power failing around the state's store."""

    after = False

    def replace_dukpt_state(self, data):
        if self.after:
            super().replace_dukpt_state(data)
        raise OSError(5)


def test_counter_stored_before_a_key_is_used():
    Dukpt(provisioned()).next_keys()  # counter 1 used; the state is stored
    for after, next_ksn in ((False, 2), (True, 3)):
        d = Dukpt(PowerCut(Store(ROOT)).open())
        d._vault.after = after
        with raises(OSError):
            d.next_keys()
        # Cut before the store: counter 2 was never used, it comes next. Cut after it: counter
        # 2 is skipped, never reused.
        assert Dukpt(reopened()).ksn() == IKID + bytes((0, 0, 0, next_ksn))


def test_bad_state():
    with raises(BadState):
        Dukpt(provisioned(ksn=bytes(10))).ksn()
    with raises(BadState):
        Dukpt(provisioned(ksn=IKID + b"\x00\x00\x00\x05")).ksn()
    with raises(BadState):
        Dukpt(provisioned(ik=bytes(20))).ksn()
    # A 12-byte KSN with counter 0 is an initial key id too.
    assert Dukpt(provisioned(ksn=IKID + bytes(4))).next_keys()[0] == IKID + b"\x00\x00\x00\x01"


def decipher(key, block, pan):
    """(PIN digits as str, the random half) of a format 4 PIN block: what the bank's HSM does;
    only tests need it on the device."""
    b = bytearray(cryptolib.aes(key, 1).decrypt(block))
    field = "%d%s" % (max(0, len(pan) - 12), ("0" * 12 + pan)[-12:] if len(pan) < 12 else pan)
    field = bytes.fromhex((field + "0" * 32)[:32])
    for i in range(16):
        b[i] ^= field[i]
    plain = cryptolib.aes(key, 1).decrypt(bytes(b)).hex().upper()
    n = int(plain[1], 16)
    assert plain[0] == "4" and plain[2 + n:16] == "A" * (14 - n), plain[:16]
    return plain[2:2 + n], plain[16:]


def test_pin_block_under_the_pin_key():
    _, pin_key, _ = Dukpt(provisioned()).next_keys()
    pin = bytearray(b"1234")
    pan = "4761739001010119"
    block = pinblock.encipher(pin_key, pin, pan)
    assert len(block) == 16 and pin == b"1234"  # the caller's buffer, the caller wipes it
    assert decipher(pin_key, block, pan)[0] == "1234"
    # Random fill: the same PIN twice, two blocks; bound to the PAN: another PAN, no PIN.
    again = pinblock.encipher(pin_key, pin, pan)
    assert again != block and decipher(pin_key, again, pan)[0] == "1234"
    with raises(AssertionError):
        decipher(pin_key, block, "4761739001010120")
    for p, n in ((b"123456789012", "123"), (b"0000", "1234567890123456789"), (b"98765", "12345678901")):
        assert decipher(pin_key, pinblock.encipher(pin_key, bytearray(p), n), n)[0] == p.decode()


def test_pin_block_refuses():
    key = bytes(16)
    for pin, pan in ((b"123", "4761"), (b"1234567890123", "4761"), (b"12a4", "4761"),
                     (b"1234", ""), (b"1234", "4" * 20), (b"1234", "47 1")):
        with raises(pinblock.PinBlockError) as e:
            pinblock.encipher(key, bytearray(pin), pan)
        assert pin.decode() not in str(e.value)


def _fragmented(size):
    """The heap filled with size-byte blocks, then every other one let go: holes of size bytes
    (and a block header) between the kept ones, and no larger free block anywhere (what is left
    beside them, the heap's growth included, filled with smaller blocks, kept)."""
    held = [None, None]  # [the smaller blocks, the chain]: made first, no room is left after
    while True:
        try:
            held[1] = [bytearray(size), held[1]]
        except MemoryError:
            break
    small = size
    while small:
        try:
            held[0] = (bytearray(small), held[0])
        except MemoryError:
            small //= 2
    node, n = held[1], 0
    while node:
        if n & 1:
            node[0] = None
        node, n = node[1], n + 1
    return held


def test_payments_in_a_row_on_a_fragmented_heap():
    # As after ~150 payments on the board: KBs free, all in pieces smaller than the sealed state
    # (576 bytes). Each step stores the state; sealed whole, in one block, it ran out here.
    import gc

    from vault import crypto

    d = Dukpt(provisioned())
    d._advance()  # the registers from the initial key: the state is 516 bytes from now on
    enc, mac = d._vault.store._keys["device"]
    gc.collect()
    held = _fragmented(448)
    try:
        with raises(MemoryError):
            crypto.seal(enc, mac, d._state, b"")  # no block for the entry whole
        for i in range(50):
            assert d._advance()[0] == i + 2
    finally:
        held = None
        gc.collect()
    st = reopened().device_secret("dukpt.ik")
    assert st[:4] == b"\x00\x00\x00\x34" and st[4:20] == bytes(16)  # counter 52; register 0 used
