"""Term mode (course_pkg/term_mode.py): the book's code cells that implement graded functions are tagged, the code
blocks of markdown cells that do are marked (the class `graded-solution` on the block or on the {solution} around
it), and a build option removes their code from the site.

(a) Builds of a tiny jupyter-book project (one notebook: prose with an equation, tagged and untagged code cells with
    outputs, an exercise whose marked solution holds a code block, a marked {code-block} and an unmarked one), with
    the extensions and the configuration keys of the real book: the term-mode build has none of the tagged cells' or
    marked blocks' code in its page, search index or downloadable notebook, and keeps the outputs and the text (the
    marked solution's prose too); the default build has all of it. Term mode is switched both ways: by
    `course_term_mode` in _config.yml and by COURSE_TERM_MODE, also in the same build folder one build after the other
    (no stale page survives a switch). A gated {solution-start} cannot be marked: the strict build fails.
(b) The real book's tagging (no build): every code cell of book/*.ipynb, and every code block of its markdown cells,
    that defines a function with a graded function's name (a spec of an assignment's REGISTRY), or contains a
    solution (the body of a solution function of the assignment's notebook, grader.manifest's notebook_path, found
    at the copy check's threshold with its copydetect fingerprints, grader/similarity.py), is tagged (a cell) or
    marked (a block); so are the cells and blocks listed by reading (BY_READING: they implement a graded function in
    another layout, convention or form, which neither test finds); and every tag and mark has one of these reasons.
    A last test shows on made-up notebooks that each of these checks fails when it should.
(c) With term mode off the extension changes nothing: the site built with it, its blocks and solutions marked, is
    the site built without it and without the marks, file by file (Sphinx's record of the extension's version in the
    search index, .buildinfo's configuration hash and the marks in the downloadable copy of the notebook aside).
"""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from course_pkg import term_mode
from grader.manifest import get, ids, registry
from grader import similarity

ASSIGNMENTS = tuple(ids())  # assignments/manifest.toml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TAG = term_mode.TAG

# Cells tagged, and code blocks of markdown cells marked, by reading: (chapter, a line of the cell or block) -> the
# graded functions it implements in substance. Their names are the book's own and copydetect does not find them (the
# same equations written differently: chapter 6's GRU step backward scores 0.32 against the notebook's solution), so
# they are listed here. Left untagged by the
# same reading, as the copy check leaves such code out (MIN_CHARS): what has one natural form and is displayed as an
# equation beside it or spelt out by the assignment's text, i.e. the simple RNN's one-line step (chapters 0 and 2), a
# loop that runs course_pkg's own step function over time (chapters 0, 2, 5, 11), and chapter 4's walk of a gradient
# back through the tanh RNN (no parameter gradients).
BY_READING = {
    ("00_notation", "def gru_forward_tutorial("): "gru_step_forward, gru_forward (the other update convention)",
    ("00_notation", "def torch_lstm_numpy("): "lstm_step_forward, gru_step_forward (PyTorch's equations, columns)",
    ("03_bptt", "def bptt_backward(dh, x, h0, h, W, U):"): "rnn_backward (BPTT, line for line)",
    ("03_bptt", "rnn_step_backward(dh[:, t] + dh_prev"): "rnn_backward (the loop over rnn_step_backward)",
    ("03_bptt", "def central_difference_dW("): "numerical_gradient (central differences, entry by entry)",
    ("03_bptt", "def bptt_backward_buggy("): "rnn_backward (correct unless a bug is asked for)",
    ("03_bptt", "def jordan_backward("): "rnn_backward (a solution's code block: BPTT with the output fed back)",
    ("05_lstm", "def walk_lstm("): "lstm_backward, rnn_backward (step caches handed back through the steps)",
    ("05_lstm", "def guide_lstm_step("): "lstm_step_forward (the guides' layout)",
    ("05_lstm", "def guide_lstm_forward("): "lstm_step_forward, lstm_forward (with guide_from_fused: Keras' layout)",
    ("05_lstm", "a = np.concatenate([x_t, h_prev], axis=1) @ W_all + b_all"):
        "lstm_step_forward (a solution's code block: the step in a concatenated layout, gates i, f, o, g)",
    ("06_gru", "def gru_step_by_hand("): "gru_step_forward and the gates, both reset conventions",
    ("06_gru", "def gru_forward_tutorial("): "gru_step_forward, gru_forward (reset before, other convention)",
    ("06_gru", "def gru_step_backward_by_hand("): "gru_step_backward, both reset conventions",
    ("07_lstm_variants", "def table_step("): "lstm_step_forward (variant 'vanilla')",
    ("07_lstm_variants", "delta_o = dh_t * np.tanh(c_t) * o * (1 - o)"):
        "lstm_step_backward, lstm_backward (a solution's code block: the peephole LSTM's backward loop)",
}


