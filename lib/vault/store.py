"""The vault's files on flash: a device secret, an authenticated meta record, sealed entries.

    /store/secret      32 random bytes, made at first start (on a production board the vfs
                       partition is flash-encrypted, so it cannot be read off the chip)
    /store/meta.<seq>  JSON + HMAC-SHA256 under a key derived from the secret: lifecycle
                       state, PIN fail counter, wrapped keys, policy, and the index; <seq>
                       counts its writes and is inside it too
    /store/e.<name>    one entry: AES-256-CBC then HMAC-SHA256 (vault.crypto.seal), with the
    /store/e2.<name>   name, its key domain and its version as associated data; an entry has
                       two copies, the one its index tag names and the other, empty (below)
    /store/wiped       present once the vault is wiped
    /store.seq         the commit counter: meta's <seq> again + HMAC-SHA256 under the meta key,
                       outside the store's folder

The index in meta records each entry's domain, version and tag, so an entry that is altered,
swapped with another, deleted or replaced by an older copy no longer matches it; an older meta
copied over the current one carries a sequence number that its name contradicts, and an older
meta put back under its own name (the newer one removed: the PIN fail counter as it was) has a
lower sequence number than the commit counter, which every commit writes after its meta, in a
file of its own outside the store's folder. open() then refuses the store (Tampered) rather
than trust any of it.

What the counter cannot show is a rollback of the store AND the counter (a snapshot of the whole
flash written back: the ESP32 has no rewritable monotonic counter off the flash; its eFuses are
one-time bits, far too few to count commits, and NVS is on the same flash chip). Against that,
the issuer's side is the backstop: the bank refuses a DUKPT counter that goes back (a restored
unit reuses KSNs it already sent). PIN guesses on the unit itself, its flash written back
between batches, are not stopped by it: SECURITY.md says so, and what would (the bank's HSM
taking part in the PIN check).

Meta is the commit point. An entry's new version is written over its spare copy (e.<name> or
e2.<name>, whichever the index does not name), then the next meta (written under its new name,
then the previous one removed) records its tag, then the copy of the old version is emptied.
Whatever instant the power fails, open() finds the old meta naming the old copy, or the new meta
naming the new one, and empties the other copy (open() tells which is which by the tag; it reads
every entry anyway). Nothing is renamed nor copied on the way: a rename costs LittleFS a pass
over the folder's whole metadata log, ~2,000 reads of the flash chip (~0.2 s on the ESP32,
tools/flowbench.py), where an open, a close or a remove takes ~100, and every commit in the
folder fills its log towards the next compaction (4,000-10,000 reads, the contact purchase's
slow mode). A put was 7 commits in the folder (e.<name>.new made and closed, meta, the old meta
removed, the copy, the .new removed) and a sector erased for each of three files of a DUKPT
state; it is now 5 and two (once both copies exist, no entry name is made or removed). LittleFS
makes a file's contents current at its close, whole or not at all, so the new meta is written
under its own name at once (a cut before its close leaves that name empty, as LittleFS creates
it at its open: open() drops it), and a copy of an entry is the old or the new. The emptied copy
holds nothing: an old version (a DUKPT state's used key register) is not left in a file once
its put is done.

Stores of earlier firmware: an entry's new version in e.<name>.new (put into place if its meta
recorded it, else dropped); provisioning still writes its entries that way (Vault.provision_all).
"""

import json
import os

import flashfs
from micropython import const

from vault import crypto

ROOT = "/store"
_SECRET = "secret"
_META = "meta."
_WIPED = "wiped"
_ENTRY = "e."
_SPARE = "e2."  # an entry's second copy
_NEW = ".new"
_TMP = ".tmp"
_COUNTER = ".seq"  # beside the store's folder: <root>.seq
_SECRET_SIZE = const(32)
_FORMAT = const(1)
_PIECE = const(128)  # bytes read at a time: meta to check it (committed), an entry to copy it

# Key domains: "device" entries (provisioning secrets) are sealed under keys from the device
# secret; "owner" entries under keys from the data key, which only the owner's PIN unwraps.
DEVICE = "device"
OWNER = "owner"


