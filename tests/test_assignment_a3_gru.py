"""Assignment a3_gru: its checks against course_pkg, its source notebook scored in-process as the grader scores it
(grader.scoring, hidden cases drawn from assignment_tools.TEST_SECRET), and the mistake library (each mistake injected
into the solution loses the expected points and is named); what holds for every assignment is in
test_assignments.py, over the manifest.

Keras is imported only by the tests that need it (the Keras part of the notebook and the Keras cases), once per session.
"""

import re

import nbformat
import numpy as np
import pytest

from assignment_tools import (SOLUTION_REGION, TEST_SECRET, assert_hidden_cases_fail, cell_by_id, inject, load,
                              namespace_after, nbgrader_meta, run_in_process, run_until, seed_for, student_version,
                              test_cells)
from course_pkg import gradcheck
from course_pkg.checks import a3_gru, cases, core
from grader import scoring, secret
from injections_a3_gru import INJECTIONS, ConventionShare, expected_score

AID = "a3_gru"
REGISTRY = a3_gru.REGISTRY
SEED = seed_for(AID)  # key -> the hidden cases' seed of the in-process runs
OTHER_SECRETS = [b"course one", b"course two", b"course three", b"course four"]
POINTS = {"test_update_gate": 1, "test_reset_gate": 1, "test_candidate_reset_after": 1,
          "test_candidate_reset_before": 1, "test_gru_step_forward": 2, "test_gru_forward": 2,
          "test_gru_step_backward": 3, "test_gru_backward": 3, "test_gradient_check": 1,
          "test_gru_keras_match_reset_after": 1, "test_gru_keras_match_reset_before": 1}
CHECKED = {k: p for k, p in POINTS.items() if k != "test_gradient_check"}  # the cells of one function's check
KERAS_KEYS = ("gru_keras_match_reset_after", "gru_keras_match_reset_before")
FIXED_CONVENTION = {"candidate_reset_after": True, "candidate_reset_before": False,
                    "gru_keras_match_reset_after": True, "gru_keras_match_reset_before": False}


@pytest.fixture(scope="module")
def nb():
    return load(AID)


@pytest.fixture(scope="module")
def solution_run(nb):
    return run_in_process(nb)


def _scores(runs):
    return {k: r.score for k, r in runs.items()}


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
            assert SOLUTION_REGION.search(cell.source)
            if meta["grade_id"] != "gradient_check":
                assert cell.source.startswith(f"def {meta['grade_id']}(")
        elif not meta["grade"]:
            assert meta["locked"]
    assert test_cells(nb) == POINTS and sum(POINTS.values()) == 17
    assert "import tensorflow" not in "".join(c.source for c in nb.cells)
    # Keras is loaded only in the Keras part, after the last function that does not need it
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    first_keras = next(i for i, s in enumerate(sources) if "import keras" in s)
    assert all("keras" not in s for s in sources[:first_keras])
    # TensorFlow's log level is set before it loads (no log lines on stderr), without course_pkg.keras_interop,
    # which the grader's worker does not provide
    keras_cell = sources[first_keras]
    assert keras_cell.index('os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")') < keras_cell.index("import keras")
    assert "keras_interop" not in "".join(sources)


def test_test_cells_are_the_visible_checks_of_the_graders_checks(nb):
    """A check's test cell holds only the student's self-check, the gradient check's the call of its test; the
    grader scores each by its grade_id (test_<key>): every check and cell check of the registry, nothing else."""
    for grade_id in CHECKED:
        key = grade_id.removeprefix("test_")
        assert cell_by_id(nb, grade_id).source == f'check("{key}", globals())'
    assert {g.removeprefix("test_") for g in CHECKED} == set(REGISTRY.specs)
    assert set(REGISTRY.cell_checks) == {"gradient_check"}
    assert REGISTRY.cell_checks["gradient_check"] is a3_gru.check_gradient_reports
    lines = cell_by_id(nb, "test_gradient_check").source.splitlines()
    assert lines == [f"from course_pkg.checks.{AID} import check_gradient_reports", "check_gradient_reports(globals())"]
    for grade_id in POINTS:
        meta = nbgrader_meta(cell_by_id(nb, grade_id))
        assert meta["locked"] and meta["grade"] and not meta["solution"]


