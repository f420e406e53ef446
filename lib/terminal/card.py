"""Paying by card on the spot: the card inserted into the slot or held on the back (the PN532's
field), read by lib/emv's kernel, authorised online by the bank, completed with the card.

    async def online(result, pin):           # the bank's Answer; wipes pin (Uplink.purchase does)
        return await (await app.link.ready()).purchase(result, 1250, pin=pin)
    paid = await pay_by_card(app, op, 1250, "978", online, payee="Coffee Corner")
    # None: the cardholder cancelled; else (answer, result) approved; else an errors.Failure

The steps, and what ends each:
- "Insert or tap card" with Cancel, while a task looks for a card in the slot (its detect
  switch) and in the field (InListPassiveTarget, one short try at a time, so that a cancel never
  cuts a PN532 command in half); that task releases the field itself when it is told to stop.
- Contactless: the kernel's short path, then the card is released and the field switched off
  at once (the card-in-field time is the kernel's six commands); "try another interface" asks
  for the card in the slot ("Insert the card"). Contact: the field is switched off and the
  PN532's driver let go (its heap is the bank's answer's), then the card is powered, read,
  asked for its cryptogram, and stays powered for the completion.
- The PIN: the offline PIN through the kernel's callback, the online PIN on the keypad
  ("Card PIN" both); the online one is a bytearray handed to `online` and wiped here too, in
  case `online` failed before the uplink took it. Never printed, never kept.
- The bank's answer: its DE55 (91 ARPC, 71/72 scripts) goes to the card (second GENERATE AC).
  A bank that could not be reached, or did not answer (the uplink has queued the reversal), or
  declined: the contact card is told to decline too, and the failure is raised.
- A bank's approval the card then refuses (an AAC at the second GENERATE AC: the ARPC did not
  verify, or its own risk management) or that the card cannot complete (removed, unreadable):
  the approval is reversed (uplink.reverse, a 0400 queued on flash before it is sent) and the
  failure says the payment was cancelled. EMV and the acquirers require it: the money must not
  stay taken for a payment the cardholder was told failed. The uplink has that 0400 on flash,
  armed, from the moment the approval arrived: the card's TC drops it (uplink.completed); a
  power cut before then leaves it to be sent at the next boot.

Offline (a purchase: pay_by_card(..., offline=True); terminal.offline): the kernel's config
comes from the terminal's parameters with the caps folded into its floor limits and, where they
allow offline approvals, online only while the uplink is signed on. The card's TC (at its first
GENERATE AC, or in its GPO answer), or its TC at the second after "unable to go online" (nothing
sent: EMV's Y3 by the default action codes), is stored as an advice on flash before anything is
shown, and the answer is a terminal.offline.Advice. Declined offline beyond the floor or the
caps with the bank away: "Bank needed".

op.critical is True while the card or the bank is being talked to (not on the PIN pad nor
while waiting for the card): a lock waits for those exchanges, never cuts them. The slot is
powered down and the field switched off at the end whatever happened, in a task of its own
(a lock's cancel, repeated at each watcher tick, stops the waiting for it, not the work).
"""

import asyncio
import gc
from micropython import const

from terminal import errors
from ui.screens import CANCEL, TIMEOUT, format_amount

WAIT_MS = const(60_000)  # how long "Insert or tap card" waits for a card
_LOOK_MS = const(100)  # between two looks for a card (the touch panel shares the I2C bus)
_LIST_MS = const(200)  # one InListPassiveTarget (the PN532 tries once: MaxRetries passive 1)

CONTACT = "contact"  # what the search found: this, or the contactless pn532.IsoDep


class _Cancelled(Exception):
    """The cardholder cancelled on a screen the kernel asked for (PIN, application)."""