class Tampered(Exception):
    """A store file is not what the store wrote. The message names the file, never contents."""


def _dump(value, f, mac):
    """Write json.dumps(value) to f and into mac, the same bytes, but made a scalar, or a short
    list or dict of scalars (_whole), at a time: no piece larger than one key or value (a wrapped
    key in hex, ~200 bytes) is ever built."""
    if isinstance(value, dict) and not _whole(value):
        sep = "{"
        for key, item in value.items():
            _put(f, mac, "%s%s: " % (sep, json.dumps(key)))  # one piece: the separator and the key
            _dump(item, f, mac)
            sep = ", "
        _put(f, mac, b"}")  # not _whole: it had a key
    elif isinstance(value, list) and not _whole(value):
        _put(f, mac, b"[")
        sep = b""
        for item in value:
            _put(f, mac, sep)
            _dump(item, f, mac)
            sep = b", "
        _put(f, mac, b"]")
    else:
        _put(f, mac, json.dumps(value))


def _whole(value):
    """A list or dict of at most 8 scalars whose strings (keys too) come to at most 160
    characters: one piece, as an index entry or the policy. A commit made each of their items
    a piece of its own, ~60 pieces for meta, each a call into the file and one into the HMAC:
    two commits were a third of a PIN check's time."""
    if len(value) > 8:
        return False
    d = isinstance(value, dict)
    n = 0
    for k in value:
        v = value[k] if d else k
        if isinstance(v, (dict, list)):
            return False
        if d:
            n += len(k)
        if isinstance(v, str):
            n += len(v)
    return n <= 160


def _put(f, mac, piece):
    f.write(piece)
    mac.update(piece)