def test_the_text_states_the_conventions_exactly(nb):
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert r"h_t = z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t" in text
    assert "Keras, PyTorch and cuDNN" in text and "Cho et al. (2014)" in text
    assert r"r_t \odot (h_{t-1} U_h + b'_h)" in text  # after the product, recurrent bias included
    assert r"(r_t \odot h_{t-1})\, U_h" in text  # before the product
    assert "(2, 3H)" in text and "(3H,)" in text and "z, r, h" in text


# ---------------------------------------------------------------- the checks themselves

@pytest.mark.parametrize("key", list(REGISTRY.specs))
def test_hidden_cases_carry_their_convention(key):
    """Whatever the course secret: every case's bias has its convention's shape, and the candidate and Keras checks
    keep their own convention throughout. The checks of functions that take reset_after draw it case by case; with
    the tests' secret, both conventions occur among each one's hidden cases (the convention-dependent scores of the
    injections, and the recognition of mistakes that show in one convention only, are tested on them)."""
    spec = REGISTRY.spec(key)
    for course_secret in [TEST_SECRET, *OTHER_SECRETS]:
        examples = core.hidden_cases(spec, secret.seed(course_secret, AID, key))
        conventions = [c.inputs["reset_after"] for c in examples]
        assert all(type(ra) is bool for ra in conventions)
        b_rows = [c.inputs["b"].ndim if "b" in c.inputs else c.inputs["layer"].get_weights()[2].ndim
                  for c in examples]
        assert b_rows == [2 if ra else 1 for ra in conventions]
        if key in FIXED_CONVENTION:
            assert set(conventions) == {FIXED_CONVENTION[key]}
    if key in FIXED_CONVENTION:
        assert spec.visible_case().inputs["reset_after"] == FIXED_CONVENTION[key]
    else:
        assert {c.inputs["reset_after"] for c in core.hidden_cases(spec, SEED(key))} == {True, False}


def test_visible_examples_show_both_conventions_across_the_notebook():
    visible = {key: spec.visible_case().inputs["reset_after"] for key, spec in REGISTRY.specs.items()}
    assert visible["update_gate"] is True and visible["reset_gate"] is False
    assert visible["gru_forward"] is False and visible["gru_backward"] is False


def test_hidden_cases_differ_from_the_visible_one_and_vary_in_shape(nb):
    spec = REGISTRY.spec("gru_step_forward")
    hidden = core.hidden_cases(spec, SEED("gru_step_forward"))
    assert len({c.label for c in hidden}) > 2
    visible = spec.visible_case()
    assert not any(np.array_equal(visible.inputs["W"], c.inputs["W"]) for c in hidden if c.dtype == visible.dtype)


def test_candidate_cases_have_a_reset_gate_that_matters(nb):
    for key in ("candidate_reset_after", "candidate_reset_before"):
        for case in core.hidden_cases(REGISTRY.spec(key), SEED(key)):
            r = case.inputs["r"]
            assert r.dtype == case.dtype and r.shape == case.inputs["h_prev"].shape
            assert 0 < r.min() and r.max() < 1
            assert r.size == 1 or np.ptp(r) > 0.05


