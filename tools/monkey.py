"""The monkey: a seeded soak that drives the demo terminal at random, as a person and the world
would, through the rig only, and checks the invariants all along and at the end.

    python -m tools.monkey [--seed N] [--minutes M] [--actions K] [--keep-going]

The demo terminal is tests/host/terminalfix.py's (the real bank host on the demo's state, a
virtual handheld of its own, personalised, the app running from main.py). At its start the monkey
publishes, as the issuer does, terminal parameters that allow offline approvals (FLOOR,
OFFLINE_CAPS: the demo's floors are 0) and waits until the device has taken them, so that a
small card purchase, the bank away or not, may be approved by the card alone ("Approved
offline") and told to the bank later in a 0220 advice. Each action is one of:

    screen    a tap on a button of the screen shown (from its `screen {json}` line), at a random
              point, or a swipe; on a PIN pad the right PIN, a wrong one (never so many that the
              vault would block), part of one or Cancel; on the amount pad an amount; on the
              keyboard a password (the Wi-Fi's, or not)
    card      a test card (tools/emvcard, the faulty ones too) into the slot (sometimes with a
              dirty contact: parity errors, a mute line) or out of it
    nfc       a test card, or a tag that is no payment card, onto the antenna or off it
    reader    a shop's or a gate's reader at the handheld in card mode, or leaving
    finger    an enrolled finger or a stranger's on the R503 (sometimes wet, partial, faulty), or
              the sensor mute while it is asked for one (its UART lost)
    wifi      the access point off or on, or cut just after the next message up (the bank has
              it, its answer is lost)             bank      the bank host stopped or started
    push      a merchant's payment request        standby   the standby key
    power     a power cut (now, or at one of the next flash operations)
    wait      nothing for a while (a screen under way finishes, a timeout comes)
The screen shown weighs the choice (a card when one is asked for, a finger on the sensor's
prompt); outages end within MAX_OUTAGE actions, inside the bank's reversal window. From the home
menu it sets out now and then on an errand (ERRANDS: each Settings entry, Forget Wi-Fi, adding
and deleting a fingerprint, the history), those for screens not reached yet first; and, the bank
away, most often on a purchase in the outage (an amount below the floor, the card that approves
offline, its PIN; the outage held until the purchase ends): how "Approved offline" comes about.
The end counts those purchases by the screen each ended at.

Checked after every action: no interpreter crash or app restart other than after a power cut
(the console: a traceback, "terminal: crashed", MemoryError; the rig's boot count against its
power cuts; the virtual handheld's log); no "Something went wrong" screen, nor "Bank not
trusted" (the demo's bank is genuine: an outage is not an attack); the vault never blocked; a
screen drawn at least every HUNG_S seconds. At the end (Wi-Fi and bank back, cards out):
- every "Approved" screen (and a transit top-up's "Topped up") matched by exactly one approved,
  unreversed transaction at the bank, of its amount, with one debit and postings that balance;
- every "Approved offline" screen matched by exactly one advice the bank posted (of its amount,
  stored by the device just before the screen: its DE7), one debit, postings that balance; every
  advice the bank has, by such a screen (or a power cut just after it was stored); none refused
  (the card approved: a refused advice is a payment never paid);
- every approved transaction of the device either shown "Approved" (or "Topped up") or reversed (one a power cut
  followed within 30 s excepted: counted and listed), every reversal taken (00, or 25: the
  bank never had the original), every request the bank calls paid paid by an approval that stands;
- money conserved over all accounts (the bank's clearing account included);
- the device's reversal journal and its batch of advices drained to the bank (looked at through
  the REPL; if they are not, one more boot, then they must be), and its crash log empty.

The end also lists the screens of SCREENS that the run reached and those it never did.

A failure prints the seed, the action number, the last actions and the console's tail, and keeps
the run's evidence; the same --seed replays the same choices (the device's timing may differ).
"""

import argparse
import collections
import datetime
import json
import random
import re
import shutil
import struct
import sys
import tempfile
import time
import traceback
import urllib.error
from pathlib import Path

from tools import demo, emvcard
from tools.bank.spawn import HostProcess
from tools.bank.state import State
from tools.screenshots import screen_line

# What the console must never show (the supervisor's restart line, a traceback, the heap out).
CRASH_SIGNS = ("Traceback (most recent call last)", "terminal: crashed", "MemoryError", "Segmentation fault",
               "Fatal error", "FATAL")
# What the virtual handheld's own log says when the interpreter died of something else than a cut.
VDEVICE_CRASH = ("device process ended", "keeps dying")
# Screens that must never show here: terminal/errors.py FAILED (an error nobody named), and
# BANK_REFUSED (the demo's bank is the genuine one: whatever the outage, it is not an attack).
NEVER = {"Something went wrong": "an error nobody named", "Bank not trusted": "the genuine bank called untrusted"}
SIGNED_ON = "0800/001 -> 00"
REVERSAL = ": 0400 STAN"
ADVICE = ": 0220/000000 STAN"  # an offline approval's advice, as the bank's log has it
FINANCIAL = ("purchase", "request-payment", "transfer", "top-up")

# The terminal parameters the monkey publishes at its start (the issuer's, signed, taken at the
# device's next sign-on: docs/updates.md), beside the demo's CA keys: offline approvals below a
# floor of €15.00, contact and contactless, within caps of €15.00 a payment, €30.00 and 3 advices
# waiting (terminal.offline). About half the amount pad's small purchases are below them, so that
# with the bank away some are approved by the card alone, and with it there the card's own
# velocity limits and the caps still send some online; the per-payment cap within the host's
# (tools/bank/host.py OFFLINE_CAP), or the bank would refuse what the terminal approved.
FLOOR = 1500
OFFLINE_CAPS = (1500, 3000, 3)
# An advice's DE7 (MMDDhhmmss UTC, when the terminal stored it) is at most this long before the
# "Approved offline" screen that follows it (the card's completion, History, the screen's draw,
# and the monkey's reading of the console, which a wait or a power cut may hold back).
ADVICE_TO_SCREEN = datetime.timedelta(seconds=120)

# The card's PIN pad (its title); every other pad is the owner's (Unlock, Confirm with PIN,
# Change PIN, the shop confirmation's Enter PIN).
CARD_PAD = "Card PIN"
# Wrong owner PINs in a row the monkey allows itself: the vault blocks at max_fails (10), and a
# power cut during a check counts one more; well below, so that the soak never blocks it, and
# above its FREE_ATTEMPTS (3), so that the wrong-PIN delay's countdown is met.
OWNER_WRONG_MAX = 5

# Cards: the bank's (they can pay), the broken ones (they end in the kernel), weights.
CARDS = (("visa-classic", 6), ("bank-b-debit", 3), ("two-apps", 1), ("mastercard-sda", 1), ("decline", 1),
         ("refuse-arpc", 1), ("blocked", 0.5), ("expired", 0.5), ("bad-cert", 0.5), ("lying-lengths", 0.5),
         ("malformed-tlv", 0.5))
