"""Assignment a1_rnn (the simple RNN), in process: what is particular to it. What holds for every assignment (the
references pass their checks, isolation of each library mistake, messages without code, the refusal of course_pkg's
reference) is in test_assignments.py, over the manifest. Here: the notebook's structure and intro table, its
solutions and student version scored, every mistake of the library injected into the solution's source (its
expected score, its name), and the test of the student's own gradient check. Test cells are scored by
grader.scoring with hidden cases drawn from assignment_tools.TEST_SECRET (see assignment_tools.run_in_process). The
end-to-end run through nbgrader is in test_assignments_nbgrader.py."""

import re

import nbformat
import numpy as np
import pytest

import assignment_tools as at
from course_pkg.checks import a1_rnn, core
from injections_a1_rnn import INJECTIONS

ASSIGNMENT = "a1_rnn"
REG = a1_rnn.REGISTRY
NB = at.load(ASSIGNMENT)
POINTS = at.test_cells(NB)  # grade_id -> points of the autograded test cells
CHECKED = [k for k in REG.specs]  # the functions whose test cell the grader scores with check key = function
SEED = at.seed_for(ASSIGNMENT)  # key -> the hidden cases' seed the in-process runs use
WRITTEN_ID = "written_vanishing_gradients"
TEST_CELL = re.compile(r'\Acheck\("(?P<key>\w+)", globals\(\)\)\Z')  # the visible self-check, and nothing else


def meta(cell):
    return at.nbgrader_meta(cell)


def mistake(mistake_id):
    return next(m for m in REG.all_mistakes() if m.id == mistake_id)


# ---------------------------------------------------------------- the notebook itself

def test_notebook_is_valid_with_ids_and_no_outputs():
    nbformat.validate(NB)
    assert NB.metadata.kernelspec.name == "python3"
    ids = [c.get("id") for c in NB.cells]
    assert all(ids) and len(set(ids)) == len(ids), "every cell needs its own id"
    grade_ids = [meta(c).get("grade_id") for c in NB.cells]
    assert all(grade_ids) and len(set(grade_ids)) == len(grade_ids), "every cell needs its own nbgrader grade_id"
    for cell in NB.cells:
        assert meta(cell)["schema_version"] == 3
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{meta(cell)['grade_id']} has outputs"
    first = NB.cells[0]
    assert first.cell_type == "markdown" and meta(first)["locked"]


def test_solution_cells_and_test_cells_follow_the_conventions():
    for key in CHECKED:
        sol = at.cell_by_id(NB, key)
        assert meta(sol) == {"schema_version": 3, "grade": False, "solution": True, "locked": False,
                             "grade_id": key, "task": False}
        assert f"def {key}(" in sol.source and "### BEGIN SOLUTION" in sol.source
        test = at.cell_by_id(NB, f"test_{key}")
        m = TEST_CELL.match(test.source)
        assert m, f"test_{key} does not have the agreed form:\n{test.source}"
        assert m["key"] == key and meta(test)["locked"] and meta(test)["grade"] and not meta(test)["solution"]
    gradient = at.cell_by_id(NB, "test_gradient_check")
    assert "gradient_check" in REG.cell_checks and meta(gradient)["locked"] and not meta(gradient)["solution"]
    assert gradient.source.splitlines()[-1].startswith("check_gradient_errors(globals())")


def test_points_total_15_and_the_intro_table_agrees():
    written = at.cell_by_id(NB, WRITTEN_ID)
    assert written.cell_type == "markdown"
    assert meta(written) == {"schema_version": 3, "grade": True, "solution": True, "locked": False,
                             "grade_id": WRITTEN_ID, "points": 2, "task": False}
    assert "### BEGIN SOLUTION" in written.source and "### END SOLUTION" in written.source
    assert POINTS == {"test_rnn_step_forward": 2, "test_rnn_step_backward": 3, "test_rnn_forward": 2,
                      "test_rnn_backward": 3, "test_numerical_gradient": 2, "test_gradient_check": 1}
    assert sum(POINTS.values()) + meta(written)["points"] == 15
    intro = NB.cells[0].source
    for key in CHECKED:
        assert re.search(rf"\| `{key}\(.*?\)` \| {POINTS['test_' + key]:g} \|", intro), f"{key} in the table"
    assert "| **Total** | **15** |" in intro


