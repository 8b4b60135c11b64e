"""Assignment a2_lstm: its checks against course_pkg, its source notebook scored in-process as the grader scores it
(grader.scoring, hidden cases drawn from assignment_tools.TEST_SECRET), and the mistake library (each mistake
injected into the solution loses the expected points and is named); what holds for every assignment is in
test_assignments.py, over the manifest.

Keras is imported only by the tests that need it (the Keras part of the notebook and the Keras cases), once per session.
"""

import re

import nbformat
import numpy as np
import pytest

from assignment_tools import (SOLUTION_REGION, assert_hidden_cases_fail, cell_by_id, inject, load, namespace_after,
                              nbgrader_meta, run_in_process, run_until, seed_for, student_version, test_cells)
from course_pkg.checks import a2_lstm, cases, core
from injections_a2_lstm import INJECTIONS

AID = "a2_lstm"
REGISTRY = a2_lstm.REGISTRY
SEED = seed_for(AID)  # key -> the hidden cases' seed of the in-process runs
POINTS = {"test_input_gate": 1, "test_forget_gate": 1, "test_candidate": 1, "test_output_gate": 1,
          "test_lstm_step_forward": 2, "test_lstm_forward": 2, "test_lstm_step_backward": 3, "test_lstm_backward": 3,
          "test_lstm_keras_match": 2}


@pytest.fixture(scope="module")
def nb():
    return load(AID)


@pytest.fixture(scope="module")
def solution_run(nb):
    return run_in_process(nb)


# ---------------------------------------------------------------- the notebook's form

def test_notebook_follows_the_conventions(nb):
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    assert None not in ids and len(ids) == len(set(ids)), "every cell needs a unique grade_id"
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        assert meta["schema_version"] == 3 and meta["task"] is False
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{meta['grade_id']} has outputs"
        if meta["solution"]:
            assert not meta["grade"] and not meta["locked"]
            assert cell.source.startswith(f"def {meta['grade_id']}(")
            assert SOLUTION_REGION.search(cell.source)
        elif not meta["grade"]:
            assert meta["locked"]
    assert test_cells(nb) == POINTS and sum(POINTS.values()) == 16
    assert "import tensorflow" not in "".join(c.source for c in nb.cells)


def test_test_cells_are_the_visible_checks_of_the_graders_checks(nb):
    """A test cell holds only the student's self-check; the grader scores it by its grade_id (test_<key>), for
    every check of the registry and nothing else."""
    keys = []
    for grade_id in test_cells(nb):
        key = grade_id.removeprefix("test_")
        assert cell_by_id(nb, grade_id).source == f'check("{key}", globals())'
        meta = nbgrader_meta(cell_by_id(nb, grade_id))
        assert meta["locked"] and meta["grade"] and not meta["solution"]
        keys.append(key)
    assert sorted(keys) == sorted(REGISTRY.specs) and not REGISTRY.cell_checks


# ---------------------------------------------------------------- the checks themselves

def test_hidden_cases_differ_from_the_visible_one_and_vary_in_shape(nb):
    spec = REGISTRY.spec("lstm_step_forward")
    hidden = core.hidden_cases(spec, SEED("lstm_step_forward"))
    assert len({c.label for c in hidden}) > 2
    visible = spec.visible_case()
    assert not any(np.array_equal(visible.inputs["W"], c.inputs["W"]) for c in hidden if c.dtype == visible.dtype)


