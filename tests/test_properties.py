"""Property-based tests (hypothesis): what the gates do when saturated, truncated BPTT, the sigmoid.

Every test is derandomized (the examples are a function of the test alone), so a CI run is reproducible.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from course_pkg import gru, lstm, rnn
from course_pkg.activations import sigmoid

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None)

DTYPES = st.sampled_from([np.float32, np.float64])


def bounded(shape, bound=1.0, dtype=np.float64):
    """Arrays of the given shape with entries in [-bound, bound] (float64 draws, then cast)."""
    return hnp.arrays(np.float64, shape, elements=st.floats(-bound, bound, allow_nan=False)).map(
        lambda a: a.astype(dtype)
    )


@st.composite
def sizes(draw, max_T=30):
    return (
        draw(st.integers(1, 3)),  # B
        draw(st.integers(1, max_T)),  # T
        draw(st.integers(1, 4)),  # D
        draw(st.integers(1, 4)),  # H
    )


def ulp_tol(dtype, scale=1.0, n=1):
    return n * np.finfo(dtype).eps * scale


# --------------------------------------------------------------------------------------------------------------------
# LSTM: forget gate open, input gate shut -> the cell state is carried unchanged (the constant error carousel)
# --------------------------------------------------------------------------------------------------------------------


@SETTINGS
@given(data=st.data(), shape=sizes(), dtype=DTYPES)
def test_lstm_saturated_forget_gate_carries_c_unchanged(data, shape, dtype):
    B, T, D, H = shape
    # |x W + h U| <= D + H <= 8 for entries in [-1, 1] (|h| < 1): the biases +-50 dominate by far.
    x = data.draw(bounded((B, T, D), dtype=dtype), label="x")
    W = data.draw(bounded((D, 4 * H), dtype=dtype), label="W")
    U = data.draw(bounded((H, 4 * H), dtype=dtype), label="U")
    b = data.draw(bounded((4 * H,), dtype=dtype), label="b")
    h0 = data.draw(bounded((B, H), 0.99, dtype=dtype), label="h0")
    c0 = data.draw(bounded((B, H), 20.0, dtype=dtype), label="c0")
    b[:H] = -50  # input gate shut
    b[H : 2 * H] = 50  # forget gate open

    h, c, cache = lstm.lstm_forward(x, h0, c0, W, U, b)
    for t in range(T):
        np.testing.assert_array_equal(c[:, t], c0, err_msg=f"c changed at step {t}")
    assert np.all(cache["f"] == 1) and np.all(cache["i"] == 0)
    np.testing.assert_allclose(h, cache["o"] * np.tanh(c0)[:, None, :], rtol=0, atol=ulp_tol(dtype, n=4))

    # No gradient reaches the saturated input and forget gates.
    dh = data.draw(bounded((B, T, H), dtype=dtype), label="dh")
    dx, dh0, dc0, dW, dU, db = lstm.lstm_backward(dh, cache)
    assert np.all(dW[:, : 2 * H] == 0) and np.all(dU[:, : 2 * H] == 0) and np.all(db[: 2 * H] == 0)

    # The constant error carousel: with the output gate blind to h (U_o = 0) h_{t-1} influences nothing any more,
    # and the gradient reaches c0 undamped from every step: dL/dc0 = sum_t dh_t * o_t * (1 - tanh(c0)^2).
    U[:, 3 * H :] = 0
    h, c, cache = lstm.lstm_forward(x, h0, c0, W, U, b)
    dx, dh0, dc0, dW, dU, db = lstm.lstm_backward(dh, cache)
    expected = (dh.astype(np.float64) * cache["o"]).sum(axis=1) * (1 - np.tanh(c0.astype(np.float64)) ** 2)
    np.testing.assert_allclose(dc0, expected, rtol=0, atol=ulp_tol(dtype, n=8 * T))
    assert not np.any(dh0)


# --------------------------------------------------------------------------------------------------------------------
# GRU: update gate z = 1 -> h is copied, in both conventions
# --------------------------------------------------------------------------------------------------------------------


@SETTINGS
@given(data=st.data(), shape=sizes(), dtype=DTYPES, reset_after=st.booleans())
def test_gru_update_gate_one_copies_h(data, shape, dtype, reset_after):
    B, T, D, H = shape
    x = data.draw(bounded((B, T, D), dtype=dtype), label="x")
    W = data.draw(bounded((D, 3 * H), dtype=dtype), label="W")
    U = data.draw(bounded((H, 3 * H), dtype=dtype), label="U")
    h0 = data.draw(bounded((B, H), 0.99, dtype=dtype), label="h0")
    if reset_after:
        b = data.draw(bounded((2, 3 * H), dtype=dtype), label="b")
        b[0, :H] = 25  # the update gate sees b[0] + b[1]
        b[1, :H] = 25
    else:
        b = data.draw(bounded((3 * H,), dtype=dtype), label="b")
        b[:H] = 50

    h, cache = gru.gru_forward(x, h0, W, U, b, reset_after=reset_after)
    assert np.all(cache["z"] == 1)
    # h_t = z h_{t-1} + (1 - z) h~ is h_{t-1} up to the rounding of how the blend is written
    for t in range(T):
        np.testing.assert_allclose(h[:, t], h0, rtol=0, atol=ulp_tol(dtype, n=2 * (t + 1)), err_msg=f"step {t}")

    # every step passes its gradient straight to h0; nothing reaches the parameters or the inputs
    dh = data.draw(bounded((B, T, H), dtype=dtype), label="dh")
    dx, dh0, dW, dU, db = gru.gru_backward(dh, cache)
    np.testing.assert_allclose(dh0, dh.astype(np.float64).sum(axis=1), rtol=0, atol=ulp_tol(dtype, n=2 * T))
    assert not np.any(dx) and not np.any(dW) and not np.any(dU) and not np.any(db)


# --------------------------------------------------------------------------------------------------------------------
# Truncated BPTT
# --------------------------------------------------------------------------------------------------------------------


def _make(cell, B, T, D, H, rng):
    G = {"rnn": 1, "lstm": 4}.get(cell, 3) * H
    x = rng.standard_normal((B, T, D))
    h0 = rng.uniform(-0.9, 0.9, (B, H))
    c0 = rng.standard_normal((B, H))
    W = 0.5 * rng.standard_normal((D, G))
    U = 0.5 * rng.standard_normal((H, G))
    b = 0.5 * rng.standard_normal((2, G) if cell == "gru_after" else (G,))
    return x, h0, c0, W, U, b


def _forward(cell, x, h0, c0, W, U, b):
    """-> (h, c or None, cache)"""
    if cell == "rnn":
        h, cache = rnn.rnn_forward(x, h0, W, U, b)
        return h, None, cache
    if cell == "lstm":
        return lstm.lstm_forward(x, h0, c0, W, U, b)
    h, cache = gru.gru_forward(x, h0, W, U, b, reset_after=(cell == "gru_after"))
    return h, None, cache


def _backward(cell, dh, cache, truncate=None):
    """-> dict with dx, dh0, (dc0), dW, dU, db"""
    if cell == "rnn":
        g = rnn.rnn_backward(dh, cache, truncate)
        return dict(zip(("x", "h0", "W", "U", "b"), g))
    if cell == "lstm":
        g = lstm.lstm_backward(dh, cache, truncate)
        return dict(zip(("x", "h0", "c0", "W", "U", "b"), g))
    g = gru.gru_backward(dh, cache, truncate)
    return dict(zip(("x", "h0", "W", "U", "b"), g))


CELLS = st.sampled_from(["rnn", "lstm", "gru_after", "gru_before"])


@SETTINGS
@given(cell=CELLS, shape=sizes(max_T=12), extra=st.integers(0, 5), seed=st.integers(0, 2**32 - 1))
def test_truncate_at_least_T_equals_full_bptt(cell, shape, extra, seed):
    B, T, D, H = shape
    rng = np.random.default_rng(seed)
    x, h0, c0, W, U, b = _make(cell, B, T, D, H, rng)
    h, c, cache = _forward(cell, x, h0, c0, W, U, b)
    dh = rng.standard_normal(h.shape)
    full = _backward(cell, dh, cache)
    cut = _backward(cell, dh, cache, truncate=T + extra)
    for name in full:
        assert np.array_equal(full[name], cut[name]), name


@SETTINGS
@given(cell=CELLS, shape=sizes(max_T=12), k=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_truncated_bptt_is_full_bptt_on_each_chunk(cell, shape, k, seed):
    """truncate=k equals: run each k-step chunk on its own from the carried state, full BPTT per chunk, sum."""
    B, T, D, H = shape
    rng = np.random.default_rng(seed)
    x, h0, c0, W, U, b = _make(cell, B, T, D, H, rng)
    h, c, cache = _forward(cell, x, h0, c0, W, U, b)
    dh = rng.standard_normal(h.shape)
    got = _backward(cell, dh, cache, truncate=k)

    want = {"x": np.zeros_like(x), "W": np.zeros_like(W), "U": np.zeros_like(U), "b": np.zeros_like(b)}
    for start in range(0, T, k):
        s_h = h0 if start == 0 else h[:, start - 1]
        s_c = c0 if start == 0 else (c[:, start - 1] if c is not None else None)
        ch, cc, ccache = _forward(cell, x[:, start : start + k], s_h, s_c, W, U, b)
        np.testing.assert_allclose(ch, h[:, start : start + k], rtol=1e-12, atol=1e-14)
        g = _backward(cell, dh[:, start : start + k], ccache)
        want["x"][:, start : start + k] = g["x"]
        for n in ("W", "U", "b"):
            want[n] += g[n]
        if start == 0:
            want["h0"] = g["h0"]
            if "c0" in g:
                want["c0"] = g["c0"]
    assert set(got) == set(want)
    for n in want:
        np.testing.assert_allclose(got[n], want[n], rtol=1e-10, atol=1e-12, err_msg=n)


# --------------------------------------------------------------------------------------------------------------------
# The sigmoid
# --------------------------------------------------------------------------------------------------------------------


def float_arrays(dtype, min_size=1):
    width = np.finfo(dtype).bits
    return hnp.arrays(
        dtype,
        st.integers(min_size, 50),
        elements=st.floats(allow_nan=False, allow_infinity=True, width=width),
    )


@SETTINGS
@given(a=st.one_of(float_arrays(np.float32), float_arrays(np.float64)))
def test_sigmoid_in_unit_interval(a):
    s = sigmoid(a)
    assert s.dtype == a.dtype and s.shape == a.shape
    assert np.all((s >= 0) & (s <= 1))


@SETTINGS
@given(a=st.one_of(float_arrays(np.float32, 2), float_arrays(np.float64, 2)))
def test_sigmoid_monotone(a):
    a = np.sort(a)
    s = sigmoid(a)
    # float64: exactly non-decreasing. float32: numpy's SIMD float32 tanh is faithfully rounded but not monotone at
    # the last bit (e.g. around a = -3), so a drop of one unit in the last place of the result is rounding.
    tol = 0.0 if a.dtype == np.float64 else float(np.finfo(np.float32).eps) / 2
    assert np.all(np.diff(s.astype(np.float64)) >= -tol), (a, s)
    # strictly increasing wherever the true sigmoid rises by far more than the rounding
    with np.errstate(invalid="ignore"):  # inf - inf
        far = np.diff(a.astype(np.float64)) > 0.5
    inner = (np.abs(a[:-1]) < 5) & (np.abs(a[1:]) < 5)
    assert np.all(np.diff(s)[far & inner] > 0)


@SETTINGS
@given(a=st.one_of(float_arrays(np.float32), float_arrays(np.float64)))
def test_sigmoid_symmetry(a):
    s_neg = sigmoid(-a)
    one_minus = 1 - sigmoid(a)
    eps = np.finfo(a.dtype).eps
    assert np.all(np.abs(s_neg - one_minus) <= eps), np.max(np.abs(s_neg - one_minus))


@SETTINGS
@given(a=st.one_of(float_arrays(np.float32), float_arrays(np.float64)))
def test_sigmoid_in_place_equals_out_of_place(a):
    expected = sigmoid(a)
    b = a.copy()
    r = sigmoid(b, out=b)
    assert r is b
    np.testing.assert_array_equal(b, expected)


def consecutive_floats(centre, dtype, n=20000):
    """Every representable number of `dtype` within n units in the last place of `centre`, sorted."""
    itype = np.int32 if dtype == np.float32 else np.int64
    bits = int(np.abs(np.array(centre, dtype=dtype)).view(itype))
    ints = bits + np.arange(-n, n + 1)
    mags = ints[ints >= 0].astype(itype).view(dtype)
    vals = np.concatenate([-mags[1:], mags]) if centre == 0 else np.sign(centre) * mags
    return np.sort(vals.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_monotone_on_consecutive_floats(dtype):
    """Not left to chance: every representable number in windows around a few points, in order."""
    tol = 0.0 if dtype == np.float64 else float(np.finfo(np.float32).eps) / 2
    for centre in (-30.0, -10.0, -3.0, -1.0, 0.0, 0.5, 2.0, 8.0, 17.0):
        a = consecutive_floats(centre, dtype)
        assert np.all(np.diff(a) > 0) and a.dtype == dtype
        s = sigmoid(a)
        assert np.all(np.diff(s.astype(np.float64)) >= -tol), centre