async def pay_by_card(app, op, amount, currency, online, payee="this terminal", offline=False):
    """Wait for a card, run the payment (see the module's docstring): (answer, result) approved,
    None when the cardholder cancelled, else raise an errors.Failure. currency: ISO 4217
    numeric ("978"), as the bank and the card speak it; payee: whom the card pays, on its PIN
    pad with the amount (a purchase's: this terminal). offline: the terminal may approve it
    without the bank (terminal.offline; a purchase may, a merchant's request is the bank's);
    answer is then a terminal.offline.Advice, its 0220 on flash, and result the same Advice
    (its PAN: the kernel's result is let go of before the advice is stored)."""
    up = app.link.uplink
    paid = await _with_card(app, op, amount, currency, online, payee, offline, up)
    if not isinstance(paid, dict):
        return paid
    # An offline approval: its advice's record (terminal.offline.prepare), stored now, with the
    # card done with and nothing but the record left of it: the kernel, its result, the slot's
    # driver and their modules let go of first (~8 KB: the write and the forward have it). The
    # card's part ran in _with_card, a coroutine of its own, for this: a coroutine's frame is
    # on the heap and keeps what its value stack last held (here the slot's driver, 2.6 KB with
    # its modules, through the write and the forward); that frame is gone once it returned.
    _let_go(_SLOT + _KERNEL)
    from terminal import offline

    try:
        advice = offline.store(up, paid)
    except Exception as e:
        raise errors.failure(e)
    if up is not None and up.connected:  # (it is: _offline made the record)
        asyncio.create_task(offline.forward(up))
    return advice, advice  # the advice stands for the result too (its PAN, History's)


async def _with_card(app, op, amount, currency, online, payee, offline, up):
    """pay_by_card's card part: what pay_by_card returns, or an offline approval's record."""
    import parts
    from terminal.receipt import alpha

    if up is not None and up.journal.full:
        raise errors.Failure(errors.REVERSALS_WAITING)  # before the card is asked for: its 0200 could not be sent
    ui = app.ui
    slot, nfc = _Switch(), await _reader()
    due = format_amount(amount, alpha(currency))
    payment = (due, payee)  # what the card's PIN pad shows its PIN pays
    made = []  # the kernel, made while the owner reaches for the card: not in its time in the field
    inserted = []  # the slot, once the card is in it: its PIN pad watches that it stays

    def prepare():
        made.append(_kernel(ui, op, amount, currency, inserted, payment, up if offline else None))
        # The heap collected now, not by the reading's allocations with the card in the field
        # (a collection of the app's heap is 0.2-0.3 ms here, ~50 ms on the ESP32 model).
        gc.collect()
    card = None
    try:
        card = await _present(ui, slot, nfc, "Insert or tap card",
                              "%s to %s. Insert the card, or hold it on the back." % payment, prepare)
    except Exception as e:  # the kernel could not be made (a CA key file that does not check)
        raise errors.failure(e)
    finally:
        if card is None and made:  # no card (cancelled, nobody came, a lock)
            _keys_closed(made[0])
    if card is None:
        return None
    try:
        op.critical = True
        try:
            kernel = made[0]
            res = None
            if card is not CONTACT:
                slot = None  # its driver made if the card asks for the slot
                tapped = [card, nfc]
                card = nfc = None  # held there alone: _tapped lets go of them
                res = await _tapped(kernel, tapped, amount)
                if res.outcome == _emv().TRY_ANOTHER_INTERFACE:
                    f = errors.Failure(errors.TRY_ANOTHER_INTERFACE)
                    op.critical = False
                    slot = _Switch()
                    if await _present(ui, slot, None, f.title, "%s. %s %s" % (due, f.message, f.remedy)) is None:
                        return None
                    op.critical = True
                    res = None
            elif nfc is not None:
                await _surely(_field_off(nfc))  # now, not at the end: the reader is let go
                nfc = _let_go(_READER)
            if res is None:
                _keys_held(kernel)
                slot = parts.slot()  # the card is in: the slot's driver now, the PN532's let go of
                ui.progress("Reading card", "%s. Leave the card in until the terminal says so." % due)
                inserted.append(slot)
                res = await _inserted(kernel, slot, amount)
            _read(kernel)
            paid = await _authorise(app, op, kernel, res, online, slot, payment, amount, currency)
        except _Cancelled:
            return None
        except Exception as e:
            raise _card_failure(e, slot if card is CONTACT else None)
    finally:
        _keys_closed(made[0])  # (by _read unless the card failed or was cancelled)
        await _surely(_release(slot, nfc))
        op.critical = False
    return paid


