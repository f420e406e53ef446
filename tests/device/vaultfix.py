# Vaults for on-device tests, each in a store directory of its own.
import os

from vault import Vault
from vault.store import Store

ROOT = "/test-store"
PIN = bytearray(b"246810")
UNBLOCK_KEY = b"\x5a" * 32
ITEMS = {
    "device.key": b"device private key",
    "device.cert": b"device certificate",
    "issuer.ca": b"issuer CA",
    "dukpt.ik": bytes(range(16)),
    "dukpt.ksn": bytes.fromhex("1234567890123456"),  # the initial key id: KSN counter 0
    "issuer.unblock": UNBLOCK_KEY,
    "issuer.update": b"issuer update key",
}


class Recorder:
    """Stands in for time.sleep_ms and records the delays asked for."""

    def __init__(self):
        self.delays = []

    def __call__(self, ms):
        self.delays.append(ms)


class Clock:
    def __init__(self, now=1_800_000_000):
        self.now = now

    def __call__(self):
        return self.now


def clean(root=ROOT):
    try:
        for name in os.listdir(root):
            os.remove(root + "/" + name)
        os.rmdir(root)
    except OSError:
        pass


def factory(root=ROOT, clock=None, **policy):
    clean(root)
    vault = Vault(Store(root), clock=clock or Clock(), sleep_ms=Recorder()).open()
    if policy:
        vault.set_policy(**policy)
    return vault


def provisioned(root=ROOT, **kw):
    vault = factory(root, **kw)
    for item, data in ITEMS.items():
        vault.provision(item, data)
    vault.finish_provisioning()
    return vault


def personalized(root=ROOT, **kw):
    vault = provisioned(root, **kw)
    vault.set_pin(PIN)
    return vault


def reopened(vault):
    """The same store opened afresh, as after a reboot."""
    vault.store.close()
    return Vault(Store(vault.store.root), clock=vault.clock, sleep_ms=vault.sleep_ms).open()