@pytest.mark.parametrize("key", KERAS_KEYS)
def test_keras_reference_chain_is_the_layers_own_output(nb, key):
    """The Keras checks compare with course_pkg's get_params + gru_forward, run on the layer's description
    (cases.KerasLayerSpec: plain data, what crosses to the grader's worker): that chain must be what the layer the
    description builds computes, on every case the check uses (float32 within 1e-5, float64 within 1e-10), with
    non-zero biases."""
    import keras

    spec = REGISTRY.spec(key)
    examples = [spec.visible_case(), *core.hidden_cases(spec, SEED(key))]
    for case in examples:
        i = case.inputs
        assert isinstance(i["layer"], cases.KerasLayerSpec) and i["layer"].kind == "GRU"
        assert i["layer"].options["reset_after"] is i["reset_after"]
        bias = i["layer"].get_weights()[2]
        assert bias.shape == a3_gru.bias_shape(i["layer"].units, i["reset_after"])
        assert np.all(np.any(bias != 0, axis=-1)), "every bias row must be non-zero"
        layer = i["layer"].build()
        assert isinstance(layer, keras.layers.GRU) and layer.reset_after is i["reset_after"]
        for built, described in zip(layer.get_weights(), i["layer"].get_weights(), strict=True):
            np.testing.assert_array_equal(built, described)
        (h,) = spec.run(REGISTRY.reference, core._copy_inputs(i))
        keras_h = keras.ops.convert_to_numpy(layer(i["x"], initial_state=[i["h0"]]))
        assert keras_h.dtype == h.dtype == case.dtype
        tol = 1e-5 if case.dtype == np.float32 else 1e-10
        assert np.max(np.abs(h - keras_h)) < tol, case.label


def test_the_two_conventions_are_different_models():
    """Why the candidate and Keras checks are split by convention: the same weights give different candidates."""
    case = a3_gru._candidate_case(True)(np.random.default_rng(0), np.dtype(np.float64), square=True)
    i = case.inputs
    after = a3_gru.gru.candidate(i["x_t"], i["h_prev"], i["r"], i["W"], i["U"], i["b"], reset_after=True)
    before = a3_gru.gru.candidate(i["x_t"], i["h_prev"], i["r"], i["W"], i["U"], i["b"].sum(axis=0),
                                  reset_after=False)
    assert np.max(np.abs(after - before)) > 1e-2


# ---------------------------------------------------------------- the notebook, scored in-process

def test_solution_gets_full_points(solution_run):
    assert _scores(solution_run) == {k: float(p) for k, p in POINTS.items()}
    for grade_id in CHECKED:
        assert "6 of 6 hidden checks passed" in solution_run[grade_id].output, solution_run[grade_id].output
    assert "both reports passed" in solution_run["test_gradient_check"].output


def _largest_differences(out):
    return [float(v) for v in re.findall(r"^reset_after=\w+: largest .*?: ([0-9.e+-]+)$", out, re.M)]


def test_keras_cell_shows_the_largest_difference_for_both_conventions(nb):
    diffs = _largest_differences(run_until(nb, "keras_compare"))
    assert len(diffs) == 2 and max(diffs) < 1e-5
    # a wrong get_params shows up there as a large difference
    wrong = inject(nb, "get_params", "return W, U, b", "return W, U, np.zeros_like(b)")
    diffs = _largest_differences(run_until(wrong, "keras_compare"))
    assert len(diffs) == 2 and min(diffs) > 1e-2


def test_gradient_check_cell_prints_both_reports(nb):
    out = run_until(nb, "gradient_check")
    assert "reset_after=True" in out and "reset_after=False" in out
    assert out.count("relative error") == 2 and "FAILED" not in out


def test_student_version_gets_zero_without_a_checker_error(nb):
    student = student_version(nb)
    assert "### BEGIN SOLUTION" not in "".join(c.source for c in student.cells)
    runs = run_in_process(student)
    assert _scores(runs) == {k: 0.0 for k in POINTS}
    for grade_id in CHECKED:
        assert "NotImplementedError" in runs[grade_id].output, runs[grade_id].output
    assert "report_after is not defined" in runs["test_gradient_check"].output
    assert all("checker error" not in run.output for run in runs.values())
    # the hidden cases (which the grader runs only after the visible example passes) also fail case by case, with
    # the reason, and never with a checker error
    assert_hidden_cases_fail(student, REGISTRY, AID)


# ---------------------------------------------------------------- the gradient check's test

def _report(errors):
    return gradcheck.GradcheckReport(errors, 1e-7)