# What a payment lets go of once it is done with it: the PN532's driver once its field is off
# (a contactless card read, or a card in the slot), the slot's while a contactless card is read.
_READER = ("drivers.pn532",)
_SLOT = ("drivers.iso7816_slot", "iso7816", "iso7816.atr", "iso7816.pps")
# The card's reading's own modules (application selection, the CA keys, ODA, CVM processing): not
# the online step's nor the completion's (a CDA's second GENERATE AC imports what it needs again,
# after the peak). The first three are done with once the card asks for its offline PIN (EMV
# Book 3: ODA comes before CVM): let go of before its pad, the contact flows' peak (~2 KB).
_SELECTED = ("emv.select", "emv.capk", "emv.oda")
_READING = _SELECTED + ("emv.cda", "emv.cvm")
# The kernel's own, and the slot's protocols: let go of once an offline approval's card is done.
_KERNEL = ("emv.kernel", "emv.config", "emv.risk", "emv.apdu", "emv.tlv", "emv.tags", "emv", "iso7816.t0", "iso7816.t1")


def _let_go(names):
    """Let go of a driver and its modules (_READER, _SLOT) in the middle of a payment: its heap
    (~6 KB for the PN532's, ~3 KB for the slot's) is the card reading's, the online PIN's and the
    bank's answer's. None, for the caller's names."""
    import parts

    parts.unload(names)


def _read(kernel, names=_READING):
    """The card read, its outcome known: the kernel's CA keys (their file closed) and the
    reading's modules let go before the online step, whose DUKPT vault write is the card flows'
    peak (~2 KB less there); names=_SELECTED: the card's ODA done, before its offline PIN is
    asked for."""
    _keys_closed(kernel)
    _let_go(names)


def _keys_held(kernel):
    """A card in the slot, the PN532's driver let go of: its heap collected, and the kernel's CA
    key file opened now, for ODA (capk.Store.hold), before the slot's driver and the card's
    data take the room. A contact card's ODA comes after its records, with the slot's driver
    and T=1 in the heap: the contact flows' fullest heap, where on a steady unit the file's
    380-byte object found no hole. (A collection: ~50 ms on the ESP32 model. A tapped card's
    fDDA needs none: the PN532's driver is let go of before it.)"""
    gc.collect()
    kernel.capk.hold()


def _keys_closed(kernel):
    """The kernel's CA keys let go of, the file their store holds open closed (capk.Store.hold)."""
    if kernel.capk is not None:
        kernel.capk.close()
        kernel.capk = None


def _emv():
    import emv

    return emv


async def _reader():
    """The PN532, started once; None when it does not answer (the slot still works; Settings >
    Diagnostics says what is wrong with the reader)."""
    import parts
    from drivers.pn532 import NfcError

    nfc = parts.nfc()
    if nfc.firmware is None:
        try:
            await nfc.begin()
        except NfcError:
            return None
    return nfc


# ---- waiting for the card --------------------------------------------------------------------

class _Switch:
    """The slot's card switch alone (closed, low, with a card in), for the wait: the slot's
    driver and its protocols (~2.7 KB) are made once a card is in it, not held beside the
    PN532's and the kernel while a card is looked for (the contactless flows' peak)."""

    def __init__(self):
        import board
        from board import handheld as hw

        m = board.buses.machine
        self._pin = board.buses.pin(hw.PIN_CARD_DETECT, m.Pin.IN, m.Pin.PULL_UP)

    def present(self):
        return self._pin.value() == 0

    async def deactivate(self):
        pass  # no driver made, no card powered (_release)


class _Wait:
    """A card looked for in the slot and (nfc given) in the field, until one is found or the
    Cancel button (or its timeout) says stop; `done` is set at either end."""

    def __init__(self, slot, nfc):
        self.slot = slot
        self.nfc = nfc
        self.done = asyncio.Event()
        self.stop = False
        self.found = None

    async def search(self):
        from drivers.pn532 import NfcError

        nfc = self.nfc
        try:
            while not self.stop:
                if self.slot.present():
                    self.found = CONTACT
                    return
                if nfc is not None:
                    try:
                        targets = await nfc.list_passive_target(1, timeout_ms=_LIST_MS)
                        if targets and hasattr(targets[0], "transceive"):
                            self.found = targets[0]
                            return
                        if targets:
                            await targets[0].release()  # a tag that is not a payment card
                    except NfcError:
                        nfc = None  # the reader failed: the slot still takes a card
                await asyncio.sleep_ms(_LOOK_MS)
        finally:
            if self.stop and self.found is not None:
                self.found = None  # found as the cardholder cancelled: left alone
            if self.found is None and self.nfc is not None:
                await _field_off(self.nfc)
            self.done.set()

    async def button(self, ui, title, text):
        await ui.message(title, text, button="Cancel", timeout_ms=WAIT_MS)
        self.stop = True
        self.done.set()


