"""The built site in a real browser: Debian's Chromium, driven by Playwright, on _build/html served from 127.0.0.1.

Every page of _toc.yml and the search page are visited once (a module fixture); the tests then check what was seen:
math typeset by the site's own MathJax with no raw TeX left and no TeX error, no request to any host but 127.0.0.1
(they are aborted and listed), no missing local file, no broken image, no JavaScript error, and the site's search
finding the BPTT chapter for "truncated". Screenshots of a few pages go to _build/screenshots/ for people to look at.

It never downloads a browser (no `playwright install`): it needs /usr/bin/chromium (`make test` installs it:
`sudo apt-get install chromium`) and the playwright package from requirements.txt.
"""

import functools
import os
import re
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
SEARCH_WORD, SEARCH_PAGE = "truncated", "book/03_bptt"
TIMEOUT_MS = 60_000

# Raw TeX in the text a reader sees: delimiters, a control word, or $...$ with TeX inside that MyST did not turn into
# math. Text inside code, scripts and MathJax's own output is not looked at.
RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\\[A-Za-z]+|\$[^$\n]*[\\^_{}][^$\n]*\$")
VISIBLE_TEXT_JS = """() => {
  const skip = new Set(["PRE", "CODE", "SCRIPT", "STYLE", "TEXTAREA", "NOSCRIPT", "MJX-CONTAINER"]);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode(node) {
    for (let el = node.parentElement; el; el = el.parentElement)
      if (skip.has(el.tagName)) return NodeFilter.FILTER_REJECT;
    return NodeFilter.FILTER_ACCEPT;
  }});
  const parts = [];
  while (walker.nextNode()) parts.push(walker.currentNode.nodeValue);
  return parts.join(" ");
}"""
MATHJAX_READY_JS = """async () => {
  if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return false;
  await MathJax.startup.promise;
  return true;
}"""
# Console errors of the pinned upstream packages, harmless, that no setting removes (reported, not hidden elsewhere):
# - Sphinx 7.4 emits a script added by an extension with add_js_file(None, body=...) twice (sphinx-doc/sphinx#13402,
#   fixed in Sphinx 8.2; jupyter-book 1 requires sphinx~=7.0): sphinx-thebe's `const THEBE_JS_URL = ...` is declared
#   twice; the first declaration stands, the page works.
# - pydata-sphinx-theme logs an error when a first-time visitor has no stored light/dark mode, then uses "auto".
KNOWN_UPSTREAM_ERRORS = ["Identifier 'THEBE_JS_URL' has already been declared", "Got invalid theme mode: . Resetting"]
PAGE_FACTS_JS = """() => ({
  mathjax: document.querySelectorAll("mjx-container").length,
  // a TeX error (noerrors: merror) or an undefined macro (noundefined: red text), shown with its MathML's text
  tex_errors: Array.from(document.querySelectorAll("mjx-container"))
    .filter(c => c.querySelector('mjx-merror, [data-mml-node="merror"], [data-mml-node="mtext"][fill="red"]'))
    .map(c => (c.querySelector("mjx-assistive-mml") || c).textContent),
  broken_images: Array.from(document.images).filter(i => i.complete && i.naturalWidth === 0).map(i => i.src),
  images: document.images.length,
})"""


