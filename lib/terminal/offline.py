"""Offline approvals and their batch (issue 21 part 3; tools/bank/PROTOCOL.md, "Offline approvals
and their advices"): a card purchase the card approves with its TC while the bank is away (or,
below the floor limit, by the kernel's own risk management), stored on flash and told to the bank
as a 0220 advice when it is back, in order, exactly once.

    cfg = limit(update.config.kernel("978"), up)   # the caps folded into the floors, online as
                                                    # the uplink is (up None: no offline approval)
    record = prepare(up, cfg, result, 1250, "978") # the TC's advice (OverCaps: none)
    advice = store(up, record)                # its STAN taken, on flash (the kernel let go of in between)
    await forward(up)                         # the batch, oldest first, until one is not taken
    waiting()                                 # the keys of the advices not forwarded yet
    refused()                                 # the references of those the bank refused

The terminal's parameters are the issuer's, signed (lib/update/config.py: its "terminal"
section, /config/terminal.json, with "offline_caps": [per payment, total, count] beside the floor
limits). The caps (TerminalConfig.offline_caps) lower the floor limits the kernel sees to what
is left of them, so the kernel's terminal risk management and action analysis (EMV Book 3 10.6, 10.7)
decide with them: beyond them a payment is not approved offline, it goes online or, the bank
away, is declined offline.

The batch is a Journal (lib/uplink/journal.py) of its own folder, /batch: one small file per
advice, written whole (a temporary file renamed) before the cardholder is told, removed at its
0230; RAM holds only the file names. A record's key is its DE11 and DE7, fixed when it is
stored, and its amount ("<stan><de7>_<amount>": the caps are counted from the names, no file
read). A power cut before the rename loses the record with the approval not yet shown (the
card's TC is never told to anyone); after it, the advice is sent at the next sign-on. A cut
after the host posted it and before the record's removal sends it again: the host answers a
repeat (same DE41 + DE11 + DE7) with its first answer and posts nothing more.
"""

from micropython import const
from terminal.link import BATCH
from uplink.journal import REVERSALS

# The references (DE11 + DE7) of the last advices the bank refused for good: a card's approval
# that was never paid, which History says so (not "approved" only) and does not offer to give
# back. One small file, the newest last; older refusals than these are no longer marked.
REFUSED = BATCH + ".refused"
_REFUSED_KEPT = const(16)

# The host's decisions on an advice (PROTOCOL.md): 00 posted, the others refused for good (a TC
# that does not verify or is not this advice's, a card unknown, blocked or expired, a message it
# cannot read, a TC posted already). Any other answer (91, 96: not now; 63: not acted on) keeps
# it, with those behind it, for the next sign-on.
_FINAL = ("00", "05", "12", "13", "14", "30", "54", "57", "94")

_forwarding = False  # one forwarder at a time: an advice sent twice at once would be posted once
_again = False  # an advice stored while the forwarder ran: it goes round once more


class OverCaps(Exception):
    """The approval is beyond what the caps leave (a card that approved more than was asked)."""


class Advice:
    """What the terminal has instead of the bank's answer for an offline approval: no RRN yet;
    the advice's key names it (History's reference: its DE11 + DE7)."""

    rrn = None

    def __init__(self, key, pan):
        self.key = key
        self.pan = pan  # the card's: the advice stands for the kernel's result, let go of before
        self.reference = key[:key.find("_")]


def _batch():
    from uplink.journal import Journal

    return Journal(BATCH)


def _amount(key):
    return int(key[key.rfind("_") + 1:])


def waiting():
    """The keys of the advices not yet forwarded, oldest first."""
    return _batch().keys()


def refused():
    """The references of the last advices the bank refused (REFUSED), oldest first."""
    try:
        with open(REFUSED) as f:
            return f.read().split()
    except OSError:
        return []


def _refuse(key):
    reference = key[:key.find("_")]
    kept = refused()
    if reference not in kept:  # a cut before the record's removal: the same refusal again
        import flashfs

        flashfs.write_whole(REFUSED, "\n".join((kept + [reference])[-_REFUSED_KEPT:]))