GOOD = dict.fromkeys(a3_gru.GRADCHECK_INPUTS, 1e-10)


class _Forged:
    """A report made by the student's own code, with the name and attributes of gradcheck's."""

    def __init__(self, errors, tol):
        self.errors, self.tol = errors, tol


_Forged.__name__ = _Forged.__qualname__ = "GradcheckReport"


@pytest.mark.parametrize("namespace, expected", [
    ({}, "report_after is not defined"),
    ({"report_after": _report(GOOD)}, "report_before is not defined"),
    ({"report_after": 0.0, "report_before": _report(GOOD)}, "report_after is a float, not the report"),
    ({"report_after": _report(GOOD), "report_before": _Forged(GOOD, 1e-7)},
     "report_before is a GradcheckReport, not the report course_pkg.gradcheck.gradcheck returns"),
    ({"report_after": gradcheck.GradcheckReport({**GOOD, "W": "small"}, 1e-7), "report_before": _report(GOOD)},
     "report_after is not a report that gradcheck made"),
    ({"report_after": _report({**GOOD, "W": float("nan")}), "report_before": _report(GOOD)},
     "disagree with central differences for W (nan)"),
    ({"report_after": _report({"x_t": 1e-10}), "report_before": _report(GOOD)}, "no gradient for h_prev, W, U, b"),
    ({"report_after": _report(GOOD), "report_before": gradcheck.GradcheckReport(GOOD, 1.0)}, "keep gradcheck's"),
    ({"report_after": _report(GOOD), "report_before": _report({**GOOD, "U": 0.3})},
     "report_before (reset_after=False): the gradients of your gru_step_backward disagree with central differences "
     "for U (3.0e-01)"),
])
def test_gradient_reports_are_checked_with_a_reason(namespace, expected):
    with pytest.raises(AssertionError, match=re.escape(expected)):
        a3_gru.check_gradient_reports(namespace)


def test_stored_reports_that_the_students_functions_contradict_score_zero(nb):
    """The grader does not take the stored reports' word: it differentiates the student's gru_step_forward itself
    and compares with the student's gru_step_backward (here made wrong after the reports were stored)."""
    ns = namespace_after(nb)
    assert scoring.grade_cell(REGISTRY, "test_gradient_check", 1.0, ns, SEED).score == 1.0
    right = ns["gru_step_backward"]

    def doubled_dU(dh_t, cache):
        dx_t, dh_prev, dW, dU, db = right(dh_t, cache)
        return dx_t, dh_prev, dW, 2 * dU, db

    ns["gru_step_backward"] = doubled_dU
    result = scoring.grade_cell(REGISTRY, "test_gradient_check", 1.0, ns, SEED)
    assert result.score == 0.0 and "both reports passed" in result.text
    assert "dU from your gru_step_backward is not the gradient of your gru_step_forward" in result.error
    assert "dW from" not in result.error


def test_a_failed_gradient_check_reports_the_checks_of_the_functions_it_runs():
    """The reports say that something in the chain is wrong; the checks of its functions say what (here: none is
    defined, as in the student version)."""
    with pytest.raises(AssertionError) as failure:
        a3_gru.check_gradient_reports({})
    text = str(failure.value)
    assert "What the checks of the functions it runs say" in text
    for key in a3_gru.GRADCHECK_CHAIN:
        name = REGISTRY.spec(key).name
        assert f"\n  {key}: {name} is not defined" in text, key


def test_gradient_reports_that_passed_are_accepted(capsys):
    a3_gru.check_gradient_reports({"report_after": _report(GOOD), "report_before": _report({**GOOD, "b": 3e-9})})
    assert "both reports passed (largest relative error 3.0e-09" in capsys.readouterr().out


# ---------------------------------------------------------------- the mistake library

BY_ID = {m.id: m for m in REGISTRY.all_mistakes()}
# every (mistake, check that recognises it): a shared mistake (the candidate's sigmoid, the Keras kernels) has two
MISTAKE_CHECKS = [(m, key) for m in REGISTRY.all_mistakes() for key in REGISTRY.checks_of(m)]


