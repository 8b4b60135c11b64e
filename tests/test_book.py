"""The book builds strictly (-W -n) from the repository, and every page of _toc.yml is in the site."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_pages(node):
    for key in ("root", "file"):
        if key in node:
            yield node[key]
    for child in node.get("parts", []) + node.get("chapters", []) + node.get("sections", []):
        yield from toc_pages(child)


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out / "_build" / "html"


def test_every_toc_page_is_built(built_site):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = list(toc_pages(toc))
    assert pages, "_toc.yml lists no page"
    for page in pages:
        stem = page[: -len(Path(page).suffix)] if Path(page).suffix in (".md", ".ipynb") else page
        html = built_site / (stem + ".html")
        assert html.is_file(), f"{page} from _toc.yml is missing from the built site ({html})"
    assert (built_site / "index.html").is_file()