# ---------------------------------------------------------------------------------------------------------------
# What the book holds, and what is graded


def code_units(nb):
    """(where, code, marks) of every code cell of a notebook (its JSON as a dict), marks its tags, and of every code
    block of its markdown cells, marks its classes and those of the directives around it (as term mode reads them,
    term_mode.code_blocks). Either is hidden in term mode when TAG is among its marks."""
    for index, cell in enumerate(nb.get("cells", [])):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if cell.get("cell_type") == "code":
            yield f"cell {index}", source, (cell.get("metadata") or {}).get("tags") or []
        elif cell.get("cell_type") == "markdown":
            for k, block in enumerate(term_mode.code_blocks(source), 1):
                yield f"cell {index} code block {k} (markdown line {block.first + 1})", block.code, block.classes


def not_marked(where):
    return f"not tagged {TAG!r}" if " code block " not in where else \
        f"not marked {TAG!r} (:class: on the block or on its solution)"


def book_notebooks():
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(BOOK.glob("*.ipynb"))}


def graded_names():
    return {spec.name for a in ASSIGNMENTS for spec in registry(a).specs.values()}


def solutions():
    """[(assignment, name, fingerprinted body)] of every graded function's solution in the source notebooks."""
    names = graded_names()
    out = []
    for a in ASSIGNMENTS:
        nb = json.loads(get(a).notebook_path.read_text(encoding="utf-8"))
        for name, node in sorted(similarity.notebook_functions(nb, names).items()):
            out.append((a, name, similarity.fingerprint(name, similarity.body_source(node))))
    return out


def cell_code(source):
    """The cell's code fingerprinted as the copy check fingerprints a function (comments and layout do not count)."""
    tree = similarity.parse(source)
    return similarity.fingerprint("cell", ast.unparse(tree)) if tree is not None else None


# ---------------------------------------------------------------------------------------------------------------
# The checks, on any set of notebooks {name: nb}; each returns its problems as sentences


def defines_graded_name(source, names):
    return sorted(similarity.functions(source, names))


def contained_solutions(source, solution_codes, threshold=similarity.THRESHOLD):
    """[(assignment, function, similarity)] of the solutions whose body is found in this cell at the threshold.
    Bodies shorter than the copy check's MIN_CHARS (a gate, the simple RNN's step, a loop over the steps) have one
    natural form and are left out, as the copy check leaves them out."""
    code = cell_code(source)
    if code is None or not code.size:
        return []
    found = []
    for assignment, name, solution in solution_codes:
        if solution.size >= similarity.MIN_CHARS:
            share = solution.similarity(code)
            if share >= threshold:
                found.append((assignment, name, share))
    return found


def untagged_graded_definitions(notebooks, names):
    return [f"{chapter} {where} defines {', '.join(found)} (a graded function) but is {not_marked(where)}"
            for chapter, nb in notebooks.items() for where, source, marks in code_units(nb)
            if TAG not in marks and (found := defines_graded_name(source, names))]


def untagged_solutions(notebooks, solution_codes):
    return [f"{chapter} {where} contains the solution of {a}.{name} (similarity {share:.2f}) but is "
            f"{not_marked(where)}"
            for chapter, nb in notebooks.items() for where, source, marks in code_units(nb) if TAG not in marks
            for a, name, share in contained_solutions(source, solution_codes)]


