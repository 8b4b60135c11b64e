"""The gradient checker itself: it must pass right gradients, flag wrong ones, and refuse to be misused."""

import re

import numpy as np
import pytest

from course_pkg import gru, lstm, rnn
from course_pkg.gradcheck import GradcheckReport, gradcheck, numerical_gradient, relative_error

# --------------------------------------------------------------------------------------------------------------------
# relative_error
# --------------------------------------------------------------------------------------------------------------------


def test_relative_error_basics():
    a = np.array([[1.0, -2.0], [3.0, 0.5]])
    assert relative_error(a, a) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0  # both zero: no 0/0
    assert relative_error(a, np.zeros_like(a)) == 1.0
    assert relative_error(a, -a) == 1.0
    assert relative_error([1.0, 0.0], [0.0, 1.0]) == pytest.approx(np.sqrt(2) / 2, rel=1e-15)
    assert relative_error(a, 2 * a) == pytest.approx(1 / 3, rel=1e-15)  # |a| / (|a| + 2|a|)
    assert relative_error(a, 1.01 * a) == pytest.approx(0.01 / 2.01, rel=1e-12)
    assert isinstance(relative_error(a, a), float)


def test_relative_error_symmetric_and_scale_invariant():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 5, 3))
    assert relative_error(a, b) == relative_error(b, a)
    assert relative_error(1e-9 * a, 1e-9 * b) == pytest.approx(relative_error(a, b), rel=1e-12)
    assert relative_error(1e9 * a, 1e9 * b) == pytest.approx(relative_error(a, b), rel=1e-12)
    assert 0 <= relative_error(a, b) <= 1


def test_relative_error_is_computed_in_float64():
    a = np.array([1.0, 2.0], dtype=np.float32)
    b = a.astype(np.float64) * (1 + 1e-9)  # below float32 resolution, visible in float64
    assert 0 < relative_error(a, b) < 1e-8


# --------------------------------------------------------------------------------------------------------------------
# numerical_gradient
# --------------------------------------------------------------------------------------------------------------------


def quad(A, x):
    """Two outputs: A x and sum(x^3)."""
    return A @ x, np.sum(x**3)


