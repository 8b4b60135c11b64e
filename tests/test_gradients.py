"""Backward passes against central differences, truncated BPTT, and step/sequence/dtype consistency.

Every cell is tested in four variants: the simple RNN, the LSTM, and the GRU with reset_after=True and False.
The numerical gradients come from course_pkg.gradcheck (central differences in float64); truncated BPTT is checked
against the numerical gradient of a loss whose forward pass is run chunk by chunk with the carried state held
constant, and against a composition of the single-step backward functions.
"""

import re
import zlib

import numpy as np
import pytest

from course_pkg import gru, lstm, rnn
from course_pkg.gradcheck import gradcheck, relative_error

CELLS = ["rnn", "lstm", "gru_after", "gru_before"]

# (B, T, D, H): batch of one, a single step, D != H, D == H, longer sequences.
SHAPES = [(1, 1, 3, 2), (2, 3, 3, 4), (3, 4, 5, 2), (1, 5, 2, 2), (2, 1, 4, 3)]
SHAPE_IDS = [f"B{B}-T{T}-D{D}-H{H}" for B, T, D, H in SHAPES]


# --------------------------------------------------------------------------------------------------------------------
# A uniform interface over the four cells
# --------------------------------------------------------------------------------------------------------------------


def n_gates(cell):
    return {"rnn": 1, "lstm": 4}.get(cell, 3)


def is_lstm(cell):
    return cell == "lstm"


def seed_for(*parts):
    return zlib.crc32(repr(parts).encode())


def make_params(cell, D, H, rng, dtype=np.float64, scale=0.5):
    G = n_gates(cell) * H
    b_shape = (2, G) if cell == "gru_after" else (G,)
    return {
        "W": (scale * rng.standard_normal((D, G))).astype(dtype),
        "U": (scale * rng.standard_normal((H, G))).astype(dtype),
        "b": (scale * rng.standard_normal(b_shape)).astype(dtype),
    }


def make_seq_inputs(cell, B, T, D, H, rng, dtype=np.float64):
    inputs = {"x": rng.standard_normal((B, T, D)).astype(dtype), "h0": rng.uniform(-0.9, 0.9, (B, H)).astype(dtype)}
    if is_lstm(cell):
        inputs["c0"] = rng.standard_normal((B, H)).astype(dtype)
    inputs.update(make_params(cell, D, H, rng, dtype))
    return inputs


def make_step_inputs(cell, B, D, H, rng, dtype=np.float64):
    inputs = {"x_t": rng.standard_normal((B, D)).astype(dtype), "h_prev": rng.uniform(-0.9, 0.9, (B, H)).astype(dtype)}
    if is_lstm(cell):
        inputs["c_prev"] = rng.standard_normal((B, H)).astype(dtype)
    inputs.update(make_params(cell, D, H, rng, dtype))
    return inputs


def seq_forward(cell, x, h0, W, U, b, c0=None):
    """Returns (outputs, cache): outputs is (h,) or (h, c) for the LSTM."""
    if cell == "rnn":
        h, cache = rnn.rnn_forward(x, h0, W, U, b)
        return (h,), cache
    if cell == "lstm":
        h, c, cache = lstm.lstm_forward(x, h0, c0, W, U, b)
        return (h, c), cache
    h, cache = gru.gru_forward(x, h0, W, U, b, reset_after=(cell == "gru_after"))
    return (h,), cache


def seq_backward(cell, dh, cache, truncate=None):
    """Returns a dict of gradients keyed like the forward inputs."""
    if cell == "rnn":
        names, grads = ("x", "h0", "W", "U", "b"), rnn.rnn_backward(dh, cache, truncate=truncate)
    elif cell == "lstm":
        names, grads = ("x", "h0", "c0", "W", "U", "b"), lstm.lstm_backward(dh, cache, truncate=truncate)
    else:
        names, grads = ("x", "h0", "W", "U", "b"), gru.gru_backward(dh, cache, truncate=truncate)
    assert len(grads) == len(names)
    return dict(zip(names, grads))