def by_reading_problems(notebooks, by_reading):
    problems = []
    for (chapter, line), implements in by_reading.items():
        units = [(where, marks) for where, source, marks in code_units(notebooks.get(chapter, {})) if line in source]
        if len(units) != 1:
            problems.append(f"{chapter}: {len(units)} code cells or blocks hold {line!r} (listed in BY_READING as "
                            f"implementing {implements}); update BY_READING and the cell's tag or the block's mark")
        elif TAG not in units[0][1]:
            problems.append(f"{chapter} {units[0][0]} ({line!r}) implements {implements} but is "
                            f"{not_marked(units[0][0])}")
    return problems


def unexplained_tags(notebooks, names, solution_codes, by_reading):
    problems = []
    for chapter, nb in notebooks.items():
        for where, source, marks in code_units(nb):
            if TAG not in marks:
                continue
            read = any(c == chapter and line in source for c, line in by_reading)
            if not (read or defines_graded_name(source, names) or contained_solutions(source, solution_codes)):
                problems.append(f"{chapter} {where} is {'tagged' if ' code block ' not in where else 'marked'} "
                                f"{TAG!r} but defines no graded function, contains no solution and is not in "
                                f"BY_READING: say why, or take the tag or mark off")
    return problems


def misspelt_tags(notebooks):
    key = re.sub(r"[^a-z]", "", TAG)
    return [f"{chapter} {where} has the {'tag' if ' code block ' not in where else 'class'} {t!r}: did you mean "
            f"{TAG!r}?"
            for chapter, nb in notebooks.items() for where, _, marks in code_units(nb)
            for t in marks if t != TAG and re.sub(r"[^a-z]", "", t.lower()) == key]


# ---------------------------------------------------------------------------------------------------------------
# (b) The real book


@pytest.fixture(scope="module")
def book():
    return book_notebooks()


@pytest.fixture(scope="module")
def solution_codes():
    return solutions()


def test_every_graded_function_has_a_solution_to_compare(solution_codes):
    """Otherwise the checks below would pass vacuously."""
    names = graded_names()
    assert len(names) >= 15, names
    assert {name for _, name, _ in solution_codes} == names
    assert sum(code.size >= similarity.MIN_CHARS for _, _, code in solution_codes) >= 9


def test_every_cell_defining_a_graded_function_is_tagged(book):
    assert not untagged_graded_definitions(book, graded_names())


def test_no_untagged_cell_contains_a_solution(book, solution_codes):
    assert not untagged_solutions(book, solution_codes)


def test_the_cells_tagged_by_reading_are_tagged(book):
    assert not by_reading_problems(book, BY_READING)


def test_every_tag_has_a_reason(book, solution_codes):
    assert not unexplained_tags(book, graded_names(), solution_codes, BY_READING)
    assert not misspelt_tags(book)