def test_keras_reference_chain_is_the_layers_own_output(nb):
    """The Keras check compares with course_pkg's get_params + lstm_forward, run on the layer's description
    (cases.KerasLayerSpec: plain data, what crosses to the grader's worker): that chain must be what the layer the
    description builds computes, on every case the check uses (float32 within 1e-5, float64 within 1e-10)."""
    import keras

    spec = REGISTRY.spec("lstm_keras_match")
    examples = [spec.visible_case(), *core.hidden_cases(spec, SEED("lstm_keras_match"))]
    for case in examples:
        i = case.inputs
        assert isinstance(i["layer"], cases.KerasLayerSpec) and i["layer"].kind == "LSTM"
        assert np.any(i["layer"].get_weights()[2] != 0), "the layer's bias must not be zero"
        layer = i["layer"].build()
        assert isinstance(layer, keras.layers.LSTM) and layer.units == i["layer"].units
        for built, described in zip(layer.get_weights(), i["layer"].get_weights(), strict=True):
            np.testing.assert_array_equal(built, described)
        h, c = spec.run(REGISTRY.reference, core._copy_inputs(i))
        keras_h, _, keras_c_T = (keras.ops.convert_to_numpy(v) for v in layer(i["x"], initial_state=[i["h0"],
                                                                                                     i["c0"]]))
        assert keras_h.dtype == h.dtype == case.dtype
        tol = 1e-5 if case.dtype == np.float32 else 1e-10
        assert np.max(np.abs(h - keras_h)) < tol, case.label
        assert np.max(np.abs(c[:, -1] - keras_c_T)) < tol, case.label


# ---------------------------------------------------------------- the notebook, scored in-process

def test_solution_gets_full_points(solution_run):
    assert {k: r.score for k, r in solution_run.items()} == {k: float(p) for k, p in POINTS.items()}
    for grade_id, run in solution_run.items():
        assert "6 of 6 hidden checks passed" in run.output, run.output


def _largest_differences(out):
    return [float(v) for v in re.findall(r"^largest .*?: ([0-9.e+-]+)$", out, re.M)]


def test_keras_cell_shows_the_largest_difference(nb):
    diffs = _largest_differences(run_until(nb, "keras_compare"))
    assert len(diffs) == 2 and max(diffs) < 1e-5
    # a wrong get_params shows up there as a large difference
    wrong = inject(nb, "get_params", "return W, U, b", "return W, U, np.zeros_like(b)")
    diffs = _largest_differences(run_until(wrong, "keras_compare"))
    assert len(diffs) == 2 and max(diffs) > 1e-2


def test_student_version_gets_zero_without_a_checker_error(nb):
    student = student_version(nb)
    assert "### BEGIN SOLUTION" not in "".join(c.source for c in student.cells)
    runs = run_in_process(student)
    assert {k: r.score for k, r in runs.items()} == {k: 0.0 for k in POINTS}
    for run in runs.values():
        assert "NotImplementedError" in run.output and "checker error" not in run.output, run.output
    # the hidden cases (which the grader runs only after the visible example passes) also fail case by case, with
    # the reason, and never with a checker error
    assert_hidden_cases_fail(student, REGISTRY, AID)


# ---------------------------------------------------------------- the mistake library

def test_every_mistake_has_one_injection():
    ids = [m.id for m in REGISTRY.all_mistakes()]
    assert sorted(ids) == sorted(inj[0] for inj in INJECTIONS)
    assert len(ids) >= 10
    by_id = {m.id: m for m in REGISTRY.all_mistakes()}
    for mistake_id, _, _, _, expected in INJECTIONS:
        assert f"test_{by_id[mistake_id].function}" in expected, mistake_id


_INJECTED_RUNS = {}


def _injected_runs(nb, grade_id, old, new):
    """run_in_process of the notebook with one injection, computed once per session (two tests read it)."""
    key = (grade_id, old, new)
    if key not in _INJECTED_RUNS:
        _INJECTED_RUNS[key] = run_in_process(inject(nb, grade_id, old, new))
    return _INJECTED_RUNS[key]


