"""The checker behind the assignments (course_pkg.checks.core) and the grader's scoring of a test cell
(grader.scoring), on the simple RNN's checks, in this process: what they accept, what they refuse, and that the
hidden cases come from a generator the student's code cannot steer."""

import numpy as np
import pytest

import assignment_tools as at
from course_pkg import rnn
from course_pkg.checks import a1_rnn, a2_lstm, a3_gru, core
from grader import scoring

REG = a1_rnn.REGISTRY


def grade(key, ns, seed, points):
    """The CellResult of the test cell test_<key>, as the grader scores it (visible example, then hidden cases)."""
    return scoring.grade_check(REG, key, ns, seed, points)


def own_step(x_t, h_prev, W, U, b):
    h_t = np.tanh(x_t @ W + h_prev @ U + b)
    return h_t, (x_t, h_prev, W, U, h_t)  # the cache the notebook prescribes


def own_forward(x, h0, W, U, b):
    h, hs, caches = h0, [], []
    for t in range(x.shape[1]):
        h, cache = rnn_step_forward(x[:, t], h, W, U, b)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs, axis=1), caches


def namespace(**functions):
    return {"__name__": "__main__", "np": np, **functions}


def test_hidden_cases_ignore_global_random_state():
    spec = REG.spec("rnn_step_forward")
    np.random.seed(0)
    first = core.hidden_cases(spec, seed=123)
    np.random.seed(1)
    np.random.default_rng(5).random(10)
    second = core.hidden_cases(spec, seed=123)
    other = core.hidden_cases(spec, seed=124)
    for a, b in zip(first, second):
        assert a.label == b.label
        np.testing.assert_array_equal(a.inputs["x_t"], b.inputs["x_t"])
    assert any(a.inputs["x_t"].shape != c.inputs["x_t"].shape or not np.array_equal(a.inputs["x_t"], c.inputs["x_t"])
               for a, c in zip(first, other))


def test_hidden_cases_mix_dtypes_and_square_shapes():
    cases = core.hidden_cases(REG.spec("rnn_forward"), seed=7)
    assert [c.dtype for c in cases].count(np.dtype(np.float32)) == 2
    assert all(c.inputs["x"].dtype == c.dtype for c in cases)
    assert all(c.inputs["x"].shape[2] == c.inputs["h0"].shape[1] for c in cases[::2])  # every other case D == H
    assert all(c.inputs["x"].shape[1] >= 2 for c in cases)


def test_own_code_gets_full_points(capsys):
    ns = namespace(rnn_step_forward=own_step)
    a1_rnn.check("rnn_step_forward", ns)
    assert "visible check on the small example" in capsys.readouterr().out
    seed = 0x5EC2E7_5EED_0F_C0DE
    result = grade("rnn_step_forward", ns, seed=seed, points=2)
    assert result.score == 2.0 and result.error is None
    assert "visible check on the small example" in result.text and "6 of 6 hidden checks passed" in result.text
    assert "2 of 2 points" in result.text
    # the report says nothing of how the hidden cases are made
    assert str(seed) not in result.text and "seed" not in result.text.lower() and "grade" not in result.text


@pytest.mark.parametrize("borrow", [
    lambda: rnn.rnn_step_forward,
    lambda: (lambda x_t, h_prev, W, U, b: rnn.rnn_step_forward(x_t, h_prev, W, U, b)),
])
def test_reference_in_place_of_own_code_is_refused(borrow, capsys):
    ns = namespace(rnn_step_forward=borrow(), rnn=rnn)
    with pytest.raises(AssertionError, match="course_pkg's reference implementation"):
        a1_rnn.check("rnn_step_forward", ns)
    result = grade("rnn_step_forward", ns, seed=1, points=2)
    assert result.score == 0.0 and "course_pkg's reference implementation" in result.error


def test_import_of_reference_inside_function_is_refused():
    src = ("def rnn_step_forward(x_t, h_prev, W, U, b):\n"
           "    from course_pkg.rnn import rnn_step_forward as f\n"
           "    return f(x_t, h_prev, W, U, b)\n")
    ns = namespace()
    exec(src, ns)
    with pytest.raises(AssertionError, match="course_pkg.rnn"):
        a1_rnn.check("rnn_step_forward", ns)


def test_missing_function_is_named():
    with pytest.raises(AssertionError, match="rnn_step_forward is not defined"):
        a1_rnn.check("rnn_step_forward", namespace())


