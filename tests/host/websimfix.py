"""The web simulator for tests: `python -m tools.websim` as a child process on its own image and
state dir, and headless Chromium (Debian's, driven by Playwright) on its page; Handheld drives
the application on the page as its owner does (tools/screenshots.py, which records the README's
pictures the same way)."""

from tools.screenshots import Handheld, WebsimProcess, browser, chromium_missing, locked, websim_page

__all__ = ["Handheld", "WebsimProcess", "browser", "chromium_missing", "locked", "websim_page"]
