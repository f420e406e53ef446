"""Attacks on the bank's ISO 8583 input (issue 17): malformed messages (166 of 2,000 killed the
device's connection with an unhandled KeyError or EncodeError). Every one must be answered with
a format error (30, as the answer of its MTI; 0810 when the MTI cannot be read) or the 63 of a
bad MAC, the connection kept, and a good message served after; and a bounded, seeded fuzz of
the host's handler: no exception, every request answered.
"""

import asyncio
import collections
import random

import iso8583
import pytest

from tests.host import bankfix
from tools.bank import wire
from tools.bank.spec import SPEC

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning",
                                        "ignore::cryptography.utils.CryptographyDeprecationWarning")
FUZZ_SEED, FUZZ_COUNT = 17, 2000


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def unknown_field(raw):
    """raw with bitmap bit 5 (DE5, not in the protocol) set."""
    return raw[:4] + bytes((raw[4] | 0x08,)) + raw[5:]


def test_malformed_messages_get_a_format_error_and_the_connection_stays(bank):
    async def go():
        t = await bankfix.terminal(bank.state, bank.address)
        await t.sign_on()
        t._reader_task.cancel()        # frames read here, whatever their MTI and STAN
        await asyncio.gather(t._reader_task, return_exceptions=True)
        good, doc, _ = t.build("0200", {"3": "400000", "4": "00000000010x", "49": "978", "102": "ALICE",
                                        "103": "BOB"})            # DE4 not numeric, MAC good
        bad = [b"", b"garbage", b"\xff" * 5000, unknown_field(t.build("0800", {"70": "301"})[0]),
               good, good[:-20] + good[-8:]]
        answers = []
        for raw in bad:
            t.writer.write(len(raw).to_bytes(2, "big") + raw)
            answers.append(wire.decode(await wire.read_frame(t.reader)))
        echo, _, _ = t.build("0800", {"70": "301"})
        t.writer.write(wire.frame(echo))
        answers.append(wire.decode(await wire.read_frame(t.reader)))
        t.writer.close()
        return answers
    answers = run(go())
    assert [(a["t"], a["39"]) for a in answers] == [("0810", "30")] * 4 + [("0210", "30"), ("0210", "30"),
                                                                             ("0810", "00")]
    assert bank.state.ledger.account("ALICE")["balance"] == 100000


def _seeds(bank):
    """Well-formed messages of every kind the device sends (their MACs good)."""
    async def go():
        t = await bankfix.terminal(bank.state, bank.address)
        await t.close()
        card = bankfix.make_card()
        out = [t.build("0800", {"70": "001"})[0], t.purchase_message(card, 1500, pin="1234")[0],
               t.purchase_message(card, 700, order="A-1")[0],
               t.build("0200", {"3": "310000", "102": "ALICE"})[0],
               t.build("0200", {"3": "400000", "4": "%012d" % 5, "49": "978", "102": "ALICE", "103": "BOB"})[0],
               t.build("0400", {"3": "000000", "4": "%012d" % 1500, "39": "68", "49": "978",
                                "90": "0200000001" + "1205101010" + "0" * 22})[0],
               t.build("0620", {"37": "ABCDEFGHIJKL", "39": "17", "48": "ORD=A-1"})[0],
               t.build("0610", {"39": "00"})[0]]
        return out
    return run(go())


def _mutate(rng, raw):
    raw = bytearray(raw)
    how = rng.randrange(6)
    if how == 0:                                        # bytes flipped
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    elif how == 1:                                      # cut short
        del raw[rng.randrange(len(raw)):]
    elif how == 2:                                      # bytes inserted
        at = rng.randrange(len(raw) + 1)
        raw[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
    elif how == 3:                                      # a bitmap bit
        at = 4 + rng.randrange(8)
        raw[at] ^= 1 << rng.randrange(8)
    elif how == 4:                                      # a length prefix or a digit changed
        at = rng.randrange(12, len(raw)) if len(raw) > 12 else 0
        raw[at] = rng.choice(b"0123456789:A \x00\xff")
    else:                                               # a field re-encoded with a wrong value
        doc, _ = iso8583.decode(bytes(raw), SPEC)
        de = rng.choice([k for k in doc if k.isdigit() and k not in ("1", "64", "128")])
        doc.pop("p", None)
        doc.pop("1", None)
        doc[de] = rng.choice(["", "X", "99999999999999999999", "ÿ", "-1", "0" * 3])
        try:
            raw = bytearray(iso8583.encode(doc, SPEC)[0])
        except (iso8583.EncodeError, KeyError, ValueError):
            pass
    return bytes(raw)


def test_fuzz_the_hosts_iso8583_input(bank):
    seeds = _seeds(bank)
    rng = random.Random(FUZZ_SEED)
    counts = collections.Counter()
    handle = bank.host.bank.handle
    ikid = bank.state.ledger.device("PT000001")["ikid"]
    for _ in range(FUZZ_COUNT):
        raw = _mutate(rng, rng.choice(seeds))
        out = handle("PT000001", raw, ikid)          # must not raise
        head = raw[:4]
        request = not (len(head) == 4 and head.isdigit()) or head[2] in b"02468"
        if out.answer is None:
            assert not request, raw
            counts["no answer (an answer's MTI)"] += 1
            continue
        ans = wire.decode(out.answer)
        assert ans["39"].isdigit() and len(ans["39"]) == 2
        counts[ans["39"]] += 1
    print("\nbank ISO 8583 fuzz, seed %d: %d messages, answers by DE39: %s" % (
        FUZZ_SEED, FUZZ_COUNT, dict(sorted(counts.items()))))
    assert counts["30"] and "96" not in counts, counts