def test_isolation_a_wrong_step_does_not_cost_the_sequence_points():
    def wrong_step(x_t, h_prev, W, U, b):
        h_t = np.tanh(x_t @ W + h_prev @ U)  # missing bias
        return h_t, (x_t, h_prev, W, U, h_t)

    ns = namespace(rnn_step_forward=wrong_step, rnn_forward=own_forward)
    own_forward.__globals__["rnn_step_forward"] = wrong_step  # what the student's rnn_forward would call
    try:
        spec = REG.spec("rnn_forward")
        unisolated = core.run_case(REG, spec, lambda name: ns.get(name) or REG.reference(name), spec.visible_case())
        assert not unisolated.passed  # the student's rnn_forward, run as written, fails with its step
        assert grade("rnn_forward", ns, seed=3, points=2).score == 2.0
        assert grade("rnn_step_forward", ns, seed=3, points=2).score == 0.0
    finally:
        del own_forward.__globals__["rnn_step_forward"]


def test_float32_inputs_must_give_float32_outputs(capsys):
    def upcasting(x_t, h_prev, W, U, b):
        h_t = np.tanh(x_t.astype(np.float64) @ W + h_prev @ U + b)
        return h_t, (x_t, h_prev, W, U, h_t)

    result = grade("rnn_step_forward", namespace(rnn_step_forward=upcasting), seed=5, points=3)
    assert result.score == 2.0 and result.error is None  # the four float64 cases pass, the two float32 cases fail
    assert "4 of 6 hidden checks passed" in result.text and "expected dtype float32" in result.text


def test_exception_in_student_code_is_reported_with_its_line(capsys):
    def broken(x_t, h_prev, W, U, b):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="NotImplementedError"):
        a1_rnn.check("rnn_step_forward", namespace(rnn_step_forward=broken))
    result = grade("rnn_step_forward", namespace(rnn_step_forward=broken), seed=5, points=3)
    assert result.score == 0.0 and "raise NotImplementedError()" in result.error


def test_endless_recursion_is_a_failed_case_not_a_crash():
    def loop(x_t, h_prev, W, U, b):
        return loop(x_t, h_prev, W, U, b)

    result = grade("rnn_step_forward", namespace(rnn_step_forward=loop), seed=5, points=3)
    assert result.score == 0.0 and "RecursionError" in result.error


def test_non_finite_and_wrong_shape_outputs_are_described():
    def nan(x_t, h_prev, W, U, b):
        h_t = np.full_like(h_prev, np.nan)
        return h_t, (x_t, h_prev, W, U, h_t)

    def flattened(x_t, h_prev, W, U, b):
        h_t = np.tanh(x_t @ W + h_prev @ U + b).ravel()
        return h_t, (x_t, h_prev, W, U, h_t)

    with pytest.raises(AssertionError, match="NaN"):
        a1_rnn.check("rnn_step_forward", namespace(rnn_step_forward=nan))
    with pytest.raises(AssertionError, match="expected shape"):
        a1_rnn.check("rnn_step_forward", namespace(rnn_step_forward=flattened))


def test_visible_failure_names_the_mistake():
    def no_bias(x_t, h_prev, W, U, b):
        h_t = np.tanh(x_t @ W + h_prev @ U)
        return h_t, (x_t, h_prev, W, U, h_t)

    with pytest.raises(AssertionError, match=r"rnn-missing-bias.*\n.*Hint"):
        a1_rnn.check("rnn_step_forward", namespace(rnn_step_forward=no_bias))


def test_student_inputs_mutation_does_not_corrupt_the_reference():
    def mutating(x_t, h_prev, W, U, b):
        out = np.tanh(x_t @ W + h_prev @ U + b)
        cache = (x_t, h_prev, W.copy(), U, out)
        W *= 0  # a student who overwrites an argument must not change the expected values
        return out, cache

    result = grade("rnn_step_forward", namespace(rnn_step_forward=mutating), seed=9, points=1)
    assert result.score == 1.0 and result.error is None


def test_registry_rejects_duplicates_and_orphan_mistakes():
    reg = core.Registry("x")
    spec = REG.spec("rnn_step_forward")
    reg.add_spec(spec)
    with pytest.raises(ValueError, match="duplicate spec"):
        reg.add_spec(spec)
    with pytest.raises(ValueError, match="no spec"):
        reg.add_mistake(core.Mistake("m", "nope", None, "w", "h", {}))


