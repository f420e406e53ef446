"""Application selection (EMV Book 1 section 12; Book B for contactless): the candidate list
from the PSE's directory (contact), the PPSE's FCI (contactless) or the terminal's AID list,
then the final SELECT of the one the priority, or the cardholder, picks.
"""

from emv import awaited, tlv

PSE = b"1PAY.SYS.DDF01"
PPSE = b"2PAY.SYS.DDF01"
SW_BLOCKED = 0x6283  # selected file invalidated: a blocked application
_MAX_RECORDS = 16  # a PSE directory holds a few entries; a card saying more is looping


class Candidate:
    __slots__ = ("aid", "label", "priority")

    def __init__(self, aid, label, priority):
        self.aid = aid
        self.label = label
        self.priority = priority  # 87: b8 confirmation required, b4-b1 order (0: none)

    @property
    def confirm(self):
        return bool(self.priority & 0x80)

    def rank(self):
        p = self.priority & 0x0F
        return p if p else 16


def _matches(aid, terminal_aids):
    for t in terminal_aids:
        if aid[:len(t)] == t:  # exact, or partial: the card's AID extends the terminal's
            return True
    return False


def _entry(body, terminal_aids, out):
    """A directory entry (61's value) into out when its AID is one the terminal has."""
    fields = tlv.flatten(body)
    aid = fields.get(0x4F)
    if aid is None or not 5 <= len(aid) <= 16:
        return
    if _matches(aid, terminal_aids) and not any(c.aid == aid for c in out):
        pr = fields.get(0x87)
        out.append(Candidate(aid, fields.get(0x50) or aid, pr[0] if pr else 0))


def _entries(data, terminal_aids, out):
    """Every 61 entry at any depth of a record or FCI."""
    for tag, value in tlv.decode(data):
        if tag == 0x61:
            _entry(value, terminal_aids, out)
        elif tlv.is_constructed(tag):
            _entries(value, terminal_aids, out)


async def from_pse(ch, terminal_aids):
    """The candidates from the PSE's directory records, or None when the card has no PSE."""
    fci, sw = await ch.select(PSE)
    if sw != 0x9000:
        return None
    sfi = tlv.find(fci, 0x88)
    if sfi is None or len(sfi) != 1 or not 1 <= sfi[0] <= 30:
        return None
    out = []
    for n in range(1, _MAX_RECORDS + 1):
        rec, sw = await ch.read_record(sfi[0], n)
        if sw == 0x6A83:
            break
        if sw != 0x9000 or not rec or rec[0] != 0x70:
            return None  # Book 1 12.3.2: a broken directory -> the AID list
        _entries(rec, terminal_aids, out)
    return out


async def from_ppse(ch, terminal_aids):
    """The candidates from the PPSE's FCI (BF0C entries), or None when the card has no PPSE."""
    fci, sw = await ch.select(PPSE)
    if sw != 0x9000:
        return None
    out = []
    _entries(fci, terminal_aids, out)
    return out


async def from_aid_list(ch, terminal_aids):
    """SELECT each of the terminal's AIDs, and each next occurrence of a partial match."""
    out = []
    for t in terminal_aids:
        first = True
        for _ in range(_MAX_RECORDS):
            fci, sw = await ch.select(t, first)
            first = False
            if sw not in (0x9000, SW_BLOCKED):
                break
            fields = tlv.flatten(fci)
            name = fields.get(0x84)
            if name is None or name[:len(t)] != t:
                break
            pr = fields.get(0x87)
            if sw == 0x9000 and not any(c.aid == name for c in out):
                out.append(Candidate(name, fields.get(0x50) or name, pr[0] if pr else 0))
            if name == t:
                break  # an exact match has no next occurrence to look for
    return out


def order(cands):
    """Book 1 12.4: by priority, those with none last; the card's order kept within a rank."""
    return sorted(cands, key=Candidate.rank)


async def final(ch, cands, choose, contactless):
    """Pick one of cands (ordered), SELECT it: (candidate, FCI) or None when none is left or
    the cardholder declined. A candidate whose SELECT fails leaves the list (cands is updated)."""
    while cands:
        if contactless:
            pick = 0  # Book B 3.3.3: the highest priority, no cardholder dialog
        elif len(cands) > 1 or cands[0].confirm:
            pick = await awaited(choose([c.label for c in cands]))
            if pick is None or not 0 <= pick < len(cands):
                return None
        else:
            pick = 0
        c = cands[pick]
        fci, sw = await ch.select(c.aid)
        if sw == 0x9000 and tlv.find(fci, 0x84) == c.aid:
            return c, fci
        cands.pop(pick)
    return None