def test_the_tagging_checks_fail_when_they_should(solution_codes):
    """Made-up chapters: a pasted solution with every name changed, a cell defining a graded function, a cell of
    BY_READING that lost its tag, a stray tag and a misspelt one are each reported; tagged, the first two are not.
    The same for code blocks in markdown cells: in an unmarked solution they are reported, marked (on the solution
    or on the block) they are not."""
    solution = next(code for a, name, code in solution_codes if (a, name) == ("a3_gru", "gru_step_backward"))
    tree = ast.parse("def f():\n" + "\n".join("    " + line for line in solution.body.splitlines()))
    keep = {"np", "range", "len", "zip"}
    for node in ast.walk(tree):  # rename every local name, as a student hiding a copy would
        if isinstance(node, ast.Name) and node.id not in keep:
            node.id = f"renamed_{node.id}"
    pasted = ast.unparse(tree).replace("def f():", "def my_own_gru_backward(dh_t, cache):")

    def chapter(*cells):
        return {"cells": [{"cell_type": "code", "metadata": {"tags": tags}, "source": src} for src, tags in cells]}

    names = graded_names()
    untagged = {"99_made_up": chapter((pasted, []), ("def lstm_step_forward(x_t):\n    return x_t\n", []))}
    tagged = {"99_made_up": chapter((pasted, [TAG]), ("def lstm_step_forward(x_t):\n    return x_t\n", [TAG]))}
    assert [p.split(" (")[0] for p in untagged_solutions(untagged, solution_codes)] == [
        "99_made_up cell 0 contains the solution of a3_gru.gru_step_backward"]
    assert untagged_graded_definitions(untagged, names) == [
        "99_made_up cell 1 defines lstm_step_forward (a graded function) but is not tagged 'graded-solution'"]
    assert not untagged_solutions(tagged, solution_codes) and not untagged_graded_definitions(tagged, names)
    assert not unexplained_tags(tagged, names, solution_codes, {})

    by_reading = {("99_made_up", "def step_in_disguise("): "gru_step_forward"}
    lost = {"99_made_up": chapter(("def step_in_disguise(x):\n    return x\n", ["hide-input"]))}
    assert len(by_reading_problems(lost, by_reading)) == 1
    assert len(by_reading_problems({}, by_reading)) == 1  # the listed cell is gone: BY_READING must be updated
    stray = {"99_made_up": chapter(("def plot_it(x):\n    return x\n", [TAG]), ("x = 1\n", ["Graded_Solution"]))}
    assert len(unexplained_tags(stray, names, solution_codes, by_reading)) == 1
    assert misspelt_tags(stray) == ["99_made_up cell 1 has the tag 'Graded_Solution': did you mean 'graded-solution'?"]

    # code blocks in a markdown cell: an exercise's solution holding the pasted solution and a graded definition
    def markdown(solution_class, block_class=None):
        block = ["```{code-block} python"] + ([f":class: {block_class}"] if block_class else [])
        text = "\n".join(["# Exercises", "", "```{exercise}", ":label: ex-1", "Write it.", "```", "",
                          "`````{solution} ex-1", f":class: {solution_class}", "The derivation stays.", "",
                          "```python", pasted, "```", "", *block, "def lstm_step_forward(x_t):",
                          "    return x_t", "```", "`````", ""])
        return {"99_made_up": {"cells": [{"cell_type": "markdown", "metadata": {}, "source": text}]}}

    def lineless(problems):
        return [re.sub(r" \(markdown line \d+\)", "", problem) for problem in problems]

    untagged = markdown("dropdown")
    assert [p.split(" (")[0] for p in untagged_solutions(untagged, solution_codes)] == [
        "99_made_up cell 0 code block 1"]
    assert lineless(untagged_graded_definitions(untagged, names)) == [
        "99_made_up cell 0 code block 2 defines lstm_step_forward (a graded function) but is not marked "
        "'graded-solution' (:class: on the block or on its solution)"]
    for tagged in (markdown(f"dropdown {TAG}"), markdown(f"{TAG} dropdown", TAG)):
        assert not untagged_solutions(tagged, solution_codes) and not untagged_graded_definitions(tagged, names)
        assert not unexplained_tags(tagged, names, solution_codes, {})
    half = markdown("dropdown", TAG)  # only the second block is marked
    assert [p.split(" (")[0] for p in untagged_solutions(half, solution_codes)] == ["99_made_up cell 0 code block 1"]
    assert not untagged_graded_definitions(half, names)
    by_reading = {("99_made_up", "return x_t"): "lstm_step_forward"}
    assert len(by_reading_problems(untagged, by_reading)) == 1 and not by_reading_problems(half, by_reading)
    stray = markdown(f"dropdown {TAG}")
    stray["99_made_up"]["cells"][0]["source"] = stray["99_made_up"]["cells"][0]["source"].replace(
        "def lstm_step_forward(x_t):", "def plot_it(x_t):")
    assert len(unexplained_tags(stray, names, solution_codes, {})) == 1  # plot_it is marked with no reason
    assert lineless(misspelt_tags(markdown("dropdown graded_solution"))) == [
        f"99_made_up cell 0 code block {k} has the class 'graded_solution': did you mean 'graded-solution'?"
        for k in (1, 2)]