@pytest.mark.parametrize("body", [
    "    import course_pkg.rnn\n    return course_pkg.rnn.rnn_step_forward(x_t, h_prev, W, U, b)\n",
    "    from course_pkg import rnn as r\n    return r.rnn_step_forward(x_t, h_prev, W, U, b)\n",
])
def test_module_imported_inside_function_is_refused(body):
    ns = namespace()
    exec("def rnn_step_forward(x_t, h_prev, W, U, b):\n" + body, ns)
    with pytest.raises(AssertionError, match="course_pkg.rnn"):
        a1_rnn.check("rnn_step_forward", ns)


def test_helpers_from_course_pkg_activations_are_allowed():
    ns = namespace()
    exec("def rnn_step_forward(x_t, h_prev, W, U, b):\n"
         "    from course_pkg.activations import sigmoid\n"
         "    h_t = np.tanh(x_t @ W + h_prev @ U + b) + 0 * sigmoid(b)\n"
         "    return h_t, (x_t, h_prev, W, U, h_t)\n", ns)
    a1_rnn.check("rnn_step_forward", ns)


def test_no_mistake_hint_when_the_code_only_raised():
    def broken(x_t, h_prev, W, U, b):
        raise NotImplementedError()

    def wrong(x_t, h_prev, W, U, b):
        h_t = np.tanh(x_t @ W + h_prev @ U + b) + 0.5  # a wrong value that no mistake of the library makes
        return h_t, (x_t, h_prev, W, U, h_t)

    result = grade("rnn_step_forward", namespace(rnn_step_forward=broken), seed=5, points=3)
    assert "NotImplementedError" in result.error and "No common mistake" not in result.error
    result = grade("rnn_step_forward", namespace(rnn_step_forward=wrong), seed=5, points=3)
    assert "No common mistake" in result.error  # the hint is there when outputs were compared


def test_a_failing_visible_example_makes_the_cell_an_error_without_hidden_cases():
    """As the old notebooks' check() before grade(): the hidden cases run only when the small example passes."""
    def no_bias(x_t, h_prev, W, U, b):
        h_t = np.tanh(x_t @ W + h_prev @ U)
        return h_t, (x_t, h_prev, W, U, h_t)

    result = grade("rnn_step_forward", namespace(rnn_step_forward=no_bias), seed=5, points=3)
    assert result.score == 0.0 and result.text == ""
    assert "visible check on the small example" in result.error and "[rnn-missing-bias]" in result.error
    assert "hidden checks" not in result.error


def test_partial_credit_is_the_share_of_hidden_cases_passed():
    """A function right on float64 and on D == H only: the score counts exactly the hidden cases it passes."""
    def right_when_square(x_t, h_prev, W, U, b):
        h = np.tanh(x_t @ W + h_prev @ U + b)
        h_t = (h if x_t.shape[1] == h_prev.shape[1] else h + 1.0)
        return h_t, (x_t, h_prev, W, U, h_t)

    seed = 11
    cases = core.hidden_cases(REG.spec("rnn_step_forward"), seed)
    passed = sum(c.inputs["x_t"].shape[1] == c.inputs["h_prev"].shape[1] for c in cases)
    assert 0 < passed < len(cases)
    result = grade("rnn_step_forward", namespace(rnn_step_forward=right_when_square), seed=seed, points=3)
    assert result.error is None and result.score == round(3 * passed / len(cases), 2)
    assert f"{passed} of {len(cases)} hidden checks passed" in result.text


def test_grade_cell_scores_checks_and_cell_checks_by_grade_id():
    ns = namespace(rnn_step_forward=own_step)
    seeds = []
    result = scoring.grade_cell(REG, "test_rnn_step_forward", 2.0, ns, lambda key: seeds.append(key) or 1)
    assert seeds == ["rnn_step_forward"] and result.score == 2.0
    # a cell check: a1's gradient check, on the relative errors the student's cell stored and on the student's own
    # forward and backward passes (here the solutions of the source notebook), which the grader differentiates too
    good = {"step_errors": dict.fromkeys(["x_t", "h_prev", "W", "U", "b"], 1e-10),
            "errors": dict.fromkeys(["x", "h0", "W", "U", "b"], 2e-10)}
    solutions = at.namespace_after(at.load("a1_rnn"))
    assert scoring.key_of("test_gradient_check") == "gradient_check" and "gradient_check" in REG.cell_checks
    result = scoring.grade_cell(REG, "test_gradient_check", 1.0, {**solutions, **good}, lambda key: 1)
    assert result.score == 1.0 and result.error is None and "all 10 relative errors" in result.text
    result = scoring.grade_cell(REG, "test_gradient_check", 1.0,
                                {**solutions, **good, "errors": {**good["errors"], "U": 3e-4}}, lambda key: 1)
    assert result.score == 0.0 and "errors['U'] = 3.00e-04" in result.error
    # stored results that pass, without the functions they claim to check: not enough
    result = scoring.grade_cell(REG, "test_gradient_check", 1.0, namespace(**good), lambda key: 1)
    assert result.score == 0.0 and "rnn_step_forward is not defined" in result.error


