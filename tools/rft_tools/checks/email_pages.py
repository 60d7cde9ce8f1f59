"""Every kind of email, rendered from its example and opened in a real browser.

``rft mail screenshots`` (``make email-screenshots``) renders each kind in
``rft_common.email.templates.KINDS`` from ``rft_tools.data.email_examples`` and opens its
HTML part in the machine's Chromium (``/usr/bin/chromium``; Playwright drives it and never
downloads a browser). For each message it checks what a mail client would show:

- the page loads nothing from anywhere (mail clients block remote content; an email that
  needs it looks broken) and logs no error;
- it fits a phone: no sideways scrolling at 375 CSS pixels;
- every link is ``https:`` or ``mailto:`` and has visible text.

It then saves a full-page screenshot at 600 pixels wide, the usual email width, as
``docs/emails/<kind>.png``, and returns the problems found (none is the goal).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from rft_common.email.templates import KINDS, render
from rft_tools.data.email_examples import EXAMPLES

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP_WIDTH = 600
PHONE_WIDTH = 375
CHROMIUM_FLAGS = [
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Chromium otherwise calls Google's services at start, which a closed network refuses."""

LINKS_SCRIPT = """() => [...document.querySelectorAll('a')].map(a => ({
    href: a.getAttribute('href') || '', text: a.innerText.trim(),
    visible: a.getBoundingClientRect().width > 0 && a.getBoundingClientRect().height > 0
}))"""
OVERFLOW_SCRIPT = "() => document.documentElement.scrollWidth - window.innerWidth"


@dataclass(frozen=True)
class PageCheck:
    kind: str
    screenshot: Path
    problems: list[str]


def check_emails(output: Path) -> list[PageCheck]:
    """Check every kind of email in Chromium and screenshot it into ``output``."""
    from playwright.sync_api import sync_playwright

    missing = sorted(set(KINDS) - set(EXAMPLES))
    if missing:
        raise SystemExit(f"no example payload for {', '.join(missing)} in email_examples.py")
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as pages, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            return [
                _check(browser, kind, Path(pages) / f"{kind}.html", output / f"{kind}.png")
                for kind in sorted(KINDS)
            ]
        finally:
            browser.close()


def _check(browser, kind: str, page_file: Path, screenshot: Path) -> PageCheck:
    page_file.write_text(render(kind, EXAMPLES[kind]).html, encoding="utf-8")
    problems: list[str] = []
    page = browser.new_page(viewport={"width": PHONE_WIDTH, "height": 800})
    page.on("console", lambda message: _console(message, problems))
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "request",
        lambda request: (
            None
            if request.url == page_file.as_uri()
            else problems.append(f"loads {request.url} (mail clients block remote content)")
        ),
    )
    page.goto(page_file.as_uri())
    overflow = page.evaluate(OVERFLOW_SCRIPT)
    if overflow > 0:
        problems.append(f"scrolls sideways by {overflow}px on a {PHONE_WIDTH}px-wide phone")
    for link in page.evaluate(LINKS_SCRIPT):
        if not link["href"].startswith(("https://", "mailto:")):
            problems.append(f"link {link['href']!r} is not https: or mailto:")
        if not (link["text"] and link["visible"]):
            problems.append(f"link {link['href']!r} has no visible text")
    page.set_viewport_size({"width": DESKTOP_WIDTH, "height": 800})
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return PageCheck(kind, screenshot, problems)


def _console(message, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(f"console error: {message.text}")
