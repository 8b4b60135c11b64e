"""Small helpers the book's chapters share.

`glue` is myst-nb's glue when the book is being built (the prose then quotes the value computed in the cell); in a
plain Jupyter, Colab or Binder session without myst-nb it simply shows the value, so every chapter runs anywhere.
"""

import numpy as np

try:
    from myst_nb import glue as _myst_glue
except ImportError:  # Colab, Binder, a bare Jupyter
    _myst_glue = None


def glue(name, value, display=True):
    """Record `value` under `name` for the text ({glue:text}`name`), or show it where myst-nb is absent.

    numpy scalars become Python numbers first: {glue:text}`name:.3f` formats the value's text form, which for
    np.float64(0.5) would be "np.float64(0.5)".
    """
    if isinstance(value, np.generic):
        value = value.item()
    if _myst_glue is not None:
        return _myst_glue(name, value, display=display)
    if display:
        from IPython.display import display as show

        show(value)
    return None


def _installed_from():
    """(repository URL, commit) pip recorded when course_pkg was installed from git (PEP 610), else None."""
    import json
    from importlib import metadata

    try:
        record = json.loads(metadata.distribution("course_pkg").read_text("direct_url.json") or "null")
    except metadata.PackageNotFoundError:
        return None
    if not record or "vcs_info" not in record:
        return None
    url = record["url"].removeprefix("git+").removesuffix(".git")
    return url, record["vcs_info"].get("commit_id") or record["vcs_info"].get("requested_revision") or "HEAD"


def raw_github_url(repository, revision, path):
    """The raw-file URL of `path` at `revision` in a GitHub repository given by its https URL."""
    prefix = "https://github.com/"
    if not repository.startswith(prefix):
        raise ValueError(f"not a GitHub repository URL: {repository!r}")
    return f"https://raw.githubusercontent.com/{repository[len(prefix):]}/{revision}/{path}"


def data_text(name):
    """The text of book/data/<name>, the committed data a chapter plots.

    Read from the repository checkout (a local build, Binder, a clone); where there is none (Colab, which installed
    course_pkg from the repository with pip), fetched from the repository and commit pip recorded, so no URL is
    written into the chapters.
    """
    from pathlib import Path

    for folder in (Path("data"), Path(__file__).resolve().parents[1] / "book" / "data"):
        if (folder / name).is_file():
            return (folder / name).read_text(encoding="utf-8")
    source = _installed_from()
    if source is None:
        raise FileNotFoundError(f"book/data/{name}: no repository checkout here, and course_pkg was not installed "
                                "from a git repository to fetch it from")
    from urllib.request import urlopen

    with urlopen(raw_github_url(*source, f"book/data/{name}")) as response:
        return response.read().decode("utf-8")
