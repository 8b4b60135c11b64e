"""The grader's automatic diagnosis (grader/diagnosis.py): mutants of the source notebooks' solution functions name
mistakes that the hand-written library does not list.

A student here is a namespace holding the notebook's solution functions (read from the source notebook, as the grader
reads them) with one function replaced by a mistaken version; its cells are scored in this process by
grader.scoring.grade_cell, as tests/assignment_tools.py scores them, with the registry the grader uses
(diagnosis.with_diagnosis) or the plain one (the library alone). The Keras checks (get_params) are left out of the
"nothing else changes" comparisons: they build TensorFlow layers, and get_params has no mutants.
"""

import dataclasses
import functools
import re

import nbformat
import numpy as np
import pytest

import assignment_tools as at
from course_pkg import activations
from course_pkg.checks import core
from grader.manifest import get, ids, registry
from grader import diagnosis, scoring
from unlisted_mistakes import UNLISTED

ASSIGNMENTS = tuple(ids())
LIKELY = re.compile(r"Likely mistake \[([^\]]+)\]")


def folder(assignment):
    return get(assignment).notebook_path.parent


@functools.lru_cache(maxsize=None)
def diagnoser(assignment):
    return diagnosis.diagnoser(registry(assignment), folder(assignment))


@functools.lru_cache(maxsize=None)
def points(assignment):
    return at.test_cells(at.load(assignment))


def student(assignment, code=None):
    """The solution functions, and `code` (a function's mistaken version) run after them."""
    ns = {"__name__": "__main__", "np": np, "sigmoid": activations.sigmoid}
    for source in diagnoser(assignment).sources.values():
        exec(source, ns)  # noqa: S102 - the course's own solution
    if code:
        exec(code, ns)  # noqa: S102
    return ns


def grade(assignment, key, ns, explain=True):
    checks = diagnosis.with_diagnosis(registry(assignment), folder(assignment)) if explain else registry(assignment)
    grade_id = f"test_{key}"
    result = scoring.grade_cell(checks, grade_id, points(assignment)[grade_id], ns, at.seed_for(assignment))
    return result, f"{result.text}\n{result.error or ''}"


def graded_keys(assignment):
    return [k for k, s in registry(assignment).specs.items() if s.name != "get_params"]


def assert_only(assignment, ns, failing):
    """Every check of the assignment but those of `failing` (keys) gets its full points; those get fewer."""
    for key in graded_keys(assignment):
        result, text = grade(assignment, key, ns)
        full = points(assignment)[f"test_{key}"]
        if key in failing:
            assert result.score < full, (key, text)
        else:
            assert result.score == full and result.error is None, (key, text)


# ---------------------------------------------------------------------------------------------------------------
# The solution code, as the grader reads it


def test_every_graded_function_has_its_solution_read_from_the_source_notebook():
    for assignment in ASSIGNMENTS:
        sources = diagnoser(assignment).sources
        assert set(sources) == {s.name for s in registry(assignment).specs.values()}
        for name, source in sources.items():
            assert source.startswith(f"def {name}(") and "SOLUTION" not in source


def test_the_solutions_pass_every_check():
    """The baseline of the comparisons below: the unmodified student passes everything."""
    for assignment in ASSIGNMENTS:
        assert_only(assignment, student(assignment), failing=())


def test_a_function_whose_solution_fails_its_own_check_gets_no_mutants():
    reg = registry("a3_gru")
    broken = diagnoser("a3_gru").sources["update_gate"].replace("sigmoid(", "np.tanh(")
    assert broken != diagnoser("a3_gru").sources["update_gate"]
    d = diagnosis.Diagnoser(reg, {"update_gate": broken})
    assert d.mutants("update_gate") == []
    assert d.mutants("reset_gate") == []  # no solution given


# ---------------------------------------------------------------------------------------------------------------
# The twelve mistakes of issue 10 that the library does not name


CELLS = [(u, key) for u in UNLISTED for key in u.named]