OWNER_FINGERS = ("owner-right-thumb", "owner-left-index")
STRANGERS = ("stranger-index", "stranger-thumb")
# A shop's (or a gate's) reader at the handheld in card mode (terminal/emulate.py, lib/nfc): the
# applets' AIDs, and the shop confirmation's PREPARE (amount, currency, nonce, merchant).
TRANSIT_AID = b"\xf0PT-TRANSIT"
CONFIRM_AID = b"\xf0PT-CONFIRM"
MERCHANTS = [name for name, _ in demo.MERCHANTS]
# The screens just before a payment goes to the bank: where a lost link matters most.
MONEY_SCREENS = ("Payment request", "Transfer", "Confirm with PIN", "Card PIN", "Authorising", "Reading card",
                 "Insert or tap card")

# Outages the monkey ends itself (actions): the bank refuses a reversal of an approval older
# than its window (tools/bank/host.py REVERSAL_WINDOW, 600 s); the soak's stay well inside.
MAX_OUTAGE = 25
# The longest the app may go without drawing a screen while the monkey keeps at it: a flow that
# hangs (an await that never ends; a loop that never yields is the watchdog's, a reboot) shows here.
HUNG_S = 240

# Buttons a person on that screen taps more often than the others (labels with their digits
# as N), and the ones they seldom do; every other button weighs 1.
PREFER = {
    "Pocket Terminal": {"Pay requests (N)": 5, "Purchase": 4, "Balance": 2, "Transfer": 2, "More": 3,
                        "Lock": 0.3, "Back": 0.3},
    "Payment request": {"Pay": 4, "Refuse": 0.7, "Back": 0.5},
    "Transfer": {"Confirm": 3},
    "Confirm": {"Confirm": 3},
    "Pay requests": {"Back": 0.3},
    "Pay with": {"Back": 0.4},
    "Locked": {"PIN": 3, "Fingerprint": 2},
    "Wi-Fi": {"Back": 3, "Forget PocketNet": 0.3},
    "Forget PocketNet?": {"Keep": 3},
    "Clear history?": {"Keep": 3},
    "Settings": {"Back": 2},
    "Fingerprints": {"Back": 2},
}
# With the bank away (its host stopped, the access point off), the home menu's Purchase weighs
# more: a card purchase then is where an offline approval comes from (the other ways to pay are
# the bank's), and random taps alone seldom get a card to the PIN pad inside an outage.
OUTAGE_PREFER = {"Pocket Terminal": {"Purchase": 12}}
# Shopping in an outage: set out on from the home menu now and then while the bank is away, as
# a person who needs the purchase does it: an amount below the floor, the card that approves
# offline (its own offline limit above FLOOR), in the slot, its right PIN; the outage held until
# the purchase ends (or SHOPPING_PATIENCE actions pass). Random taps alone never got a card's TC
# in six 8-minute runs: the bank came back first, the amount was above the floor, another card
# was brought.
SHOPPING_CARD = "visa-classic"
SHOPPING_PATIENCE = 16
# Where a person goes to put the Wi-Fi back after "Forget": the button to tap on each screen.
TO_WIFI = {"Pocket Terminal": ("Settings", "More"), "Settings": ("Wi-Fi",), "Wi-Fi": ("PocketNet",)}
# Errands: what a person sets out to do from the home menu, the buttons tapped in turn (a menu's
# pages turned with "More" until the entry shows; N a number); then the screen's own weights
# again. Random taps alone seldom get three menu pages deep, so these are chosen now and then
# from the home menu, those whose screens the run has not reached yet first.
ERRANDS = {
    "Wi-Fi": ("Settings", "Wi-Fi"),
    "Forget Wi-Fi": ("Settings", "Wi-Fi", "Forget PocketNet", "Forget"),
    "Change PIN": ("Settings", "Change PIN"),
    "Add fingerprint": ("Settings", "Fingerprints", "Add a fingerprint"),
    "Delete fingerprint": ("Settings", "Fingerprints", "Delete fingerprint N"),
    "Lock timeout": ("Settings", "Lock timeout"),
    "Diagnostics": ("Settings", "Diagnostics"),
    "History": ("History",),
    "Clear history": ("History", "Clear history"),
    "Card mode": ("Card mode",),
    "Balance": ("Balance",),
    "Transfer": ("Transfer",),
}
# The screens an errand is for (its titles): an errand whose screens are all reached weighs less.
ERRAND_SCREENS = {
    "Wi-Fi": ("Wi-Fi", "Connected"), "Forget Wi-Fi": ("Forget PocketNet?", "Forgotten"),
    "Change PIN": ("Change PIN", "PIN changed"), "Add fingerprint": ("Add fingerprint", "Fingerprint added"),
    "Delete fingerprint": ("Fingerprints",), "Lock timeout": ("Lock after",), "Diagnostics": ("Diagnostics",),
    "History": ("History",), "Clear history": ("Clear history?",), "Card mode": ("Card mode",),
    "Balance": ("Balance",), "Transfer": ("Transfer",),
}
ERRAND_PATIENCE = 12  # actions without a step of the errand taken: given up
# Every screen the monkey should meet (titles, numbers as N): the end says which it reached and
# which it never did. Left out: what the demo cannot show (Blocked, Not set up, a Tampered
# store, keys used up, a full sensor) and what a genuine bank never causes (Bank not trusted).
SCREENS = (
    # the lock, the home menu, the owner's proof
    "Locked", "Unlock", "Wrong PIN", "Wrong PINs", "Pocket Terminal", "Confirm with PIN", "Confirm with fingerprint",
    "PIN required",
    # payments
    "Payment request", "Pay requests", "Pay with", "Amount", "Insert or tap card", "Reading card", "Card PIN",
    "Authorising", "Approved", "Approved offline", "Bank needed", "Declined", "Refusing", "Refused", "Request expired", "Card removed",
    "Card not readable", "Card blocked", "Insert the card",
    # the bank out of reach, each way the monkey causes
    "No network", "No answer from the bank", "Bank not available",
    # accounts
    "Bank", "Balance", "From", "To", "Transfer", "History", "Clear history?",
    # card mode
    "Card mode", "Transit card", "Shop confirmation", "Confirm", "Enter PIN",
    "Top up from", "Top-up", "Topped up", "Too much for the card", "Transit card full",
    # Settings
    "Settings", "Wi-Fi", "Forget PocketNet?", "Forgotten", "Connected", "Change PIN", "PIN changed", "Fingerprints",
    "Add fingerprint", "Fingerprint added", "Lock after", "Diagnostics",
    # the fingerprint's failures
    "Not recognised", "Too slow", "Not readable", "Different fingers", "Sensor not answering",
)


class Finding(AssertionError):
    """An invariant broken: what the monkey is for."""


def _label(text):
    return re.sub(r"\d+", "N", text)


def _title(screen):
    title = screen["title"]
    return "Locked" if title.startswith("Locked") else title


def _euros(text):
    """The first amount a screen's text shows, in cents ("€1,000.00" -> 100000), or None."""
    m = re.search(r"€([\d,]+)\.(\d\d)", text or "")
    return int(m[1].replace(",", "")) * 100 + int(m[2]) if m else None


def apdu(head, data=b""):
    return bytes.fromhex(head) + (bytes((len(data),)) + data if data else b"") + b"\x00"


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