async def _present(ui, slot, nfc, title, text, prepare=None):
    """The waiting screen until a card is there: CONTACT, the contactless target, or None
    (Cancel, or nobody came). prepare(), if given, runs once the screen is drawn and before
    the first look for a card: work the card's time in the field need not wait for."""
    w = _Wait(slot, nfc)
    # The screen first: it draws before its first await, so the owner sees it before the
    # first poll of the antenna is in flight (else the draw falls inside the card's time in the field).
    button = asyncio.create_task(w.button(ui, title, text))
    search = None
    try:
        if prepare is not None:
            await asyncio.sleep_ms(0)  # the button's task draws
            prepare()
        search = asyncio.create_task(w.search())
        await w.done.wait()
    except asyncio.CancelledError:  # a lock: the search stops at its next look
        w.stop = True
        if search is not None and search.done() and w.found is not None:
            asyncio.create_task(_release(slot, nfc))
        raise
    finally:
        button.cancel()
    return None if w.stop else w.found


# ---- the card --------------------------------------------------------------------------------

async def _card_pin(ui, slot, prompt, payment):
    """The card's PIN from the pad, or CANCEL or TIMEOUT. slot: the contact card's, watched while
    the PIN is typed: taken out, the pad goes within _LOOK_MS (CardRemoved: "Card removed"), not
    once OK is pressed (the pad wipes what was typed). payment: (amount text, payee), shown."""
    if slot is None:
        return await ui.pin_pad("Card PIN", prompt=prompt, amount=payment[0], payee=payment[1])
    import iso7816

    pad = asyncio.create_task(ui.pin_pad("Card PIN", prompt=prompt, amount=payment[0], payee=payment[1]))
    try:
        while not pad.done():
            if not slot.present():
                raise iso7816.CardRemoved("the card was taken out while its PIN was typed")
            await asyncio.sleep_ms(_LOOK_MS)
        return await pad
    finally:
        if not pad.done():
            pad.cancel()


def _kernel(ui, op, amount, currency, inserted, payment, up):
    # The issuer's terminal parameters (AIDs, floor and contactless limits, offline caps) over
    # the defaults, the floors lowered to what the offline caps leave (to 0 for a payment that
    # may not be approved offline: up None). First, and both modules let go of at once
    # (terminal.offline ~1.3 KB, update.config's functions ~1 KB), before the reading's modules
    # are imported: their heap and the batch's listing never meet (the kernel's making is the
    # offline flow's peak in steady state);
    # an offline approval imports terminal.offline again.
    import parts
    from terminal import offline
    from update import config as parameters

    config = offline.limit(parameters.kernel(currency), up)
    offline = parameters = None
    parts.unload(("terminal.offline", "update.config"))
    # select: the kernel's first step, imported before the card is there, not with it in the field
    from emv import capk, select  # noqa: F401
    from emv.kernel import Kernel

    async def choose(labels):
        op.critical = False
        answer = await ui.menu("Choose", [bytes(label).decode() for label in labels])
        op.critical = True
        if answer in (CANCEL, TIMEOUT):
            raise _Cancelled()
        return answer

    asked = []

    async def pin(tries):
        # The kernel calls again after a wrong PIN, with the tries the card has left.
        if not asked:
            _read(kernel, _SELECTED)
        prompt = "Enter the card's PIN"
        if asked and tries:
            prompt = "Wrong PIN: %d tr%s left" % (tries, "y" if tries == 1 else "ies")
        asked.append(tries)
        op.critical = False
        digits = await _card_pin(ui, inserted[0] if inserted else None, prompt, payment)
        op.critical = True
        if digits in (CANCEL, TIMEOUT):
            raise _Cancelled()
        return digits  # the kernel wipes it after VERIFY

    kernel = Kernel(config, capk.Store.load(), choose=choose, pin=pin)
    return kernel


