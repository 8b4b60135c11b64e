"""course_pkg.attention: gradients against central differences, forward passes against Keras, masks, bad inputs.

1. Every backward function against course_pkg.gradcheck in float64, on shapes where no two sizes are equal (so a
   transposed product cannot pass by accident), with and without masks, and with a loss that reads the weights too.
2. The forward passes against keras.layers.AdditiveAttention and keras.layers.Attention given the same weights:
   Keras' additive layer has no W_q, W_k, so it receives the projected query and keys and our v as its `scale`;
   Keras' Attention with use_scale=True multiplies by a learned scalar, our `scale`; masks as [query_mask,
   value_mask]. float32, tolerance 1e-5.
3. Masks: padding that is masked changes nothing (a padded batch gives the unpadded answers exactly); padding that
   is not masked does change the answer; masked keys get weight exactly 0.
4. Wrong shapes and wrong masks raise errors that say what is wrong.
"""

import os
import zlib

import numpy as np
import pytest

from course_pkg import attention as att
from course_pkg.gradcheck import gradcheck

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# B, Tq, Tk, Dq, Dk, Dv, A all different in the main case; single query and single key as edge cases.
SHAPES = [(2, 3, 4, 5, 6, 7, 8), (1, 1, 5, 3, 2, 4, 6), (3, 2, 1, 4, 3, 2, 5)]
IDS = ["B2-Tq3-Tk4", "one-query", "one-key"]


def rng_for(*parts):
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


def make(shape, rng, dtype=np.float64, square=False):
    B, Tq, Tk, Dq, Dk, Dv, A = shape
    if square:
        Dk = Dq
    return {
        "query": rng.standard_normal((B, Tq, Dq)).astype(dtype),
        "keys": rng.standard_normal((B, Tk, Dk)).astype(dtype),
        "values": rng.standard_normal((B, Tk, Dv)).astype(dtype),
        "Wq": (0.5 * rng.standard_normal((Dq, A))).astype(dtype),
        "Wk": (0.5 * rng.standard_normal((Dk, A))).astype(dtype),
        "v": rng.standard_normal(A).astype(dtype),
        "Wa": (0.5 * rng.standard_normal((Dq, Dk))).astype(dtype),
    }


def random_mask(B, Tk, rng, Tq=None):
    """A random 0/1 mask with at least one 1 in each row."""
    shape = (B, Tk) if Tq is None else (B, Tq, Tk)
    m = rng.random(shape) < 0.6
    m[..., 0] |= ~m.any(axis=-1)
    return m


# --------------------------------------------------------------------------------------------------------------------
# 1. Gradient checks
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_additive_scores_gradients(shape):
    rng = rng_for("add_scores", shape)
    p = make(shape, rng)
    inputs = {k: p[k] for k in ("query", "keys", "Wq", "Wk", "v")}
    e, cache = att.additive_scores_forward(**inputs)
    de = rng.standard_normal(e.shape)
    analytic = dict(zip(("query", "keys", "Wq", "Wk", "v"), att.additive_scores_backward(de, cache)))
    report = gradcheck(lambda **kw: att.additive_scores_forward(**kw)[0], inputs, analytic, de)
    assert report.passed, f"\n{report}"


@pytest.mark.parametrize("general", [False, True], ids=["dot", "general"])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_dot_scores_gradients(shape, general):
    rng = rng_for("dot_scores", shape, general)
    p = make(shape, rng, square=not general)
    inputs = {"query": p["query"], "keys": p["keys"], "Wa": p["Wa"] if general else None}
    scale = 0.7
    e, cache = att.dot_scores_forward(**inputs, scale=scale)
    de = rng.standard_normal(e.shape)
    dq, dk, dWa, dscale = att.dot_scores_backward(de, cache)
    analytic = {"query": dq, "keys": dk}
    if general:
        analytic["Wa"] = dWa
    else:
        assert dWa is None
    report = gradcheck(lambda **kw: att.dot_scores_forward(**kw, scale=scale)[0], inputs, analytic, de)
    assert report.passed, f"\n{report}"
    # the scale, by central differences (it is a plain float, not an array input of gradcheck)
    eps = 1e-6
    num = (np.sum(att.dot_scores_forward(**inputs, scale=scale + eps)[0] * de)
           - np.sum(att.dot_scores_forward(**inputs, scale=scale - eps)[0] * de)) / (2 * eps)
    assert abs(num - dscale) <= 1e-7 * (abs(num) + abs(dscale))