@pytest.mark.parametrize("mistake,key", CELLS, ids=[f"{u.id}-{k}" for u, k in CELLS])
def test_an_unlisted_mistake_is_named_in_its_cell(mistake, key):
    ns = student(mistake.assignment, mistake.code)
    operator, words = mistake.named[key]
    _, before = grade(mistake.assignment, key, ns, explain=False)
    assert "No common mistake matches" in before and not LIKELY.search(before), before
    result, after = grade(mistake.assignment, key, ns)
    assert result.score == 0
    named = LIKELY.findall(after)
    assert named and all(i.startswith(f"auto-{mistake.function}-") for i in named), after
    assert words in after, after
    mutants = {m.id: m for m in diagnoser(mistake.assignment).mutants(mistake.function)}
    assert operator in {mutants[i].operator for i in named}, after
    assert "No common mistake matches" not in after


@pytest.mark.parametrize("mistake", UNLISTED, ids=[u.id for u in UNLISTED])
def test_an_unlisted_mistake_costs_only_its_own_cells(mistake):
    assert_only(mistake.assignment, student(mistake.assignment, mistake.code), failing=set(mistake.named))


def test_all_twelve_are_named_and_none_was_before():
    assert len(UNLISTED) == 12
    assert len({u.id for u in UNLISTED}) == 12
    before = after = 0
    for u in UNLISTED:
        ns = student(u.assignment, u.code)
        texts = [grade(u.assignment, k, ns, explain=False)[1] for k in u.named]
        before += all(LIKELY.search(t) for t in texts)
        texts = [grade(u.assignment, k, ns)[1] for k in u.named]
        after += all(LIKELY.search(t) for t in texts)
    assert (before, after) == (0, 12)


# ---------------------------------------------------------------------------------------------------------------
# Every operator


def _candidates(operator):
    for assignment in ASSIGNMENTS:
        for name in diagnoser(assignment).sources:
            for m in diagnoser(assignment).mutants(name):
                if m.operator == operator:
                    yield assignment, m


def _keys_of(assignment, name):
    return [k for k, s in registry(assignment).specs.items() if s.name == name]


@pytest.mark.parametrize("operator", diagnosis.OPERATORS)
def test_a_student_with_exactly_one_mutant_is_named_in_that_functions_cell(operator):
    """The first mutant of the operator (in the fixed order) that the library does not already name and that does
    not make the student's code raise: the student with exactly that mutant is named by it, in the cell(s) of its
    function only, and loses only their points."""
    skipped = 0
    for assignment, mutant in _candidates(operator):
        ns = student(assignment, mutant.source)
        keys = _keys_of(assignment, mutant.function)
        reg = registry(assignment)
        visible = [core.run_case(reg, reg.spec(k), core.StudentCode(ns, reg.spec(k), reg), reg.spec(k).visible_case())
                   for k in keys]
        if any(r.raised for r in visible) or any(m for r in visible for m in r.mistakes):
            skipped += 1  # the student's error message, or the library's entry, says it already
            assert skipped <= 5, f"{operator}: the first mutants are all named by the library or raise"
            continue
        texts = [grade(assignment, k, ns)[1] for k in keys]
        assert any(mutant.id in LIKELY.findall(t) for t in texts), (mutant.what, texts)
        assert mutant.what in "\n".join(texts)
        failing = {k for k, t in zip(keys, texts) if LIKELY.search(t)}
        assert_only(assignment, ns, failing)
        return
    pytest.fail(f"no mutant of the operator {operator}")


def test_every_operator_makes_mutants_of_several_functions():
    for operator in diagnosis.OPERATORS:
        functions = {(a, m.function) for a, m in _candidates(operator)}
        assert len(functions) >= 2, (operator, functions)