class Monkey:
    def __init__(self, terminal, seed, out=print, keep_going=False):
        self.t = terminal
        self.keep_going = keep_going  # a crash, a wrong screen, a hang: noted, and on (fail())
        self.findings = []
        self.trail = []  # every action: (time, number, action, the screen shown then)
        self.seed = seed
        self.rng = random.Random(seed)
        self.out = out
        self.n = 0  # actions done
        self.counts = collections.Counter()  # actions by kind
        self.titles = collections.Counter()  # screens seen, by title
        self.last = collections.deque(maxlen=25)  # the last actions, for a failure's report
        self.screens = []  # every screen line parsed, in order
        self.drawn_at = time.monotonic()  # when the last one was
        self._lines = 0  # console lines looked at
        self._log_at = 0  # the virtual handheld's log, bytes looked at
        self.approved = []  # (rrn, amount, text) of each "Approved" screen
        self.offline = []  # (amount, text, when: UTC) of each "Approved offline" screen
        self.cuts = []  # when each power cut happened (UTC)
        self.restarts = 0  # boots the monkey ordered (not cuts)
        self.slot = None  # the card profile in the slot
        self.field = None  # the card profile on the antenna
        self.last_card = None  # the one presented last (its PIN is the one asked)
        self.card_wrong = collections.Counter()  # wrong PINs typed per card profile
        self.owner_fails = 0  # owner PIN attempts the vault may have counted since its last success
        self.owner_check = False  # a right owner PIN typed, its outcome not seen yet
        self.wifi_up = True
        self.cut_armed = False  # the access point goes down after the next message up (rig)
        self.bank_up = True
        self.down_since = {}  # "wifi"/"bank" -> action number it went down at
        self.wifi_saved = True  # /config/wifi.json holds PocketNet ("Forget" clears it)
        self.pushes = 0
        self.reader = False  # a shop's reader in the field
        self.errand = None  # (name, the buttons still to tap) of the errand under way
        self.errand_since = 0  # the action at which it last took a step
        self.errands = collections.Counter()  # errands set out on
        self.shopping = None  # the action a purchase in an outage was set out on at, until it ends
        self.shopping_seen = None  # the last screen it met (its end, when the home menu comes next)
        self.shopping_ends = collections.Counter()  # how each ended: that screen's title
        self.pins = {name: emvcard.load_profile(name)["pin"] for name, _ in CARDS}

    # ---- what the device shows ------------------------------------------------------------------

    def _read(self):
        """Parse the console lines printed since the last look; check each for a crash."""
        lines = self.t.console.lines
        new, self._lines = lines[self._lines:len(lines)], len(lines)
        for line in new:
            sign = next((sign for sign in CRASH_SIGNS if sign in line), None)
            if sign is not None:
                self.fail("the console says %r: %s" % (sign, line), fatal=False)
            screen = screen_line(line)
            if screen is not None:
                self._seen(screen)

    def _seen(self, screen):
        self.screens.append(screen)
        self.drawn_at = time.monotonic()
        title = _title(screen)
        self.titles[_label(title)] += 1
        text = screen.get("text", "")
        if title in NEVER:
            self.fail("the %r screen (%s): %s" % (title, NEVER[title], text), fatal=False)
        if title == "Blocked":
            self.fail("the vault blocked (the monkey counted %d owner PIN attempts since the last success)"
                      % self.owner_fails)
        if title in ("Approved", "Topped up"):  # a top-up's approval (terminal.topup) is its own screen
            m = re.search(r"Bank reference (\w+)", text)
            self.approved.append((m[1] if m else None, _euros(text), text))
        elif title == "Approved offline":  # no bank reference yet: its advice is posted later
            self.offline.append((_euros(text), text, _now()))
        elif title == "Forgotten":
            self.wifi_saved = False
        elif title == "Connected":
            self.wifi_saved = True
        if self.shopping is not None:
            if title != "Pocket Terminal":
                self.shopping_seen = title
            elif self.n > self.shopping + 1:
                self._shopped()  # the purchase ended (or was given up): back at the home menu
        if self.owner_check and not screen.get("pin_pad") and screen.get("buttons") is not None:
            # The first screen with buttons after a right owner PIN: its outcome.
            self.owner_check = False
            if title != "Wrong PIN":
                self.owner_fails = 0

    @property
    def shown(self):
        """The screen shown last (None before the first)."""
        self._read()
        return self.screens[-1] if self.screens else None

    def settle(self, quiet=0.4, longest=4.0):
        """Wait until the console has been quiet for `quiet` s (at most `longest`)."""
        deadline = time.monotonic() + longest
        count, since = len(self.t.console.lines), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = len(self.t.console.lines)
            if now != count:
                count, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        self._read()

    def wait_screen(self, match, timeout):
        """Wait for a screen for which match(screen) is true, printed from now on; it or None."""
        start = len(self.screens)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read()
            for screen in self.screens[start:]:
                if match(screen):
                    return screen
            time.sleep(0.1)
        return None

    # ---- checks ---------------------------------------------------------------------------------

    def fail(self, why, fatal=True):
        """Raise the Finding; with keep_going, one that the terminal lives through (not fatal:
        the supervisor restarted the app, a screen it should not have shown) is noted instead."""
        tail = "\n".join(self.t.console.lines[-20:]) if self.t.console is not None else "(the app stopped)"
        message = ("%s\nseed %d, action %d; the last actions (number, action, screen shown then):\n  %s\n"
                   "console tail:\n%s" % (why, self.seed, self.n, "\n  ".join(self.last), tail))
        if fatal or not self.keep_going:
            raise Finding(message)
        self.findings.append(message)
        self.out("monkey: FINDING %d (going on)\n%s" % (len(self.findings), message))

    def check(self):
        """The invariants that hold at every moment (module docstring)."""
        self._read()
        status = self.t.rig.call("device")
        unexplained = status["boots"] - (self.boots0 + status["power_cuts"] - self.cuts0 + self.restarts)
        if unexplained:
            self.fail("the device booted %d times, %d of them after a power cut and %d ordered: an app restart"
                      % (status["boots"] - self.boots0, status["power_cuts"] - self.cuts0, self.restarts), fatal=False)
            self.boots0 += unexplained  # noted once
        if time.monotonic() - self.drawn_at > HUNG_S:
            self.fail("no screen drawn for %d s while the monkey acted: the app hangs" % (time.monotonic() - self.drawn_at),
                      fatal=False)
            self.drawn_at = time.monotonic()
        if self.cut_armed and not self.t.rig.call("model", name="wifi")["up"]:
            self.cut_armed = self.wifi_up = False  # it came: an outage like any other
            self._outage("wifi", False)
        with open(self.t.vdevice.log_path, "rb") as f:
            f.seek(self._log_at)
            new = f.read()
        self._log_at += len(new)
        new = new.decode(errors="replace")
        for line in new.splitlines():
            if any(sign in line for sign in VDEVICE_CRASH + CRASH_SIGNS):
                self.fail("the virtual handheld's log says: %s" % line, fatal=False)

    def _ledger(self):
        state = State(self.t.bank.dir)
        try:
            led = state.ledger
            balances = {a["id"]: a["balance"] for a in led.accounts()}
            txs = {r[0]: dict(zip(("rrn", "kind", "rc", "reversed", "amount", "created", "dt"), r)) for r in led.db.all(
                "SELECT rrn, kind, rc, reversed, amount, created, dt FROM transactions WHERE serial = ?", (demo.SERIAL,))}
            postings = collections.defaultdict(list)
            for p in led.postings():
                postings[p["rrn"]].append(p)
            paid = led.db.all("SELECT id, rrn FROM payment_requests WHERE serial = ? AND status = 'paid'", (demo.SERIAL,))
            return balances, txs, postings, paid
        finally:
            state.close()

    def _posted(self, text, amount, tx, legs):
        """An approval shown (text, of amount) and what the bank has for it: one debit of that
        amount, postings that balance."""
        debits = [p for p in legs if p["amount"] < 0]
        if len(debits) != 1 or sum(p["amount"] for p in legs) != 0 or -debits[0]["amount"] != amount \
                or tx["amount"] != amount:
            self.fail("%r was shown; the bank's postings for it: %s (transaction %s)" % (text, legs, tx))

    def check_offline(self, txs, postings, voided):
        """Every "Approved offline" screen matched by exactly one advice the bank posted (00, of
        its amount, its DE7 at most ADVICE_TO_SCREEN before the screen: the closest), and every
        advice the bank has by a screen (one a power cut followed within 30 s of its storing
        excepted: the screen never came); none refused, none reversed but by the owner's void
        (voided: the RRNs the bank's log voided). Returns the advices excused."""
        now = _now()
        advices = []
        for tx in txs.values():
            if tx["kind"] != "offline":
                continue
            if tx["rc"] != "00":
                self.fail("the bank refused an offline approval's advice (%s, %d cents, response code %s): "
                          "approved by the card, never paid" % (tx["rrn"], tx["amount"], tx["rc"]))
            stored = datetime.datetime.strptime("%d%s" % (now.year, tx["dt"]), "%Y%m%d%H%M%S").replace(
                tzinfo=datetime.timezone.utc)
            if stored > now + datetime.timedelta(days=1):  # stored last year (a run over new year)
                stored = stored.replace(year=now.year - 1)
            advices.append((stored, tx))
        for amount, text, at in self.offline:
            hits = [(at - stored, i) for i, (stored, tx) in enumerate(advices)
                    if tx["amount"] == amount and -datetime.timedelta(seconds=5) <= at - stored <= ADVICE_TO_SCREEN]
            if not hits:
                self.fail("%r was shown (at %s), the bank posted no advice of it: %s"
                          % (text, at.strftime("%H:%M:%S"), [tx for _, tx in advices]))
            _, tx = advices.pop(min(hits)[1])
            if tx["reversed"] and tx["rrn"] not in voided:
                self.fail("%r was shown, the bank reversed its advice %s" % (text, tx))
            self._posted(text, amount, tx, postings.get(tx["rrn"], []))
        excused = []
        for stored, tx in advices:
            if not any(datetime.timedelta(0) <= cut - stored <= datetime.timedelta(seconds=30) for cut in self.cuts):
                self.fail("the bank posted an offline approval (%s, %d cents, stored %s) that no screen said "
                          "and no power cut came after" % (tx["rrn"], tx["amount"], stored.strftime("%H:%M:%S")))
            excused.append(tx["rrn"])
        return excused

    def check_books(self):
        """The bank's side (module docstring); returns (approved and posted, excused by a cut,
        {what the bank did with the device's transactions: count})."""
        balances, txs, postings, paid = self._ledger()
        if sum(balances.values()) != self.money:
            self.fail("money not conserved: the accounts hold %d cents, %d at the start: %s"
                      % (sum(balances.values()), self.money, balances))
        shown = collections.Counter(rrn for rrn, _, _ in self.approved)
        # What the owner gave back in full (History > Give back, terminal/refund.py): the bank
        # voids it, its log naming the original, which it then has as reversed.
        voided = set(re.findall(r" void of (\w+):", self.t.bank.log()))
        for rrn, amount, text in self.approved:
            tx = txs.get(rrn)
            if tx is None or tx["rc"] != "00" or tx["kind"] not in FINANCIAL:
                self.fail("%r was shown, the bank has %s for it" % (text, tx))
            if shown[rrn] != 1:
                self.fail("%r was shown %d times" % (text, shown[rrn]))
            if tx["reversed"] and rrn not in voided:
                self.fail("%r was shown, the bank reversed it" % text)
            self._posted(text, amount, tx, postings.get(rrn, []))
        for request, rrn in paid:
            tx = txs.get(rrn)
            if tx is None or tx["rc"] != "00" or tx["reversed"]:
                self.fail("the bank has request %s paid by %s, which it has as %s" % (request, rrn, tx))
        excused = []
        for rrn, tx in txs.items():
            if tx["kind"] == "reversal" and tx["rc"] not in ("00", "25"):
                self.fail("the bank refused a reversal (%s, response code %s): what it reverses stays charged"
                          % (rrn, tx["rc"]))
            if tx["kind"] in FINANCIAL and tx["rc"] == "00" and not tx["reversed"] and rrn not in shown:
                created = datetime.datetime.fromisoformat(tx["created"])
                if not any(datetime.timedelta(0) <= cut - created <= datetime.timedelta(seconds=30) for cut in self.cuts):
                    self.fail("the bank approved %s (%s, %d cents) and never reversed it, yet no screen said "
                              "Approved and no power cut came after it: a reversal lost" % (rrn, tx["kind"], tx["amount"]))
                excused.append(rrn)
        excused += self.check_offline(txs, postings, voided)
        bank = collections.Counter("%s %s%s" % (tx["kind"], tx["rc"], " reversed" if tx["reversed"] else "")
                                   for tx in txs.values())
        return len(shown), excused, dict(sorted(bank.items()))

    # ---- the world's actions --------------------------------------------------------------------

    def _card(self):
        names, weights = zip(*CARDS)
        return self.rng.choices(names, weights)[0]

    def act_card(self):
        if self.shopping is not None:  # the shopper's card, and no other, in the slot
            if self.field is not None:
                self.t.lift_card()
                self.field = None
                return "nfc off (shopping)"
            if self.slot not in (None, SHOPPING_CARD):
                self.t.remove_card()
                self.slot = None
                return "card out (shopping)"
            if self.slot is None:
                self.slot = self.last_card = SHOPPING_CARD
                self.t.insert("emv:" + SHOPPING_CARD)
                return "card %s in (shopping)" % SHOPPING_CARD
            return self.act_wait()  # in already: the terminal reads it
        if self.slot is not None and self.rng.random() < 0.7:
            self.t.remove_card()
            self.slot = None
            return "card out"
        self.slot = self.last_card = self._card()
        self.t.insert("emv:" + self.slot)
        if self.rng.random() < 0.1:
            # A dirty contact: the slot's line garbles or goes quiet for a few characters.
            fault, count = self.rng.choice(("parity", "edc", "mute", "nulls")), self.rng.randint(1, 3)
            self.t.rig.call("do", name="card", action="fault", kind=fault, count=count)
            return "card %s in (%s x%d)" % (self.slot, fault, count)
        return "card %s in" % self.slot

    def act_nfc(self):
        if self.field is not None and self.rng.random() < 0.7:
            self.t.lift_card()
            self.field = None
            return "nfc off"
        if self.rng.random() < 0.1:
            self.t.rig.call("do", name="nfc", action="place", kind="uid-only")
            self.field = "tag"
            return "nfc tag (no payment card) on"
        self.field = self.last_card = self._card()
        self.t.tap_card("emv:" + self.field)
        return "nfc %s on" % self.field

    def act_finger(self):
        enrolled = sorted(set(self.t.sensor_library().values()))
        screen = self.shown or {}
        adding = screen.get("title") == "Add fingerprint"
        if "finger" in screen.get("text", "").lower() and screen.get("buttons") is None and self.rng.random() < 0.15:
            # The sensor stops answering while it is asked for a finger (its UART lost), until
            # the terminal has said so; then it answers again.
            self.t.rig.call("do", name="r503", action="mute", on=True)
            try:
                shown = self.wait_screen(lambda s: s.get("buttons") is not None or s.get("pin_pad"), 20)
            finally:
                self.t.rig.call("do", name="r503", action="mute", on=False)
            return "finger sensor mute until %r" % (shown or {}).get("title")
        if adding:
            finger = self.rng.choice(OWNER_FINGERS + STRANGERS[:1])
        elif enrolled and self.rng.random() < 0.6:
            finger = self.rng.choice(enrolled)
        else:
            finger = self.rng.choice(STRANGERS + OWNER_FINGERS)
        quality = self.rng.choices(("good", "wet", "partial", "faulty"), (10, 1, 1, 0.5))[0]
        if self.rng.random() < 0.05:
            self.t.rig.call("do", name="r503", action="garble")  # the next packet from the sensor
        presses = 3 if adding and self.rng.random() < 0.8 else 1
        self.t.place_finger(finger, presses=presses, quality=quality)
        return "finger %s (%s, %d press%s)" % (finger, quality, presses, "" if presses == 1 else "es")

    def act_wifi(self):
        screen = self.shown or {}
        if self.wifi_up and (screen.get("title") in MONEY_SCREENS or self.rng.random() < 0.2):
            # The link lost just after the next message up (the 0200, likely, on these screens):
            # the bank has it, its answer never comes back.
            self.t.rig.call("do", name="wifi", action="cut_after_up")
            self.cut_armed = True
            return "wifi cut after the next message up"
        self.wifi_up = not self.wifi_up
        self.t.wifi(self.wifi_up)
        self._outage("wifi", self.wifi_up)
        return "wifi " + ("on" if self.wifi_up else "off")

    def act_bank(self):
        t = self.t
        if self.bank_up:
            t.bank.stop()
        else:
            cards = t.bank.cards
            t.bank = HostProcess(t.bank.dir)  # the same state: a restart of the bank's host
            t.bank.cards = cards
            t.rig.call("do", name="wifi", action="target", host=t.bank.address[0], port=t.bank.address[1])
        self.bank_up = not self.bank_up
        self._outage("bank", self.bank_up)
        return "bank " + ("started" if self.bank_up else "stopped")

    def _outage(self, what, up):
        if up:
            self.down_since.pop(what, None)
        else:
            self.down_since[what] = self.n

    def act_push(self):
        self.pushes += 1
        merchant = self.rng.choice(MERCHANTS[:4])
        amount = self.rng.choice((self.rng.randint(50, 3000), self.rng.randint(50, 3000), self.rng.randint(40_000, 150_000)))
        body = {"device": demo.SERIAL, "amount": amount, "currency": demo.CURRENCY,
                "order": "M%d-%d" % (self.seed, self.pushes)}
        if self.rng.random() < 0.2:
            body["ttl"] = self.rng.randint(5, 40)
        try:
            self.t.bank.post("/payment-requests", body, merchant)
            return "push %s %d%s" % (merchant, amount, " ttl %d" % body["ttl"] if "ttl" in body else "")
        except urllib.error.HTTPError as e:
            return "push %s %d: HTTP %d" % (merchant, amount, e.code)
        except OSError as e:  # the bank's host is stopped
            return "push %s %d: %s" % (merchant, amount, e)

    def act_reader(self):
        if self.reader:
            self.t.reader_leave()
            self.reader = False
            return "shop reader leaves"
        if self.rng.random() < 0.7:
            amount, merchant = self.rng.randint(100, 5000), self.rng.choice(MERCHANTS[:4]).encode()
            prepare = struct.pack(">I", amount) + b"EUR" + self.rng.randbytes(8) + bytes((len(merchant),)) + merchant
            script, what = [apdu("00A40400", CONFIRM_AID), apdu("80100000", prepare)], "shop asks %d" % amount
        else:
            script, what = [apdu("00A40400", TRANSIT_AID), apdu("80CA0000")], "gate"
        self.t.shop_reader(script)
        self.reader = True
        return "reader in the field: " + what

    def act_standby(self):
        self.t.standby()
        return "standby key"

    def act_power(self):
        rig = self.t.rig
        before = rig.call("device")
        how = "now"
        if self.rng.random() < 0.6:
            after = self.rng.randint(1, 40)
            rig.call("power_cut", after=after)
            how = "at flash operation +%d" % after
            deadline = time.monotonic() + 8
            while rig.call("device")["power_cuts"] == before["power_cuts"] and time.monotonic() < deadline:
                time.sleep(0.1)
        if rig.call("device")["power_cuts"] == before["power_cuts"]:
            rig.call("power_cut")  # now (and whatever was armed is disarmed)
            how += ", then now" if how != "now" else ""
        self.cuts.append(_now())
        self.t.vdevice.wait_booted(after_boots=before["boots"], timeout=40)
        self.owner_check = False  # the PIN check it may have cut counts as an attempt (owner_fails)
        return "power cut " + how

    def act_wait(self):
        screen = self.shown or {}
        busy = screen.get("buttons") is None and not screen.get("pin_pad")
        if busy:  # until the screen under way gives way to one that asks for something
            seconds = self.rng.uniform(2, 20)
            self.wait_screen(lambda s: s.get("buttons") is not None or s.get("pin_pad"), seconds)
        else:
            seconds = self.rng.choice((1, 2, 5, 15))
            time.sleep(seconds)
        return "wait %.0f s" % seconds

    # ---- the screen's actions -------------------------------------------------------------------

    def _tap_button(self, screen, label):
        x, y, w, h = screen["buttons"][label]
        self.t.tap_at(x + self.rng.randint(2, max(2, w - 3)), y + self.rng.randint(2, max(2, h - 3)))

    def _keys(self, keys, pad):
        """Tap keys (labels) of a pad {label: (x, y, w, h)} at a finger's pace."""
        for i, key in enumerate(keys):
            x, y, w, h = pad[key]
            self.t.tap_at(x + w // 2, y + h // 2, after_ms=200 * i)
        time.sleep(0.2 * len(keys) + 0.1)

    def _pin_pad(self, screen):
        title, prompt = screen["title"], screen.get("text", "")
        owner = title != CARD_PAD
        if owner:
            right = demo.DEMO_PIN
        else:
            right = self.pins.get(self.last_card, "1234")
        roll = self.rng.random()
        if title == "Change PIN" and prompt.startswith("The new PIN"):
            roll = 0  # the same PIN again, twice: the monkey's owner keeps one PIN
        if self.shopping is not None and not owner:
            roll = 0  # the shopper knows their card's PIN
        wrong_ok = self.owner_fails < OWNER_WRONG_MAX if owner else self.card_wrong[self.last_card] < 1
        if roll < 0.75 or (roll < 0.85 and not wrong_ok):
            pin, what = right, "right"
        elif roll < 0.85:
            pin = "".join(self.rng.choice("0123456789") for _ in range(self.rng.randint(4, 6)))
            what = "wrong"
            if pin == right:
                what = "right"
        elif roll < 0.93:
            self._keys(["Cancel"], self.t.keypad)
            self.owner_check = False  # no check comes (Change PIN's second pad cancelled)
            return "%s pad: Cancel" % title
        else:
            self.owner_check = False
            part = self.rng.choice(("", right[:2], "9"))
            self._keys(list(part), self.t.keypad)
            return "%s pad: %r typed, no OK" % (title, "*" * len(part))
        self._keys(list(pin) + ["OK"], self.t.keypad)
        if owner and not (title == "Change PIN" and prompt.startswith("The new PIN")):
            self.owner_fails += 1  # counted on flash before it is checked
            self.owner_check = what == "right"
        elif not owner and what == "wrong":
            self.card_wrong[self.last_card] += 1
        elif not owner:
            self.card_wrong[self.last_card] = 0
        return "%s pad (%s): %s PIN" % (title, prompt, what)

    def _amount(self, screen):
        keys = screen["buttons"]
        if self.shopping is not None:
            digits = str(self.rng.randint(100, FLOOR - 1))
            self._keys(list(digits) + ["OK"], keys)
            return "amount %s (shopping, below the floor)" % digits
        roll = self.rng.random()
        if roll < 0.75:
            digits = str(self.rng.choice((self.rng.randint(1, 2500), self.rng.randint(1, 2500), self.rng.randint(10_000, 90_000))))
            self._keys(list(digits) + ["OK"], keys)
            return "amount %s" % digits
        if roll < 0.85:
            label = "Cancel" if "Cancel" in keys else "Del"
            self._keys([label], keys)
            return "amount pad: " + label
        label = self.rng.choice(sorted(keys))
        self._keys([label], keys)
        return "amount pad: %s" % label

    def _keyboard(self, screen):
        keys = screen["buttons"]
        if not self.wifi_saved and screen.get("keyboard") == "abc":
            self._keys([c if c != " " else "space" for c in demo.WIFI[1]] + ["OK"], keys)
            return "keyboard: the Wi-Fi's password"
        if self.rng.random() < 0.6:
            self._keys(["Cancel"], keys)
            return "keyboard: Cancel"
        typed = [self.rng.choice(sorted(keys)) for _ in range(self.rng.randint(1, 10))]
        self._keys(typed + ["OK"], keys)
        return "keyboard: %d keys, OK" % len(typed)

    def _errand(self, screen, buttons):
        """The errand's next tap on this screen (a label), "More" to turn the menu's page, or
        None (not here: the screen's own weights). Sets one out from the home menu now and then."""
        title = _title(screen)
        if self.errand is not None and self.n - self.errand_since > ERRAND_PATIENCE:
            self.errand = None  # interrupted for good (a lock, a push, an outage): given up
        if self.errand is None and title == "Pocket Terminal" and self.down_since and self.shopping is None \
                and "Purchase" in buttons and self.rng.random() < 0.8:
            self.shopping = self.n
            self.errands["Purchase in an outage"] += 1
            return "Purchase"
        if self.errand is None and title == "Pocket Terminal" and self.wifi_saved and self.rng.random() < 0.5:
            names = sorted(ERRANDS)
            weights = [1 if all(self.titles[t] for t in ERRAND_SCREENS[n]) else 6 for n in names]
            if not set(self.t.sensor_library().values()) & set(OWNER_FINGERS):
                # No finger of the owner's: the fingerprint's screens (its prompts, its failures) wait on one.
                weights[names.index("Add fingerprint")] = 6
            name = self.rng.choices(names, weights)[0]
            self.errand, self.errand_since = (name, list(ERRANDS[name])), self.n
            self.errands[name] += 1
        if self.errand is None:
            return None
        want = self.errand[1][0]
        hits = [b for b in buttons if _label(b) == want]
        if hits:
            self.errand[1].pop(0)
            self.errand_since = self.n
            if not self.errand[1]:
                self.errand = None  # the last step: done
            return hits[0]
        return "More" if "More" in buttons else None

    def _shopped(self, how=""):
        """A purchase in an outage over: counted by the screen it ended at."""
        self.shopping_ends[how + (self.shopping_seen or "the home menu")] += 1
        self.shopping = self.shopping_seen = None

    def _button(self, screen):
        buttons = sorted(screen["buttons"])
        title = _title(screen)
        if not self.wifi_saved and title in TO_WIFI:
            for want in TO_WIFI[title]:
                hits = [b for b in buttons if b.startswith(want)]
                if hits:
                    self._tap_button(screen, hits[0])
                    return "tap %r (back to the Wi-Fi)" % hits[0]
        errand = self._errand(screen, buttons)
        if errand is not None:
            self._tap_button(screen, errand)
            name = self.errand[0] if self.errand else "a purchase in an outage" if self.shopping == self.n else "done"
            return "tap %r (errand: %s)" % (errand, name)
        prefer = dict(PREFER.get(title, {}), **(OUTAGE_PREFER.get(title, {}) if self.down_since else {}))
        weights = [prefer.get(_label(b), 1) for b in buttons]
        label = self.rng.choices(buttons, weights)[0]
        self._tap_button(screen, label)
        return "tap %r" % label

    def act_screen(self):
        screen = self.shown
        if screen is None:
            return self.act_wait()
        # No stray touch on Change PIN's pads: a digit on the current PIN's would be a wrong PIN
        # the monkey does not count (on the new PIN's two, the terminal says they differ).
        roll = self.rng.random() if screen["title"] != "Change PIN" else 1
        if roll < 0.06:
            x, y = self.rng.randrange(240), self.rng.randrange(320)
            self.t.tap_at(x, y)
            return "tap at (%d, %d)" % (x, y)
        if roll < 0.1:
            x0, y0, x1, y1 = (self.rng.randrange(240), self.rng.randrange(320), self.rng.randrange(240),
                              self.rng.randrange(320))
            self.t.rig.call("do", name="touch", action="drag", from_x=x0, from_y=y0, to_x=x1, to_y=y1,
                            steps=self.rng.randint(2, 8))
            return "swipe (%d, %d) -> (%d, %d)" % (x0, y0, x1, y1)
        if screen.get("pin_pad"):
            return self._pin_pad(screen)
        if screen.get("keyboard"):
            return self._keyboard(screen)
        if screen["title"] == "Amount" and "OK" in screen.get("buttons", {}):
            return self._amount(screen)
        if screen.get("buttons"):
            return self._button(screen)
        return self.act_wait()  # a progress screen: nothing to tap

    # ---- the loop -------------------------------------------------------------------------------

    def _weights(self):
        """The kinds of action, weighed by what the screen shown asks for and the world's state."""
        screen = self.shown or {}
        title, text = screen.get("title", ""), screen.get("text", "")
        wants_card = title == "Insert or tap card"
        wants_finger = "finger" in text.lower() and screen.get("buttons") is None
        busy = screen.get("buttons") is None and not screen.get("pin_pad")
        w = {
            # Asked for a card, a person brings one more often than they cancel.
            "screen": 0.5 if busy else 2 if wants_card else 7,
            "card": 6 if wants_card else 0.6 if self.slot is None else 1,
            "nfc": 3 if wants_card else 0.4 if self.field is None else 1,
            "finger": 6 if wants_finger else 0.4,
            "wifi": 0 if self.cut_armed else 3 if not self.wifi_up else 0.8 if title in MONEY_SCREENS else 0.2,
            # The bank going away at the home menu or as a purchase is set up: how a card comes to
            # be approved offline (the home menu: the purchase in an outage, SHOPPING_CARD).
            "bank": 3 if not self.bank_up else 1.5 if title in ("Pocket Terminal", "Amount", "Insert or tap card") else 0.15,
            "push": 0.8 if self.bank_up else 0.1,
            "reader": 4 if title in ("Transit card", "Shop confirmation") and not self.reader else
                      1 if self.reader else 0.2,
            "standby": 0.3,
            "power": 0.12,
            "wait": 6 if busy else 0.5,
        }
        if self.shopping is not None:  # the outage held, the shopper's card brought to the slot
            w.update(wifi=0, bank=0, nfc=0, card=8 if wants_card else 0.2, screen=0.3 if wants_card else w["screen"])
        return w

    def step(self):
        shown = self.shown
        before = _title(shown) if shown else "-"
        if self.shopping is not None and self.n - self.shopping > SHOPPING_PATIENCE:
            self._shopped("given up at ")  # a lock, a push, a power cut in between
        overdue = [what for what, since in self.down_since.items()
                   if self.n - since >= MAX_OUTAGE and self.shopping is None]
        self.n += 1
        if overdue:
            kind = overdue[0]
        else:
            weights = self._weights()
            kind = self.rng.choices(list(weights), list(weights.values()))[0]
        self.counts[kind] += 1
        try:
            what = getattr(self, "act_" + kind)()
        except Finding:
            raise
        except Exception:  # the rig, the bank or the device refusing an action: reported as found
            self.last.append("%d %s [%s]" % (self.n, kind, before))
            self.fail("the action raised:\n%s" % traceback.format_exc())
        self.last.append("%d %s [%s]" % (self.n, what, before))
        self.trail.append("%s %d %s [%s]" % (_now().strftime("%H:%M:%S.%f")[:-3], self.n, what, before))
        self.settle()
        self.check()

    def publish_parameters(self, timeout=60):
        """The terminal parameters that allow offline approvals (FLOOR, OFFLINE_CAPS) published
        at the bank as the issuer does (signed, a version above the last), and taken by the
        device: a new session (the access point off and on) signs on, is offered them, installs
        them and signs on again with their version, which the bank's fleet view then has."""
        from tools.bank import updates
        from tools.emvcard import perso

        doc = {"capk": perso.capk_entries(emvcard.CARDS_DIR),  # the demo's (tools/demo.personalize)
               "terminal": {"floor_limit": FLOOR, "offline_caps": list(OFFLINE_CAPS),
                            "contactless_limits": [[rid, 100000, 5000, FLOOR] for rid in ("a000000003", "a000000004", "")]}}
        state = State(self.t.bank.dir)
        try:
            version = (state.ledger.latest_package(updates.PARAMETERS) or (None, 0))[1] + 1
            updates.publish(state, updates.PARAMETERS, version, 0, updates.params_payload(doc)[0])
        finally:
            state.close()
        self.t.wifi(False)
        self.t.wifi(True)
        started = time.monotonic()
        deadline = started + timeout
        while True:
            state = State(self.t.bank.dir)
            try:
                taken = any(d["serial"] == demo.SERIAL and d["cfg"] == version for d in state.ledger.fleet())
            finally:
                state.close()
            if taken:
                self.out("monkey: terminal parameters version %d taken in %.1f s: floor limit %d, offline caps %s"
                         % (version, time.monotonic() - started, FLOOR, OFFLINE_CAPS))
                return
            if time.monotonic() > deadline:
                self.fail("the device did not take the parameters (version %d) within %d s" % (version, timeout))
            time.sleep(0.2)

    def start(self):
        t = self.t
        status = t.rig.call("device")
        self.boots0, self.cuts0 = status["boots"], status["power_cuts"]
        balances = self._ledger()[0]
        self.money = sum(balances.values())
        self._log_at = t.vdevice.log_path.stat().st_size
        self._lines = 0
        self.publish_parameters()
        self.settle(quiet=1.0, longest=10)

    def run(self, actions=None, minutes=None):
        """Act until `actions` actions or `minutes` minutes, whichever comes first; then end
        (finish). Returns the summary (a dict); raises Finding."""
        self.out("monkey: seed %d" % self.seed)
        self.start()
        deadline = time.monotonic() + 60 * minutes if minutes else None
        started = time.monotonic()
        while (actions is None or self.n < actions) and (deadline is None or time.monotonic() < deadline):
            self.step()
            if self.n % 50 == 0:
                self.out("monkey: %d actions, %.0f s, screens %d, approvals %d"
                         % (self.n, time.monotonic() - started, len(self.screens), len(self.approved)))
        return self.finish(time.monotonic() - started)

    # ---- the end --------------------------------------------------------------------------------

    def _restore_world(self):
        t = self.t
        if not self.bank_up:
            self.act_bank()
        if self.cut_armed:
            # Fired by the next message up: a push's 0610 is one.
            self.act_push()
            deadline = time.monotonic() + 60
            while self.cut_armed and time.monotonic() < deadline:
                time.sleep(0.5)
                self.check()
            if self.cut_armed:
                self.fail("the access point's cut, armed, never came")
        if not self.wifi_up:
            self.act_wifi()
        t.remove_card()
        t.lift_card()
        t.lift_finger()
        if self.reader:
            t.reader_leave()
            self.reader = False
        self.slot = self.field = None

    def _rejoin_wifi(self):
        """After a "Forget": the owner's way back (Settings > Wi-Fi > PocketNet, its password)."""
        for _ in range(80):
            if self.wifi_saved:
                return
            self.n += 1
            screen = self.shown or {}
            if screen.get("pin_pad"):
                what = self._pin_pad(screen)
            elif screen.get("keyboard"):
                what = self._keyboard(screen)
            elif screen.get("buttons"):
                what = self._button(screen)
            else:
                what = self.act_wait()
            self.last.append("%d %s [%s] (to the Wi-Fi)" % (self.n, what, screen.get("title")))
            self.settle()
            self.check()
        self.fail("the monkey could not join the Wi-Fi again after a Forget")

    def _forwarded(self):
        """The reversals and advices the bank's log has had from the device (repeats too)."""
        log = self.t.bank.log()
        return log.count(REVERSAL), log.count(ADVICE)

    def _drained(self, timeout):
        """Wait until the device has a session with the bank (a merchant's push finds it; the
        device sends what its journal and its batch hold after its sign-on) and the bank has
        taken no reversal nor advice for a while."""
        t = self.t
        deadline = time.monotonic() + timeout
        self.pushes += 1
        body = {"device": demo.SERIAL, "amount": 100, "currency": demo.CURRENCY, "order": "M%d-%d" % (self.seed, self.pushes)}
        while True:
            try:
                t.bank.post("/payment-requests", body, MERCHANTS[0])
                break
            except urllib.error.HTTPError as e:
                if e.code != 409 or time.monotonic() > deadline:
                    self.fail("no session of the device at the bank after %d s (HTTP %d)" % (timeout, e.code))
                time.sleep(1)
                self.check()
        sent, quiet_since = self._forwarded(), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 20:
            time.sleep(1)
            now = self._forwarded()
            if now != sent:
                sent, quiet_since = now, time.monotonic()
            self.check()

    def _journal(self):
        """The reversals and offline approvals' advices the device still holds (its REPL: the
        app stopped, a soft reset), and its crash log."""
        self.restarts += 1  # the REPL's soft reset
        dev = self.t.device
        # /batch is made at the first offline approval.
        queued = dev.eval("[d + '/' + n for d in ('/journal', '/batch') if d[1:] in __import__('os').listdir('/') "
                          "for n in __import__('os').listdir(d) if '.' in n and not n.endswith('.tmp')]")
        crashes = dev.eval("__import__('crashlog').read()")
        return queued, crashes

    def finish(self, elapsed):
        """The end (module docstring): the world put back, the journal drained, the books."""
        t = self.t
        self._restore_world()
        self.settle()
        self._rejoin_wifi()
        self._drained(120)
        self.check()
        queued, crashes = self._journal()
        if queued:
            # Booted once more (its sign-on sends what is queued), then looked at again.
            self.restarts += 1
            t.restart()
            self._lines = 0
            self._drained(120)
            self.check()
            queued, crashes = self._journal()
            if queued:
                self.fail("reversals or advices never reached the bank: %s" % queued)
        if crashes:
            self.fail("the crash log holds:\n%s" % crashes, fatal=False)
        shown, excused, bank = self.check_books()
        t.restart()  # the app again, for whoever uses the terminal next
        self.restarts += 1
        self._lines = len(t.console.lines)
        reached = [title for title in SCREENS if self.titles[title]]
        summary = {
            "seed": self.seed, "actions": self.n, "seconds": round(elapsed), "counts": dict(self.counts),
            "screens": dict(sorted(self.titles.items())), "approvals": len(self.approved),
            "reached": reached, "never reached": [title for title in SCREENS if not self.titles[title]],
            "errands": dict(self.errands), "purchases in an outage": dict(self.shopping_ends),
            "postings": shown, "approved at the bank, screen cut by a power cut": excused,
            "power cuts": len(self.cuts), "bank": bank,
            # Each matched by one advice posted (check_offline), the rest of those excused.
            "offline approvals": len(self.offline), "offline postings": bank.get("offline 00", 0),
            "advices sent": self._forwarded()[1],  # the bank's log: repeats (a lost 0230, a cut) too
        }
        self.out("monkey: done, seed %d" % self.seed)
        self.out("monkey: actions %d in %d s: %s" % (self.n, elapsed, ", ".join(
            "%s %d" % kv for kv in self.counts.most_common())))
        self.out("monkey: screens by title: %s" % json.dumps(summary["screens"], ensure_ascii=False))
        self.out("monkey: errands set out on: %s" % json.dumps(summary["errands"]))
        self.out("monkey: purchases in an outage, by the screen each ended at: %s"
                 % json.dumps(summary["purchases in an outage"]))
        self.out("monkey: screens reached, %d of %d: %s" % (len(reached), len(SCREENS), ", ".join(reached)))
        self.out("monkey: screens never reached, %d: %s" % (len(summary["never reached"]),
                                                              ", ".join(summary["never reached"]) or "none"))
        self.out("monkey: approvals %d, matched by postings %d; approved at the bank with the screen cut "
                 "by a power cut: %s; power cuts %d" % (len(self.approved), shown, excused or "none", len(self.cuts)))
        self.out("monkey: approved offline %d, each posted once when its advice came; advices posted %d, "
                 "sent %d (repeats included)" % (len(self.offline), summary["offline postings"], summary["advices sent"]))
        self.out("monkey: the device's transactions at the bank (kind, response code): %s" % json.dumps(bank))
        if self.findings:
            raise Finding("%d findings on the way (each above):\n\n%s" % (len(self.findings), "\n\n".join(self.findings)))
        return summary


def keep(t, tmp, seed, monkey):
    """The run's state dir (bank, virtual handheld) and the device's console copied out of the
    temporary directory that ends with the run; where to."""
    out = Path(tempfile.gettempdir()) / ("monkey-%d-%d" % (seed, time.time()))
    for path in Path(tmp).rglob("*"):
        # Regular files only (the rig's ptys and sockets are not evidence), the flash image too.
        if path.is_file() and not path.is_symlink() and path.suffix in (".log", ".db", ".db-wal", ".json", ".img"):
            (out / path.relative_to(tmp)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out / path.relative_to(tmp))
    if t.console is not None:
        (out / "console.log").write_text("\n".join(t.console.lines))
    (out / "actions.log").write_text("\n".join(monkey.trail))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.monkey", description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=None, help="the run's seed (default: a random one, printed)")
    p.add_argument("--minutes", type=float, default=None, help="stop after this long (default 10 unless --actions)")
    p.add_argument("--actions", type=int, default=None, help="stop after this many actions")
    p.add_argument("--keep-going", action="store_true",
                   help="note a crash or a wrong screen and go on (the run fails at its end with all of them)")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    minutes = args.minutes if args.minutes or args.actions else 10
    print("monkey: seed %d (replay: python -m tools.monkey --seed %d%s%s)" % (
        seed, seed, " --minutes %g" % minutes if minutes else "", " --actions %d" % args.actions if args.actions else ""),
        flush=True)

    from tools import image

    # The demo terminal the flow tests use (tests/host/terminalfix.py), outside pytest.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "host"))
    from terminalfix import Terminal

    with tempfile.TemporaryDirectory(prefix="monkey-") as tmp:
        img = Path(tmp) / "image" / "flash.img"
        img.parent.mkdir()
        image.build(img)
        (Path(tmp) / "terminal").mkdir()
        t = Terminal(Path(tmp) / "terminal", img)
        monkey = Monkey(t, seed, out=lambda s: print(s, flush=True), keep_going=args.keep_going)
        try:
            monkey.run(args.actions, minutes)
        except Finding as f:
            print("monkey: FAILED\n%s" % f, flush=True)
            print("monkey: the evidence (bank state and log, the device's log and console) kept in %s"
                  % keep(t, tmp, seed, monkey), flush=True)
            return 1
        finally:
            t.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