def step_forward(cell, x_t, h_prev, W, U, b, c_prev=None):
    """Returns (outputs, cache): outputs is (h_t,) or (h_t, c_t) for the LSTM."""
    if cell == "rnn":
        h, cache = rnn.rnn_step_forward(x_t, h_prev, W, U, b)
        return (h,), cache
    if cell == "lstm":
        h, c, cache = lstm.lstm_step_forward(x_t, h_prev, c_prev, W, U, b)
        return (h, c), cache
    h, cache = gru.gru_step_forward(x_t, h_prev, W, U, b, reset_after=(cell == "gru_after"))
    return (h,), cache


def step_backward(cell, douts, cache):
    if cell == "rnn":
        names, grads = ("x_t", "h_prev", "W", "U", "b"), rnn.rnn_step_backward(douts[0], cache)
    elif cell == "lstm":
        names, grads = ("x_t", "h_prev", "c_prev", "W", "U", "b"), lstm.lstm_step_backward(*douts, cache)
    else:
        names, grads = ("x_t", "h_prev", "W", "U", "b"), gru.gru_step_backward(douts[0], cache)
    assert len(grads) == len(names)
    return dict(zip(names, grads))


def seq_input_names(cell):
    return ("x", "h0", "c0", "W", "U", "b") if is_lstm(cell) else ("x", "h0", "W", "U", "b")


# --------------------------------------------------------------------------------------------------------------------
# Central differences
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_step_backward_matches_central_differences(cell, shape):
    B, _, D, H = shape
    rng = np.random.default_rng(seed_for("step", cell, shape))
    inputs = make_step_inputs(cell, B, D, H, rng)
    outs, cache = step_forward(cell, **inputs)
    douts = tuple(rng.standard_normal(o.shape) for o in outs)  # upstream gradient for h_t (and c_t)
    analytic = step_backward(cell, douts, cache)

    report = gradcheck(lambda **kw: step_forward(cell, **kw)[0], inputs, analytic, douts)
    assert set(report.errors) == set(inputs)  # every parameter, the input and the previous state(s)
    assert report.passed, f"\n{report}"


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_sequence_backward_matches_central_differences(cell, shape):
    B, T, D, H = shape
    rng = np.random.default_rng(seed_for("seq", cell, shape))
    inputs = make_seq_inputs(cell, B, T, D, H, rng)
    outs, cache = seq_forward(cell, **inputs)
    dh = rng.standard_normal(outs[0].shape)
    analytic = seq_backward(cell, dh, cache)

    report = gradcheck(lambda **kw: seq_forward(cell, **kw)[0][0], inputs, analytic, dh)
    assert set(report.errors) == set(inputs)
    assert report.passed, f"\n{report}"


def test_lstm_step_gradient_through_c_alone():
    """Upstream gradient on c_t only (dh_t = 0): the additive cell path must be right on its own."""
    rng = np.random.default_rng(7)
    inputs = make_step_inputs("lstm", 2, 3, 4, rng)
    outs, cache = step_forward("lstm", **inputs)
    douts = (np.zeros_like(outs[0]), rng.standard_normal(outs[1].shape))
    analytic = step_backward("lstm", douts, cache)
    report = gradcheck(lambda **kw: step_forward("lstm", **kw)[0], inputs, analytic, douts)
    assert report.passed, f"\n{report}"


# --------------------------------------------------------------------------------------------------------------------
# Truncated BPTT
# --------------------------------------------------------------------------------------------------------------------


def chunked_forward(cell, T, k, carried):
    """The forward pass as truncated BPTT sees it.

    Chunk 0 starts from the initial state(s) (which are inputs); chunk j > 0 starts from the state reached at the end
    of chunk j - 1, held constant (`carried[start]`), so no derivative flows across the chunk boundary.
    """

    def f(x, h0, W, U, b, c0=None):
        pieces = []
        for start in range(0, T, k):
            if start == 0:
                st = {"h0": h0, "c0": c0} if is_lstm(cell) else {"h0": h0}
            else:
                st = carried[start]
            pieces.append(seq_forward(cell, x[:, start : start + k], W=W, U=U, b=b, **st)[0][0])
        return np.concatenate(pieces, axis=1)

    return f