@pytest.mark.parametrize("mask_kind", [None, "keys", "per-query"])
def test_masked_softmax_gradients(mask_kind):
    rng = rng_for("softmax", mask_kind)
    B, Tq, Tk = 3, 4, 5
    e = rng.standard_normal((B, Tq, Tk))
    mask = None if mask_kind is None else random_mask(B, Tk, rng, Tq if mask_kind == "per-query" else None)
    alpha, cache = att.masked_softmax_forward(e, mask)
    dalpha = rng.standard_normal(alpha.shape)
    de = att.masked_softmax_backward(dalpha, cache)
    report = gradcheck(lambda e: att.masked_softmax_forward(e, mask)[0], {"e": e}, {"e": de}, dalpha)
    assert report.passed, f"\n{report}"
    if mask is not None:
        full = np.broadcast_to(mask[:, None] if mask.ndim == 2 else mask, e.shape)
        assert np.all(alpha[~full] == 0) and np.all(de[~full] == 0)


def test_context_gradients():
    rng = rng_for("context")
    inputs = {"alpha": rng.random((2, 3, 4)), "values": rng.standard_normal((2, 4, 5))}
    c, cache = att.context_forward(**inputs)
    dc = rng.standard_normal(c.shape)
    analytic = dict(zip(("alpha", "values"), att.context_backward(dc, cache)))
    report = gradcheck(lambda **kw: att.context_forward(**kw)[0], inputs, analytic, dc)
    assert report.passed, f"\n{report}"


KINDS = ["additive", "dot", "general", "scaled-dot"]


def attention_call(kind, p, mask=None, query_mask=None):
    """(forward function of the arrays that are differentiated, those arrays, backward names)."""
    if kind == "additive":
        names = ("query", "keys", "values", "Wq", "Wk", "v")

        def f(query, keys, values, Wq, Wk, v):
            return att.additive_attention_forward(query, keys, values, Wq, Wk, v, mask=mask, query_mask=query_mask)

        return f, {k: p[k] for k in names}, names
    scale = 1 / np.sqrt(p["keys"].shape[2]) if kind == "scaled-dot" else 1.0
    if kind == "general":
        names = ("query", "keys", "values", "Wa")

        def f(query, keys, values, Wa):
            return att.dot_attention_forward(query, keys, values, Wa, scale, mask=mask, query_mask=query_mask)

        return f, {k: p[k] for k in names}, names
    names = ("query", "keys", "values")

    def f(query, keys, values):
        return att.dot_attention_forward(query, keys, values, None, scale, mask=mask, query_mask=query_mask)

    return f, {k: p[k] for k in names}, names


def attention_backward(kind, dc, cache, dalpha=None):
    if kind == "additive":
        return att.additive_attention_backward(dc, cache, dalpha)
    dq, dk, dv, dWa, _ = att.dot_attention_backward(dc, cache, dalpha)
    return (dq, dk, dv) if dWa is None else (dq, dk, dv, dWa)


