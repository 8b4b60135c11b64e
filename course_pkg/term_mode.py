"""Term mode: the published book without the code of the graded functions, while the assignments are open.

Some code cells of the book implement, in full or in substance, a function that students write in a graded
assignment (chapter 6's GRU step and its backward pass, chapter 3's BPTT loop, ...). Such cells carry the cell tag
TAG (`graded-solution`). Code blocks inside markdown (an exercise's solution, say) are marked by the class of the
same name instead, on the block or on a directive around it:

    ```{solution} ex-label                  ```{code-block} python
    :class: dropdown graded-solution        :class: graded-solution
    ... every code block in here ...        ... this block ...
    ```                                     ```

This Sphinx extension (listed in `_config.yml` under `sphinx: extra_extensions`) removes the *input* of every tagged
cell, and every marked code block, from the built site when term mode is on; the cells' outputs, and all prose and
equations (a marked solution's too), stay. With term mode off (the default) it changes nothing: it only takes the
class `graded-solution` off the elements that carry it, so that a marked block or solution is built exactly as the
same one unmarked. (Marking a gated `{solution-start}` is refused with a warning: its content spans cells, which
the downloadable notebook could not be stripped of consistently. Tag its cells and mark its code blocks instead.)

Term mode is the setting `course_term_mode` (`_config.yml`, `sphinx: config:`, false by default), overridden by
the environment variable COURSE_TERM_MODE when it is set: `COURSE_TERM_MODE=1 make book` builds the term-time site,
`COURSE_TERM_MODE=0` the full one, whatever the file says (1/true/yes/on, 0/false/no/off; anything else is an error).

In term mode, for every tagged cell and every marked code block:
- its code is removed from the page (so also from its search index), and replaced by a one-line note
  (`course_term_mode_note`; "" for none);
- the page's source notebook that the site offers for download (`_sources/...ipynb`, the download button) gets the
  same treatment: the tagged cells' code, and the marked blocks' code in the markdown cells, is replaced by a
  comment. A source that is not a notebook cannot be rewritten there, and the build warns (a failure under -W);
- after a switch of the setting in an existing build folder, the search index is built afresh (Sphinx would merge
  the new index into the old one and keep the hidden code's words).

The setting is part of Sphinx's environment, so switching it re-reads every page (execution comes from the cache).
What term mode cannot hide: the notebooks in the repository itself, which the repository button and the Binder and
Colab buttons open.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

from docutils import nodes
from sphinx.errors import ConfigError
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

TAG = "graded-solution"  # the cell tag, and the class that marks a code block or a directive holding code blocks
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


def is_marked(node):
    return isinstance(node, nodes.Element) and TAG in node.get("classes", [])


def remove_marked_code(doctree, note=DEFAULT_NOTE):
    """Replace every code block (literal_block) that carries the class TAG, or lies inside an element that carries
    it, by a note paragraph (which keeps the block's ids, so links to it still resolve), or remove it if note is
    empty. Returns how many blocks were changed."""
    blocks = {}  # id: block, in document order
    for marked in doctree.findall(is_marked):
        for block in marked.findall(nodes.literal_block):  # the element itself first
            blocks.setdefault(id(block), block)
    blocks = list(blocks.values())
    for block in blocks:
        if note:
            block.replace_self(nodes.paragraph("", "", nodes.emphasis(note, note), ids=list(block["ids"]),
                                               classes=["course-term-mode-note"]))
        else:
            block.parent.remove(block)
    return len(blocks)


def unmark(doctree):
    """Take the class TAG off every element: it only tells this extension what to hide."""
    for node in list(doctree.findall(is_marked)):
        node["classes"] = [c for c in node["classes"] if c != TAG]


# ---------------------------------------------------------------------------------------------------------------
# Code blocks in markdown (MyST), as text: what the downloadable notebook loses

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*?)\s*$")
_DIRECTIVE = re.compile(r"^\{(?P<name>[^}\s]+)\}\s*(?P<argument>.*)$")
_OPTION = re.compile(r"^\s*:(?P<key>[\w-]+):(?P<value>.*)$")
CODE_DIRECTIVES = {"code-block", "sourcecode", "code"}
LITERAL_DIRECTIVES = {"math", "raw", "eval-rst", "csv-table", "mermaid", "graphviz"}  # content not parsed as MyST


@dataclasses.dataclass(frozen=True)
class CodeBlock:
    """A code block of a markdown text: a fence (```python) or a code directive (```{code-block} python)."""

    first: int  # index of its first line of code in the text's lines (after the directive's options)
    end: int  # index of its closing fence (the number of lines if it is not closed)
    language: str
    classes: tuple  # its own classes and those of the directives around it
    code: str

    @property
    def marked(self):
        return TAG in self.classes


def _directive_classes(lines, start):
    """(classes, index of the first line after the options) of a directive whose options start at lines[start]:
    `:class: a b` lines, or a YAML block between two `---` lines."""
    classes, i = [], start
    if i < len(lines) and lines[i].strip() == "---":
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "---"), None)
        if end is not None:
            for line in lines[i + 1:end]:
                key, _, value = line.partition(":")
                if key.strip() == "class":
                    classes += value.replace(",", " ").strip(" []\"'").split()
            return classes, end + 1
    while i < len(lines) and (option := _OPTION.match(lines[i])):
        if option["key"] == "class":
            classes += option["value"].split()
        i += 1
    return classes, i


def code_blocks(markdown):
    """[CodeBlock] of a MyST markdown text, in order, nested ones included. Fences open and close as in CommonMark
    (a closing fence has the opening one's character, at least as many, and no info string); the content of a
    directive is parsed again (so a solution's code blocks are found and inherit its classes), the content of a code
    block or of a literal directive ({math}, ...) is not."""
    lines = markdown.splitlines()
    found, stack, i = [], [], 0  # stack: the open fences, [character, length, kind, language, classes, first line]

    def block(fence, end):
        return CodeBlock(fence[5], end, fence[3], fence[4], "".join(line + "\n" for line in lines[fence[5]:end]))

    while i < len(lines):
        match = _FENCE.match(lines[i])
        if stack and match and match["fence"][0] == stack[-1][0] and len(match["fence"]) >= stack[-1][1] \
                and not match["info"]:
            fence = stack.pop()
            if fence[2] == "code":
                found.append(block(fence, i))
            i += 1
            continue
        if (stack and stack[-1][2] != "directive") or not match or (match["fence"][0] == "`" and "`" in match["info"]):
            i += 1
            continue
        inherited = stack[-1][4] if stack else ()
        directive = _DIRECTIVE.match(match["info"])
        if directive is None:  # ```python
            kind, language, own, first = "code", (match["info"].split() or [""])[0], [], i + 1
        else:
            name = directive["name"]
            kind = "code" if name in CODE_DIRECTIVES else "literal" if name in LITERAL_DIRECTIVES else "directive"
            language = (directive["argument"].split() or [""])[0]
            own, first = _directive_classes(lines, i + 1)
        stack.append([match["fence"][0], len(match["fence"]), kind, language, tuple(inherited) + tuple(own), first])
        i = first
    found += [block(fence, len(lines)) for fence in stack if fence[2] == "code"]  # unclosed: to the end
    return sorted(found, key=lambda b: b.first)


def strip_markdown(markdown):
    """(text, how many blocks changed): the code of every marked code block replaced by the comment
    SOURCE_PLACEHOLDER (the fences and the directives' options stay)."""
    marked = [block for block in code_blocks(markdown) if block.marked]
    if not marked:
        return markdown, 0
    lines = markdown.splitlines(keepends=True)
    for block in sorted(marked, key=lambda block: block.first, reverse=True):  # code blocks do not nest
        indent = re.match(r"[ \t]*", lines[block.first]).group() if block.first < block.end else ""
        lines[block.first:block.end] = [indent + SOURCE_PLACEHOLDER]
    return "".join(lines), len(marked)


def strip_notebook(nb):
    """Replace the source of every tagged code cell of a notebook (its JSON as a dict), and the code of every marked
    code block of its markdown cells, by a comment, in place; the cells' outputs and metadata stay. Returns how many
    cells and blocks were changed."""
    changed = 0
    for cell in nb.get("cells", []):
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") == "code" and TAG in tags:
            cell["source"] = SOURCE_PLACEHOLDER
            changed += 1
        elif cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            text, blocks = strip_markdown("".join(source) if isinstance(source, list) else source)
            if blocks:
                cell["source"] = text
                changed += blocks
    return changed


def strip_notebook_file(path):
    """strip_notebook on a notebook file, rewritten only if something changed. Returns how many cells and blocks
    changed."""
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


def _docs_with_tagged_cells(env):  # or marked code blocks
    if not hasattr(env, "course_term_mode_docs"):
        env.course_term_mode_docs = set()
    return env.course_term_mode_docs


class RefuseMarkedGatedDirectives(SphinxTransform):
    """A marked {solution-start} (or {exercise-start}) would hide code cells and blocks up to its end directive,
    possibly in other cells, which strip_notebook does not follow: it is refused with a warning, and hides nothing.
    Runs before sphinx-exercise merges the gated directives (its priority 10)."""

    default_priority = 5

    def apply(self):
        for node in list(self.document.findall(is_marked)):
            gated = [c for c in node["classes"] if c.endswith("-start")]
            if gated:
                node["classes"] = [c for c in node["classes"] if c != TAG]
                logger.warning(f"term mode: a gated {{{gated[0]}}} cannot be marked {TAG!r}; tag its code cells and "
                               f"mark its code blocks instead", location=node)


def _doctree_read(app, doctree):
    changed = 0
    if getattr(app.config, CONFIG):
        note = getattr(app.config, NOTE_CONFIG)
        changed = remove_inputs(doctree, note) + remove_marked_code(doctree, note)
    unmark(doctree)  # in either mode: a marked block is built as the same block unmarked
    if changed:
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
    """The copies of the sources that the HTML site offers for download lose the tagged cells' and the marked blocks'
    code too."""
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
                logger.warning(f"term mode: {copy} keeps the code of tagged cells or marked blocks (only .ipynb "
                               f"sources are rewritten); set html_copy_source = False or write the chapter as a "
                               f"notebook",
                               location=docname)


def setup(app):
    """Sphinx extension: term mode (see the module docstring)."""
    app.add_config_value(CONFIG, False, "env", [bool])
    app.add_config_value(NOTE_CONFIG, DEFAULT_NOTE, "env", [str])
    app.add_transform(RefuseMarkedGatedDirectives)
    app.connect("config-inited", _config_inited)
    app.connect("builder-inited", _builder_inited)
    app.connect("env-updated", _env_updated)
    app.connect("doctree-read", _doctree_read)
    app.connect("env-purge-doc", _env_purge_doc)
    app.connect("env-merge-info", _env_merge_info)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