@pytest.mark.parametrize("k,T", [(1, 4), (2, 5), (3, 5), (3, 7), (2, 3)])
@pytest.mark.parametrize("cell", CELLS)
def test_truncated_bptt_matches_chunked_central_differences(cell, k, T):
    B, D, H = 2, 3, 2
    rng = np.random.default_rng(seed_for("tbptt", cell, k, T))
    inputs = make_seq_inputs(cell, B, T, D, H, rng)
    outs, cache = seq_forward(cell, **inputs)
    dh = rng.standard_normal(outs[0].shape)
    analytic = seq_backward(cell, dh, cache, truncate=k)

    carried = {}
    for start in range(k, T, k):
        carried[start] = {"h0": outs[0][:, start - 1].copy()}
        if is_lstm(cell):
            carried[start]["c0"] = outs[1][:, start - 1].copy()
    f = chunked_forward(cell, T, k, carried)
    np.testing.assert_allclose(f(**inputs), outs[0], rtol=1e-12, atol=1e-14)  # same values as the full forward

    report = gradcheck(f, inputs, analytic, dh)
    assert set(report.errors) == set(inputs)
    assert report.passed, f"\n{report}"

    # and truncation did change the gradient (otherwise the check above would prove nothing)
    full = seq_backward(cell, dh, cache)
    assert relative_error(full["U"], analytic["U"]) > 1e-4


def compose_step_backward(cell, inputs, dh, truncate=None):
    """BPTT written with the step functions only: forward step by step, then step backward in reverse.

    With truncate=k the gradient flowing into the previous step is dropped at every chunk start t = k, 2k, ...
    """
    x = inputs["x"]
    B, T, _ = x.shape
    params = {n: inputs[n] for n in ("W", "U", "b")}
    state = {"h_prev": inputs["h0"]}
    if is_lstm(cell):
        state["c_prev"] = inputs["c0"]
    caches = []
    for t in range(T):
        outs, cache = step_forward(cell, x[:, t], **state, **params)
        caches.append(cache)
        state = {"h_prev": outs[0]}
        if is_lstm(cell):
            state["c_prev"] = outs[1]
    grads = {"x": np.zeros_like(x), **{n: np.zeros_like(p) for n, p in params.items()}}
    carry_h = np.zeros_like(inputs["h0"])
    carry_c = np.zeros_like(inputs["h0"])
    for t in reversed(range(T)):
        douts = (dh[:, t] + carry_h, carry_c) if is_lstm(cell) else (dh[:, t] + carry_h,)
        g = step_backward(cell, douts, caches[t])
        grads["x"][:, t] = g["x_t"]
        for n in params:
            grads[n] += g[n]
        carry_h = g["h_prev"]
        carry_c = g.get("c_prev")
        if truncate is not None and t % truncate == 0 and t > 0:
            carry_h = np.zeros_like(carry_h)
            carry_c = np.zeros_like(carry_h)
    grads["h0"] = carry_h
    if is_lstm(cell):
        grads["c0"] = carry_c
    return grads


@pytest.mark.parametrize("truncate", [None, 1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_sequence_backward_equals_composed_step_backward(cell, truncate):
    B, T, D, H = 3, 7, 4, 3
    rng = np.random.default_rng(seed_for("compose", cell, truncate))
    inputs = make_seq_inputs(cell, B, T, D, H, rng)
    outs, cache = seq_forward(cell, **inputs)
    dh = rng.standard_normal(outs[0].shape)
    got = seq_backward(cell, dh, cache, truncate=truncate)
    want = compose_step_backward(cell, inputs, dh, truncate=truncate)
    assert set(got) == set(want)
    for name in want:
        assert got[name].shape == want[name].shape, name
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_truncate_at_least_T_is_exactly_full_bptt(cell):
    B, T, D, H = 2, 5, 3, 4
    rng = np.random.default_rng(seed_for("ktall", cell))
    inputs = make_seq_inputs(cell, B, T, D, H, rng)
    outs, cache = seq_forward(cell, **inputs)
    dh = rng.standard_normal(outs[0].shape)
    full = seq_backward(cell, dh, cache)
    for k in (T, T + 1, 1000, np.int64(T)):
        got = seq_backward(cell, dh, cache, truncate=k)
        for name in full:
            assert np.array_equal(got[name], full[name]), (k, name)
    # T - 1 is a real truncation: it must differ
    cut = seq_backward(cell, dh, cache, truncate=T - 1)
    assert not np.array_equal(cut["U"], full["U"])


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, False, "2", 2.0])
@pytest.mark.parametrize("cell", CELLS)
def test_bad_truncate_raises_value_error(cell, bad):
    rng = np.random.default_rng(0)
    inputs = make_seq_inputs(cell, 2, 4, 3, 2, rng)
    outs, cache = seq_forward(cell, **inputs)
    fn = {"rnn": "rnn_backward", "lstm": "lstm_backward"}.get(cell, "gru_backward")
    pattern = rf"{fn}: argument 'truncate' must be None or a positive integer.*got {re.escape(repr(bad))}$"
    with pytest.raises(ValueError, match=pattern):
        seq_backward(cell, np.ones_like(outs[0]), cache, truncate=bad)


