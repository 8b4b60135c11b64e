"""Every assignment of the manifest (assignments/manifest.toml; COURSE_MANIFEST for another), in process: what holds
for each whatever it teaches. An assignment added to the manifest is tested here with no other edit.

- its manifest entry agrees with its notebook (the chapters it says to read, a test cell per check, points);
- course_pkg's references pass their own checks, on the visible example and on hidden cases, and those differ;
- the solutions get full points and the untouched student version 0, case by case and without a checker error;
- every mistake of its library, given as the student's function in place of the solution's, costs its own cells
  (and at most the student's own gradient check), is named there, and changes nothing else: isolation;
- every mistake's message says where, what and how without code;
- a function that calls course_pkg's reference instead of computing is refused.

Scoring is grader.scoring's (tests/assignment_tools.run_in_process), with hidden seeds from TEST_SECRET. What is
particular to one assignment is in tests/test_assignment_<id>.py; the nbgrader end-to-end run in
test_assignments_nbgrader.py, which also enumerates the manifest.
"""

import re
import types

import numpy as np
import pytest

import assignment_tools as at
from course_pkg.checks import core
from grader import manifest, scoring

ASSIGNMENTS = manifest.assignments()
BOOK = at.ROOT / "book"


def _params(make):
    return [pytest.param(a, *item, id=f"{a.id}:{label}") for a in ASSIGNMENTS for label, item in make(a)]


CHECKS = _params(lambda a: [(key, (key,)) for key in a.registry.specs])
MISTAKES = _params(lambda a: [(m.id, (m,)) for m in a.registry.all_mistakes()])
BY_ID = pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=lambda a: a.id)

_RUNS = {}


def solution_namespace(assignment):
    return at.namespace_after(at.load(assignment.id))


def test_cells(assignment):
    """grade_id -> points of the autograded test cells."""
    return at.test_cells(at.load(assignment.id))


test_cells.__test__ = False


def runs_of(assignment, replace=None):
    """run_in_process of the solution notebook; with `replace` (name -> function), the test cells scored on the
    solution's namespace with those functions in place of the student's (as if the student had written them)."""
    key = (assignment.id, tuple(sorted((replace or {}).items(), key=lambda kv: kv[0])))
    if key not in _RUNS:
        _RUNS[key] = (_run_replaced(assignment, replace) if replace else
                      at.run_in_process(at.load(assignment.id), assignment=assignment.id))
    return _RUNS[key]


def _run_replaced(assignment, replace):
    """Score every test cell on the solution namespace with `replace` put in (test cells are scored in notebook
    order, as the grader does, after every ordinary cell has run)."""
    ns = solution_namespace(assignment)
    ns.update(replace)
    checks = assignment.registry
    out = {}
    for grade_id, points in test_cells(assignment).items():
        result = scoring.grade_cell(checks, grade_id, points, ns, at.seed_for(assignment.id))
        out[grade_id] = at.CellRun(result.score, result.text if result.error is None else
                                   f"{result.text}\nAssertionError: {result.error}")
    return out


def as_student(fn, name):
    """A library mistake's function as if a student had typed it in a notebook: the same code and closure, but
    defined in __main__ (the checker refuses functions that live in course_pkg's modules)."""
    if not isinstance(fn, types.FunctionType):
        return fn
    copy = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    copy.__module__ = "__main__"
    return copy


# ---------------------------------------------------------------- the manifest entry and its notebook

@BY_ID
def test_the_manifest_entry_agrees_with_its_notebook(assignment):
    nb = at.load(assignment.id)
    intro = nb.cells[0].source
    assert assignment.notebook_path.exists()
    for chapter in assignment.chapters:
        assert (BOOK / f"{chapter}.ipynb").exists(), f"{assignment.id}: no chapter {chapter}"
        number = int(chapter.split("_")[0])
        assert re.search(rf"[Cc]hapter {number}\b", intro), f"{assignment.id}: chapter {number} not named first"
    cells = test_cells(assignment)
    checks = assignment.registry
    assert sorted(k.removeprefix("test_") for k in cells) == sorted([*checks.specs, *checks.cell_checks])
    assert {k: v for k, v in assignment.points().items() if k in cells} == cells
    assert all(p > 0 for p in assignment.points().values())