@pytest.mark.slow
def test_every_mutant_is_named_by_itself_or_by_the_library_or_raises():
    """All of them (about nine hundred): a student with exactly that mutant either has code that raises or returns
    something of the wrong kind, shape or dtype (the report says so plainly), or the library names it (its hint is
    better), or the mutant itself is named."""
    for assignment in ASSIGNMENTS:
        reg = registry(assignment)
        checks = diagnosis.with_diagnosis(reg, folder(assignment))
        for name in diagnoser(assignment).sources:
            for mutant in diagnoser(assignment).mutants(name):
                ns = student(assignment, mutant.source)
                results = []
                for key in _keys_of(assignment, name):
                    spec = reg.spec(key)
                    cases = [spec.visible_case(), *core.hidden_cases(spec, at.seed_for(assignment)(key))]
                    results += [core.run_case(checks, spec, core.StudentCode(ns, spec, reg), c) for c in cases]
                named = {m.id for r in results for m in r.mistakes}
                plain = any(r.raised for r in results) or all(
                    "differs from the reference" not in r.detail for r in results if not r.passed)
                assert plain or mutant.id in named or any(not i.startswith("auto-") for i in named), \
                    (mutant.id, mutant.what, named)


# ---------------------------------------------------------------------------------------------------------------
# With the library; several explanations


GRU_Z_SWAPPED = '''
def gru_step_forward(x_t, h_prev, W, U, b, reset_after=True):
    z = update_gate(x_t, h_prev, W, U, b, reset_after)
    r = reset_gate(x_t, h_prev, W, U, b, reset_after)
    h_tilde = candidate(x_t, h_prev, r, W, U, b, reset_after)
    h_t = (1 - z) * h_prev + z * h_tilde
    return h_t, {"x_t": x_t, "h_prev": h_prev, "W": W, "U": U, "b": b, "reset_after": reset_after,
                 "z": z, "r": r, "h_tilde": h_tilde}
'''


def test_a_library_mistake_keeps_its_name_and_hint_and_no_mutant_repeats_it():
    ns = student("a3_gru", GRU_Z_SWAPPED)
    _, text = grade("a3_gru", "gru_step_forward", ns)
    assert LIKELY.findall(text) == ["gru-z-swapped"], text
    [mistake] = [m for m in registry("a3_gru").mistakes["gru_step_forward"] if m.id == "gru-z-swapped"]
    assert mistake.hint in text
    # the search alone would have named it: a mutant exchanges z and 1 - z
    spec = registry("a3_gru").spec("gru_step_forward")
    case = spec.visible_case()
    got = core._as_outputs(spec.run(core.StudentCode(ns, spec, registry("a3_gru")), case.inputs), spec)
    found = diagnoser("a3_gru")(spec, case, got, [])
    assert [e.operator for e in found] == ["complement"] and "exchanged" in found[0].what
    assert diagnoser("a3_gru")(spec, case, got, [mistake]) == []


DIRECT_PATH_UNSCALED = '''
def gru_step_backward(dh_t, cache):
    x_t, h_prev, W, U, b = cache["x_t"], cache["h_prev"], cache["W"], cache["U"], cache["b"]
    z, r, h_tilde = cache["z"], cache["r"], cache["h_tilde"]
    H = h_prev.shape[1]
    U_h = U[:, 2 * H:]
    dz = dh_t * (h_prev - h_tilde)
    dh_prev = dh_t
    da_h = dh_t * (1 - z) * (1 - h_tilde ** 2)
    da_z = dz * z * (1 - z)
    if cache["reset_after"]:
        q = h_prev @ U_h + b[1, 2 * H:]
        da_r = da_h * q * r * (1 - r)
        da_x = np.concatenate([da_z, da_r, da_h], axis=1)
        da_rec = np.concatenate([da_z, da_r, da_h * r], axis=1)
        dU = h_prev.T @ da_rec
        dh_prev = dh_prev + da_rec @ U.T
        db = np.stack([da_x.sum(axis=0), da_rec.sum(axis=0)])
    else:
        d_rh = da_h @ U_h.T
        da_r = d_rh * h_prev * r * (1 - r)
        da_x = np.concatenate([da_z, da_r, da_h], axis=1)
        dU = np.concatenate([h_prev.T @ da_x[:, :2 * H], (r * h_prev).T @ da_h], axis=1)
        dh_prev = dh_prev + d_rh * r + da_x[:, :2 * H] @ U[:, :2 * H].T
        db = da_x.sum(axis=0)
    return da_x @ W.T, dh_prev, x_t.T @ da_x, dU, db
'''