@pytest.mark.parametrize("mistake_id, grade_id, old, new, expected", INJECTIONS, ids=[i[0] for i in INJECTIONS])
def test_injected_mistake_loses_the_expected_points_and_is_named(nb, mistake_id, grade_id, old, new, expected):
    runs = _injected_runs(nb, grade_id, old, new)
    scores = {k: r.score for k, r in runs.items()}
    assert scores == {k: float(expected.get(k, p)) for k, p in POINTS.items()}
    own = f"test_{next(m.function for m in REGISTRY.all_mistakes() if m.id == mistake_id)}"
    assert f"[{mistake_id}]" in runs[own].output, runs[own].output


@pytest.mark.parametrize("mistake_id, grade_id, old, new, expected", INJECTIONS, ids=[i[0] for i in INJECTIONS])
def test_injected_mistake_is_named_in_every_cell_that_loses_points(nb, mistake_id, grade_id, old, new, expected):
    """The rule of the end-to-end nbgrader test: every test cell that loses points names the mistake, including the
    backward and Keras cells a forward mistake costs (they run the student's own forward)."""
    runs = _injected_runs(nb, grade_id, old, new)
    unnamed = {cell: runs[cell].output for cell in expected if f"[{mistake_id}]" not in runs[cell].output}
    assert not unnamed, f"{mistake_id} loses points in {sorted(unnamed)} without being named there: {unnamed}"


def test_gate_mistakes_name_the_gate():
    for m in REGISTRY.all_mistakes():
        if m.function in a2_lstm.GATES:
            word = m.function.split("_")[0]
            assert word in m.what, m.what


# ---------------------------------------------------------------- beyond the library

def test_float64_arrays_for_float32_inputs_cost_the_float32_cases(nb):
    """Partial credit: an lstm_forward that makes float64 arrays passes its visible (float64) check and 4 of the 6
    hidden cases, and nothing else loses points (the Keras match runs course_pkg's lstm_forward)."""
    wrong = inject(nb, "lstm_forward", "h = np.zeros((B, T, H), dtype=x.dtype)", "h = np.zeros((B, T, H))")
    runs = run_in_process(wrong)
    scores = {k: r.score for k, r in runs.items()}
    assert scores == {**{k: float(p) for k, p in POINTS.items()}, "test_lstm_forward": 1.33}
    assert "expected dtype float32" in runs["test_lstm_forward"].output


def test_a_wrong_gate_costs_only_its_own_points(nb):
    """Isolation: a step forward built on a wrong forget gate still gets the step's points."""
    wrong = inject(nb, "forget_gate", "return sigmoid(a_f)", "return np.tanh(a_f)")
    runs = run_in_process(wrong)
    assert runs["test_forget_gate"].score == 0
    assert all(r.score == POINTS[k] for k, r in runs.items() if k != "test_forget_gate")


@pytest.mark.parametrize("grade_id, old, new", [
    ("input_gate", "def input_gate(", "from course_pkg.lstm import input_gate as course_gate\n\n\ndef input_gate("),
    ("get_params", "def get_params(", "from course_pkg.keras_interop import get_params as course_get_params\n\n\n"
                                      "def get_params("),
    ("lstm_forward", "def lstm_forward(", "import course_pkg.lstm as course_lstm\n\n\ndef lstm_forward("),
])
def test_calling_course_pkg_is_refused(nb, grade_id, old, new):
    name = new.split(" as ")[1].split("\n")[0]
    call = {"input_gate": f"return {name}(x_t, h_prev, W, U, b)",
            "get_params": f"return {name}(layer)",
            "lstm_forward": f"return {name}.lstm_forward(x, h0, c0, W, U, b)"}[grade_id]
    cheat = inject(nb, grade_id, old, new)
    cell = cell_by_id(cheat, grade_id)
    cell.source = cell.source.replace("### BEGIN SOLUTION", f"### BEGIN SOLUTION\n    {call}")
    key = {"get_params": "lstm_keras_match"}.get(grade_id, grade_id)
    runs = run_in_process(cheat)
    assert runs[f"test_{key}"].score == 0
    assert "course_pkg's reference implementation" in runs[f"test_{key}"].output