class Store:
    def __init__(self, root=ROOT):
        self.root = root
        self.status = None  # after open(): "empty", "wiped" or "ready"
        self.meta = {}
        self._secret = None
        self._keys = {}  # domain -> (encryption key, MAC key), bytearrays
        self._tag = None  # the tag of the meta on flash, as last verified or written (committed)
        self._second = set()  # the entries whose current copy is e2.<name>

    def _path(self, name):
        return self.root + "/" + name

    def _files(self):
        """The store's files: {name: size} (LittleFS lists each file's size fourth)."""
        try:
            return {e[0]: e[3] if len(e) > 3 else 1 for e in os.ilistdir(self.root)}
        except OSError:
            return {}

    def _copy(self, entry, second):
        return (_SPARE if second else _ENTRY) + entry

    def _current(self, entry):
        return self._copy(entry, entry in self._second)

    def _empty(self, name):
        # In place: one commit, and the next put writes over it without making its name anew.
        open(self._path(name), "wb").close()

    def _read(self, name):
        with open(self._path(name), "rb") as f:
            return f.read()

    def _write_atomic(self, name, fill):
        """A file written whole or not at all: fill(f) writes it under a temporary name."""
        tmp = self._path(name + _TMP)
        with open(tmp, "wb") as f:
            fill(f)
        os.rename(tmp, self._path(name))

    def _remove(self, name):
        try:
            os.remove(self._path(name))
        except OSError:
            pass

    # ---- opening ---------------------------------------------------------------------------

    def open(self):
        """Recover from an interrupted write, check every file, load meta.

        Returns "empty" (nothing yet), "wiped", or "ready". Raises Tampered."""
        self.status = self._open()
        return self.status

    def _open(self):
        files = self._files()
        if _WIPED in files:
            self._finish_wipe()
            return "wiped"
        for name in files:
            if name.endswith(_TMP):  # a write that never reached its rename
                self._remove(name)
        files = self._files()
        self._second = set()
        metas = sorted(int(name[len(_META):]) for name in files
                       if name.startswith(_META) and name[len(_META):].isdigit())
        raw = b""
        while metas:
            raw = self._read(_META + str(metas[-1]))
            if raw:
                break
            self._remove(_META + str(metas.pop()))  # empty: a commit cut before its close
        if not metas:
            # A first start, or one cut short between the secret and the first meta.
            self._remove(_SECRET)
            return "empty"
        if _SECRET not in files:
            raise Tampered("store: the device secret is missing")
        self._load_secret(self._read(_SECRET))
        # The newest meta is the truth (it was whole at its close); an older one left beside it
        # is a commit cut short before it removed its predecessor.
        self.meta = self._verified_meta(metas[-1], raw)
        self._check_counter(metas[-1])
        for seq in metas[:-1]:
            self._remove(_META + str(seq))
        self._recover_entries(files)
        self._check_entries(files)
        return "ready"

    def _load_secret(self, secret):
        if len(secret) != _SECRET_SIZE:
            raise Tampered("store: the device secret has a wrong size")
        self.close()
        self._secret = bytearray(secret)
        self._meta_key = crypto.subkey(self._secret, b"meta-mac")
        self._keys[DEVICE] = (crypto.subkey(self._secret, b"device-enc"), crypto.subkey(self._secret, b"device-mac"))

    def _verified_meta(self, seq, raw):
        if len(raw) <= crypto.TAG_SIZE:
            raise Tampered("store: meta fails its authentication")
        body, tag = memoryview(raw)[:-crypto.TAG_SIZE], raw[-crypto.TAG_SIZE:]  # no copy of the body
        mac = crypto.Hmac(self._meta_key)
        mac.update(b"meta")
        mac.update(body)
        if not crypto.equal(mac.digest(), tag):
            raise Tampered("store: meta fails its authentication")
        self._tag = tag
        meta = json.loads(body)  # type: ignore  # MicroPython's takes any buffer; the stubs say str or bytes
        if meta.get("format") != _FORMAT:
            raise Tampered("store: meta has an unknown format")
        if meta.get("seq") != seq:
            raise Tampered("store: meta is not the version its name says (an older copy?)")
        return meta

    # ---- the commit counter (rollback) -----------------------------------------------------

    def _counter_record(self, seq):
        b = seq.to_bytes(4, "big")
        mac = crypto.Hmac(self._meta_key)
        mac.update(b"seq")
        mac.update(b)
        return b + mac.digest()

    def _write_counter(self, seq):
        # In place, whole (an empty counter, of a write cut short by an exception, reads as
        # missing: Tampered at the next open).
        flashfs.write_whole(self.root + _COUNTER, self._counter_record(seq))

    def _check_counter(self, seq):
        """Meta's seq against the commit counter: lower is an older meta put back (Tampered);
        one higher is a commit cut between its meta and its counter, which is finished here."""
        try:
            with open(self.root + _COUNTER, "rb") as f:
                record = f.read()
        except OSError:
            record = b""
        counted = int.from_bytes(record[:4], "big")
        if len(record) != 4 + crypto.TAG_SIZE or not crypto.equal(self._counter_record(counted), record):
            # None, or another store's: only a first commit cut before its counter leaves that.
            if seq != 1:
                raise Tampered("store: the commit counter is missing or not this store's (rolled back?)")
        elif seq < counted:
            raise Tampered("store: meta is older than the commit counter (an older meta put back)")
        elif seq == counted:
            return
        self._write_counter(seq)

    def _recover_entries(self, files):
        index = self.meta["index"]
        for name in files:
            if name.startswith(_ENTRY) and name.endswith(_NEW):
                entry = name[len(_ENTRY):-len(_NEW)]
                sealed = self._read(name)
                if entry in index and crypto.tag_of(sealed).hex() == index[entry][2]:
                    self._into_place(entry)  # meta has it: finish
                else:
                    self._remove(name)  # meta never recorded it: the old version stands
            elif name.startswith(_ENTRY) and name[len(_ENTRY):] not in index:
                self._remove(name)  # deleted from the index, the file not yet removed
            elif name.startswith(_SPARE) and name[len(_SPARE):] not in index:
                self._remove(name)

    def _check_entries(self, files):
        """Every entry's copy that its index tag names (which makes it the current one), fully
        checked where its key is here; the other copy emptied if it is not (a put cut short
        after its new copy was written, or before it emptied the old one)."""
        for entry, (domain, version, tag) in self.meta["index"].items():
            sealed = None
            for second in (False, True):
                try:
                    sealed = self._read(self._copy(entry, second))
                except OSError:
                    continue
                if crypto.tag_of(sealed).hex() == tag:
                    break
            else:
                if sealed is None:
                    raise Tampered("store: entry %s is missing" % entry)
                raise Tampered("store: entry %s is not the version the index records" % entry)
            if second:
                self._second.add(entry)
            if domain in self._keys:
                self._unsealed(entry, domain, version, sealed)  # full check where the key is here
            sealed = None
            if files.get(self._copy(entry, not second)):
                self._empty(self._copy(entry, not second))

    def committed(self):
        """Whether the meta on flash is the one commit() last wrote: its HMAC, computed a piece
        at a time as the file is read, is right and is the tag commit() made (so the flash holds
        those very bytes). A PIN check reads its fail count back so: reading the meta whole
        (2.3 KB with 8 accounts and 10 fingers bound) and copying it twice failed on a heap a
        payment had fragmented, and the app fell over at the PIN."""
        mac = crypto.Hmac(self._meta_key)
        mac.update(b"meta")
        piece = bytearray(_PIECE)
        view = memoryview(piece)
        with open(self._path(_META + str(self.meta["seq"])), "rb") as f:
            # Its size from the open file: os.stat() would look the name up again, a pass over
            # the folder's metadata log on the flash chip (~200 reads).
            size = f.seek(0, 2)
            if size <= crypto.TAG_SIZE:
                return False
            f.seek(0)
            left = size - crypto.TAG_SIZE
            while left:
                n = f.readinto(view[:min(left, _PIECE)])
                if not n:
                    return False
                mac.update(view[:n])
                left -= n
            tag = f.read()
        digest = mac.digest()
        return crypto.equal(digest, tag) and self._tag is not None and crypto.equal(digest, self._tag)

    # ---- writing meta ----------------------------------------------------------------------

    def create(self, meta):
        """A new store: a fresh device secret and a first meta (FACTORY)."""
        try:
            os.mkdir(self.root)
        except OSError:
            pass
        self._remove(_WIPED)
        secret = crypto.random_bytes(_SECRET_SIZE)
        self._write_atomic(_SECRET, lambda f: f.write(secret))
        self._load_secret(secret)
        crypto.wipe(secret)
        meta["format"] = _FORMAT
        meta["seq"] = 0
        meta["index"] = {}
        self.meta = meta
        self.commit()
        self.status = "ready"

    def commit(self):
        """Write the next meta (the commit point of every change), then drop the previous.

        The JSON goes to the file and into its HMAC a value at a time, as _dump makes it: the
        whole of it (~1.6 KB) in one piece, and its copies, were the first allocation to fail
        on a heap fragmented by a payment (each DUKPT step commits)."""
        self.meta["seq"] += 1
        mac = crypto.Hmac(self._meta_key)
        mac.update(b"meta")

        def fill(f):
            _dump(self.meta, f, mac)
            self._tag = mac.digest()
            f.write(self._tag)

        tag = self._tag
        try:
            with open(self._path(_META + str(self.meta["seq"])), "wb") as f:  # in place: see the module's docstring
                fill(f)
        except BaseException:
            # The heap out or a Ctrl-C half way: the file closes with what was written, and its
            # name would make it the newest meta at the next open, one that fails its
            # authentication (Tampered: the unit back to its issuer). Removed, the commit did
            # not happen, as after a power cut before its close.
            self._remove(_META + str(self.meta["seq"]))
            self.meta["seq"] -= 1
            self._tag = tag
            raise
        self._remove(_META + str(self.meta["seq"] - 1))
        # Last: a commit is whole (and a PIN check may go on) only once the counter says so.
        self._write_counter(self.meta["seq"])

    # ---- entries ---------------------------------------------------------------------------

    def set_domain_key(self, domain, key):
        """Make a domain's entries readable with key (the owner's data key, once unlocked)."""
        self.drop_domain_key(domain)
        self._keys[domain] = (crypto.subkey(key, domain.encode() + b"-enc"), crypto.subkey(key, domain.encode() + b"-mac"))

    def drop_domain_key(self, domain):
        for k in self._keys.pop(domain, ()):
            crypto.wipe(k)

    def has_key(self, domain):
        return domain in self._keys

    @staticmethod
    def _associated(entry, domain, version):
        return b"entry\x00" + entry.encode() + b"\x00" + domain.encode() + b"\x00" + version.to_bytes(4, "big")

    def _unsealed(self, entry, domain, version, sealed):
        enc, mac = self._keys[domain]
        try:
            return crypto.unseal(enc, mac, sealed, self._associated(entry, domain, version))
        except crypto.TagMismatch:
            raise Tampered("store: entry %s fails its authentication" % entry)

    def put(self, entry, domain, data):
        """Store data (bytes) as entry, atomically: afterwards it is the old or the new."""
        old = self.meta["index"].get(entry)
        if old and old[0] != domain:
            raise ValueError("entry %s belongs to the %s domain" % (entry, old[0]))
        version = old[1] + 1 if old else 1
        second = entry in self._second
        # Over the spare copy (a new entry: e.<name>, from the start or left by its removal).
        spare = self._copy(entry, not second if old else False)
        self.meta["index"][entry] = [domain, version, self._seal(spare, entry, domain, version, data)]
        self.commit()
        if old:
            if second:
                self._second.discard(entry)
            else:
                self._second.add(entry)
            self._empty(self._copy(entry, second))  # the old version, no longer named

    def _into_place(self, entry):
        """The committed e.<entry>.new copied over e.<entry>, then removed (not renamed: see the
        module's docstring). Cut before the copy's close, e.<entry> is the old version and the
        .new file is still there: open() comes here again (_recover_entries)."""
        piece = bytearray(_PIECE)
        view = memoryview(piece)
        with open(self._path(_ENTRY + entry + _NEW), "rb") as src, open(self._path(_ENTRY + entry), "wb") as dst:
            n = src.readinto(piece)
            while n:
                dst.write(view[:n])
                n = src.readinto(piece)
        self._remove(_ENTRY + entry + _NEW)

    def write_new(self, entry, domain, version, data):
        """Seal data to e.<entry>.new (provisioning's way: Vault.provision_all); returns its tag
        in hex, for the index. Only the commit that records the tag makes the file count (open()
        drops it otherwise)."""
        return self._seal(_ENTRY + entry + _NEW, entry, domain, version, data)

    def _seal(self, name, entry, domain, version, data):
        """Seal data to the file name as it is encrypted, a piece at a time (vault.crypto.seal_to:
        no copy of the sealed entry in memory); its tag in hex. A write stopped half way leaves a
        copy no index names: open() empties or drops it."""
        enc, mac = self._keys[domain]
        with open(self._path(name), "wb") as f:
            return crypto.seal_to(f.write, enc, mac, data, self._associated(entry, domain, version)).hex()

    def get(self, entry):
        """The entry's plaintext in a bytearray (wipe it after use); KeyError if absent."""
        domain, version, tag = self.meta["index"][entry]
        sealed = self._read(self._current(entry))
        if crypto.tag_of(sealed).hex() != tag:
            raise Tampered("store: entry %s is not the version the index records" % entry)
        return self._unsealed(entry, domain, version, sealed)

    def remove(self, *entries):
        """Drop entries: from the index first (the commit), then their files."""
        index = self.meta["index"]
        gone = [e for e in entries if e in index]
        for e in gone:
            del index[e]
        if gone:
            self.commit()
        for e in gone:
            self._remove(_ENTRY + e)
            self._remove(_SPARE + e)
            self._second.discard(e)

    def entries(self, domain=None):
        return sorted(e for e, (d, _, _) in self.meta["index"].items() if domain in (None, d))

    # ---- the end ---------------------------------------------------------------------------

    def wipe(self):
        """Destroy everything: the marker first, so that a cut wipe finishes at the next open."""
        self._write_atomic(_WIPED, lambda f: f.write(b"wiped"))
        self._finish_wipe()

    def _finish_wipe(self):
        for name in self._files():
            if name != _WIPED:
                self._remove(name)
        self.close()
        self.meta = {}
        self.status = "wiped"

    def close(self):
        for domain in list(self._keys):
            self.drop_domain_key(domain)
        crypto.wipe(self._secret)
        crypto.wipe(getattr(self, "_meta_key", None))
        self._secret = None
