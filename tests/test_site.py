"""Links to the repository (course_pkg.site): one setting, no dead links.

Unit tests of the URL resolution and of `set-repository` on a copy of the repository's files; the committed
chapters' set-up cells agree with the setting; and (slow, on the built book) no page links to the old placeholder
repository, and with no repository known the pages have no repository or launch button.
"""

import json
import re
import shutil
import subprocess

import pytest
from bs4 import BeautifulSoup

from course_pkg import site

PLACEHOLDER = "rnn-course/rnn-course"  # the repository the launch buttons once pointed at, which does not exist


@pytest.mark.parametrize("given, https", [
    ("https://github.com/me/rnn", "https://github.com/me/rnn"),
    ("https://github.com/me/rnn.git", "https://github.com/me/rnn"),
    ("git@github.com:me/rnn.git", "https://github.com/me/rnn"),
    ("ssh://git@github.com/me/rnn.git", "https://github.com/me/rnn"),
    ("https://github.com/me/rnn/", "https://github.com/me/rnn"),
    ("https://gitlab.com/me/rnn", None),
    ("https://github.com/me", None),
    ("", None),
])
def test_github_https(given, https):
    assert site.github_https(given) == https


def test_no_url_means_no_buttons():
    options = site.theme_links(None, None)
    assert options["launch_buttons"] == {} and not options["use_repository_button"] and not options["repository_url"]


def test_colab_only_when_the_setting_names_the_repository():
    """The set-up cells carry the URL only when it is the setting; a URL from the git remote gets Binder (which runs
    in a checkout) but no Colab button."""
    from_setting = site.theme_links("https://github.com/me/rnn", "setting")
    from_remote = site.theme_links("https://github.com/me/rnn", "git remote")
    assert from_setting["launch_buttons"]["colab_url"] and from_setting["use_repository_button"]
    assert "colab_url" not in from_remote["launch_buttons"] and from_remote["launch_buttons"]["binderhub_url"]


@pytest.fixture
def repo_copy(tmp_path):
    """_config.yml and two chapters in a fresh git repository without remotes."""
    (tmp_path / "book").mkdir()
    shutil.copy(site.ROOT / "_config.yml", tmp_path / "_config.yml")
    for name in ("00_welcome.ipynb", "03_bptt.ipynb"):
        shutil.copy(site.ROOT / "book" / name, tmp_path / "book" / name)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def test_resolution_order(repo_copy):
    assert site.resolve(repo_copy) == (None, None)  # no setting, no remote
    subprocess.run(["git", "-C", str(repo_copy), "remote", "add", "origin", "git@github.com:fork/rnn.git"], check=True)
    assert site.resolve(repo_copy) == ("https://github.com/fork/rnn", "git remote")
    site.set_repository("https://github.com/me/rnn", repo_copy)
    assert site.resolve(repo_copy) == ("https://github.com/me/rnn", "setting")  # the setting wins


def test_set_repository_writes_the_setting_and_every_setup_cell(repo_copy):
    before = (repo_copy / "_config.yml").read_text()
    changed = site.set_repository("git@github.com:me/rnn.git", repo_copy)
    assert {p.name for p in changed} == {"_config.yml", "00_welcome.ipynb", "03_bptt.ipynb"}
    assert site.configured_url(repo_copy) == "https://github.com/me/rnn"
    for path in site.chapters(repo_copy):
        assert site.setup_cell_url(path) == "https://github.com/me/rnn"
    after = (repo_copy / "_config.yml").read_text()
    assert [a for a, b in zip(before.splitlines(), after.splitlines()) if a != b] == ['  url: ""']  # one line
    site.set_repository("", repo_copy)  # and back
    assert (repo_copy / "_config.yml").read_text() == before
    assert all(site.setup_cell_url(p) == "" for p in site.chapters(repo_copy))
    with pytest.raises(ValueError, match="GitHub"):
        site.set_repository("https://example.org/x", repo_copy)


def test_every_chapters_setup_cell_agrees_with_the_setting():
    setting = site.configured_url()
    pending = set()  # chapters whose set-up cell is being rewritten (none)
    found = {}
    for path in site.chapters():
        found[path.name] = site.setup_cell_url(path)
    wrong = {name: url for name, url in found.items() if url != setting and name not in pending}
    assert not wrong, f"set-up cells whose REPOSITORY_URL is not _config.yml's {setting!r}: {wrong}; " \
                      "run `python -m course_pkg.site set-repository URL`"
    for path in site.chapters():
        assert PLACEHOLDER not in path.read_text() or path.name in pending, f"{path.name} names {PLACEHOLDER}"


@pytest.mark.slow
def test_built_pages_link_to_no_placeholder_and_no_dead_button(built_book):
    url, _ = site.resolve(built_book.root)
    problems = []
    for page in built_book.pages:
        html = (built_book.html / f"{page}.html").read_text(encoding="utf-8")
        if PLACEHOLDER in html:
            problems.append(f"{page}.html names the placeholder repository {PLACEHOLDER}")
        soup = BeautifulSoup(html, "html.parser")
        links = [a.get("href", "") for a in soup.select("a")]
        launch = [h for h in links if re.search(r"mybinder\.org|colab\.research\.google\.com", h)]
        # the theme's buttons (a citation may well link to a project on GitHub)
        repo_links = [a.get("href", "") for a in soup.select("a.btn") if "github.com/" in a.get("href", "")]
        if url is None and (launch or repo_links):
            problems.append(f"{page}.html: no repository is configured, yet it links to {launch + repo_links}")
        if url is not None:
            problems += [f"{page}.html links to another repository: {h}" for h in repo_links if not h.startswith(url)]
    assert not problems, "\n".join(problems)
    for source in (built_book.html / "_sources").rglob("*.ipynb"):
        nb = json.loads(source.read_text(encoding="utf-8"))
        cell = site.setup_cell(nb)
        if cell is not None and source.stem != "12_assignments":
            assert f'REPOSITORY_URL = "{site.configured_url(built_book.root)}"' in "".join(cell["source"]), source
