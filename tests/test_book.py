"""The built book: it builds strictly (-W -n --keep-going, a failing cell fails the build), every page of _toc.yml is in
the site, no executed cell left a traceback, a warning or any stderr output in a page, and the set-up cell of every
chapter is removed from the site.

The book is built once per test session by the `built_book` fixture (tests/conftest.py), into the repository's
_build/ (where `make book` writes, sharing jupyter-book's execution cache); test_site_browser.py uses the same build.
"""

import re

import nbformat
import pytest
from bs4 import BeautifulSoup

pytestmark = pytest.mark.slow

# In the text of any cell output: a traceback, or a warning or exception line as Python prints them
# ("RuntimeWarning: overflow ...", "ValueError: ..."). Lower-case words ("max abs error 1e-12") are fine.
PYTHON_PROBLEM = re.compile(r"Traceback \(most recent call last\)|\b[A-Z]\w*(?:Warning|Error|Exception)\b:")


def page_html(built_book, page):
    return (built_book.html / f"{page}.html").read_text(encoding="utf-8")


def setup_cell(path):
    """The first code cell of a notebook, or None."""
    nb = nbformat.read(path, as_version=4)
    return next((cell for cell in nb.cells if cell.cell_type == "code"), None)


def test_the_book_builds(built_book):
    """The fixture already failed with the build's output if the strict build failed; here, its summary line."""
    assert "build succeeded" in built_book.log, built_book.log[-3000:]


def test_every_toc_page_is_built(built_book):
    assert built_book.pages, "_toc.yml lists no page"
    for page in built_book.pages:
        html = built_book.html / f"{page}.html"
        assert html.is_file(), f"{page} from _toc.yml is missing from the built site ({html})"
    assert (built_book.html / "index.html").is_file()


def test_no_traceback_warning_or_stderr_in_any_page(built_book):
    """myst-nb renders a stderr stream as `div.output.stderr` and an error as `div.output.traceback` (allow_errors or a
    raises-exception tag would let one through); the project's rule is that no cell writes to stderr at all."""
    problems = []
    for page in built_book.pages:
        soup = BeautifulSoup(page_html(built_book, page), "html.parser")
        for node in soup.select("div.output.stderr, div.output.traceback"):
            kind = "traceback" if "traceback" in node["class"] else "stderr output"
            problems.append(f"{page}.html: {kind}: {node.get_text()[:300]!r}")
        for node in soup.select("div.output"):
            if {"stderr", "traceback"} & set(node["class"]):
                continue
            text = node.get_text()
            match = PYTHON_PROBLEM.search(text)
            if match:
                start = max(0, match.start() - 100)
                problems.append(f"{page}.html: cell output contains {match.group(0)!r}: {text[start:start + 300]!r}")
    assert not problems, "executed cells left problems in the site (fix their cause):\n" + "\n".join(problems)


def test_setup_cell_is_not_in_the_site(built_book):
    """The first code cell (tagged remove-cell; it installs course_pkg on Colab/Binder) appears on no page."""
    problems = []
    for page in built_book.pages:
        source = built_book.root / f"{page}.ipynb"
        cell = setup_cell(source) if source.is_file() else None
        if cell is None:
            continue
        soup = BeautifulSoup(page_html(built_book, page), "html.parser")
        if soup.select(".tag_remove-cell"):
            problems.append(f"{page}.html: an element tagged remove-cell is in the page")
        setup = " ".join(cell.source.split())
        if any(setup in " ".join(pre.get_text().split()) for pre in soup.select("pre")):
            problems.append(f"{page}.html shows the set-up cell:\n{cell.source}")
    assert not problems, "\n".join(problems)