def test_code_blocks_are_read_as_myst_reads_them():
    """term_mode.code_blocks, which both the guard above and the downloadable notebook's stripping use: nested
    fences, tildes, options as :class: lines or YAML, literal directives, and what strip_markdown leaves."""
    lines = [
        "Prose with `inline code`.",
        "````{solution} ex-1",
        ":label: sol-1",
        ":class: dropdown graded-solution",  # marks the solution's blocks
        "```python",
        "secret_one = 1",
        "```",
        "~~~",
        "secret_two = 2",
        "```",  # inside the ~~~ block: code, not a fence
        "~~~",
        "````",
        "```{code-block} python",
        "---",
        "class: [graded-solution]",  # options in YAML
        "---",
        "secret_three = 3",
        "```",
        "```{math}",
        "```python",  # a formula's text, not a fence; the next line closes the math
        "```",
        "```{admonition} Note",
        ":class: tip",
        "```python",  # nested: the next ``` closes it, the one after the admonition
        "shown = 4",
        "```",
        "```",
        "```text",
        "unclosed = 5",
    ]
    text = "\n".join(lines)
    blocks = term_mode.code_blocks(text)
    assert [(b.first, b.end, b.language, b.marked, b.code) for b in blocks] == [
        (5, 6, "python", True, "secret_one = 1\n"),
        (8, 10, "", True, "secret_two = 2\n```\n"),
        (16, 17, "python", True, "secret_three = 3\n"),
        (24, 25, "python", False, "shown = 4\n"),
        (28, 29, "text", False, "unclosed = 5\n"),
    ]
    assert blocks[0].classes == ("dropdown", TAG) and blocks[3].classes == ("tip",)
    stripped, changed = term_mode.strip_markdown(text)
    placeholder = term_mode.SOURCE_PLACEHOLDER.rstrip("\n")
    expected = lines[:5] + [placeholder] + lines[6:8] + [placeholder] + lines[10:16] + [placeholder] + lines[17:]
    assert changed == 3 and stripped == "\n".join(expected) and "secret" not in stripped
    assert term_mode.strip_markdown(text.replace(TAG, "dropdown")) == (text.replace(TAG, "dropdown"), 0)


# ---------------------------------------------------------------------------------------------------------------
# Unit tests of the setting


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None), ("1", True), ("true", True), ("ON", True), (" yes ", True),
    ("0", False), ("false", False), ("off", False), ("no", False),
])
def test_environment_variable(value, expected):
    environ = {} if value is None else {term_mode.ENV: value}
    assert term_mode.env_setting(environ) is expected


def test_a_wrong_environment_variable_is_an_error():
    with pytest.raises(ValueError, match="COURSE_TERM_MODE='maybe'"):
        term_mode.env_setting({term_mode.ENV: "maybe"})


