"""The demo book's HTML in a real browser: headless Debian Chromium driven by Playwright, from ``file://``.

The demo book (``s2book demo``: simulated run, every notebook executed, HTML built) is the one the installed tool
makes in a new book project (the ``installed_demo`` fixture of tests/conftest.py, shared with
tests/test_install.py: one demo build per session). Then every HTML page of the site is opened with the network cut off, and for each page the test
asserts:

- it loads from ``file://`` and asks for nothing else: any ``http(s)://`` request is aborted and recorded, and a
  recorded request fails the page (the maths must come from the bundled MathJax, not a CDN);
- the browser console shows no error and the page raises no JavaScript exception;
- every ``<img>`` finished loading with a non-zero natural size (no broken figure);
- MathJax finished typesetting and no raw TeX is left in the rendered text (no ``\\(``, ``\\[``, ``$$`` or
  ``$…$`` with a backslash command inside); pages that carry maths show ``mjx-container`` elements;
- and the search page answers a query with at least one result that links to a page of the book.

Chromium comes from Debian (``/usr/bin/chromium``, installed by ``scripts/install-debian.sh``); Playwright never
downloads a browser here, it is pointed at that executable.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Raw TeX left in rendered text: \( \[ $$, or an inline $...$ holding a backslash command or a ^/_ script.
RAW_TEX = re.compile(r"\\\(|\\\[|\$\$|\$[^$\n]{0,200}(\\[A-Za-z]+|[\^_]\{)[^$\n]{0,200}\$")
REDIRECT = re.compile(r'<meta http-equiv="Refresh" content="0; url=([^"]+)"', re.IGNORECASE)
# Pages that must show figures (the demo run has 6 sets: far more than these minima).
MIN_FIGURES = {"integration.html": 2, "fitting.html": 2, "calibration.html": 2, "summary.html": 1}
PAGE_DIRS_SKIPPED = {"_static", "_sources", "_images", "_sphinx_design_static", "_panels_static"}


@pytest.fixture(scope="module")
def demo_site(installed_demo: dict) -> Path:
    """The ``_build/html`` of the demo book (HTML only) that the installed s2book built in a new book project."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium is missing ({CHROMIUM}): run `make test`, which installs Debian's chromium")
    site = installed_demo["site"]
    assert (site / "index.html").is_file()
    return site


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html")
                  if not PAGE_DIRS_SKIPPED.intersection(p.relative_to(site).parts))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, url: str):
    """Open ``url`` in a fresh offline context; return (page, console errors, page errors, network requests)."""
    context = browser.new_context(offline=True)
    page = context.new_page()
    console, exceptions, network = [], [], []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: exceptions.append(str(e)))

    def block(route) -> None:
        network.append(route.request.url)
        route.abort()

    page.route(re.compile(r"^(https?|wss?|ftp)://"), block)
    page.goto(url, wait_until="load")
    target = REDIRECT.search(Path(url.removeprefix("file://").split("?")[0]).read_text(encoding="utf-8"))
    if target:  # a redirect page (the site's index.html): follow it and check where it lands
        page.wait_for_url(f"**/{target.group(1)}", wait_until="load")
    return page, console, exceptions, network


_MATHJAX_DONE = """async () => {
  if (!window.MathJax) return {mathjax: false, containers: 0};
  if (MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  return {mathjax: true, containers: document.querySelectorAll('mjx-container').length};
}"""

_IMAGES = """() => Array.from(document.images).map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}))"""


def test_every_page_loads_offline_with_images_and_typeset_maths(demo_site: Path, browser) -> None:
    pages = _pages(demo_site)
    names = [p.relative_to(demo_site).as_posix() for p in pages]
    # The demo book's chapters must all be there: introduction, methods, the run's three stages, summary, appendix.
    for expected in ("book/intro.html", "book/methods.html", "book/runs/summary.html",
                     "book/runs/provenance.html", "search.html"):
        assert expected in names, f"{expected} missing from the site: {names}"
    assert sum(n.endswith(("integration.html", "fitting.html", "calibration.html")) for n in names) >= 3
    problems: dict[str, list[str]] = {}
    math_pages = 0
    for path in pages:
        page, console, exceptions, network = _open(browser, path.as_uri())
        found = [f"console error: {c}" for c in console] + [f"page error: {e}" for e in exceptions]
        found += [f"network request: {u}" for u in network]
        images = page.evaluate(_IMAGES)
        for img in images:
            if not img["ok"]:
                found.append(f"image not loaded: {img['src']}")
        if sum(img["ok"] for img in images) < MIN_FIGURES.get(path.name, 0):
            found.append(f"only {len(images)} image(s): the page's figures are missing")
        math = page.evaluate(_MATHJAX_DONE)
        text = page.inner_text("body")
        raw = RAW_TEX.search(text)
        if raw:
            found.append(f"raw TeX left in the text: {raw.group(0)[:80]!r}")
        if math["containers"]:
            math_pages += 1
        if path.name in {"methods.html", "calibration.html"} and not math["containers"]:
            found.append(f"no typeset maths (MathJax loaded: {math['mathjax']})")
        if found:
            problems[path.relative_to(demo_site).as_posix()] = found
        page.context.close()
    assert not problems, "pages with problems:\n" + "\n".join(f"{k}: {v}" for k, v in problems.items())
    assert math_pages >= 2, f"only {math_pages} page(s) show typeset maths"


def test_search_page_answers_a_query(demo_site: Path, browser) -> None:
    page, console, exceptions, network = _open(browser, (demo_site / "search.html").as_uri() + "?q=recombination")
    page.wait_for_selector("#search-results ul.search li", timeout=30_000)
    hits = page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(e => e.getAttribute('href'))")
    assert hits, "the search page found nothing for 'recombination'"
    assert any("methods" in h or "calibration" in h or "summary" in h for h in hits), hits
    assert not console and not exceptions and not network, (console, exceptions, network)
    page.context.close()