# --------------------------------------------------------------------------------------------------------------------
# Sequence versus step, inputs left alone, repeatability
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_sequence_forward_equals_step_loop(cell):
    B, T, D, H = 3, 6, 4, 5
    rng = np.random.default_rng(seed_for("loop", cell))
    inputs = make_seq_inputs(cell, B, T, D, H, rng)
    outs, cache = seq_forward(cell, **inputs)
    params = {n: inputs[n] for n in ("W", "U", "b")}
    state = {"h_prev": inputs["h0"]}
    if is_lstm(cell):
        state["c_prev"] = inputs["c0"]
    gate_names = {"rnn": (), "lstm": ("i", "f", "g", "o")}.get(cell, ("z", "r", "h_tilde"))
    for t in range(T):
        step_outs, step_cache = step_forward(cell, inputs["x"][:, t], **state, **params)
        for seq_o, step_o in zip(outs, step_outs):
            np.testing.assert_allclose(seq_o[:, t], step_o, rtol=1e-12, atol=1e-14)
        for g in gate_names:  # the exposed gates agree too
            assert cache[g].shape == (B, T, H)
            np.testing.assert_allclose(cache[g][:, t], step_cache[g], rtol=1e-12, atol=1e-14, err_msg=g)
        state = {"h_prev": step_outs[0]}
        if is_lstm(cell):
            state["c_prev"] = step_outs[1]


@pytest.mark.parametrize("cell", CELLS)
def test_forward_and_backward_leave_inputs_alone_and_backward_is_repeatable(cell):
    rng = np.random.default_rng(seed_for("pure", cell))
    inputs = make_seq_inputs(cell, 2, 4, 3, 3, rng)
    saved = {n: a.copy() for n, a in inputs.items()}
    outs, cache = seq_forward(cell, **inputs)
    dh = rng.standard_normal(outs[0].shape)
    dh_saved = dh.copy()
    first = seq_backward(cell, dh, cache, truncate=2)
    second = seq_backward(cell, dh, cache, truncate=2)
    third = seq_backward(cell, dh, cache)
    fourth = seq_backward(cell, dh, cache)
    again, _ = seq_forward(cell, **inputs)
    for n in saved:
        assert np.array_equal(inputs[n], saved[n]), n
    assert np.array_equal(dh, dh_saved)
    for n in first:
        assert np.array_equal(first[n], second[n]), n
        assert np.array_equal(third[n], fourth[n]), n
    for a, b in zip(outs, again):
        assert np.array_equal(a, b)

    step_inputs = make_step_inputs(cell, 2, 3, 3, rng)
    step_saved = {n: a.copy() for n, a in step_inputs.items()}
    souts, scache = step_forward(cell, **step_inputs)
    douts = tuple(np.ones_like(o) for o in souts)
    g1 = step_backward(cell, douts, scache)
    g2 = step_backward(cell, douts, scache)
    for n in step_saved:
        assert np.array_equal(step_inputs[n], step_saved[n]), n
    for n in g1:
        assert np.array_equal(g1[n], g2[n]), n


# --------------------------------------------------------------------------------------------------------------------
# Dtypes
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
def test_dtype_of_outputs_and_gradients(cell, dtype):
    rng = np.random.default_rng(seed_for("dtype", cell))
    inputs = make_seq_inputs(cell, 2, 3, 4, 3, rng, dtype=dtype)
    outs, cache = seq_forward(cell, **inputs)
    for o in outs:
        assert o.dtype == dtype
    grads = seq_backward(cell, np.ones_like(outs[0]), cache, truncate=2)
    for n, g in grads.items():
        assert g.dtype == dtype, n
        assert g.shape == inputs[n].shape, n

    step_inputs = make_step_inputs(cell, 2, 4, 3, rng, dtype=dtype)
    souts, scache = step_forward(cell, **step_inputs)
    for o in souts:
        assert o.dtype == dtype
    sgrads = step_backward(cell, tuple(np.ones_like(o) for o in souts), scache)
    for n, g in sgrads.items():
        assert g.dtype == dtype, n
        assert g.shape == step_inputs[n].shape, n


