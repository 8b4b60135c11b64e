"""The sigmoid, (1 + tanh(a / 2)) / 2: accuracy against the textbook formula, no warnings, dtypes, `out=`.

Accuracy note: the tanh form has an absolute error of about one unit in the last place of 1, not a relative one; for
a < -20 (float64) its relative error grows (sigmoid(-30) is off by ~2e-4 relative, sigmoid(-40) is 0 instead of
4e-18). For a gate, which multiplies a bounded quantity, the absolute error is what matters; the tests below pin
relative accuracy on moderate inputs and absolute accuracy everywhere.
"""

import warnings

import numpy as np
import pytest

from course_pkg.activations import dsigmoid_from_output, dtanh_from_output, sigmoid


def textbook(a):
    """1 / (1 + exp(-a)) in float64, without warnings for the tails."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-a))


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings(), np.errstate(all="raise", under="ignore"):
        warnings.simplefilter("error")
        yield


# --------------------------------------------------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------------------------------------------------


def test_float64_relative_accuracy_on_moderate_inputs():
    a = np.concatenate([np.linspace(-15, 15, 100001), np.geomspace(1e-12, 15, 2001), -np.geomspace(1e-12, 15, 2001)])
    ref = textbook(a)
    np.testing.assert_allclose(sigmoid(a), ref, rtol=1e-7, atol=0)
    # positive side: relative accuracy holds much further out
    a = np.linspace(0, 700, 70001)
    np.testing.assert_allclose(sigmoid(a), textbook(a), rtol=1e-15, atol=0)


def test_float64_absolute_accuracy_everywhere():
    a = np.concatenate([np.linspace(-800, 800, 400001), [-1e308, -745.2, 745.2, 1e308]])
    assert np.max(np.abs(sigmoid(a) - textbook(a))) <= np.finfo(np.float64).eps


def test_float32_absolute_accuracy():
    a = np.linspace(-40, 40, 400001).astype(np.float32)
    s = sigmoid(a)
    assert s.dtype == np.float32
    err = np.abs(s.astype(np.float64) - textbook(a))  # textbook on the very same float32 numbers, in float64
    assert err.max() <= 1e-7


def test_float16_absolute_accuracy():
    a = np.linspace(-12, 12, 20001).astype(np.float16)
    s = sigmoid(a)
    assert s.dtype == np.float16
    assert np.max(np.abs(s.astype(np.float64) - textbook(a))) <= np.finfo(np.float16).eps


def test_exact_values():
    for dtype in (np.float16, np.float32, np.float64):
        a = np.array([0.0, -0.0, 1e4, -1e4, np.inf, -np.inf], dtype=dtype)
        np.testing.assert_array_equal(sigmoid(a), np.array([0.5, 0.5, 1, 0, 1, 0], dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_derivatives_from_output_against_central_differences(dtype):
    a = np.linspace(-6, 6, 241)
    eps = 1e-6
    num_s = (textbook(a + eps) - textbook(a - eps)) / (2 * eps)
    num_t = (np.tanh(a + eps) - np.tanh(a - eps)) / (2 * eps)
    s = sigmoid(a.astype(dtype))
    t = np.tanh(a.astype(dtype))
    ds, dt = dsigmoid_from_output(s), dtanh_from_output(t)
    assert ds.dtype == dtype and dt.dtype == dtype
    tol = 1e-8 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(ds, num_s, rtol=0, atol=tol)
    np.testing.assert_allclose(dt, num_t, rtol=0, atol=tol)


# --------------------------------------------------------------------------------------------------------------------
# No warning for any finite input
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_no_warning_for_any_finite_input(dtype, no_warnings):
    fi = np.finfo(dtype)
    big = {np.float16: 6e4, np.float32: 1e38, np.float64: 1e308}[dtype]
    special = [0.0, -0.0, fi.tiny, -fi.tiny, fi.smallest_subnormal, -fi.smallest_subnormal, fi.max, fi.min,
               big, -big, 88.8, -88.8, 89.0, -89.0, 709.8, -709.8, 745.2, -745.2, 1e4, -1e4]
    with np.errstate(all="ignore"):  # 709.8 overflows float16 to inf: fine, inf is allowed too
        sweep = np.geomspace(float(fi.tiny), float(fi.max) / 2, 2000)
        a = np.concatenate([special, sweep, -sweep]).astype(dtype)
    s = sigmoid(a)
    assert s.dtype == dtype
    assert np.all((s >= 0) & (s <= 1))
    assert sigmoid(np.array(fi.max, dtype=dtype)) == 1 and sigmoid(np.array(fi.min, dtype=dtype)) == 0
    # and the same in place
    b = a.copy()
    sigmoid(b, out=b)
    np.testing.assert_array_equal(b, s)


def test_textbook_formula_would_warn():
    """What the tanh form avoids (so that the test above tests something): exp(-a) overflows in float32."""
    a = np.array([-1e38, -100.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning):
            1 / (1 + np.exp(-a))
        sigmoid(a)


# --------------------------------------------------------------------------------------------------------------------
# Dtypes and out=
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.longdouble])
def test_float_dtype_is_preserved(dtype):
    a = np.linspace(-3, 3, 7).astype(dtype)
    s = sigmoid(a)
    assert s.dtype == dtype and s.shape == a.shape
    assert sigmoid(dtype(1.5)).dtype == dtype  # numpy scalars too


@pytest.mark.parametrize("value", [np.arange(-3, 4), np.array([True, False]), [0, 1, 2], 2, 2.0, [[0.5, -0.5]]])
def test_non_float_input_is_computed_in_float64(value):
    s = sigmoid(value)
    assert isinstance(s, np.ndarray) and s.dtype == np.float64
    assert s.shape == np.shape(value)
    np.testing.assert_allclose(s, textbook(np.asarray(value, dtype=np.float64)), rtol=1e-12)


def test_shapes_are_preserved():
    rng = np.random.default_rng(0)
    for shape in [(), (1,), (3, 4), (2, 3, 4), (2, 0, 3)]:
        a = rng.standard_normal(shape)
        s = sigmoid(a)
        assert s.shape == shape
        np.testing.assert_allclose(s, textbook(a), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_in_place(dtype):
    a = np.linspace(-5, 5, 11).astype(dtype)
    expected = sigmoid(a.copy())
    r = sigmoid(a, out=a)
    assert r is a
    np.testing.assert_array_equal(a, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_separate_buffer_leaves_input_alone(dtype):
    a = np.linspace(-5, 5, 11).astype(dtype)
    a_saved = a.copy()
    out = np.full_like(a, np.nan)
    r = sigmoid(a, out=out)
    assert r is out
    np.testing.assert_array_equal(a, a_saved)
    np.testing.assert_array_equal(out, sigmoid(a))


def test_out_on_a_strided_gate_block():
    """As the LSTM uses it: a column block of a (B, 4H) array, in place; the other blocks are untouched."""
    rng = np.random.default_rng(1)
    H = 3
    a = rng.standard_normal((5, 4 * H))
    saved = a.copy()
    block = a[:, H : 2 * H]
    assert not block.flags.c_contiguous
    r = sigmoid(block, out=block)
    assert r is block
    np.testing.assert_allclose(a[:, H : 2 * H], textbook(saved[:, H : 2 * H]), rtol=1e-12)
    np.testing.assert_array_equal(a[:, :H], saved[:, :H])
    np.testing.assert_array_equal(a[:, 2 * H :], saved[:, 2 * H :])


def test_default_call_does_not_modify_input():
    a = np.linspace(-5, 5, 11)
    saved = a.copy()
    sigmoid(a)
    np.testing.assert_array_equal(a, saved)