def test_intro_states_the_checker_tolerances():
    intro = NB.cells[0].source
    for dtype, (rtol, atol) in core.TOLERANCES.items():
        written = rf"10^{{{round(np.log10(atol))}}} + 10^{{{round(np.log10(rtol))}}}"
        assert f"{dtype.name}:" in intro and written in intro, f"{dtype.name} tolerance {written} not in the intro"


def test_setup_cell_imports_only_numpy_and_check():
    setup = at.cell_by_id(NB, "setup")
    assert setup.source.split() == "import numpy as np from course_pkg.checks.a1_rnn import check".split()


# ---------------------------------------------------------------- the checks

@pytest.mark.parametrize("m", REG.all_mistakes(), ids=lambda m: m.id)
def test_each_mistake_differs_from_the_reference_and_is_recognised_alone(m):
    """On the visible example and on the hidden cases (of the dtypes where the mistake can be recognised): wherever
    the wrong version's outputs fail the check, they match no other mistake of the same function (a D != H case may
    be a shape error, which is not diagnosed). The visible example always shows the mistake (so its cell scores 0
    whatever the hidden cases), and most hidden cases do: the hidden cases are drawn from a course secret, and a case
    can happen to be one where a mistake changes the outputs by less than the tolerance (a one-sided difference on a
    nearly linear probe, for example)."""
    spec = REG.spec(m.function)
    resolve = core._mistake_resolver(m, REG)
    recognised, hidden, hidden_shown = 0, 0, 0
    for index, case in enumerate([spec.visible_case(), *core.hidden_cases(spec, SEED(m.function))]):
        if case.dtype not in m.dtypes:
            continue
        hidden += index > 0
        try:
            got = core._as_outputs(spec.run(resolve, core._copy_inputs(case.inputs)), spec)
        except ValueError:  # matmul shapes: x and h swapped with D != H
            assert m.id == "rnn-x-h-swapped" and case.inputs["x_t"].shape[1] != case.inputs["h_prev"].shape[1]
            hidden_shown += index > 0
            continue
        expected = core._as_outputs(spec.run(REG.reference, core._copy_inputs(case.inputs)), spec)
        try:
            core.compare(spec, case, got, expected)
        except core.CheckFailure:
            own = [x.id for x in core.diagnose(REG, spec, case, got) if x.function == m.function]
            assert own == [m.id], case.label
            recognised += 1
            hidden_shown += index > 0
            continue
        assert index > 0, f"{m.id} passes the visible example"
    assert recognised >= 2
    assert 2 * hidden_shown > hidden, f"{m.id} shows in only {hidden_shown} of {hidden} hidden cases"


def test_library_has_at_least_12_mistakes_each_injected():
    ids = [m.id for m in REG.all_mistakes()]
    assert len(ids) >= 12
    assert sorted(i[0] for i in INJECTIONS) == sorted(ids)
    for mistake_id, solution_id, old, new, losses in INJECTIONS:
        assert f"test_{mistake(mistake_id).function}" in losses, f"{mistake_id} must cost its own cell's points"
        assert set(losses) <= set(POINTS)


# ---------------------------------------------------------------- the notebook, run as the autograder would

def test_solutions_get_full_points():
    results = at.run_in_process(NB)
    assert {k: r.score for k, r in results.items()} == POINTS
    for key in CHECKED:
        assert "6 of 6 hidden checks passed" in results[f"test_{key}"].output
    assert "all 10 relative errors are below 1e-07" in results["test_gradient_check"].output


def test_student_version_gets_zero_and_says_why():
    student = at.student_version(NB)
    assert "### BEGIN SOLUTION" not in "".join(c.source for c in student.cells)
    assert at.cell_by_id(student, WRITTEN_ID).source == "YOUR ANSWER HERE"
    results = at.run_in_process(student)
    assert {k: r.score for k, r in results.items()} == dict.fromkeys(POINTS, 0.0)
    for key in CHECKED:
        out = results[f"test_{key}"].output
        assert "NotImplementedError" in out and "checker error" not in out
    assert "step_errors is not defined" in results["test_gradient_check"].output


def _run_injection(solution_id, old, new):
    return at.run_in_process(at.inject(NB, solution_id, old, new))


