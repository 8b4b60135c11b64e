"""Where the published book links to: one repository URL, or no repository links at all.

The setting is `repository.url` in `_config.yml` (empty by default). It names the public GitHub repository the
site is published from; every link to it is derived from that one value:

- the site's repository button and its Binder and Colab launch buttons (this module is a Sphinx extension, listed
  in `_config.yml`, that turns them on only when there is a URL);
- `REPOSITORY_URL` in every chapter's set-up cell, which Colab installs course_pkg from.

`python -m course_pkg.site set-repository [URL]` writes the URL (default: the git remote `origin`) into
`_config.yml` and into every set-up cell, so the two cannot disagree (tests/test_site.py checks that they do not).
When the setting is empty the build falls back to the git remote `origin` (a GitHub URL) for the repository button
and Binder, which need no URL inside the notebooks, and leaves Colab out; with neither, the site has no repository
or launch button at all, rather than buttons that lead nowhere.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The first line of every chapter's set-up cell, and the line that carries the URL.
SETUP_MARKER = "# Colab and Binder: make course_pkg importable where it is missing"
URL_LINE = re.compile(r'^REPOSITORY_URL = "(?P<url>[^"]*)"', re.MULTILINE)
_GITHUB = re.compile(r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)(?P<path>[\w.-]+/[\w.-]+?)"
                     r"(?:\.git)?/?$")


def github_https(url):
    """The https form of a GitHub repository URL (https, ssh or scp-like), or None if it is not one."""
    match = _GITHUB.match((url or "").strip())
    return f"https://github.com/{match['path']}" if match else None


def git_remote_url(root=ROOT, remote="origin"):
    """The https URL of the git remote (GitHub only), or None when there is no such remote."""
    try:
        out = subprocess.run(["git", "-C", str(root), "remote", "get-url", remote],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return github_https(out.stdout) if out.returncode == 0 else None


def configured_url(root=ROOT):
    """`repository.url` of _config.yml as written there ("" when empty or absent)."""
    import yaml

    config = yaml.safe_load((Path(root) / "_config.yml").read_text(encoding="utf-8")) or {}
    return ((config.get("repository") or {}).get("url") or "").strip()


def resolve(root=ROOT):
    """(url, source): the setting if there is one ("setting"), else the git remote ("git remote"), else (None, None)."""
    url = configured_url(root)
    if url:
        if github_https(url) is None:
            raise ValueError(f"_config.yml repository.url must be a GitHub repository URL, not {url!r}")
        return github_https(url), "setting"
    url = git_remote_url(root)
    return (url, "git remote") if url else (None, None)


def theme_links(url, source):
    """The sphinx-book-theme options for the repository and launch buttons, given resolve()'s result."""
    if url is None:
        return {"repository_url": "", "use_repository_button": False, "use_issues_button": False,
                "use_edit_page_button": False, "launch_buttons": {}}
    launch = {"notebook_interface": "jupyterlab", "binderhub_url": "https://mybinder.org"}
    if source == "setting":  # the set-up cells carry the URL, so Colab can install course_pkg
        launch["colab_url"] = "https://colab.research.google.com"
    return {"repository_url": url, "use_repository_button": True, "launch_buttons": launch}


def _config_inited(app, config):
    url, source = resolve(Path(app.confdir))
    config.html_theme_options = {**config.html_theme_options, **theme_links(url, source)}


def setup(app):
    """Sphinx extension: set the repository and launch buttons from the one setting (see the module docstring)."""
    app.connect("config-inited", _config_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# ----------------------------------------------------------------------------------------------------------------
# The set-up cells


def setup_cell(nb):
    """The set-up cell of a notebook (a dict from its JSON), or None."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            return cell if source.startswith(SETUP_MARKER) else None
    return None


def setup_cell_url(path):
    """REPOSITORY_URL as written in a chapter's set-up cell, or None when the chapter has no such cell."""
    cell = setup_cell(json.loads(Path(path).read_text(encoding="utf-8")))
    if cell is None:
        return None
    match = URL_LINE.search("".join(cell["source"]))
    return match["url"] if match else None


def chapters(root=ROOT):
    """The notebooks of the book."""
    return sorted((Path(root) / "book").glob("*.ipynb"))


def set_repository(url, root=ROOT, skip=()):
    """Write url (a GitHub URL, or "" for none) into _config.yml and every set-up cell; returns the files changed."""
    if url and github_https(url) is None:
        raise ValueError(f"not a GitHub repository URL: {url!r}")
    url = github_https(url) if url else ""
    changed = []
    config = Path(root) / "_config.yml"
    text = config.read_text(encoding="utf-8")
    new = re.sub(r"(?m)^(  url:)[^\n#]*", lambda m: f"{m[1]} \"{url}\"", text, count=1)
    if new != text:
        config.write_text(new, encoding="utf-8")
        changed.append(config)
    for path in chapters(root):
        if path.name in skip:
            continue
        raw = path.read_text(encoding="utf-8")
        nb = json.loads(raw)
        cell = setup_cell(nb)
        if cell is None:
            continue
        source = URL_LINE.sub(f'REPOSITORY_URL = "{url}"', "".join(cell["source"]), count=1)
        cell["source"] = source.splitlines(keepends=True)
        out = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if out != raw:
            path.write_text(out, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "set-repository" or len(argv) > 2:
        sys.exit("usage: python -m course_pkg.site set-repository [URL]   (URL: a GitHub repository; "
                 "default: the git remote origin; \"\" for none)")
    url = argv[1] if len(argv) == 2 else git_remote_url()
    if url is None:
        sys.exit("no URL given and no GitHub remote named origin")
    for path in set_repository(url):
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