@pytest.mark.parametrize("cell", CELLS)
def test_float64_upstream_gradient_on_float32_forward_gives_float32_gradients(cell):
    """The backward pass runs in the forward pass's dtype, whatever the dtype of the upstream gradient."""
    rng = np.random.default_rng(seed_for("updtype", cell))
    inputs = make_seq_inputs(cell, 2, 3, 4, 3, rng, dtype=np.float32)
    outs, cache = seq_forward(cell, **inputs)
    grads = seq_backward(cell, np.ones(outs[0].shape, dtype=np.float64), cache)
    assert {n: g.dtype for n, g in grads.items()} == {n: np.dtype(np.float32) for n in grads}

    step_inputs = make_step_inputs(cell, 2, 4, 3, rng, dtype=np.float32)
    souts, scache = step_forward(cell, **step_inputs)
    sgrads = step_backward(cell, tuple(np.ones(o.shape, dtype=np.float64) for o in souts), scache)
    assert {n: g.dtype for n, g in sgrads.items()} == {n: np.dtype(np.float32) for n in sgrads}


@pytest.mark.parametrize("cell", CELLS)
def test_mixed_input_dtypes_promote_like_numpy(cell):
    """float32 x with float64 parameters computes in float64 (numpy's promotion), never silently in float32."""
    rng = np.random.default_rng(seed_for("mixed", cell))
    inputs = make_seq_inputs(cell, 2, 3, 4, 3, rng)
    inputs["x"] = inputs["x"].astype(np.float32)
    outs, cache = seq_forward(cell, **inputs)
    assert all(o.dtype == np.float64 for o in outs)
    grads = seq_backward(cell, np.ones_like(outs[0]), cache)
    assert all(g.dtype == np.float64 for g in grads.values())


@pytest.mark.parametrize("cell", CELLS)
def test_float32_agrees_with_float64(cell):
    B, T, D, H = 3, 8, 5, 4
    rng = np.random.default_rng(seed_for("f32f64", cell))
    in32 = make_seq_inputs(cell, B, T, D, H, rng, dtype=np.float32)
    in64 = {n: a.astype(np.float64) for n, a in in32.items()}  # the very same numbers
    outs32, cache32 = seq_forward(cell, **in32)
    outs64, cache64 = seq_forward(cell, **in64)
    for o32, o64 in zip(outs32, outs64):
        np.testing.assert_allclose(o32, o64, rtol=0, atol=1e-5 * max(1.0, np.abs(o64).max()))
    dh = rng.standard_normal(outs64[0].shape).astype(np.float32)
    for truncate in (None, 3):
        g32 = seq_backward(cell, dh, cache32, truncate)
        g64 = seq_backward(cell, dh.astype(np.float64), cache64, truncate)
        for n in g64:
            scale = max(1.0, np.abs(g64[n]).max())
            np.testing.assert_allclose(g32[n], g64[n], rtol=0, atol=1e-5 * scale, err_msg=n)

    s32 = make_step_inputs(cell, B, D, H, rng, dtype=np.float32)
    s64 = {n: a.astype(np.float64) for n, a in s32.items()}
    so32, sc32 = step_forward(cell, **s32)
    so64, sc64 = step_forward(cell, **s64)
    for a, b in zip(so32, so64):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * max(1.0, np.abs(b).max()))
    douts = tuple(rng.standard_normal(o.shape).astype(np.float32) for o in so32)
    sg32 = step_backward(cell, douts, sc32)
    sg64 = step_backward(cell, tuple(d.astype(np.float64) for d in douts), sc64)
    for n in sg64:
        np.testing.assert_allclose(sg32[n], sg64[n], rtol=0, atol=1e-5 * max(1.0, np.abs(sg64[n]).max()), err_msg=n)