@pytest.mark.parametrize("configured, env, expected", [
    (False, None, False), (True, None, True), (False, "1", True), (True, "0", False),
])
def test_the_environment_overrides_the_file(monkeypatch, configured, env, expected):
    class Config:
        course_term_mode = configured

    monkeypatch.delenv(term_mode.ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(term_mode.ENV, env)
    config = Config()
    term_mode._config_inited(None, config)
    assert config.course_term_mode is expected


def test_a_setting_that_is_not_a_bool_is_an_error(monkeypatch):
    from sphinx.errors import ConfigError

    class Config:
        course_term_mode = "yes"

    monkeypatch.delenv(term_mode.ENV, raising=False)
    with pytest.raises(ConfigError, match="true or false"):
        term_mode._config_inited(None, Config())


def test_the_real_book_registers_the_extension_off_by_default():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert "course_pkg.term_mode" in config["sphinx"]["extra_extensions"]
    assert config["sphinx"]["config"]["course_term_mode"] is False


# ---------------------------------------------------------------------------------------------------------------
# (a) and (c): builds of a tiny project

# Distinctive words; the search index holds their stems, so it is searched by prefix.
HIDDEN_CODE = ["qqsecretstep", "qqsecrethiddeninput", "qqsecretnooutput"]  # in the tagged cells' code
HIDDEN_BLOCKS = ["qqsecretsolution", "qqsecretblock"]  # in the marked solution's code block, in a marked code-block
HIDDEN_PREFIX = "qqsecret"
SHOWN_CODE = "zzvisiblehelper"  # in the untagged cell's code
SHOWN_BLOCKS = ["zzvisibleblock", "zzvisibleinline"]  # in an unmarked code block, inline in the marked solution
SHOWN_PREFIX = "zzvisible"
OUTPUTS = ["OUTPUT OF THE TAGGED CELL", "RESULT 1681", "OUTPUT OF THE HIDE-INPUT CELL", "OUTPUT OF THE UNTAGGED CELL"]
PROSE = "The prose stays."
SOLUTION_PROSE = "The derivation stays."
EQUATION = r"h_t = \tanh(x_t W + h_{t-1} U + b)"
SOLUTION_EQUATION = r"\bar a_t = \bar h_t \odot (1 - h_t^2)"


def exercises(marked=True):
    """A markdown cell: an exercise, its solution (prose, an equation, inline code, a code block) marked on the
    {solution}, a {code-block} marked on itself, and an unmarked one. marked=False: the same without the marks."""
    mark = f" {TAG}" if marked else ""
    return "\n".join([
        "## Exercises", "",
        "```{exercise}", ":label: ex-step", "Write the step.", "```", "",
        "````{solution} ex-step", f":class: dropdown{mark}",
        f"{SOLUTION_PROSE} With `{SHOWN_BLOCKS[1]}` and ${SOLUTION_EQUATION}$.", "",
        "```python", f"def {HIDDEN_BLOCKS[0]}(h):", "    return 1 - h ** 2", "```", "````", "",
        "```{code-block} python", *([f":class: {TAG}"] if marked else []),
        f"{HIDDEN_BLOCKS[1]} = [t for t in range(5)]", "```", "",
        "```{code-block} python", f"{SHOWN_BLOCKS[0]} = 3", "```", ""])


def unmarked(nb):
    """A notebook (JSON as a dict) with the marks of exercises() taken out of its markdown."""
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = source.replace(f":class: {TAG}\n", "").replace(f" {TAG}", "")
    return nb


def make_project(folder, term_mode_setting=None, extension=True, marked=True):
    """A jupyter-book project of one notebook; its _config.yml lists sphinx-exercise and the extension and sets
    course_term_mode as the book's does (None: no setting; extension=False: neither the extension nor the setting).
    marked=False: the solution and the code-block are not marked."""
    folder.mkdir(parents=True)
    config = ['title: "Term mode test"', "only_build_toc_files: true", "execute:", '  execute_notebooks: "off"',
              "sphinx:", "  extra_extensions:", "    - sphinx_exercise"]
    if extension:
        config += ["    - course_pkg.term_mode"]
    config += ["  config:", "    html_show_copyright: false"]
    if extension and term_mode_setting is not None:
        config.append(f"    course_term_mode: {'true' if term_mode_setting else 'false'}")
    (folder / "_config.yml").write_text("\n".join(config) + "\n", encoding="utf-8")
    (folder / "_toc.yml").write_text("format: jb-book\nroot: page\n", encoding="utf-8")

    def code(source, tags, *outputs):
        return {"cell_type": "code", "execution_count": 1, "metadata": {"tags": tags} if tags else {},
                "outputs": list(outputs), "source": source}

    def stream(text):
        return {"name": "stdout", "output_type": "stream", "text": text + "\n"}

    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": f"# A chapter\n\n{PROSE} The step: ${EQUATION}$.\n"},
        code(f"def {HIDDEN_CODE[0]}(x):\n    return x * 41\n\nprint('{OUTPUTS[0]}')\n{HIDDEN_CODE[0]}(41)\n", [TAG],
             stream(OUTPUTS[0]),
             {"output_type": "execute_result", "execution_count": 1, "metadata": {},
              "data": {"text/plain": OUTPUTS[1]}}),
        code(f"{HIDDEN_CODE[1]} = 2\nprint('{OUTPUTS[2]}')\n", ["hide-input", TAG], stream(OUTPUTS[2])),
        code(f"def {HIDDEN_CODE[2]}(x):\n    return x\n", [TAG]),
        code(f"def {SHOWN_CODE}(x):\n    return x\n\nprint('{OUTPUTS[3]}')\n", [], stream(OUTPUTS[3])),
        {"cell_type": "markdown", "metadata": {}, "source": exercises(marked)},
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell{i}"
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                       "language_info": {"name": "python"}}}
    (folder / "page.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return folder


def build(project, **env):
    """Build strictly, as `make book` does; {path relative to _build/html: bytes} of the site."""
    environ = {k: v for k, v in os.environ.items() if k != term_mode.ENV}
    environ.update(env)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    run = subprocess.run([str(jupyter_book), "build", str(project), "-W", "-n", "--keep-going"], env=environ,
                         capture_output=True, text=True, timeout=600)
    if run.returncode != 0 or "build succeeded" not in run.stdout:
        pytest.fail(f"jupyter-book build of {project.name} {env} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    html = project / "_build" / "html"
    return {str(p.relative_to(html)): p.read_bytes() for p in sorted(html.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    root = tmp_path_factory.mktemp("term_mode")
    out = {"no extension": build(make_project(root / "plain", extension=False, marked=False))}
    switched = make_project(root / "switched", term_mode_setting=False)
    out["off"] = build(switched)
    out["on by the environment"] = build(switched, COURSE_TERM_MODE="1")  # same folder: an incremental build
    out["off again by the environment"] = build(switched, COURSE_TERM_MODE="0")
    out["on by _config.yml"] = build(make_project(root / "configured", term_mode_setting=True))
    return out


def page_text(site):
    return BeautifulSoup(site["page.html"].decode("utf-8"), "html.parser").get_text()


def search_terms(site):
    """The words of Sphinx's search index (searchindex.js is `Search.setIndex({...})`)."""
    index = site["searchindex.js"].decode("utf-8")
    return set(json.loads(index[index.index("(") + 1 : index.rindex(")")])["terms"])


def indexed(word, terms):
    """Whether the search index holds the word (as its stem: a prefix of it, e.g. zzvisiblehelp)."""
    return any(word.startswith(t) and len(t) > len(HIDDEN_PREFIX) for t in terms)


def source_notebook(site):
    return json.loads(site["_sources/page.ipynb"].decode("utf-8"))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["on by the environment", "on by _config.yml"])
def test_term_mode_build_has_no_tagged_code(sites, mode):
    site = sites[mode]
    text, terms, downloaded = page_text(site), search_terms(site), json.dumps(source_notebook(site))
    for word in HIDDEN_CODE + HIDDEN_BLOCKS:
        assert word not in text, f"{word} is still in the page"
        assert word not in downloaded, f"{word} is still in the downloadable notebook"
    assert not [t for t in terms if t.startswith(HIDDEN_PREFIX)], "hidden code is still in the search index"
    assert "41" not in terms  # the tagged function's body
    for output in OUTPUTS:  # every output stays, the tagged cells' too
        assert output in text
    assert PROSE in text and EQUATION in text and SOLUTION_PROSE in text and SOLUTION_EQUATION in text
    for word in [SHOWN_CODE] + SHOWN_BLOCKS:
        assert word in text and word in downloaded
    assert all(indexed(word, terms) for word in [SHOWN_CODE] + SHOWN_BLOCKS)
    assert text.count(term_mode.DEFAULT_NOTE) == 5  # one note per tagged cell (3) and per marked block (2)
    assert downloaded.count(term_mode.SOURCE_PLACEHOLDER.strip()) == 5
    soup = BeautifulSoup(site["page.html"].decode("utf-8"), "html.parser")
    assert not soup.select(f"div.tag_{TAG} div.cell_input"), "a tagged cell kept its input container"
    assert not soup.select(f"div.tag_{TAG} details.above-input"), "a hide-input toggle with nothing in it"
    solution = soup.select_one("div.solution")
    assert solution is not None and "dropdown" in solution["class"] and SOLUTION_PROSE in solution.get_text()
    assert term_mode.DEFAULT_NOTE in solution.get_text() and not solution.select("pre")
    assert [pre.get_text() for pre in soup.select("div.highlight pre")][-1].strip() == f"{SHOWN_BLOCKS[0]} = 3"
    assert not soup.select(f".{TAG}"), "the class that marks a block is not for the page"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["off", "off again by the environment"])
def test_default_build_has_the_tagged_code(sites, mode):
    site = sites[mode]
    text, terms = page_text(site), search_terms(site)
    for word in HIDDEN_CODE + HIDDEN_BLOCKS + [SHOWN_CODE] + SHOWN_BLOCKS:
        assert word in text and word in json.dumps(source_notebook(site))
    assert all(indexed(word, terms) for word in HIDDEN_CODE + HIDDEN_BLOCKS)
    assert "41" in terms and [t for t in terms if t.startswith(HIDDEN_PREFIX)]
    assert term_mode.DEFAULT_NOTE not in text
    for output in OUTPUTS:
        assert output in text


@pytest.mark.slow
def test_switching_back_leaves_no_trace(sites):
    """Off, on, off again in one build folder: the last site is the first, file by file. (Any second build adds a
    checksum query, ?v=..., to the link to myst-nb's stylesheet, which the first did not have: that is removed.)"""
    def without_checksums(site):
        return {name: re.sub(rb"\?v=[0-9a-f]{8}\"", b'"', content) for name, content in site.items()}

    assert without_checksums(sites["off again by the environment"]) == without_checksums(sites["off"])


@pytest.mark.slow
def test_off_changes_nothing(sites):
    """The site with the extension and term mode off, its solution and code-block marked, is the site without the
    extension and without the marks. Three files differ by their bookkeeping only: the search index records each
    extension's env_version, .buildinfo holds a hash of the configuration, which has one more key, and the
    downloadable notebook is the source, marks included."""
    plain, off = sites["no extension"], sites["off"]
    assert set(plain) == set(off)
    version = b'"course_pkg.term_mode": 1, '
    assert version in off["searchindex.js"] and off["searchindex.js"].replace(version, b"") == plain["searchindex.js"]
    notebook = "_sources/page.ipynb"
    assert source_notebook(off) != source_notebook(plain) and unmarked(source_notebook(off)) == source_notebook(plain)
    different = [name for name in plain
                 if plain[name] != off[name] and name not in ("searchindex.js", ".buildinfo", notebook)]
    assert not different


@pytest.mark.slow
def test_a_gated_solution_cannot_be_marked(tmp_path):
    """A marked {solution-start} would hide code up to its {solution-end}, in other cells too, which the downloadable
    notebook's stripping does not follow: the strict build fails and says what to do instead."""
    project = make_project(tmp_path / "gated")
    nb = json.loads((project / "page.ipynb").read_text(encoding="utf-8"))
    nb["cells"][-1]["source"] = "\n".join([
        "```{exercise}", ":label: ex-gated", "Write it.", "```", "",
        "```{solution-start} ex-gated", f":class: dropdown {TAG}", "```", "",
        "```python", "x = 1", "```", "",
        "```{solution-end}", "```", ""])
    (project / "page.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if k != term_mode.ENV}
    run = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(project), "-W", "-n",
                          "--keep-going"], env=environ, capture_output=True, text=True, timeout=600)
    assert run.returncode != 0
    assert f"a gated {{solution-start}} cannot be marked {TAG!r}" in run.stdout + run.stderr