async def _tapped(kernel, tapped, amount):
    """The contactless path, tapped: [the card, the PN532]. The card released, the field off and
    the PN532's driver let go of as soon as the card is done: on the short path once it has
    answered its last READ RECORD (the kernel's done), before fDDA, whose RSA work and CA key
    lookup were the contactless flows' fullest heap with the driver in it (~5 KB); else when
    the kernel returns."""

    async def done():
        if tapped:
            await _surely(_release(None, tapped.pop()))
            tapped.clear()
            _let_go(_READER)
    try:
        return await kernel.transact(tapped[0].transceive, amount, contactless=True, done=done)
    finally:
        await done()


async def _inserted(kernel, slot, amount):
    await slot.activate()
    return await kernel.transact(slot.transceive, amount)


def _card_failure(e, slot, approved=False):
    """What a card's or its interface's error means to the cardholder. A card that is not
    there any more was removed (contactless: the driver's silence is removal). approved: the
    bank had approved, and its approval is being reversed."""
    import iso7816
    from emv.apdu import InterfaceError

    if isinstance(e, (InterfaceError, iso7816.CardError)):
        removed = slot is None or not slot.present()
        kind = errors.CARD_REMOVED if removed else errors.CARD_UNREADABLE
        if approved:
            return errors.Failure(kind, "The card was %s before the payment finished. The bank's approval was "
                                  "cancelled: nothing was charged." % ("taken away" if removed else "no longer readable"))
        return errors.Failure(kind)
    return errors.failure(e)


def _outcome_failure(res, config):
    """The failure for a kernel result that cannot go online."""
    emv = _emv()
    if res.outcome == emv.DECLINED:
        from emv import risk

        if not config.online and risk.marked(res.tvr, risk.FLOOR_LIMIT_EXCEEDED):
            # Declined offline (Z1) by the terminal's default action: the bank away, the amount
            # at or above the floor limit or beyond what the offline caps leave.
            return errors.Failure(errors.OFFLINE_LIMIT)
        return errors.Failure(errors.DECLINED, "The card declined the payment; nothing was charged.")
    if res.reason == emv.APPLICATION_BLOCKED:
        return errors.Failure(errors.CARD_BLOCKED)
    # END (bad card data, no common application), or an offline approval the terminal did
    # not allow (a payment that must go online)
    return errors.Failure(errors.CARD_UNREADABLE)


def _unreachable(e):
    """Whether the online step failed with nothing sent (the bank away: EMV's "unable to go
    online"), not after the 0200 left (its reversal then stands; the card is declined)."""
    import uplink

    return isinstance(e, uplink.NotConnected) or (
        isinstance(e, errors.Failure) and e.kind in (errors.NO_NETWORK, errors.BANK_DOWN, errors.BANK_TIMEOUT))


def _offline(app, kernel, res, amount, currency):
    """The card's offline approval (its TC): its advice's record (terminal.offline.prepare), which
    pay_by_card stores on flash before anyone is told, and sends at once if the bank is there; or
    the failure: a card that approved what the terminal could not allow (beyond its caps, or with
    no bank to tell)."""
    up = app.link.uplink
    if up is None or kernel.config.offline_caps is None:
        raise errors.Failure(errors.CARD_UNREADABLE)
    from terminal import offline

    try:
        return offline.prepare(up, kernel.config, res, amount, currency)
    except offline.OverCaps:
        raise errors.Failure(errors.OFFLINE_LIMIT)


# ---- the bank --------------------------------------------------------------------------------