def test_when_two_explanations_fit_the_report_gives_both():
    """dh_prev started from dh_t instead of dh_t * z: on the visible example (reset_after=True) that is also what
    the solution computes if dh_prev is replaced by dh_t in its reset_after=True update; both are said."""
    ns = student("a3_gru", DIRECT_PATH_UNSCALED)
    result, text = grade("a3_gru", "gru_step_backward", ns)
    named = LIKELY.findall(text)
    assert len(named) == 2 and all(i.startswith("auto-gru_step_backward-") for i in named), text
    assert "2 explanations fit these outputs" in text
    assert "the update gate z is left out of the product dh_t * z, as if it were 1" in text
    assert "with reset_after=True, computing dh_prev: uses the upstream gradient dh_t where" in text
    assert result.score == 0


# ---------------------------------------------------------------------------------------------------------------
# Determinism, words, cost


def _listing(d, assignment):
    return [(m.id, m.operator, m.what, m.source) for name in d.sources for m in d.mutants(name)]


def test_the_mutants_are_the_same_in_the_same_order_every_time():
    for assignment in ("a2_lstm", "a3_gru"):
        reg = registry(assignment)
        sources = diagnosis.solution_sources(diagnosis.source_notebooks(folder(assignment)))
        sources = {n: s for n, s in sources.items() if n in {spec.name for spec in reg.specs.values()}}
        first, second = diagnosis.Diagnoser(reg, sources), diagnosis.Diagnoser(reg, sources)
        assert _listing(first, assignment) == _listing(second, assignment) == _listing(diagnoser(assignment),
                                                                                      assignment)
    u = UNLISTED[0]
    ns = student(u.assignment, u.code)
    assert grade(u.assignment, "lstm_step_forward", ns)[1] == grade(u.assignment, "lstm_step_forward", ns)[1]


def test_mutants_are_capped_and_distinct():
    for assignment in ASSIGNMENTS:
        for name in diagnoser(assignment).sources:
            ms = diagnoser(assignment).mutants(name)
            assert len(ms) <= diagnosis.CAP
            assert len({m.source for m in ms}) == len(ms) == len({m.id for m in ms})
    reg = registry("a3_gru")
    small = diagnosis.Diagnoser(reg, {"gru_step_backward": diagnoser("a3_gru").sources["gru_step_backward"]}, cap=20)
    kept = small.mutants("gru_step_backward")
    assert len(kept) == 20
    assert {m.operator for m in kept} == {m.operator for m in diagnoser("a3_gru").mutants("gru_step_backward")}


def _solution_lines(assignment):
    nb = nbformat.read(get(assignment).notebook_path, as_version=4)
    lines = set()
    for cell in nb.cells:
        if cell.cell_type != "code" or "### BEGIN SOLUTION" not in cell.source:
            continue
        for line in cell.source.splitlines():
            code = line.split("#", 1)[0].strip()
            if len(code) >= 8 and not code.startswith(('"""', "def ")):
                lines.add(code)
    return lines


def test_no_message_quotes_a_line_of_the_solution_or_looks_like_code():
    for assignment in ASSIGNMENTS:
        lines = _solution_lines(assignment)
        assert len(lines) > 20
        for name in diagnoser(assignment).sources:
            for m in diagnoser(assignment).mutants(name):
                message = m.explanation().message()
                assert not [line for line in lines if line in message], (m.id, message)
                assert not re.search(r"@|\[:|np\.|\.T\b|\bslice\(|\bsum\(axis", message), (m.id, message)