@BY_ID
def test_the_sandbox_gets_no_reference_of_a_graded_function(assignment):
    given = {f"course_pkg.{module}": names for module, names in assignment.sandbox_modules}
    for spec in assignment.registry.specs.values():
        module = getattr(spec.reference, "__module__", "")
        if module in given:
            names = given[module]
            assert names is not None and spec.reference.__name__ not in names, (assignment.id, spec.name)


# ---------------------------------------------------------------- the checks

@pytest.mark.parametrize("assignment,key", CHECKS)
def test_reference_passes_its_own_checks_on_cases_that_vary(assignment, key):
    checks = assignment.registry
    spec = checks.spec(key)
    visible = spec.visible_case()
    hidden = core.hidden_cases(spec, at.seed_for(assignment.id)(key))
    for case in [visible, *hidden]:
        result = core.run_case(checks, spec, checks.reference, case)
        assert result.passed, f"{key} on {case.label}: {result.detail}"
    assert len({c.label for c in hidden}) > 1, "the hidden cases all have one shape"
    assert {c.dtype for c in hidden} == {np.dtype(np.float64), np.dtype(np.float32)} or \
        {c.dtype for c in hidden} == {np.dtype(np.float64)}


@BY_ID
def test_solutions_get_full_points(assignment):
    runs = runs_of(assignment)
    assert {k: r.score for k, r in runs.items()} == test_cells(assignment), \
        {k: r.output for k, r in runs.items() if r.score < test_cells(assignment)[k]}


@BY_ID
def test_student_version_gets_zero_case_by_case_without_a_checker_error(assignment):
    student = at.student_version(at.load(assignment.id))
    runs = at.run_in_process(student, assignment=assignment.id)
    assert {k: r.score for k, r in runs.items()} == dict.fromkeys(test_cells(assignment), 0.0)
    for run in runs.values():
        assert "checker error" not in run.output, run.output
    at.assert_hidden_cases_fail(student, assignment.registry, assignment.id)


# ---------------------------------------------------------------- the mistake library: isolation, names, words

@pytest.mark.parametrize("assignment,mistake", MISTAKES)
def test_a_library_mistake_costs_its_own_cells_only_and_is_named_there(assignment, mistake):
    checks = assignment.registry
    own = {f"test_{key}" for key, ms in checks.mistakes.items() if any(m is mistake for m in ms)}
    cell_checks = {f"test_{key}" for key in checks.cell_checks}
    replace = {name: as_student(fn, name) for name, fn in mistake.impls.items()}
    runs = runs_of(assignment, replace)
    points = test_cells(assignment)
    lost = {k for k, r in runs.items() if r.score < points[k]}
    assert lost & own, f"{mistake.id} costs nothing: {[runs[k].output for k in own]}"
    assert lost <= own | cell_checks, f"{mistake.id} also costs {sorted(lost - own - cell_checks)}"
    for cell in lost & own:
        assert f"[{mistake.id}]" in runs[cell].output, runs[cell].output


@pytest.mark.parametrize("assignment,mistake", MISTAKES)
def test_a_mistake_message_says_where_what_and_how_without_code(assignment, mistake):
    text = mistake.message()
    assert text.startswith(f"Likely mistake [{mistake.id}] in {mistake.function}")
    assert mistake.gate and mistake.gate in text and "Hint: " in text
    assert len(mistake.what) > 20 and len(mistake.hint) > 20
    for code in ("@", "np.", "numpy", "axis=", "**", "def ", "return ", "slice(", ".sum(", "range(", ".T "):
        assert code not in mistake.what + mistake.hint, (code, text)


@pytest.mark.parametrize("assignment,key", CHECKS)
def test_calling_the_reference_instead_is_refused(assignment, key):
    spec = assignment.registry.spec(key)
    module, name = spec.reference.__module__, spec.reference.__name__
    ns = solution_namespace(assignment)
    exec(f"def {spec.name}(*args, **kwargs):\n    from {module} import {name} as reference\n"
         "    return reference(*args, **kwargs)\n", ns)
    result = scoring.grade_check(assignment.registry, key, ns, seed=1, points=1)
    assert result.score == 0.0 and "course_pkg's reference implementation" in result.error, result.error