@pytest.mark.parametrize("masks", ["none", "key-mask", "per-query-mask", "both-masks"])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
@pytest.mark.parametrize("kind", KINDS)
def test_attention_gradients(kind, shape, masks):
    """The whole attention, with a loss that reads the context and the weights (dalpha), in float64."""
    rng = rng_for("attention", kind, shape, masks)
    p = make(shape, rng, square=kind in ("dot", "scaled-dot"))
    B, Tq, Tk = shape[:3]
    mask = {"key-mask": random_mask(B, Tk, rng), "per-query-mask": random_mask(B, Tk, rng, Tq),
            "both-masks": random_mask(B, Tk, rng)}.get(masks)
    query_mask = random_mask(B, Tq, rng) if masks == "both-masks" else None
    f, inputs, names = attention_call(kind, p, mask, query_mask)
    c, alpha, cache = f(**inputs)
    dc, dalpha = rng.standard_normal(c.shape), rng.standard_normal(alpha.shape)
    analytic = dict(zip(names, attention_backward(kind, dc, cache, dalpha)))
    assert set(analytic) == set(inputs)
    report = gradcheck(lambda **kw: f(**kw)[:2], inputs, analytic, (dc, dalpha))
    assert report.passed, f"\n{report}"


def test_dscale_of_the_whole_dot_attention():
    rng = rng_for("dscale")
    p = make((2, 3, 4, 5, 5, 3, 1), rng, square=True)
    mask = random_mask(2, 4, rng)
    c, _, cache = att.dot_attention_forward(p["query"], p["keys"], p["values"], scale=0.3, mask=mask)
    dc = rng.standard_normal(c.shape)
    dscale = att.dot_attention_backward(dc, cache)[4]
    eps = 1e-6

    def loss(s):
        return np.sum(att.dot_attention_forward(p["query"], p["keys"], p["values"], scale=s, mask=mask)[0] * dc)

    num = (loss(0.3 + eps) - loss(0.3 - eps)) / (2 * eps)
    assert abs(num - dscale) <= 1e-7 * (abs(num) + abs(dscale))


# --------------------------------------------------------------------------------------------------------------------
# 2. Keras
# --------------------------------------------------------------------------------------------------------------------

TOL = 1e-5


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def _run(layer, inputs, mask=None):
    out, weights = layer(inputs, mask=mask, return_attention_scores=True)
    return np.asarray(out), np.asarray(weights)


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "masks"])
def test_additive_matches_keras_additive_attention(keras, masked):
    rng = rng_for("keras_add", masked)
    B, Tq, Tk, Dq, Dk, Dv, A = 3, 4, 6, 5, 7, 2, 8
    p = make((B, Tq, Tk, Dq, Dk, Dv, A), rng, dtype=np.float32)
    mask = random_mask(B, Tk, rng) if masked else None
    query_mask = random_mask(B, Tq, rng) if masked else None
    c, alpha, _ = att.additive_attention_forward(p["query"], p["keys"], p["values"], p["Wq"], p["Wk"], p["v"],
                                                 mask=mask, query_mask=query_mask)
    layer = keras.layers.AdditiveAttention(use_scale=True)
    qp, kp = p["query"] @ p["Wq"], p["keys"] @ p["Wk"]  # Keras' layer starts after the projections
    layer.build([qp.shape, p["values"].shape, kp.shape])
    layer.scale.assign(p["v"])
    c_k, alpha_k = _run(layer, [qp, p["values"], kp], None if not masked else [query_mask, mask])
    assert np.abs(c).max() > 0.05
    np.testing.assert_allclose(c, c_k, atol=TOL, rtol=0)
    np.testing.assert_allclose(alpha, alpha_k, atol=TOL, rtol=0)