def test_a_stored_gradient_check_that_its_functions_contradict_scores_zero():
    """Forged results: the dicts say the gradients agree, but the student's rnn_backward drops the bias gradient."""
    good = {"step_errors": dict.fromkeys(["x_t", "h_prev", "W", "U", "b"], 1e-10),
            "errors": dict.fromkeys(["x", "h0", "W", "U", "b"], 2e-10)}
    ns = {**at.namespace_after(at.load("a1_rnn")), **good}
    right_backward = ns["rnn_backward"]

    def no_bias_gradient(dh, cache):
        dx, dh0, dW, dU, db = right_backward(dh, cache)
        return dx, dh0, dW, dU, np.zeros_like(db)

    ns["rnn_backward"] = no_bias_gradient
    result = scoring.grade_cell(REG, "test_gradient_check", 1.0, ns, lambda key: 1)
    assert result.score == 0.0
    assert "db from your rnn_backward is not the gradient of your rnn_forward" in result.error, result.error
    assert "dW from" not in result.error  # only the gradient that disagrees is named

    # a test cell the grader does not know scores 0 with the reason
    for grade_id in ("test_no_such_check", "rnn_step_forward"):
        result = scoring.grade_cell(REG, grade_id, 2.0, ns, lambda key: 1)
        assert result.score == 0.0 and "no check for the test cell" in result.error


def test_a_cache_in_another_layout_is_named_with_the_prescribed_one():
    def dict_cache(x_t, h_prev, W, U, b):
        h_t = np.tanh(x_t @ W + h_prev @ U + b)
        return h_t, {"x_t": x_t, "h_prev": h_prev, "W": W, "U": U, "h_t": h_t}

    with pytest.raises(AssertionError, match=r"cache is a dict; the notebook prescribes a tuple \(x_t, h_prev, W, U, h_t\)"):
        a1_rnn.check("rnn_step_forward", namespace(rnn_step_forward=dict_cache))

    def short_list(x, h0, W, U, b):
        h, hs, caches = h0, [], []
        for t in range(x.shape[1]):
            h, cache = rnn_step_forward(x[:, t], h, W, U, b)
            hs.append(h)
            caches.append(cache)
        return np.stack(hs, axis=1), caches[:-1]  # the last step's cache is missing

    ns = namespace(rnn_step_forward=own_step, rnn_forward=short_list)
    with pytest.raises(AssertionError, match="a list of the .* step caches"):
        a1_rnn.check("rnn_forward", ns)


def test_a_backward_check_does_not_depend_on_the_students_forward():
    """The backward step is graded on the checker's cache: a wrong forward step (no bias) beside a right backward
    step still gives the backward step all its points."""
    def no_bias(x_t, h_prev, W, U, b):
        h_t = np.tanh(x_t @ W + h_prev @ U)
        return h_t, (x_t, h_prev, W, U, h_t)

    def backward(dh_t, cache):
        x_t, h_prev, W, U, h_t = cache
        da = dh_t * (1 - h_t ** 2)
        return da @ W.T, da @ U.T, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)

    ns = namespace(rnn_step_forward=no_bias, rnn_step_backward=backward)
    assert grade("rnn_step_forward", ns, seed=3, points=2).score == 0.0
    result = grade("rnn_step_backward", ns, seed=3, points=3)
    assert result.score == 3.0 and result.error is None, result.error


@pytest.mark.parametrize("make", [
    lambda: a1_rnn._ng("one-sided"),
    lambda: a2_lstm._step_forward("no_tanh"),
    lambda: a3_gru._candidate("reset_before"),
    lambda: a3_gru._loop_backward("not-acumulated"),
])
def test_a_misspelt_mistake_kind_is_an_error_not_a_correct_function(make):
    with pytest.raises(ValueError, match="unknown kind"):
        make()


def test_a_mistake_is_named_even_when_the_cache_is_not_the_prescribed_one():
    def no_bias_own_cache(x_t, h_prev, W, U, b):
        return np.tanh(x_t @ W + h_prev @ U), {"mine": True}

    with pytest.raises(AssertionError, match=r"h_t differs(.|\n)*rnn-missing-bias"):
        a1_rnn.check("rnn_step_forward", namespace(rnn_step_forward=no_bias_own_cache))
