"""The checker behind the assignments (course_pkg.checks.core), on the simple RNN's checks: what it accepts, what it
refuses, and that its hidden cases come from a generator the student's code cannot steer."""

import numpy as np
import pytest

from course_pkg import rnn
from course_pkg.checks import a1_rnn, core

REG = a1_rnn.REGISTRY


def own_step(x_t, h_prev, W, U, b):
    h_t = np.tanh(x_t @ W + h_prev @ U + b)
    return h_t, (x_t, h_prev, U, W, h_t)


def own_forward(x, h0, W, U, b):
    h, hs = h0, []
    for t in range(x.shape[1]):
        h, _ = rnn_step_forward(x[:, t], h, W, U, b)
        hs.append(h)
    return np.stack(hs, axis=1), None


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
    assert a1_rnn.grade("rnn_step_forward", ns, seed=1, points=2) == 2.0
    out = capsys.readouterr().out
    assert "6 of 6 hidden checks passed" in out
    assert "seed" not in out and "grade(" not in out  # the report says nothing of the hidden cell's code


@pytest.mark.parametrize("borrow", [
    lambda: rnn.rnn_step_forward,
    lambda: (lambda x_t, h_prev, W, U, b: rnn.rnn_step_forward(x_t, h_prev, W, U, b)),
])
def test_reference_in_place_of_own_code_is_refused(borrow, capsys):
    ns = namespace(rnn_step_forward=borrow(), rnn=rnn)
    with pytest.raises(AssertionError, match="course_pkg's reference implementation"):
        a1_rnn.check("rnn_step_forward", ns)
    assert a1_rnn.grade("rnn_step_forward", ns, seed=1, points=2) == 0.0
    assert "course_pkg" in capsys.readouterr().out


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
        return np.tanh(x_t @ W + h_prev @ U), None  # missing bias

    ns = namespace(rnn_step_forward=wrong_step, rnn_forward=own_forward)
    own_forward.__globals__["rnn_step_forward"] = wrong_step  # what the student's rnn_forward would call
    try:
        assert a1_rnn.grade("rnn_forward", ns, seed=3, points=2) == 2.0
        assert a1_rnn.grade("rnn_step_forward", ns, seed=3, points=2) == 0.0
    finally:
        del own_forward.__globals__["rnn_step_forward"]


def test_float32_inputs_must_give_float32_outputs(capsys):
    def upcasting(x_t, h_prev, W, U, b):
        return np.tanh(x_t.astype(np.float64) @ W + h_prev @ U + b), None

    score = a1_rnn.grade("rnn_step_forward", namespace(rnn_step_forward=upcasting), seed=5, points=3)
    assert score == 2.0  # the four float64 cases pass, the two float32 cases fail
    assert "expected dtype float32" in capsys.readouterr().out


def test_exception_in_student_code_is_reported_with_its_line(capsys):
    def broken(x_t, h_prev, W, U, b):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="NotImplementedError"):
        a1_rnn.check("rnn_step_forward", namespace(rnn_step_forward=broken))
    assert a1_rnn.grade("rnn_step_forward", namespace(rnn_step_forward=broken), seed=5, points=3) == 0.0
    assert "raise NotImplementedError()" in capsys.readouterr().out


def test_endless_recursion_is_a_failed_case_not_a_crash():
    def loop(x_t, h_prev, W, U, b):
        return loop(x_t, h_prev, W, U, b)

    assert a1_rnn.grade("rnn_step_forward", namespace(rnn_step_forward=loop), seed=5, points=3) == 0.0


def test_non_finite_and_wrong_shape_outputs_are_described():
    def nan(x_t, h_prev, W, U, b):
        return np.full_like(h_prev, np.nan), None

    def flattened(x_t, h_prev, W, U, b):
        return np.tanh(x_t @ W + h_prev @ U + b).ravel(), None

    with pytest.raises(AssertionError, match="NaN"):
        a1_rnn.check("rnn_step_forward", namespace(rnn_step_forward=nan))
    with pytest.raises(AssertionError, match="expected shape"):
        a1_rnn.check("rnn_step_forward", namespace(rnn_step_forward=flattened))


def test_visible_failure_names_the_mistake():
    def no_bias(x_t, h_prev, W, U, b):
        return np.tanh(x_t @ W + h_prev @ U), None

    with pytest.raises(AssertionError, match=r"rnn-missing-bias.*\n.*Hint"):
        a1_rnn.check("rnn_step_forward", namespace(rnn_step_forward=no_bias))


def test_student_inputs_mutation_does_not_corrupt_the_reference():
    def mutating(x_t, h_prev, W, U, b):
        out = np.tanh(x_t @ W + h_prev @ U + b)
        W *= 0  # a student who overwrites an argument must not change the expected values
        return out, None

    assert a1_rnn.grade("rnn_step_forward", namespace(rnn_step_forward=mutating), seed=9, points=1) == 1.0


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
         "    return np.tanh(x_t @ W + h_prev @ U + b) + 0 * sigmoid(b), None\n", ns)
    a1_rnn.check("rnn_step_forward", ns)


def test_no_mistake_hint_when_the_code_only_raised(capsys):
    def broken(x_t, h_prev, W, U, b):
        raise NotImplementedError()

    a1_rnn.grade("rnn_step_forward", namespace(rnn_step_forward=broken), seed=5, points=3)
    assert "No common mistake" not in capsys.readouterr().out