def test_numerical_gradient_of_known_functions():
    rng = np.random.default_rng(1)
    inputs = {"A": rng.standard_normal((3, 4)), "x": rng.standard_normal(4)}
    dy = rng.standard_normal(3)
    ds = np.array(0.7)
    # L = <A x, dy> + 0.7 sum(x^3):  dL/dA = dy x^T,  dL/dx = A^T dy + 2.1 x^2
    gA = numerical_gradient(quad, inputs, "A", (dy, ds))
    gx = numerical_gradient(quad, inputs, "x", (dy, ds))
    np.testing.assert_allclose(gA, np.outer(dy, inputs["x"]), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(gx, inputs["A"].T @ dy + 2.1 * inputs["x"] ** 2, rtol=1e-8, atol=1e-9)


def test_numerical_gradient_restores_the_input():
    rng = np.random.default_rng(2)
    inputs = {"A": rng.standard_normal((3, 4)), "x": rng.standard_normal(4)}
    saved = {k: v.copy() for k, v in inputs.items()}
    numerical_gradient(quad, inputs, "x", (np.ones(3), np.array(1.0)))
    for k in inputs:
        np.testing.assert_array_equal(inputs[k], saved[k])


def test_numerical_gradient_refuses_float32_and_non_arrays():
    inputs = {"A": np.ones((3, 4)), "x": np.ones(4, dtype=np.float32)}
    with pytest.raises(TypeError, match=r"numerical_gradient: input 'x' must be float64.*got float32"):
        numerical_gradient(quad, inputs, "x", (np.ones(3), np.array(1.0)))
    inputs["x"] = [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(TypeError, match=r"numerical_gradient: input 'x' must be float64.*got list"):
        numerical_gradient(quad, inputs, "x", (np.ones(3), np.array(1.0)))


# --------------------------------------------------------------------------------------------------------------------
# gradcheck on the real layers: right passes, wrong fails
# --------------------------------------------------------------------------------------------------------------------


def rnn_problem(seed=3):
    rng = np.random.default_rng(seed)
    B, T, D, H = 2, 3, 3, 4
    inputs = {
        "x": rng.standard_normal((B, T, D)),
        "h0": rng.uniform(-0.5, 0.5, (B, H)),
        "W": 0.5 * rng.standard_normal((D, H)),
        "U": 0.5 * rng.standard_normal((H, H)),
        "b": 0.5 * rng.standard_normal(H),
    }
    h, cache = rnn.rnn_forward(**inputs)
    dh = rng.standard_normal(h.shape)
    grads = dict(zip(("x", "h0", "W", "U", "b"), rnn.rnn_backward(dh, cache)))
    return inputs, grads, dh


def f_rnn(**kw):
    return rnn.rnn_forward(**kw)[0]


def test_correct_gradient_passes_and_report_names_every_input():
    inputs, grads, dh = rnn_problem()
    report = gradcheck(f_rnn, inputs, grads, dh)
    assert isinstance(report, GradcheckReport)
    assert report.passed, str(report)
    assert set(report.errors) == set(inputs)
    assert report.max_error <= 1e-7
    text = str(report)
    assert repr(report) == text
    lines = text.splitlines()
    assert "tolerance 1e-07" in lines[0]
    for name in inputs:
        assert any(re.match(rf"{name}\s+\S+\s+ok$", line) for line in lines), (name, text)
    assert "FAILED" not in text


@pytest.mark.parametrize("name", ["x", "h0", "W", "U", "b"])
def test_gradient_scaled_by_1_01_fails(name):
    inputs, grads, dh = rnn_problem()
    grads[name] = 1.01 * grads[name]
    report = gradcheck(f_rnn, inputs, grads, dh)
    assert not report.passed
    assert report.errors[name] == pytest.approx(0.01 / 2.01, rel=1e-3)
    for other in set(inputs) - {name}:
        assert report.errors[other] <= 1e-7
    failed = [line for line in str(report).splitlines() if line.endswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith(name + " ")


def test_small_errors_are_flagged_too():
    inputs, grads, dh = rnn_problem()
    for rel in (1e-5, 1e-6):
        wrong = dict(grads, W=grads["W"] * (1 + rel))
        assert not gradcheck(f_rnn, inputs, wrong, dh).passed
    # a single entry off
    wrong = dict(grads, U=grads["U"].copy())
    wrong["U"][1, 2] += 1e-4
    assert not gradcheck(f_rnn, inputs, wrong, dh).passed


def test_classic_bugs_are_flagged():
    inputs, grads, dh = rnn_problem()
    dh_no_first = dh.copy()
    dh_no_first[:, 0] = 0  # as if the loss at step 0 had been forgotten
    cache = rnn.rnn_forward(**inputs)[1]
    forgot = dict(zip(("x", "h0", "W", "U", "b"), rnn.rnn_backward(dh_no_first, cache)))
    bugs = {
        "sign": dict(grads, b=-grads["b"]),
        "transpose": dict(grads, U=grads["U"].T.copy()),
        "forgotten step": forgot,
        "truncated": dict(zip(("x", "h0", "W", "U", "b"), rnn.rnn_backward(dh, cache, truncate=2))),
    }
    for what, g in bugs.items():
        assert not gradcheck(f_rnn, inputs, g, dh).passed, what


@pytest.mark.parametrize("reset_after", [True, False])
def test_gradcheck_passes_non_array_keyword_inputs_through(reset_after):
    """reset_after is an input of f that is not differentiated: it goes to f unchanged."""
    rng = np.random.default_rng(4)
    B, D, H = 2, 3, 2
    inputs = {
        "x_t": rng.standard_normal((B, D)),
        "h_prev": rng.uniform(-0.5, 0.5, (B, H)),
        "W": 0.5 * rng.standard_normal((D, 3 * H)),
        "U": 0.5 * rng.standard_normal((H, 3 * H)),
        "b": 0.5 * rng.standard_normal((2, 3 * H) if reset_after else 3 * H),
        "reset_after": reset_after,
    }
    h, cache = gru.gru_step_forward(**inputs)
    dh = rng.standard_normal(h.shape)
    grads = dict(zip(("x_t", "h_prev", "W", "U", "b"), gru.gru_step_backward(dh, cache)))
    report = gradcheck(lambda **kw: gru.gru_step_forward(**kw)[0], inputs, grads, dh)
    assert report.passed and set(report.errors) == set(grads)
    # the other convention's gradients do not pass for this one
    other = dict(inputs, reset_after=not reset_after)
    other["b"] = inputs["b"].sum(axis=0) if reset_after else np.stack([inputs["b"], np.zeros_like(inputs["b"])])
    h2, cache2 = gru.gru_step_forward(**other)
    grads2 = dict(zip(("x_t", "h_prev", "W", "U"), gru.gru_step_backward(dh, cache2)))
    assert not gradcheck(lambda **kw: gru.gru_step_forward(**kw)[0], inputs, grads2, dh).passed


def test_several_outputs():
    rng = np.random.default_rng(5)
    B, D, H = 2, 3, 2
    inputs = {
        "x_t": rng.standard_normal((B, D)),
        "h_prev": rng.uniform(-0.5, 0.5, (B, H)),
        "c_prev": rng.standard_normal((B, H)),
        "W": 0.5 * rng.standard_normal((D, 4 * H)),
        "U": 0.5 * rng.standard_normal((H, 4 * H)),
        "b": 0.5 * rng.standard_normal(4 * H),
    }
    h, c, cache = lstm.lstm_step_forward(**inputs)
    dh, dc = rng.standard_normal(h.shape), rng.standard_normal(c.shape)
    grads = dict(zip(("x_t", "h_prev", "c_prev", "W", "U", "b"), lstm.lstm_step_backward(dh, dc, cache)))
    f = lambda **kw: lstm.lstm_step_forward(**kw)[:2]  # noqa: E731
    assert gradcheck(f, inputs, grads, (dh, dc)).passed
    # the gradient for dh alone is not the gradient of <h, dh> + <c, dc>
    grads_h = dict(zip(("x_t", "h_prev", "c_prev", "W", "U", "b"), lstm.lstm_step_backward(dh, 0 * dc, cache)))
    assert not gradcheck(f, inputs, grads_h, (dh, dc)).passed


def test_partial_check_and_custom_tolerance():
    inputs, grads, dh = rnn_problem()
    report = gradcheck(f_rnn, inputs, {"W": grads["W"]}, dh)
    assert list(report.errors) == ["W"] and report.passed
    wrong = {"W": grads["W"] * 1.001}
    assert not gradcheck(f_rnn, inputs, wrong, dh).passed
    loose = gradcheck(f_rnn, inputs, wrong, dh, tol=1e-2)
    assert loose.passed and loose.tol == 1e-2 and "tolerance 1e-02" in str(loose)


def test_eps_is_used():
    """A huge step makes central differences of a nonlinear function inaccurate: the check must notice."""
    inputs, grads, dh = rnn_problem()
    assert not gradcheck(f_rnn, inputs, grads, dh, eps=0.3).passed
    assert gradcheck(f_rnn, inputs, grads, dh, eps=1e-5).passed


def test_gradcheck_leaves_callers_arrays_alone():
    inputs, grads, dh = rnn_problem()
    saved = {k: v.copy() for k, v in inputs.items()}
    grads_saved = {k: v.copy() for k, v in grads.items()}
    gradcheck(f_rnn, inputs, grads, dh)
    for k in inputs:
        np.testing.assert_array_equal(inputs[k], saved[k])
    for k in grads:
        np.testing.assert_array_equal(grads[k], grads_saved[k])


def test_float32_inputs_are_checked_in_float64():
    """Inputs given in float32 are converted: f runs in float64, so a float64 analytic gradient still passes."""
    inputs, grads, dh = rnn_problem()
    in32 = {k: v.astype(np.float32) for k, v in inputs.items()}
    in64 = {k: v.astype(np.float64) for k, v in in32.items()}
    h, cache = rnn.rnn_forward(**in64)
    grads64 = dict(zip(("x", "h0", "W", "U", "b"), rnn.rnn_backward(dh, cache)))
    assert gradcheck(f_rnn, in32, grads64, dh).passed


# --------------------------------------------------------------------------------------------------------------------
# Misuse gives a clear error
# --------------------------------------------------------------------------------------------------------------------


def test_unknown_name():
    inputs, grads, dh = rnn_problem()
    with pytest.raises(KeyError, match=r"gradcheck: analytic gradient for 'V'.*not among the inputs.*'W'"):
        gradcheck(f_rnn, inputs, {"V": grads["W"]}, dh)


def test_analytic_gradient_of_the_wrong_shape():
    inputs, grads, dh = rnn_problem()
    msg = "gradcheck: gradient for 'U' has shape (3, 4); the input has (4, 4)"
    with pytest.raises(ValueError, match=re.escape(msg)):
        gradcheck(f_rnn, inputs, {"U": grads["W"]}, dh)
    with pytest.raises(ValueError, match=re.escape("gradient for 'W' has shape (4, 3); the input has (3, 4)")):
        gradcheck(f_rnn, inputs, {"W": grads["W"].T}, dh)


def test_analytic_gradient_in_float32_is_refused():
    """A float32 backward pass cannot meet a 1e-7 tolerance: say so instead of reporting a failure."""
    inputs, grads, dh = rnn_problem()
    with pytest.raises(TypeError, match=r"gradcheck: analytic gradient for 'W'.*float64.*got float32"):
        gradcheck(f_rnn, inputs, {"W": grads["W"].astype(np.float32)}, dh)


def test_analytic_gradient_for_a_non_array_input_is_refused():
    inputs, grads, dh = rnn_problem()
    with pytest.raises(TypeError, match=r"gradcheck: input 'flag' must be a float64 array to be differentiated"):
        gradcheck(lambda flag, **kw: f_rnn(**kw), dict(inputs, flag=True), {"flag": np.zeros(())}, dh)


def test_upstream_gradient_of_the_wrong_shape():
    """dh of another shape than the output would broadcast silently: refuse it."""
    inputs, grads, dh = rnn_problem()
    msg = "gradcheck: douts[0] has shape (1, 3, 4); output 0 of f has shape (2, 3, 4)"
    with pytest.raises(ValueError, match=re.escape(msg)):
        gradcheck(f_rnn, inputs, grads, dh[:1])  # would broadcast
    msg = "gradcheck: douts[0] has shape (2, 4); output 0 of f has shape (2, 3, 4)"
    with pytest.raises(ValueError, match=re.escape(msg)):
        gradcheck(f_rnn, inputs, grads, dh[:, 0])


def test_more_upstream_gradients_than_outputs():
    inputs, grads, dh = rnn_problem()
    with pytest.raises(ValueError, match=r"gradcheck: 2 upstream gradients \(douts\) for 1 output"):
        gradcheck(f_rnn, inputs, grads, (dh, dh))
