"""Payment identifiers: the alias a cardholder gives a merchant instead of anything of the device
(patent CN102243740A, step 1: the merchant receives the identifier the user gives it and asks
the payment server to push the order there).

An alias is 7 random characters and a check character, from an alphabet of 31 without the
look-alikes 0/O, 1/I/L: short enough to read out and type, about 2**34 of them (so guessing one
that is live is hopeless at the merchant API's pace, and every guess is signed by a merchant
key). Random (secrets), never derived from the serial or a card. The check character makes
the sum of each character's value times its place a multiple of 31: as 31 is prime and the
places' weights 1..8 differ, any one character mistyped, and any two characters swapped, is
caught before the bank is asked (a typo is a 400, not an "unknown identifier").

The bank keeps every alias it ever issued (tools/bank/ledger.py, table aliases), so one is never
issued twice: a retired one points nowhere, for good.
"""

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8
URI = "pocket:"  # what the device's QR code carries: URI + alias


def _sum(text):
    """Each character's value times its place (1, 2, ...), added up."""
    return sum((i + 1) * ALPHABET.index(c) for i, c in enumerate(text))


def check_char(payload):
    """The character that makes the whole alias's _sum a multiple of 31 (the last place's
    weight is 8, whose inverse mod 31 is 4)."""
    return ALPHABET[-4 * _sum(payload) % len(ALPHABET)]


def new():
    """A fresh random alias with its check character."""
    payload = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH - 1))
    return payload + check_char(payload)


def parse(text):
    """The alias written in text (case, spaces and hyphens as people type them; the URI of the
    device's QR code accepted), or None if it is not one: a wrong length, a character not of
    the alphabet, or a check character that does not match."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if text.lower().startswith(URI):
        text = text[len(URI):]
    alias = text.upper().replace("-", "").replace(" ", "")
    if len(alias) != LENGTH or any(c not in ALPHABET for c in alias) or _sum(alias) % len(ALPHABET):
        return None
    return alias