def require_browser():
    """Playwright's sync API and Debian's Chromium, or a failure (never a skip) saying how to get them."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        pytest.fail(
            f"the browser test needs the playwright package ({error}): `make test` installs it, or "
            "`.venv/bin/pip install -r requirements.txt` (never run `playwright install`: the test uses Debian's "
            "Chromium)",
            pytrace=False,
        )
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"the browser test needs Chromium at {CHROMIUM}: `make test` installs it, or "
            "`sudo apt-get install chromium` (Debian/Ubuntu); set CHROMIUM=/path/to/chromium to use another",
            pytrace=False,
        )
    return sync_playwright


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # the browser closing a connection early is not a failure
        pass


@pytest.fixture(scope="module")
def site_url(built_book):
    """_build/html served on 127.0.0.1, on a free port, for the duration of this module."""
    server = QuietServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(built_book.html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def has_math(built_book, page):
    return 'class="math notranslate' in (built_book.html / f"{page}.html").read_text(encoding="utf-8")


def figure_count(built_book, page):
    return (built_book.html / f"{page}.html").read_text(encoding="utf-8").count("<img ")


@pytest.fixture(scope="module")
def visit(built_book, site_url):
    """Every page of _toc.yml, then the search page with a query, in one browser; what each page showed."""
    sync_playwright = require_browser()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    origin = urlsplit(site_url)
    shots_dir = built_book.root / "_build" / "screenshots"
    shutil.rmtree(shots_dir, ignore_errors=True)
    shots_dir.mkdir(parents=True)
    math_pages = [page for page in built_book.pages if has_math(built_book, page)]
    chapter = max(math_pages, key=lambda page: figure_count(built_book, page), default=None)
    shots = {"index": "home", "book/00_notation": "notation"}
    if chapter is not None:
        shots.setdefault(chapter, "chapter")

    seen = SimpleNamespace(requests=[], external=[], http_errors=[], js_errors=[], pages={}, search=None,
                           screenshots=[], math_pages=math_pages)

    def is_local(url):
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return True
        return parts.scheme in ("http", "https", "ws", "wss") and parts.netloc == origin.netloc

    def route(route):
        if is_local(route.request.url):
            route.continue_()
        else:
            seen.external.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
            context.route("**/*", route)
            context.on("request", lambda request: seen.requests.append(request.url))
            context.on("response", lambda response: response.status >= 400 and seen.http_errors.append(
                f"{response.status} {response.url}"))
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            current = {"name": None}

            def js_error(text):
                # "Failed to load resource" is listed among the external requests or the local HTTP errors
                if "Failed to load resource" not in text and not any(known in text for known in KNOWN_UPSTREAM_ERRORS):
                    seen.js_errors.append(f"{current['name']}: {text}")

            page.on("pageerror", lambda error: js_error(str(error)))
            page.on("console", lambda message: message.type == "error" and js_error(f"console: {message.text}"))

            def screenshot(name):
                path = shots_dir / f"{name}.png"
                page.screenshot(path=str(path), full_page=True)
                seen.screenshots.append(path)

            for name in ["index", *built_book.pages]:
                current["name"] = name
                page.goto(f"{site_url}/{name}.html", wait_until="load")
                if name == "index":  # a redirect to the root page (test_home_is_the_root_page says where it went)
                    try:
                        page.wait_for_url(f"{site_url}/{built_book.pages[0]}.html", timeout=10_000)
                    except PlaywrightTimeout:
                        pass
                page.wait_for_load_state("networkidle")
                mathjax_loaded = page.evaluate(MATHJAX_READY_JS)
                facts = page.evaluate(PAGE_FACTS_JS)
                facts.update(mathjax_loaded=mathjax_loaded, text=page.evaluate(VISIBLE_TEXT_JS), url=page.url)
                seen.pages[name] = facts
                if name in shots:
                    screenshot(shots[name])

            current["name"] = "search"
            page.goto(f"{site_url}/search.html?q={SEARCH_WORD}", wait_until="load")
            page.wait_for_function(
                "() => { const h = document.querySelector('#search-results h2');"
                " return h && h.innerText.trim() === 'Search Results'; }"
            )
            page.wait_for_load_state("networkidle")
            seen.search = SimpleNamespace(
                links=page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(e => e.href)"),
                summary=page.inner_text("#search-results .search-summary"),
            )
            screenshot("search")
            context.close()
        finally:
            browser.close()
    return seen


def test_no_request_leaves_localhost(visit):
    assert visit.requests, "the browser made no request at all"
    assert not visit.external, (
        "the site asks other hosts for these (aborted; it must work offline):\n"
        + "\n".join(sorted(set(visit.external)))
    )


def test_home_is_the_root_page(visit, built_book):
    assert visit.pages["index"]["url"].endswith(f"/{built_book.pages[0]}.html"), visit.pages["index"]["url"]


def test_no_missing_file_and_no_javascript_error(visit):
    assert not visit.http_errors, "local requests that failed:\n" + "\n".join(sorted(set(visit.http_errors)))
    assert not visit.js_errors, "JavaScript errors:\n" + "\n".join(visit.js_errors)


def test_no_broken_image(visit):
    broken = [f"{name}: {src}" for name, facts in visit.pages.items() for src in facts["broken_images"]]
    assert not broken, "images that did not load:\n" + "\n".join(broken)


def test_notation_page_and_chapters_have_math(built_book):
    """Every chapter notebook but the welcome page (the root) writes math (the project's rule for pages)."""
    chapters = [page for page in built_book.pages[1:] if (built_book.root / f"{page}.ipynb").is_file()]
    without = [page for page in chapters if not has_math(built_book, page)]
    assert not without, f"pages without any math (no MyST $...$ / $$...$$ in the built HTML): {without}"


def test_math_is_typeset(visit):
    assert visit.math_pages, "no page of the site contains math"
    problems = []
    for page in visit.math_pages:
        facts = visit.pages[page]
        if not facts["mathjax_loaded"]:
            problems.append(f"{page}: MathJax did not load")
        elif not facts["mathjax"]:
            problems.append(f"{page}: math markup but no MathJax output (mjx-container)")
        if facts["tex_errors"]:
            problems.append(f"{page}: TeX errors: {facts['tex_errors'][:5]}")
    for page, facts in visit.pages.items():
        raw = sorted({match.group(0) for match in RAW_TEX.finditer(facts["text"])})
        if raw:
            match = RAW_TEX.search(facts["text"])
            context = " ".join(facts["text"][max(0, match.start() - 100): match.end() + 100].split())
            problems.append(f"{page}: raw TeX left in the text: {raw[:8]}, e.g. ...{context!r}...")
    assert not problems, "\n".join(problems)


def test_search_finds_the_bptt_chapter(visit):
    pages = [urlsplit(link).path for link in visit.search.links]
    assert any(path.endswith(f"/{SEARCH_PAGE}.html") for path in pages), (
        f"searching {SEARCH_WORD!r} did not find {SEARCH_PAGE}: {visit.search.summary!r}; results: {pages}"
    )


def test_screenshots_are_saved(visit):
    names = {path.stem for path in visit.screenshots}
    assert {"home", "notation", "search"} <= names, names
    for path in visit.screenshots:
        assert path.stat().st_size > 10_000, f"{path} is suspiciously small"