@pytest.mark.parametrize("mistake_id,solution_id,old,new,losses", INJECTIONS, ids=[i[0] for i in INJECTIONS])
def test_injected_mistake_loses_its_points_and_is_named(mistake_id, solution_id, old, new, losses):
    results = _run_injection(solution_id, old, new)
    assert {k: r.score for k, r in results.items()} == {**POINTS, **losses}
    own = f"test_{mistake(mistake_id).function}"
    assert f"[{mistake_id}]" in results[own].output, results[own].output
    if "test_gradient_check" in losses:  # its report runs the functions' checks, which name the mistake
        assert f"[{mistake_id}]" in results["test_gradient_check"].output
    # isolation: nothing but the mistake's own cell and the student's own gradient check loses points
    assert set(losses) <= {own, "test_gradient_check"}, losses


@pytest.mark.parametrize("solution_id,before,borrowing", [
    ("rnn_step_forward", "", "from course_pkg.rnn import rnn_step_forward as reference\n"
                             "    return reference(x_t, h_prev, W, U, b)"),
    ("rnn_forward", "", "import course_pkg.rnn\n    return course_pkg.rnn.rnn_forward(x, h0, W, U, b)"),
    ("rnn_backward", "from course_pkg.rnn import rnn_backward as reference\n\n\n", "return reference(dh, cache)"),
    ("rnn_step_backward", "", "from course_pkg import rnn\n    return rnn.rnn_step_backward(dh_t, cache)"),
    ("numerical_gradient", "", "from course_pkg import gradcheck\n"
                                           "    return gradcheck.numerical_gradient(f, inputs, name, douts, eps)"),
    ("numerical_gradient", "import course_pkg.gradcheck as gc\n\n\n",
                 "return gc.numerical_gradient(f, inputs, name, douts, eps)"),
], ids=["step_forward-local-from-import", "forward-local-import", "backward-cell-import",
        "step_backward-local-module-import", "numerical_gradient-local-module-import",
        "numerical_gradient-cell-module-import"])
def test_calling_course_pkg_instead_of_own_code_is_refused(solution_id, before, borrowing):
    """The solution's body replaced by a call of course_pkg's function, imported inside the function or, with
    `before`, at the top of the cell."""
    nb = NB
    if before:
        cell = at.cell_by_id(nb, solution_id)
        nb = at.inject(nb, solution_id, cell.source, before + cell.source)
    source = at.cell_by_id(nb, solution_id).source
    body = re.search(r"### BEGIN SOLUTION\n(.*?)\n[ \t]*### END SOLUTION", source, re.S)[1]
    results = at.run_in_process(at.inject(nb, solution_id, body.strip(), borrowing))
    run = results[f"test_{solution_id}"]
    assert run.score == 0.0
    assert "uses course_pkg's reference implementation" in run.output, run.output


# ---------------------------------------------------------------- the test of the student's own gradient check

GOOD = {"step_errors": dict.fromkeys(["x_t", "h_prev", "W", "U", "b"], 1e-10),
        "errors": dict.fromkeys(["x", "h0", "W", "U", "b"], 2e-10)}


def test_gradient_check_test_passes_small_errors(capsys):
    a1_rnn.check_gradient_errors({**GOOD})
    assert "all 10 relative errors are below 1e-07 (largest 2.0e-10" in capsys.readouterr().out


@pytest.mark.parametrize("change,expected", [
    ({"errors": None}, "errors is not defined"),
    ({"step_errors": [1e-10] * 5}, "step_errors is a list; expected a dict"),
    ({"errors": {**GOOD["errors"], "U": 3e-4}}, "errors['U'] = 3.00e-04: above the tolerance 1e-07"),
    ({"errors": {k: v for k, v in GOOD["errors"].items() if k != "h0"}}, "errors has no relative error for h0"),
    ({"step_errors": {**GOOD["step_errors"], "b": "small"}}, "step_errors['b'] is a str, not a number"),
    ({"step_errors": {**GOOD["step_errors"], "x_t": float("nan")}}, "step_errors['x_t'] = nan is not a relative"),
    ({"errors": {**GOOD["errors"], "W": -1.0}}, "errors['W'] = -1 is not a relative error"),
])
def test_gradient_check_test_says_what_is_wrong(change, expected):
    ns = {**GOOD, **change}
    ns = {k: v for k, v in ns.items() if v is not None}
    with pytest.raises(AssertionError) as failure:
        a1_rnn.check_gradient_errors(ns)
    message = str(failure.value)
    assert expected in message, message
    assert "rnn_step_forward is not defined" in message  # followed by what the functions' checks say
