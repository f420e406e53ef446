"""The web simulator end to end, as its user meets it: `python -m tools.websim` (the demo
terminal, the reference bank host) in headless Chromium; the owner unlocks by clicking the PIN
pad on the page's screen, the page's merchant panel pushes a payment request, the owner approves
it on the page's screen with the PIN, the device shows Approved, the bank's ledger moved by the
amount, and the page's ISO 8583 trace shows the bank's approval under the reference on screen."""

import time

import pytest

from tools.demo import DEMO_PIN
from websimfix import chromium_missing, locked, websim_page

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")

OWNER = "ACC-OWNER"  # the demo owner's default account (tools/demo.py)
AMOUNT = 1250


@pytest.fixture(scope="module")
def handheld(tmp_path_factory):
    with websim_page(tmp_path_factory.mktemp("websim-e2e")) as h:
        yield h


def test_unlock_push_a_request_and_pay_it_on_the_page(handheld):
    h = handheld
    h.page.click("[data-zoom='1.5']")  # the page scales its screen; clicks still land on the keys
    h.screen(locked)
    h.unlock(DEMO_PIN)  # PIN, then the PIN pad's keys clicked on the page's screen
    h.screen("Pocket Terminal")

    before = h.balance(OWNER)
    order = "E2E-%d" % time.time()
    status, request = h.push("Coffee Corner", order, AMOUNT)
    assert status == 201, request
    shown = h.screen("Payment request")
    assert shown["text"].startswith("€12.50 to Coffee Corner"), shown
    h.tap("Pay")
    h.screen("Confirm with PIN")
    h.type_pin(DEMO_PIN)
    approved = h.screen("Approved")
    assert "€12.50" in approved["text"] and "Coffee Corner" in approved["text"], approved

    after = h.balance(OWNER)
    assert after == before - AMOUNT, (before, after)
    paid = h.bank("/payment-requests/" + request["id"], request["merchant_id"])
    assert paid["status"] == "paid" and paid["rrn"] and paid["rrn"] in approved["text"], (paid, approved)
    # The page's ISO 8583 trace has the bank's answer: the amount, the reference, approved.
    h.page.wait_for_function("document.getElementById('iso8583').textContent.includes('DE37 %s')" % paid["rrn"])
    answer = next(m for m in h.page.locator("#iso8583 .iso").all_inner_texts() if "DE37 " + paid["rrn"] in m)
    assert "DE4 %012d" % AMOUNT in answer and "DE39 00" in answer, answer