def test_the_registry_given_to_the_grader_is_a_copy():
    reg = registry("a2_lstm")
    before = list(reg.explainers)
    checks = diagnosis.with_diagnosis(reg, folder("a2_lstm"))
    assert reg.explainers == before and checks.explainers == [*before, diagnoser("a2_lstm")]
    assert checks.specs is reg.specs and checks.mistakes is reg.mistakes
    assert diagnosis.with_diagnosis(reg, folder("a2_lstm")).explainers[-1] is diagnoser("a2_lstm")  # built once


def test_a_search_that_fails_never_stops_grading(tmp_path):
    (tmp_path / "a1_rnn.ipynb").write_text("not a notebook")
    d = diagnosis.diagnoser(registry("a1_rnn"), tmp_path)
    assert d.sources == {}
    ns = student("a1_rnn", diagnoser("a1_rnn").sources["rnn_step_forward"].replace("np.tanh(", "np.sin("))
    checks = diagnosis.with_diagnosis(registry("a1_rnn"), tmp_path)
    result = scoring.grade_cell(checks, "test_rnn_step_forward", 1.0, ns, at.seed_for("a1_rnn"))
    assert result.score == 0 and "No common mistake matches" in result.error


# ---------------------------------------------------------------------------------------------------------------
# The grader's wiring


@dataclasses.dataclass
class _Captured:
    registry: object = None


def test_the_grader_scores_with_the_search_unless_switched_off(tmp_path, monkeypatch):
    """SandboxExecute gives engine.grade_notebook the registry with the search built from the course's
    source/<assignment>/ folder; with diagnosis = False, the library alone."""
    from traitlets.config import Config

    from grader import engine, nbgrader_ext, pool

    source = tmp_path / "source" / "a3_gru"
    source.mkdir(parents=True)
    (source / "a3_gru.ipynb").write_bytes(get("a3_gru").notebook_path.read_bytes())
    from grader import manifest
    (tmp_path / "manifest.toml").write_bytes(manifest.path().read_bytes())  # a course folder has its manifest
    captured = _Captured()

    class Slots:
        def acquire(self):
            import contextlib
            return contextlib.nullcontext(None)

    monkeypatch.setattr(pool, "get", lambda *a, **k: Slots())
    monkeypatch.setattr(engine, "grade_notebook", lambda nb, a, reg, *rest, **kw: setattr(captured, "registry", reg))
    resources = {"nbgrader": {"assignment": "a3_gru", "student": "s", "notebook": "a3_gru"}}
    for switch in (True, False):
        config = Config()
        config.CourseDirectory.root = str(tmp_path)
        config.SandboxExecute.diagnosis = switch
        nbgrader_ext.SandboxExecute(config=config).preprocess(nbformat.v4.new_notebook(), resources)
        explainers = captured.registry.explainers
        if switch:
            assert [type(e) for e in explainers] == [diagnosis.Diagnoser]
            assert set(explainers[0].sources) == set(diagnoser("a3_gru").sources)
            assert captured.registry is not registry("a3_gru")
        else:
            assert explainers == [] and captured.registry is registry("a3_gru")


def test_a_gradient_check_cell_names_a_mutant_of_the_function_that_breaks_it():
    """The gradient check's test lists what the checks of the functions it relies on say; scored by the grader's
    registry (with the search), it names an unlisted mistake there too: here the bias counted twice in
    rnn_step_forward, with no gradient check stored."""
    doubled = "def rnn_step_forward(x_t, h_prev, W, U, b):\n    h_t = np.tanh(x_t @ W + h_prev @ U + 2 * b)\n" \
              "    return h_t, (x_t, h_prev, W, U, h_t)\n"
    ns = student("a1_rnn", doubled)
    result, text = grade("a1_rnn", "gradient_check", ns)
    assert result.score == 0.0
    line = next(line for line in text.splitlines() if line.strip().startswith("rnn_step_forward: fails"))
    assert "Likely mistake [auto-" in text.split(line, 1)[1].split("\n  rnn_step_backward")[0], text
    _, plain = grade("a1_rnn", "gradient_check", ns, explain=False)
    assert "Likely mistake [auto-" not in plain