@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "masks"])
@pytest.mark.parametrize("kind", ["dot", "dot-scale", "general"])
def test_dot_matches_keras_attention(keras, kind, masked):
    rng = rng_for("keras_dot", kind, masked)
    B, Tq, Tk, D, Dv = 2, 5, 4, 6, 3
    p = make((B, Tq, Tk, D, D, Dv, 1), rng, dtype=np.float32, square=True)
    mask = random_mask(B, Tk, rng) if masked else None
    query_mask = random_mask(B, Tq, rng) if masked else None
    scale = 0.37 if kind == "dot-scale" else 1.0
    Wa = p["Wa"] if kind == "general" else None
    c, alpha, _ = att.dot_attention_forward(p["query"], p["keys"], p["values"], Wa, scale, mask=mask,
                                            query_mask=query_mask)
    layer = keras.layers.Attention(use_scale=(kind == "dot-scale"))
    query = p["query"] if Wa is None else p["query"] @ Wa  # Luong's general score: Keras' dot on q W_a
    layer.build([query.shape, p["values"].shape, p["keys"].shape])
    if kind == "dot-scale":
        layer.scale.assign(scale)
    c_k, alpha_k = _run(layer, [query, p["values"], p["keys"]], None if not masked else [query_mask, mask])
    assert np.abs(c).max() > 0.05
    np.testing.assert_allclose(c, c_k, atol=TOL, rtol=0)
    np.testing.assert_allclose(alpha, alpha_k, atol=TOL, rtol=0)