def test_every_mistake_has_one_injection():
    ids = [m.id for m in REGISTRY.all_mistakes()]
    assert len(ids) == len(set(ids)) == len(INJECTIONS)
    assert sorted(ids) == sorted(inj[0] for inj in INJECTIONS)
    assert len(ids) >= 10
    for mistake_id, _, _, _, expected in INJECTIONS:
        checks = REGISTRY.checks_of(BY_ID[mistake_id])
        assert checks and all(f"test_{key}" in expected for key in checks), mistake_id


def test_shared_mistakes_belong_to_checks_of_their_function():
    shared = {m.id: REGISTRY.checks_of(m) for m in REGISTRY.all_mistakes() if len(REGISTRY.checks_of(m)) > 1}
    assert shared == {"gru-candidate-sigmoid": ["candidate_reset_after", "candidate_reset_before"],
                      "gru-keras-kernels-swapped": list(KERAS_KEYS)}
    reg = a3_gru.GruRegistry("x")
    for spec in a3_gru.SPECS:
        reg.add_spec(spec)
    mistake = BY_ID["gru-candidate-sigmoid"]
    with pytest.raises(ValueError, match="not one of candidate"):
        reg.add_shared_mistake(mistake, ("candidate_reset_after", "gru_step_forward"))
    reg.add_shared_mistake(mistake, ("candidate_reset_after",))
    with pytest.raises(ValueError, match="duplicate mistake id"):
        reg.add_shared_mistake(mistake, ("candidate_reset_before",))


def test_convention_dependent_scores_are_partial_with_the_tests_secret():
    """The two mistakes that show in one convention only are tested on a partial score: with the tests' secret,
    their checks' hidden cases hold both conventions, so the score tells the convention's cases from the others."""
    shares = {v.key: v for *_, expected in INJECTIONS for v in expected.values() if isinstance(v, ConventionShare)}
    assert set(shares) == {"reset_gate", "gru_step_backward"}
    for share in shares.values():
        passed, total = share.passing(SEED)
        assert 0 < passed < total and 0 < share.score(SEED) < share.points
        assert share.points == POINTS[f"test_{share.key}"]


@pytest.mark.parametrize("mistake_id, grade_id, old, new, expected", INJECTIONS, ids=[i[0] for i in INJECTIONS])
def test_injected_mistake_loses_the_expected_points_and_is_named_in_every_cell_that_loses(
        nb, mistake_id, grade_id, old, new, expected):
    """The rule of the end-to-end nbgrader test, in-process: the scores, and the mistake's id in the output of every
    test cell that loses points (the ids of all entries that share this injection, if any)."""
    runs = run_in_process(inject(nb, grade_id, old, new))
    assert _scores(runs) == {k: expected_score(expected.get(k, p), SEED) for k, p in POINTS.items()}
    sharing = [i[0] for i in INJECTIONS if i[1:4] == (grade_id, old, new)]
    for test_id in expected:
        for named in sharing:
            assert f"[{named}]" in runs[test_id].output, (test_id, runs[test_id].output)


@pytest.mark.parametrize("mistake, key", MISTAKE_CHECKS, ids=[f"{m.id}:{k}" for m, k in MISTAKE_CHECKS])
def test_mistake_is_recognised_on_the_hidden_cases(nb, mistake, key):
    """Independently of the notebook: the mistake's own functions fail some hidden cases of each check that
    recognises it, and every failure on which the mistake applies (no exception) is diagnosed as this mistake and no
    other."""
    spec = REGISTRY.spec(key)
    get = core._mistake_resolver(mistake, REGISTRY)
    results = [core.run_case(REGISTRY, spec, get, c) for c in core.hidden_cases(spec, SEED(spec.key))]
    failed = [r for r in results if not r.passed]
    assert failed
    named = [r for r in failed if r.mistakes]
    assert named and all(r.mistakes == [mistake] for r in named)
    assert all("raised" in r.detail for r in failed if not r.mistakes)  # a shape error where D != H