async def _authorise(app, op, kernel, res, online, slot, payment, amount, currency):
    """The online PIN if the card wants one, the bank's answer, the completion with the card
    (slot: contact; None: contactless, already gone; payment: what the PIN pad shows). The
    card's TC (offline) or, the bank away, its approval at the second GENERATE AC (Y3): the
    offline approval's advice's record (_offline), for pay_by_card to store."""
    ui = app.ui
    emv = _emv()
    if res.outcome == emv.APPROVED:
        return _offline(app, kernel, res, amount, currency)
    if res.outcome != emv.ONLINE:
        raise _outcome_failure(res, kernel.config)
    pin = None
    if res.online_pin:
        op.critical = False
        pin = await _card_pin(ui, slot, "Enter the card's PIN", payment)
        op.critical = True
        if pin in (CANCEL, TIMEOUT):
            return None
    ui.progress("Authorising", "Contacting the bank")
    told = asyncio.create_task(_told_removed(ui, slot, payment[0])) if slot is not None else None
    try:
        answer = await online(res, pin)
    except Exception as e:
        # Unable to go online (nothing sent): the default action codes decide (EMV Book 3 10.8),
        # Y3 or Z3, and the card may still decline; once the 0200 left: Z3, its reversal stands.
        unable = kernel.config.offline_caps is not None and _unreachable(e)
        if slot is not None:
            try:
                await kernel.complete(slot.transceive, res, None if unable else b"Z3")
            except Exception:
                pass  # the card's own failure matters less than the bank's, which is shown
            if unable and res.outcome == emv.APPROVED:
                return _offline(app, kernel, res, amount, currency)
        raise errors.failure(e)
    finally:
        if told is not None:
            told.cancel()
        if pin is not None:
            for i in range(len(pin)):
                pin[i] = 0
    auth, scripts = _issuer_data(answer.icc)
    try:
        await kernel.complete(slot.transceive if slot is not None else None, res, (answer.rc or "").encode(), auth,
                              scripts)
    except BaseException as e:  # the card did not complete: a bank's approval must not stand
        if not answer.approved:
            raise
        await _reverse(app, answer)
        if not isinstance(e, Exception):
            raise  # cancelled
        raise _card_failure(e, slot, approved=True)
    errors.answered(answer)  # the bank's decline, by its response code
    if res.outcome != _emv().APPROVED:
        await _reverse(app, answer)
        raise errors.Failure(errors.DECLINED, "The card refused the payment the bank approved. The payment was "
                             "cancelled: nothing was charged.")
    app.link.uplink.completed(answer)  # the card's TC: its armed reversal dropped (a cut before it sends it)
    return answer, res


async def _told_removed(ui, slot, due):
    """While the bank is asked, a contact card taken out of the slot is said within _LOOK_MS,
    not once the answer comes (up to the link's answer wait): the request has left, so the flow
    still waits for its answer, and the approval the card can no longer take is reversed (or,
    unanswered, its reversal stands); the screen after says which."""
    while slot.present():
        await asyncio.sleep_ms(_LOOK_MS)
    ui.progress("Card removed", "%s. The payment is being cancelled: nothing will be charged." % due)


async def _reverse(app, answer):
    """The bank's approval undone: queued on flash at once, sent now if the bank is there (else
    after the next sign-on). In a task of its own: a lock's cancel does not stop the sending."""
    await _surely(app.link.uplink.reverse(answer))


def _issuer_data(icc):
    """(91 issuer authentication data, the 71/72 scripts re-encoded) from the answer's DE55."""
    if not icc:
        return None, None
    from emv import TlvError, tlv

    auth, scripts = None, bytearray()
    try:
        for tag, value in tlv.decode(icc):
            if tag == 0x91:
                auth = bytes(value)
            elif tag in (0x71, 0x72):
                scripts += tlv.encode(tag, value)
    except TlvError:
        return None, None  # the card judges an answer without issuer data itself
    return auth, bytes(scripts) or None


# ---- the end ---------------------------------------------------------------------------------

async def _surely(coro):
    """Run coro to its end in a task of its own: a cancel stops the waiting for it, not it."""
    await asyncio.create_task(coro)


async def _field_off(nfc):
    from drivers.pn532 import NfcError

    try:
        await nfc.in_release(0)
        await nfc.rf_field(False)
    except NfcError:
        pass  # a reader that stopped answering has no field to leave on


async def _release(slot, nfc):
    """The slot powered down, the contactless card released and the field off."""
    if slot is not None:
        await slot.deactivate()
    if nfc is not None:
        await _field_off(nfc)
