"""EMV cards for the rig: personalisation (python -m tools.emvcard) and the card applets.

The rig names a card "emv:<profile>" (insert(applet=...) in the contact slot, place(applet=...)
on the antenna); card_applet(name) makes its applet. "emv:<profile>#<tag>" is another card of the
same profile with its own counters (a fresh PIN try counter for a test, say). A card's counters
live in the process, and also in <dir>/<name>.json once keep_in(dir) is called (the rig does,
in its state dir): a card of a later process carries on where it stopped.
"""

import json
import os
from urllib.parse import quote

CARDS_DIR = os.path.join(os.path.dirname(__file__), "cards")

_profiles = {}
_states = {}
_kept_in = None


def profile_names():
    return sorted(f[:-5] for f in os.listdir(CARDS_DIR)
                  if f.endswith(".json") and not f.startswith(("ca-", "issuer-")))


def load_profile(name):
    if name not in _profiles:
        path = os.path.join(CARDS_DIR, name + ".json")
        if "/" in name or not os.path.exists(path):
            raise KeyError("no EMV card profile %r; profiles: %s"
                           % (name, ", ".join(profile_names())))
        with open(path) as f:
            _profiles[name] = json.load(f)
    return _profiles[name]


def keep_in(directory):
    """Keep the cards' state (ATC, PIN try counter...: what a card's EEPROM holds) in
    directory/<name>.json from now on: a card first used in this process starts from its file,
    and every change is written there. A real card keeps its ATC, and a bank refuses a
    cryptogram whose ATC it has seen: cards that counted from 0 again in every rig process
    would be declined by a bank that kept its state."""
    global _kept_in
    _kept_in = os.fspath(directory)
    for name, state in _states.items():
        state.path = _kept_path(name)


def _kept_path(name):
    # The name quoted: a "#tag" the rig's control API was given stays a file in the directory.
    return os.path.join(_kept_in, quote(name, safe="#") + ".json") if _kept_in is not None else None


def card_applet(name):
    """The applet of card `name` ("visa-classic" or "visa-classic#2"), its state shared with
    every earlier applet of that name in this process (and kept, see keep_in)."""
    from .applet import CardState, EmvCard
    profile = load_profile(name.split("#", 1)[0])
    if name not in _states:
        _states[name] = CardState(profile, _kept_path(name))
    return EmvCard(profile, _states[name])


def forget(name=None):
    """Drop the kept state of one card (or of all cards, and the profiles read: the next applet
    reads its file again), its file too: the next applet starts as personalised."""
    if name is None:
        _states.clear()
        _profiles.clear()
        kept = [os.path.join(_kept_in, f) for f in os.listdir(_kept_in) if f.endswith(".json")] \
            if _kept_in and os.path.isdir(_kept_in) else []
    else:
        _states.pop(name, None)
        kept = [_kept_path(name)] if _kept_in and os.path.exists(_kept_path(name)) else []
    for path in kept:
        os.remove(path)


def issuer_keys(pan):
    """The issuer file (dict, with imk_ac, imk_smi, imk_smc) whose BIN is the longest prefix of
    `pan`, or None: what a bank host needs to check the cards' cryptograms."""
    best = None
    for f in sorted(os.listdir(CARDS_DIR)):
        if f.startswith("issuer-") and f.endswith(".json"):
            with open(os.path.join(CARDS_DIR, f)) as fh:
                issuer = json.load(fh)
            for b in issuer["bins"]:
                if pan.startswith(b) and (best is None or len(b) > best[0]):
                    best = (len(b), issuer)
    return best[1] if best else None