def test_causal_mask_matches_keras(keras):
    rng = rng_for("keras_causal")
    B, T, D = 2, 5, 4
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    c, alpha, _ = att.dot_attention_forward(x, x, x, mask=att.causal_mask(T, B=B))
    layer = keras.layers.Attention()
    out, w = layer([x, x], use_causal_mask=True, return_attention_scores=True)
    np.testing.assert_allclose(c, np.asarray(out), atol=TOL, rtol=0)
    np.testing.assert_allclose(alpha, np.asarray(w), atol=TOL, rtol=0)
    assert np.all(alpha[:, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0)


# --------------------------------------------------------------------------------------------------------------------
# 3. Masks and padding
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_masked_padding_changes_nothing(kind):
    """Right-pad the keys and values of each example to a common length with garbage: with the mask, every context
    and every weight on a real key equals the unpadded computation's; without it, they differ."""
    rng = rng_for("padding", kind)
    Tq, Dq, Dv, A = 3, 4, 5, 6
    lengths = [2, 5, 3]
    Tk = max(lengths)
    p = make((1, Tq, Tk, Dq, Dq, Dv, A), rng, square=True)
    queries = [rng.standard_normal((1, Tq, Dq)) for _ in lengths]
    keys = [rng.standard_normal((1, n, Dq)) for n in lengths]
    values = [rng.standard_normal((1, n, Dv)) for n in lengths]

    def run(q, k, v, mask=None):
        extra = {"query": q, "keys": k, "values": v}
        f, inputs, _ = attention_call(kind, {**p, **extra}, mask=mask)
        return f(**inputs)

    padded_k = np.concatenate([np.pad(k, ((0, 0), (0, Tk - k.shape[1]), (0, 0)), constant_values=3.0) for k in keys])
    padded_v = np.concatenate([np.pad(v, ((0, 0), (0, Tk - v.shape[1]), (0, 0)), constant_values=3.0)
                               for v in values])
    q = np.concatenate(queries)
    mask = att.length_mask(np.array(lengths), Tk)
    c, alpha, _ = run(q, padded_k, padded_v, mask)
    c_nomask, _, _ = run(q, padded_k, padded_v)
    for b, n in enumerate(lengths):
        c1, alpha1, _ = run(queries[b], keys[b], values[b])
        np.testing.assert_allclose(c[b], c1[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(alpha[b, :, :n], alpha1[0], rtol=1e-12, atol=1e-12)
        assert np.all(alpha[b, :, n:] == 0)
        if n < Tk:
            assert np.abs(c_nomask[b] - c1[0]).max() > 1e-3  # unmasked padding leaks into the context
    np.testing.assert_allclose(alpha.sum(axis=-1), 1.0, rtol=1e-12)


def test_mask_of_numbers_equals_mask_of_bools():
    rng = rng_for("numbers")
    p = make(SHAPES[0], rng, square=True)
    m = random_mask(2, 4, rng)
    a = att.dot_attention_forward(p["query"], p["keys"], p["values"], mask=m)[0]
    for as_numbers in (m.astype(np.int64), m.astype(np.float32)):
        np.testing.assert_array_equal(att.dot_attention_forward(p["query"], p["keys"], p["values"],
                                                                mask=as_numbers)[0], a)


def test_large_scores_stay_finite():
    """Scores of 1e4 (a large scale on large inputs) give weights, not NaN: the softmax is shifted."""
    q = np.full((1, 1, 2), 100.0)
    k = np.array([[[100.0, 0.0], [0.0, 100.0], [100.0, 1.0]]])
    c, alpha, _ = att.dot_attention_forward(q, k, k, mask=np.array([[True, True, False]]))
    assert np.all(np.isfinite(alpha)) and np.isclose(alpha.sum(), 1.0)
    np.testing.assert_allclose(alpha[0, 0], [0.5, 0.5, 0.0])


# --------------------------------------------------------------------------------------------------------------------
# 4. Bad inputs
# --------------------------------------------------------------------------------------------------------------------


def test_bad_shapes_say_what_is_wrong():
    rng = rng_for("bad")
    p = make(SHAPES[0], rng)  # B2 Tq3 Tk4 Dq5 Dk6 Dv7 A8
    args = [p["query"], p["keys"], p["values"], p["Wq"], p["Wk"], p["v"]]
    with pytest.raises(ValueError, match=r"'query' must be 3-dimensional with shape \(B, Tq, Dq\)"):
        att.additive_attention_forward(p["query"][0], *args[1:])
    with pytest.raises(ValueError, match=r"'values' must have shape \(B, Tk, Dv\) with B=2, Tk=4"):
        att.additive_attention_forward(p["query"], p["keys"], p["values"][:, :3], *args[3:])
    with pytest.raises(ValueError, match=r"'keys' must have shape \(B, Tk, Dk\) with B=2"):
        att.additive_attention_forward(p["query"], p["keys"][:1], *args[2:])
    with pytest.raises(ValueError, match=r"'Wk' must have shape \(Dk, A\) with Dk=6, A=8 from Wq"):
        att.additive_attention_forward(*args[:4], p["Wk"][:5], p["v"])
    with pytest.raises(ValueError, match=r"'v' must have shape \(A,\) with A=8"):
        att.additive_attention_forward(*args[:5], p["v"][:3])
    with pytest.raises(ValueError, match=r"Dq == Dk.*Dq=5, Dk=6.*Wa"):
        att.dot_attention_forward(p["query"], p["keys"], p["values"])
    with pytest.raises(ValueError, match=r"'Wa' must have shape \(Dq, Dk\) with Dq=5, Dk=6"):
        att.dot_attention_forward(p["query"], p["keys"], p["values"], p["Wa"].T)
    with pytest.raises(TypeError, match="floating-point"):
        att.dot_attention_forward(p["query"].astype(int), p["keys"], p["values"], p["Wa"])
    c, _, cache = att.additive_attention_forward(*args)
    with pytest.raises(ValueError, match=r"'dc' must have shape \(B, Tq, Dv\)"):
        att.additive_attention_backward(c[:, :2], cache)


def test_bad_masks_say_what_is_wrong():
    rng = rng_for("badmask")
    p = make(SHAPES[0], rng, square=True)  # B2 Tq3 Tk4
    args = (p["query"], p["keys"], p["values"])
    with pytest.raises(ValueError, match=r"'mask' must have shape \(B, Tk\) = \(2, 4\) or \(B, Tq, Tk\) = \(2, 3, 4\)"):
        att.dot_attention_forward(*args, mask=np.ones((4, 2), bool))
    with pytest.raises(ValueError, match=r"allows no key for query 0 of example 1"):
        att.dot_attention_forward(*args, mask=np.array([[1, 1, 0, 0], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"only 0 \(padding, not attended\) and 1 \(attended\); found 2"):
        att.dot_attention_forward(*args, mask=np.array([[1, 2, 0, 0], [1, 1, 1, 1]]))
    with pytest.raises(ValueError, match="query_mask"):
        att.dot_attention_forward(*args, query_mask=np.ones((2, 4), bool))
    per_query = np.ones((2, 3, 4), bool)
    per_query[0, 2] = False  # query 2 of example 0 may look at nothing
    with pytest.raises(ValueError, match="allows no key for query 2 of example 0"):
        att.dot_attention_forward(*args, mask=per_query)
    with pytest.raises(ValueError, match=r"lengths.*\[1, 4\]"):
        att.length_mask(np.array([0, 4]), 4)


# --------------------------------------------------------------------------------------------------------------------
# 5. Self-attention
# --------------------------------------------------------------------------------------------------------------------


def self_params(D, d, dv, Dout, rng, dtype=np.float64):
    return {"Wq": rng.standard_normal((D, d)).astype(dtype) / np.sqrt(D),
            "Wk": rng.standard_normal((D, d)).astype(dtype) / np.sqrt(D),
            "Wv": rng.standard_normal((D, dv)).astype(dtype) / np.sqrt(D),
            "Wo": rng.standard_normal((dv, Dout)).astype(dtype) / np.sqrt(dv)}


@pytest.mark.parametrize("causal,masked", [(False, False), (True, False), (False, True), (True, True)])
def test_self_attention_gradients(causal, masked):
    rng = rng_for("self", causal, masked)
    B, T, D, d, dv, Dout = 2, 5, 3, 4, 6, 7
    inputs = {"x": rng.standard_normal((B, T, D)), **self_params(D, d, dv, Dout, rng)}
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool) if masked else None
    y, alpha, cache = att.self_attention_forward(**inputs, causal=causal, mask=mask)
    dy = rng.standard_normal(y.shape)
    analytic = dict(zip(("x", "Wq", "Wk", "Wv", "Wo"), att.self_attention_backward(dy, cache)))
    report = gradcheck(lambda **kw: att.self_attention_forward(**kw, causal=causal, mask=mask)[0], inputs, analytic,
                       dy)
    assert report.passed, f"\n{report}"
    if causal:
        assert np.all(np.triu(alpha[0], 1) == 0)


def test_self_attention_steps_with_a_cache_equal_the_causal_layer():
    rng = rng_for("kv")
    B, T, D, d, dv = 2, 7, 3, 4, 5
    x = rng.standard_normal((B, T, D))
    p = self_params(D, d, dv, D, rng)
    y, _, _ = att.self_attention_forward(x, **p, causal=True)
    kv = None
    for t in range(T):
        y_t, kv = att.self_attention_step(x[:, t], kv, **p)
        np.testing.assert_allclose(y_t, y[:, t], atol=1e-12)
        assert kv[0].shape == (B, t + 1, d) and kv[1].shape == (B, t + 1, dv)


@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_matches_keras_multi_head_attention(keras, causal):
    rng = rng_for("mha", causal)
    B, T, D, d, dv = 2, 6, 5, 4, 3
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    p = self_params(D, d, dv, D, rng, np.float32)
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    y, alpha, _ = att.self_attention_forward(x, **p, causal=causal, mask=mask)
    layer = keras.layers.MultiHeadAttention(num_heads=1, key_dim=d, value_dim=dv, use_bias=False)
    layer(x, x, x)  # build
    layer.set_weights([p["Wq"][:, None], p["Wk"][:, None], p["Wv"][:, None], p["Wo"][None]])
    # Keras: attention_mask (B, T, T) True where query i may see key j
    out, w = layer(x, x, x, attention_mask=np.broadcast_to(mask[:, None, :], (B, T, T)), use_causal_mask=causal,
                   return_attention_scores=True)
    np.testing.assert_allclose(y, np.asarray(out), atol=TOL, rtol=0)
    np.testing.assert_allclose(alpha, np.asarray(w)[:, 0], atol=TOL, rtol=0)
