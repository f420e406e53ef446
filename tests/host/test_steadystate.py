"""tools/steadystate.py on the demo terminal: every store at its cap through the firmware's
APIs, and the unit still works in that state; the History screen pages through a full history
(terminal.app.History: a page of three, "Older" and "Newer" on the menu's next screen)."""

from terminalfix import terminal  # noqa: F401 (the fixture)

from tools import steadystate


def test_fill_puts_every_store_at_its_cap_and_history_pages(terminal):  # noqa: F811
    t = terminal
    filled = steadystate.fill(t.device, t.bank.dir)
    assert filled == {"history": 50, "fingerprints": steadystate.FINGERPRINTS, "accounts": steadystate.ACCOUNTS,
                      "capk": steadystate.CAPK, "reversals": steadystate.REVERSALS}, filled
    t.restart()
    t.unlock()
    t.choose("History")
    # The newest three (the 51st add, then the two before it), newest first.
    first = t.screen("History")["buttons"]
    assert sorted((b for b in first if b.startswith("€")), key=lambda b: first[b][1]) == ["€19.70 Gate A1B2C3D4", "€19.33 Corner Bakery",
                                                        "€18.96 Purchase"], first
    t.tap("More")
    assert {"Older", "Clear history"} <= set(t.screen("History")["buttons"]) and "Newer" not in t.screens[-1]["buttons"]
    t.tap("Older")
    assert "€18.59 Librairie du Centre, Lyon" in t.screen("History")["buttons"]
    t.tap("More")
    t.screen("History")
    t.tap("Newer")
    assert "€18.96 Purchase" in t.screen("History")["buttons"]
    t.tap("€18.96 Purchase")
    shown = t.screen("Purchase")
    assert shown["text"].startswith("Purchase of €18.96: approved. With •••• 0010. Reference 000000000048. ")
    assert "Refund" in shown["buttons"]  # an approved payment can be given back
    t.tap("OK")
    t.screen("History")
    t.tap("Back")
    t.screen("Pocket Terminal")