def room(cfg, keys):
    """The most that may be approved offline now, from the caps and the advices waiting (keys)."""
    per_transaction, total, count = cfg.offline_caps
    if len(keys) >= min(count, REVERSALS):  # the batch's files, at most the journal's cap
        return 0
    return max(0, min(per_transaction, total - sum(_amount(k) for k in keys)))


def limit(cfg, up):
    """cfg (the kernel's TerminalConfig with the issuer's parameters) for one payment; up, the
    uplink, when it may be approved offline (None: it may not, as a merchant's request, which
    is the bank's). The floor limits lowered to what the caps leave (to 0 without up: every
    payment online; offline_caps None); where the parameters allow offline approvals at all,
    online only while the uplink is signed on: the kernel decides offline (where they allow
    none, it goes online, and the failure says the bank is away). cfg, returned."""
    left = 0
    if up is None:
        cfg.offline_caps = None
    else:
        left = room(cfg, waiting())
        if cfg.floor_limit or any(floor for _, _, _, floor in cfg.contactless_limits):
            cfg.online = up.connected
    # Contact: at or above the floor limit is "exceeded" (Book 3 10.6.1); contactless: above it
    # (Book A 3.1.1). Both allow `left` at most.
    cfg.floor_limit = min(cfg.floor_limit, left + 1 if left else 0)
    cfg.contactless_limits = tuple((rid, top, cvm, min(floor, left)) for rid, top, cvm, floor in cfg.contactless_limits)
    return cfg


def prepare(up, cfg, result, amount, currency):
    """The advice of the card's offline approval (an emv.kernel Result, APPROVED with a TC): its
    record's fields, for store(). Apart so that the card flow lets go of the kernel, the slot's
    driver and their modules (~8 KB) before anything is written, the offline flow's peak: the
    STAN too is taken by store() (its counter's write opens a file, ~380 bytes, which here, the
    kernel still in, was a block a steady unit's heap had no hole for). OverCaps beyond what the
    caps leave: the kernel was given a floor limit below them, so only a card approving more
    than it was asked gets there."""
    from uplink import _card_fields, _now

    if amount > room(cfg, waiting()):
        raise OverCaps("%d beyond the offline caps" % amount)
    fields = {3: "000000", 4: amount, 49: currency, 42: up.merchant}
    fields[7], fields[12], fields[13] = _now()
    _card_fields(result, fields)
    fields.pop(35, None)  # track 2 is not kept (PCI DSS); the host finds the card by its PAN
    record = {}
    for de in fields:
        v = fields[de]
        if v is not None:
            record[str(de)] = v.hex() if isinstance(v, bytes) else v
    return {"fields": record}


def store(up, record):
    """The advice (prepare's record) with its STAN, on flash when this returns; its Advice, its
    PAN History's."""
    fields = record["fields"]
    fields["11"] = up.journal.next_stan()
    record["key"] = "%s%s_%d" % (fields["11"], fields["7"], fields["4"])
    _batch().queue(record)
    return Advice(record["key"], fields.get("2"))


async def forward(up):
    """Send the batch's advices, oldest first, each removed at its final answer; stops at the
    first the host does not take now (unanswered, 91, 96): the rest wait for the next sign-on."""
    global _forwarding, _again
    _again = True
    if _forwarding:
        return
    _forwarding = True
    try:
        while _again:
            _again = False
            if not await _round(up):
                return
    finally:
        _forwarding = False


async def _round(up):
    from uplink import UplinkError

    batch = _batch()
    for key in batch.keys():
        entry = batch.entry(key)
        if entry is None:
            continue
        fields = {}
        for de, v in entry["fields"].items():
            fields[int(de)] = bytes.fromhex(v) if de == "55" else v
        try:
            answer = await up.advise(fields)
        except UplinkError:
            return False
        if answer.rc not in _FINAL:
            return False
        if not answer.approved:
            print("offline: advice %s refused by the bank (%s)" % (key, answer.rc))
            _refuse(key)  # before the record goes: History must not go on saying "approved"
        batch.done(key)
    return True