def test_gate_mistakes_name_the_gate():
    for m in REGISTRY.all_mistakes():
        if m.function in a3_gru.GATES:
            word = m.function.split("_")[0]
            assert f"{word} gate" in m.what, m.what
        if m.function.startswith("candidate_"):
            assert "candidate" in m.what or "reset" in m.what, m.what


def test_the_plain_backward_used_by_the_mistakes_is_right_when_nothing_is_wrong(nb):
    """The wrong gru_step_backward versions are one flag away from a right one: that one must equal course_pkg's."""
    spec = REGISTRY.spec("gru_step_backward")
    right = core.Mistake("none", "gru_step_backward", None, "", "", {"gru_step_backward": a3_gru._step_backward()})
    for case in core.hidden_cases(spec, SEED("gru_step_backward")):
        assert core.run_case(REGISTRY, spec, core._mistake_resolver(right, REGISTRY), case).passed, case.label


# ---------------------------------------------------------------- beyond the library

def test_float64_arrays_for_float32_inputs_cost_the_float32_cases(nb):
    """Partial credit: a gru_forward that makes float64 arrays passes its visible (float64) check and 4 of the 6
    hidden cases, and nothing else loses points (the Keras matches run course_pkg's gru_forward)."""
    wrong = inject(nb, "gru_forward", "np.zeros((B, T, h0.shape[1]), dtype=x.dtype)", "np.zeros((B, T, h0.shape[1]))")
    runs = run_in_process(wrong)
    assert _scores(runs) == {**{k: float(p) for k, p in POINTS.items()}, "test_gru_forward": 1.33}
    assert "expected dtype float32" in runs["test_gru_forward"].output


def test_a_wrong_gate_costs_only_its_own_points_and_the_gradient_check(nb):
    """Isolation: the step, sequence and Keras checks built on a wrong reset gate still get their points; the
    gradient check, which runs the student's own chain, does not."""
    wrong = inject(nb, "reset_gate", "return sigmoid(", "return np.tanh(")
    runs = run_in_process(wrong)
    lost = {k for k, r in runs.items() if r.score != POINTS[k]}
    assert lost == {"test_reset_gate", "test_gradient_check"}
    out = runs["test_gradient_check"].output
    assert "disagree with central differences" in out
    # and the gradient check's test sends the student to the function at fault
    assert "reset_gate: fails on float64" in out and "[gru-reset-gate-tanh]" in out
    assert re.search(r"update_gate: passes on .*reset_after=True and on .*reset_after=False", out)


@pytest.mark.parametrize("grade_id, old, new", [
    ("update_gate", "def update_gate(",
     "from course_pkg.gru import update_gate as course_gate\n\n\ndef update_gate("),
    ("get_params", "def get_params(", "from course_pkg.keras_interop import get_params as course_get_params\n\n\n"
                                      "def get_params("),
    ("gru_forward", "def gru_forward(", "import course_pkg.gru as course_gru\n\n\ndef gru_forward("),
])
def test_calling_course_pkg_is_refused(nb, grade_id, old, new):
    name = new.split(" as ")[1].split("\n")[0]
    call = {"update_gate": f"return {name}(x_t, h_prev, W, U, b, reset_after)",
            "get_params": f"return {name}(layer)",
            "gru_forward": f"return {name}.gru_forward(x, h0, W, U, b, reset_after)"}[grade_id]
    cheat = inject(nb, grade_id, old, new)
    cell = cell_by_id(cheat, grade_id)
    cell.source = cell.source.replace("### BEGIN SOLUTION", f"### BEGIN SOLUTION\n    {call}")
    keys = {"get_params": KERAS_KEYS}.get(grade_id, (grade_id,))
    runs = run_in_process(cheat)
    for key in keys:
        assert runs[f"test_{key}"].score == 0
        assert "course_pkg's reference implementation" in runs[f"test_{key}"].output
