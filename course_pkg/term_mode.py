"""Term mode: the published book without the code of the graded functions, while the assignments are open.

Some code cells of the book implement, in full or in substance, a function that students write in a graded
assignment (chapter 6's GRU step and its backward pass, chapter 3's BPTT loop, ...). Such cells carry the cell tag
TAG (`graded-solution`). This Sphinx extension (listed in `_config.yml` under `sphinx: extra_extensions`) removes the
*input* of every tagged cell from the built site when term mode is on; the cell's outputs, and all prose and
equations, stay. With term mode off (the default) it changes nothing.

Term mode is the setting `course_term_mode` (`_config.yml`, `sphinx: config:`, false by default), overridden by
the environment variable COURSE_TERM_MODE when it is set: `COURSE_TERM_MODE=1 make book` builds the term-time site,
`COURSE_TERM_MODE=0` the full one, whatever the file says (1/true/yes/on, 0/false/no/off; anything else is an error).

In term mode, for every tagged cell:
- the cell's source is removed from the page (so also from its search index), and replaced by a one-line note
  (`course_term_mode_note`; "" for none);
- the page's source notebook that the site offers for download (`_sources/...ipynb`, the download button) gets the
  same treatment: the tagged cells' code is replaced by a comment. A tagged cell in a source that is not a notebook
  cannot be rewritten there, and the build warns (a failure under -W);
- after a switch of the setting in an existing build folder, the search index is built afresh (Sphinx would merge
  the new index into the old one and keep the hidden code's words).

The setting is part of Sphinx's environment, so switching it re-reads every page (execution comes from the cache).
What term mode cannot hide: the notebooks in the repository itself, which the repository button and the Binder and
Colab buttons open.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from docutils import nodes
from sphinx.errors import ConfigError
from sphinx.util import logging

TAG = "graded-solution"
CONFIG = "course_term_mode"
NOTE_CONFIG = "course_term_mode_note"
ENV = "COURSE_TERM_MODE"
DEFAULT_NOTE = "The code of this cell is hidden while the graded assignments are open."
SOURCE_PLACEHOLDER = "# The code of this cell is hidden while the graded assignments are open (term mode).\n"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

logger = logging.getLogger(__name__)


def env_setting(environ=None):
    """COURSE_TERM_MODE as a bool, or None when it is unset or empty. Raises ValueError for any other value."""
    value = (os.environ if environ is None else environ).get(ENV, "").strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{ENV}={value!r}: use 1 (term mode on) or 0 (off), or leave it unset to use _config.yml")


def is_tagged(node):
    """True for myst-nb's container of a code cell (nb_element "cell_code") whose cell carries TAG."""
    if not isinstance(node, nodes.container) or node.get("nb_element") != "cell_code":
        return False
    tags = (node.get("cell_metadata") or {}).get("tags") or []
    return TAG in tags


def remove_inputs(doctree, note=DEFAULT_NOTE):
    """Remove the source of every tagged code cell from a doctree (myst-nb's child container with nb_element
    "cell_code_source"), in its place a note paragraph if note is not empty. Returns how many cells were changed."""
    changed = 0
    for cell in list(doctree.findall(is_tagged)):
        sources = [child for child in cell.children if child.get("nb_element") == "cell_code_source"]
        if not sources:
            continue
        index = cell.index(sources[0])
        for child in sources:
            cell.remove(child)
        if note:
            cell.insert(index, nodes.paragraph("", "", nodes.emphasis(note, note), classes=["course-term-mode-note"]))
        changed += 1
    return changed


def strip_notebook(nb):
    """Replace the source of every tagged code cell of a notebook (its JSON as a dict) by a comment, in place; the
    cell's outputs and metadata stay. Returns how many cells were changed."""
    changed = 0
    for cell in nb.get("cells", []):
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") == "code" and TAG in tags:
            cell["source"] = SOURCE_PLACEHOLDER
            changed += 1
    return changed


def strip_notebook_file(path):
    """strip_notebook on a notebook file, rewritten only if something changed. Returns how many cells changed."""
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    changed = strip_notebook(nb)
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


# ---------------------------------------------------------------------------------------------------------------
# The Sphinx extension


def _config_inited(app, config):
    try:
        override = env_setting()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if override is not None:
        setattr(config, CONFIG, override)
    if not isinstance(getattr(config, CONFIG), bool):
        raise ConfigError(f"{CONFIG} must be true or false, not {getattr(config, CONFIG)!r}")


def _docs_with_tagged_cells(env):
    if not hasattr(env, "course_term_mode_docs"):
        env.course_term_mode_docs = set()
    return env.course_term_mode_docs


def _doctree_read(app, doctree):
    if not getattr(app.config, CONFIG):
        return
    if remove_inputs(doctree, getattr(app.config, NOTE_CONFIG)):
        _docs_with_tagged_cells(app.env).add(app.env.docname)


def _builder_inited(app):
    """After a switch of term mode every page is read and written again, but Sphinx merges the new search index into
    the old one, which would keep the hidden code's words (pointing to no page). The old index goes, so it is built
    afresh."""
    built = getattr(app.env, "course_term_mode_built", None)
    index = getattr(app.builder, "searchindex_filename", None)
    if built is not None and built != getattr(app.config, CONFIG) and index:
        (Path(app.outdir) / index).unlink(missing_ok=True)


def _env_updated(app, env):
    env.course_term_mode_built = getattr(app.config, CONFIG)  # saved with the environment


def _env_purge_doc(app, env, docname):
    _docs_with_tagged_cells(env).discard(docname)


def _env_merge_info(app, env, docnames, other):
    _docs_with_tagged_cells(env).update(_docs_with_tagged_cells(other))


def _build_finished(app, exception):
    """The copies of the sources that the HTML site offers for download lose the tagged cells' code too."""
    if exception is not None or not getattr(app.config, CONFIG) or app.builder.format != "html":
        return
    sources = Path(app.outdir) / "_sources"
    for docname in sorted(_docs_with_tagged_cells(app.env)):
        source = Path(app.env.doc2path(docname))
        copies = [p for p in sources.glob(f"{docname}{source.suffix}*") if p.is_file()]
        for copy in copies:
            if source.suffix == ".ipynb":
                strip_notebook_file(copy)
            else:
                logger.warning(f"term mode: {copy} keeps the code of tagged cells (only .ipynb sources are "
                               f"rewritten); set html_copy_source = False or write the chapter as a notebook",
                               location=docname)


def setup(app):
    """Sphinx extension: term mode (see the module docstring)."""
    app.add_config_value(CONFIG, False, "env", [bool])
    app.add_config_value(NOTE_CONFIG, DEFAULT_NOTE, "env", [str])
    app.connect("config-inited", _config_inited)
    app.connect("builder-inited", _builder_inited)
    app.connect("env-updated", _env_updated)
    app.connect("doctree-read", _doctree_read)
    app.connect("env-purge-doc", _env_purge_doc)
    app.connect("env-merge-info", _env_merge_info)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
