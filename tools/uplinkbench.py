"""What the uplink's messages allocate: `python -m tools.bench uplink`.

On the virtual handheld (the MicroPython unix port, its heap as the board's), with a real vault
provisioned with a DUKPT initial key, and the garbage collector disabled around each measure so
that gc.mem_alloc() counts every byte allocated (RUNS runs, the first one paying for
first uses: the median is printed, each run's figure after it):

    keys      Dukpt.next_keys(): the next KSN, its state stored in the vault, the PIN and MAC keys
    build     Uplink.message() of a contactless purchase's 0200 with an online PIN: the keys, the
              PIN block, the ISO 8583 encoding and its AES-CMAC
    send      Uplink._send() of the same: the build, the frame, the write (to a writer that only
              counts the bytes: the TLS stream's own buffers are not the uplink's)
    parse     Uplink._receive() of its 0210 (DE55 with an ARPC): decode, MAC check, the Answer
"""

import tempfile
from pathlib import Path
from statistics import median

from tools import image
from tools.bench import ALLOCATED
from tools.device import Device
from tools.vdevice.spawn import VDeviceProcess

RUNS = 5

SETUP = """
import asyncio, gc
import aescmac, iso8583
from uplink import Uplink
from vault import Vault
from vault.store import Store
try:
    for _n in __import__('os').listdir('/bench-uplink'):
        __import__('os').remove('/bench-uplink/' + _n)
except OSError:
    pass
v = Vault(Store('/bench-uplink')).open()
for _item, _data in (('device.key', b'k'), ('device.cert', b'c'), ('issuer.ca', b'ca'),
                     ('dukpt.ik', bytes(range(16))), ('dukpt.ksn', bytes.fromhex('1234567890123456')),
                     ('issuer.unblock', b'\\x5a' * 32), ('issuer.update', b'u')):
    v.provision(_item, _data)
v.finish_provisioning()
up = Uplink(v, {'host': 'bank.invalid', 'port': 8583, 'serial': 'PT000001', 'merchant': 'PT000001MERCH01'})
class Sink:
    n = 0
    def write(self, data):
        self.n += len(data)
    async def drain(self):
        pass
    def close(self):
        pass
up._writer = Sink()
PAN = '4761739001010010'
ICC = bytes.fromhex('9f2608c2c12b098f3da6e39f2701809f10120110a0000f040000000000000000000000ff'
                    '9f3704a1b2c3d49f360200019505000000000082023c009a032611219c01005f2a0209789f02060000000012509f1a020978')
def purchase():
    return {3: '000000', 4: 1250, 7: '1121083015', 11: '000123', 12: '083015', 13: '1121', 14: '3012',
            22: '071', 23: '001', 35: '4761739001010010D30122011143804400000', 42: 'PT000001MERCH01',
            49: '978', 2: PAN, 55: ICC}
def run(coro):
    try:
        coro.send(None)
    except StopIteration as e:
        return e.value
    raise RuntimeError('the coroutine waited')
def answer():
    ksn = up._latest
    f = {3: '000000', 4: '000000001250', 7: '1121083016', 11: '000123', 37: '000000000777', 38: 'A1B2C3',
         39: '00', 41: 'PT000001', 53: ksn, 55: bytes.fromhex('910a1122334455667788303071')}
    raw = bytes(iso8583.with_mac('0210', f, lambda d: aescmac.cmac(up._macs[ksn], d)))
    up._pending[('0210', '000123')] = [asyncio.Event(), None, ksn]
    return raw
def measure():
    f = purchase()
    out = {}
    out['keys'] = allocated(lambda: up.dukpt.next_keys())
    out['build'] = allocated(lambda: up.message('0200', f, pin=bytearray(b'1234'), pan=PAN))
    f = purchase()
    out['send'] = allocated(lambda: run(up._send('0200', f, bytearray(b'1234'), PAN)))
    raw = answer()
    out['parse'] = allocated(lambda: up._receive(raw))
    if up._pending[('0210', '000123')][1].rc != '00':
        raise RuntimeError('the 0210 was not taken')
    return out
"""


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image.build(tmp / "flash.img")
        with VDeviceProcess(tmp / "flash.img", tmp / "state") as vd:
            dev = Device(vd.repl)
            try:
                dev.exec(ALLOCATED + SETUP, timeout=60)
                runs = [dev.eval("measure()", timeout=60) for _ in range(RUNS)]
            finally:
                dev.close()
    print("heap allocated per message (bytes, the median of %d runs, collector off):" % RUNS)
    for what, label in (("keys", "DUKPT next_keys (state stored in the vault)"),
                        ("build", "0200 built: keys, PIN block, ISO 8583, MAC"),
                        ("send", "0200 built and sent (framed, written)"),
                        ("parse", "0210 parsed: decode, MAC check, Answer")):
        print("  %-45s %6d   (runs: %s)" % (label, median(r[what] for r in runs), " ".join(str(r[what]) for r in runs)))
    print("  %-45s %6d" % ("0200 built and sent, the keys' median aside",
                           median(r["send"] for r in runs) - median(r["keys"] for r in runs)))

if __name__ == "__main__":
    main()
