"""Attention: additive (Bahdanau et al. 2015) and multiplicative (Luong et al. 2015), forward and backward, with masks.

A query looks at a set of keys, turns its similarity to each into a weight, and returns the weighted mean of the
values that belong to the keys. For queries q (B, Tq, Dq), keys k (B, Tk, Dk) and values (B, Tk, Dv):

    scores   e[b, i, j]                                                              (B, Tq, Tk)
      additive (Bahdanau):  e_ij = v . tanh(q_i W_q + k_j W_k)          W_q (Dq, A), W_k (Dk, A), v (A,)
      dot (Luong):          e_ij = s * q_i . k_j                        Dq == Dk, s a scale (1, or 1/sqrt(Dk))
      general (Luong):      e_ij = s * (q_i W_a) . k_j                  W_a (Dq, Dk)
    weights  alpha_ij = exp(e_ij) / sum_{j' allowed} exp(e_ij')   for allowed j; 0 where the mask forbids j
    context  c_i = sum_j alpha_ij values_j                                            (B, Tq, Dv)

A mask marks the keys a query may look at: True (or 1) for a real input, False (or 0) for padding. It has shape
(B, Tk) (the same keys for every query of an example: padding) or (B, Tq, Tk) (one row per query: a causal mask,
for instance). Every query must be allowed at least one key; a row with none has no weighted mean and raises a
ValueError (Keras would silently return the plain mean of all values there).

Keras: `keras.layers.Attention` computes the dot score (use_scale=True multiplies it by a learned scalar, our s);
the general score is Attention on the query q W_a. `keras.layers.AdditiveAttention` computes
e_ij = sum(scale * tanh(q_i + k_j)), without W_q and W_k: it is our additive score applied to the projected query
q W_q and key k W_k, with Keras' `scale` (dim,) our v. Keras' value_mask is our mask (it subtracts 1e9 from the
forbidden scores instead of setting their weights to 0: the same numbers in float32 and float64); its query_mask
zeroes the context of masked queries, as our query_mask does.

Every function is one step of the computation with its backward twin (CS231n style): scores, masked softmax,
weighted sum; then the two whole attentions built from them.
"""

import numpy as np

from . import _checks

# --------------------------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------------------------


def _array(fn, name, value, rank, meaning):
    arr = _checks.as_float_array(fn, name, value)
    _checks.check_rank(fn, name, arr, rank, meaning)
    return arr


def _check_qkv(fn, query, keys, values=None):
    """query (B, Tq, Dq), keys (B, Tk, Dk), values (B, Tk, Dv) with matching B and Tk."""
    query = _array(fn, "query", query, 3, "(B, Tq, Dq)")
    keys = _array(fn, "keys", keys, 3, "(B, Tk, Dk)")
    B, Tk = query.shape[0], keys.shape[1]
    if keys.shape[0] != B:
        raise ValueError(f"{fn}: argument 'keys' must have shape (B, Tk, Dk) with B={B} from query; got {keys.shape}")
    if Tk == 0 or query.shape[1] == 0:
        raise ValueError(f"{fn}: query and keys must hold at least one position; got {query.shape} and {keys.shape}")
    if values is None:
        return query, keys
    values = _array(fn, "values", values, 3, "(B, Tk, Dv)")
    if values.shape[:2] != (B, Tk):
        raise ValueError(
            f"{fn}: argument 'values' must have shape (B, Tk, Dv) with B={B}, Tk={Tk} from query and keys (one "
            f"value per key); got {values.shape}"
        )
    return query, keys, values


def check_mask(fn, mask, B, Tq, Tk, name="mask"):
    """The key mask as a bool array of shape (B, Tq, Tk), or None.

    Accepts (B, Tk) or (B, Tq, Tk), of bools or of numbers that are all 0 or 1. Raises a ValueError for another
    shape, other numbers, or a query that is allowed no key at all.
    """
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: argument '{name}' must hold booleans or 0/1 numbers; got dtype {m.dtype}")
    if m.dtype.kind != "b":
        if not np.all((m == 0) | (m == 1)):
            bad = m[(m != 0) & (m != 1)].ravel()[0].item()
            raise ValueError(
                f"{fn}: argument '{name}' must hold only 0 (padding, not attended) and 1 (attended); found {bad!r}"
            )
        m = m == 1
    if m.shape == (B, Tk):
        m = np.broadcast_to(m[:, None, :], (B, Tq, Tk))
    elif m.shape != (B, Tq, Tk):
        raise ValueError(
            f"{fn}: argument '{name}' must have shape (B, Tk) = {(B, Tk)} or (B, Tq, Tk) = {(B, Tq, Tk)}; "
            f"got {m.shape}"
        )
    empty = ~m.any(axis=-1)
    if empty.any():
        b, i = np.argwhere(empty)[0]
        raise ValueError(
            f"{fn}: argument '{name}' allows no key for query {i} of example {b} (a row of all False/0): the "
            "weights of that query are undefined. Every query must see at least one real input"
        )
    return m


def check_query_mask(fn, query_mask, B, Tq):
    """The query mask as a bool array (B, Tq), or None. True (1): a real query; False (0): padding."""
    if query_mask is None:
        return None
    m = np.asarray(query_mask)
    if m.dtype.kind not in "biuf" or (m.dtype.kind != "b" and not np.all((m == 0) | (m == 1))):
        raise ValueError(f"{fn}: argument 'query_mask' must hold booleans or only 0 and 1")
    if m.shape != (B, Tq):
        raise ValueError(f"{fn}: argument 'query_mask' must have shape (B, Tq) = {(B, Tq)}; got {m.shape}")
    return m.astype(bool)


def causal_mask(Tq, Tk=None, B=1):
    """A (B, Tq, Tk) mask with True where key j <= query i: position i sees itself and the past, never the future."""
    Tk = Tq if Tk is None else Tk
    return np.broadcast_to(np.tril(np.ones((Tq, Tk), dtype=bool)), (B, Tq, Tk))


def length_mask(lengths, T):
    """A (B, T) key mask from the true lengths (B,) of right-padded sequences: True at positions j < lengths[b]."""
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise ValueError(f"length_mask: argument 'lengths' must be a 1-d integer array (B,); got {lengths!r}")
    if np.any(lengths < 1) or np.any(lengths > T):
        raise ValueError(f"length_mask: argument 'lengths' must hold lengths in [1, {T}]; got {lengths.min()}..{lengths.max()}")
    return np.arange(T)[None, :] < lengths[:, None]


# --------------------------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------------------------


def additive_scores_forward(query, keys, Wq, Wk, v):
    """Bahdanau's scores e_ij = v . tanh(q_i W_q + k_j W_k).

    query (B, Tq, Dq), keys (B, Tk, Dk), Wq (Dq, A), Wk (Dk, A), v (A,). Returns e (B, Tq, Tk) and a cache.
    The keys' projection k W_k does not depend on the query: a decoder computes it once per input sequence.
    """
    fn = "additive_scores_forward"
    query, keys = _check_qkv(fn, query, keys)
    Wq = _array(fn, "Wq", Wq, 2, "(Dq, A)")
    A = Wq.shape[1]
    _checks.check_shape(fn, "Wq", Wq, (query.shape[2], A), f"(Dq, A) with Dq={query.shape[2]}")
    Wk = _checks.as_float_array(fn, "Wk", Wk)
    _checks.check_shape(fn, "Wk", Wk, (keys.shape[2], A), f"(Dk, A) with Dk={keys.shape[2]}, A={A} from Wq")
    v = _checks.as_float_array(fn, "v", v)
    _checks.check_shape(fn, "v", v, (A,), f"(A,) with A={A} from Wq")
    query, keys, Wq, Wk, v = _checks.cast_common(query, keys, Wq, Wk, v)
    qp = query @ Wq  # (B, Tq, A)
    kp = keys @ Wk  # (B, Tk, A)
    t = np.tanh(qp[:, :, None, :] + kp[:, None, :, :])  # (B, Tq, Tk, A)
    e = t @ v
    return e, {"query": query, "keys": keys, "Wq": Wq, "Wk": Wk, "v": v, "t": t}


def additive_scores_backward(de, cache):
    """Gradients of additive_scores_forward. de (B, Tq, Tk). Returns dquery, dkeys, dWq, dWk, dv."""
    t = cache["t"]
    de = _checks.check_upstream("additive_scores_backward", "de", de, t.shape[:3], "(B, Tq, Tk)", t.dtype)
    dv = np.einsum("bij,bija->a", de, t)
    da = de[..., None] * cache["v"] * (1 - t * t)  # (B, Tq, Tk, A): gradient of q_i W_q + k_j W_k
    dqp = da.sum(axis=2)  # (B, Tq, A)
    dkp = da.sum(axis=1)  # (B, Tk, A)
    query, keys = cache["query"], cache["keys"]
    dWq = query.reshape(-1, query.shape[2]).T @ dqp.reshape(-1, dqp.shape[2])
    dWk = keys.reshape(-1, keys.shape[2]).T @ dkp.reshape(-1, dkp.shape[2])
    return dqp @ cache["Wq"].T, dkp @ cache["Wk"].T, dWq, dWk, dv


def dot_scores_forward(query, keys, Wa=None, scale=1.0):
    """Luong's multiplicative scores: e_ij = s q_i . k_j ("dot", Wa None) or s (q_i W_a) . k_j ("general").

    query (B, Tq, Dq), keys (B, Tk, Dk), Wa (Dq, Dk) or None (then Dq == Dk), scale s a number (1 for Luong;
    1/sqrt(Dk) for the scaled dot product of Vaswani et al. 2017). Returns e (B, Tq, Tk) and a cache.
    """
    fn = "dot_scores_forward"
    query, keys = _check_qkv(fn, query, keys)
    Dq, Dk = query.shape[2], keys.shape[2]
    if Wa is None:
        if Dq != Dk:
            raise ValueError(
                f"{fn}: the dot score needs query and keys of the same size (Dq == Dk); got Dq={Dq}, Dk={Dk}. "
                "Pass Wa (Dq, Dk) for Luong's general score"
            )
        query, keys = _checks.cast_common(query, keys)
        qa = query
    else:
        Wa = _checks.as_float_array(fn, "Wa", Wa)
        _checks.check_shape(fn, "Wa", Wa, (Dq, Dk), f"(Dq, Dk) with Dq={Dq}, Dk={Dk}")
        query, keys, Wa = _checks.cast_common(query, keys, Wa)
        qa = query @ Wa
    scale = _check_scale(fn, scale)
    raw = qa @ np.swapaxes(keys, 1, 2)  # (B, Tq, Tk)
    e = raw * raw.dtype.type(scale)
    return e, {"query": query, "keys": keys, "Wa": Wa, "qa": qa, "raw": raw, "scale": scale}


def _check_scale(fn, scale):
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: argument 'scale' must be a number; got {scale!r}")
    if not np.isfinite(scale):
        raise ValueError(f"{fn}: argument 'scale' must be finite; got {scale!r}")
    return float(scale)


def dot_scores_backward(de, cache):
    """Gradients of dot_scores_forward. de (B, Tq, Tk).

    Returns dquery (B, Tq, Dq), dkeys (B, Tk, Dk), dWa (Dq, Dk) or None for the dot score, and dscale (a float,
    the gradient with respect to the scale s, which Keras' Attention(use_scale=True) learns).
    """
    raw = cache["raw"]
    de = _checks.check_upstream("dot_scores_backward", "de", de, raw.shape, "(B, Tq, Tk)", raw.dtype)
    dscale = float(np.sum(de * raw))
    draw = de * raw.dtype.type(cache["scale"])
    dqa = draw @ cache["keys"]  # (B, Tq, Dk)
    dkeys = np.swapaxes(draw, 1, 2) @ cache["qa"]  # (B, Tk, Dk)
    if cache["Wa"] is None:
        return dqa, dkeys, None, dscale
    query = cache["query"]
    dWa = query.reshape(-1, query.shape[2]).T @ dqa.reshape(-1, dqa.shape[2])
    return dqa @ cache["Wa"].T, dkeys, dWa, dscale


# --------------------------------------------------------------------------------------------------------------------
# Masked softmax and the weighted sum
# --------------------------------------------------------------------------------------------------------------------


def masked_softmax_forward(e, mask=None):
    """alpha = softmax of e over the keys (last axis), with weight exactly 0 where the mask forbids a key.

    e (B, Tq, Tk); mask (B, Tk) or (B, Tq, Tk), True/1 = attend (see check_mask). Returns alpha (B, Tq, Tk) and a
    cache. Each row of alpha sums to 1 over its allowed keys.
    """
    e = _array("masked_softmax_forward", "e", e, 3, "(B, Tq, Tk)")
    m = check_mask("masked_softmax_forward", mask, *e.shape)
    if m is None:
        z = e - e.max(axis=-1, keepdims=True)
        p = np.exp(z)
    else:
        top = np.where(m, e, -np.inf).max(axis=-1, keepdims=True)  # finite: every row has an allowed key
        p = np.where(m, np.exp(np.where(m, e - top, 0)), 0)
    alpha = p / p.sum(axis=-1, keepdims=True)
    return alpha, {"alpha": alpha}


def masked_softmax_backward(dalpha, cache):
    """de = alpha * (dalpha - sum_j alpha_j dalpha_j), row by row; 0 at masked keys (their alpha is 0)."""
    alpha = cache["alpha"]
    dalpha = _checks.check_upstream("masked_softmax_backward", "dalpha", dalpha, alpha.shape, "(B, Tq, Tk)",
                                    alpha.dtype)
    return alpha * (dalpha - np.sum(alpha * dalpha, axis=-1, keepdims=True))


def context_forward(alpha, values):
    """c_i = sum_j alpha_ij values_j: alpha (B, Tq, Tk), values (B, Tk, Dv) -> c (B, Tq, Dv), cache."""
    alpha = _array("context_forward", "alpha", alpha, 3, "(B, Tq, Tk)")
    values = _array("context_forward", "values", values, 3, "(B, Tk, Dv)")
    B, _, Tk = alpha.shape
    if values.shape[:2] != (B, Tk):
        raise ValueError(
            f"context_forward: argument 'values' must have shape (B, Tk, Dv) with B={B}, Tk={Tk} from alpha; "
            f"got {values.shape}"
        )
    alpha, values = _checks.cast_common(alpha, values)
    return alpha @ values, {"alpha": alpha, "values": values}


def context_backward(dc, cache):
    """Gradients of context_forward. dc (B, Tq, Dv). Returns dalpha (B, Tq, Tk), dvalues (B, Tk, Dv)."""
    alpha, values = cache["alpha"], cache["values"]
    shape = alpha.shape[:2] + values.shape[2:]
    dc = _checks.check_upstream("context_backward", "dc", dc, shape, "(B, Tq, Dv)", alpha.dtype)
    return dc @ np.swapaxes(values, 1, 2), np.swapaxes(alpha, 1, 2) @ dc


# --------------------------------------------------------------------------------------------------------------------
# The two attentions, whole
# --------------------------------------------------------------------------------------------------------------------


def _finish_forward(e, values, mask, query_mask, fn):
    B, Tq, Tk = e.shape
    m = check_mask(fn, mask, B, Tq, Tk)
    qm = check_query_mask(fn, query_mask, B, Tq)
    alpha, sm_cache = masked_softmax_forward(e, m)
    c, c_cache = context_forward(alpha, values.astype(e.dtype, copy=False))
    if qm is not None:
        c = c * qm[..., None]
    return c, alpha, {"softmax": sm_cache, "context": c_cache, "query_mask": qm}


def _finish_backward(dc, cache, dalpha, fn):
    alpha = cache["softmax"]["alpha"]
    Dv = cache["context"]["values"].shape[2]
    dc = _checks.check_upstream(fn, "dc", dc, alpha.shape[:2] + (Dv,), "(B, Tq, Dv)", alpha.dtype)
    if cache["query_mask"] is not None:
        dc = dc * cache["query_mask"][..., None]
    dalpha_c, dvalues = context_backward(dc, cache["context"])
    if dalpha is not None:
        dalpha_c = dalpha_c + _checks.check_upstream(fn, "dalpha", dalpha, alpha.shape, "(B, Tq, Tk)", alpha.dtype)
    return masked_softmax_backward(dalpha_c, cache["softmax"]), dvalues


def additive_attention_forward(query, keys, values, Wq, Wk, v, mask=None, query_mask=None):
    """Bahdanau et al.'s (2015) attention: scores v . tanh(q_i W_q + k_j W_k), masked softmax, weighted sum.

    query (B, Tq, Dq), keys (B, Tk, Dk), values (B, Tk, Dv), Wq (Dq, A), Wk (Dk, A), v (A,);
    mask (B, Tk) or (B, Tq, Tk), True/1 where a key may be attended; query_mask (B, Tq), False/0 zeroes a query's
    context (padding on the query side). In Bahdanau's decoder the keys and the values are the same encoder states.
    Returns c (B, Tq, Dv), alpha (B, Tq, Tk) (the alignment) and the cache.
    """
    fn = "additive_attention_forward"
    query, keys, values = _check_qkv(fn, query, keys, values)
    e, s_cache = additive_scores_forward(query, keys, Wq, Wk, v)
    c, alpha, cache = _finish_forward(e, values, mask, query_mask, fn)
    cache["scores"] = s_cache
    return c, alpha, cache


def additive_attention_backward(dc, cache, dalpha=None):
    """Gradients of additive_attention_forward. dc (B, Tq, Dv); dalpha (B, Tq, Tk) if the loss also reads alpha.

    Returns dquery (B, Tq, Dq), dkeys (B, Tk, Dk), dvalues (B, Tk, Dv), dWq (Dq, A), dWk (Dk, A), dv (A,).
    When keys and values are the same array, its gradient is dkeys + dvalues.
    """
    de, dvalues = _finish_backward(dc, cache, dalpha, "additive_attention_backward")
    dq, dk, dWq, dWk, dv = additive_scores_backward(de, cache["scores"])
    return dq, dk, dvalues, dWq, dWk, dv


def dot_attention_forward(query, keys, values, Wa=None, scale=1.0, mask=None, query_mask=None):
    """Luong et al.'s (2015) multiplicative attention: scores s q_i . k_j (Wa None) or s (q_i W_a) . k_j.

    query (B, Tq, Dq), keys (B, Tk, Dk), values (B, Tk, Dv), Wa (Dq, Dk) or None, scale s; mask and query_mask as
    in additive_attention_forward. Returns c (B, Tq, Dv), alpha (B, Tq, Tk) and the cache.
    """
    fn = "dot_attention_forward"
    query, keys, values = _check_qkv(fn, query, keys, values)
    e, s_cache = dot_scores_forward(query, keys, Wa, scale)
    c, alpha, cache = _finish_forward(e, values, mask, query_mask, fn)
    cache["scores"] = s_cache
    return c, alpha, cache


def dot_attention_backward(dc, cache, dalpha=None):
    """Gradients of dot_attention_forward. dc (B, Tq, Dv); dalpha (B, Tq, Tk) optional.

    Returns dquery (B, Tq, Dq), dkeys (B, Tk, Dk), dvalues (B, Tk, Dv), dWa (Dq, Dk) or None, dscale (float).
    """
    de, dvalues = _finish_backward(dc, cache, dalpha, "dot_attention_backward")
    dq, dk, dWa, dscale = dot_scores_backward(de, cache["scores"])
    return dq, dk, dvalues, dWa, dscale


# --------------------------------------------------------------------------------------------------------------------
# Self-attention: the queries, keys and values all come from the same sequence
# --------------------------------------------------------------------------------------------------------------------


def _check_self_params(fn, x, Wq, Wk, Wv, Wo):
    D = x.shape[-1]
    Wq = _array(fn, "Wq", Wq, 2, "(D, d)")
    d = Wq.shape[1]
    _checks.check_shape(fn, "Wq", Wq, (D, d), f"(D, d) with D={D}")
    Wk = _checks.as_float_array(fn, "Wk", Wk)
    _checks.check_shape(fn, "Wk", Wk, (D, d), f"(D, d) with D={D}, d={d} from Wq")
    Wv = _array(fn, "Wv", Wv, 2, "(D, dv)")
    if Wv.shape[0] != D:
        raise ValueError(f"{fn}: argument 'Wv' must have shape (D, dv) with D={D}; got {Wv.shape}")
    Wo = _checks.as_float_array(fn, "Wo", Wo)
    if Wo.ndim != 2 or Wo.shape[0] != Wv.shape[1]:
        raise ValueError(f"{fn}: argument 'Wo' must have shape (dv, D_out) with dv={Wv.shape[1]} from Wv; "
                         f"got {Wo.shape}")
    return Wq, Wk, Wv, Wo


def self_attention_forward(x, Wq, Wk, Wv, Wo, causal=False, mask=None):
    """One head of scaled dot-product self-attention (Vaswani et al. 2017), without biases:

        Q = x W_q, K = x W_k (B, T, d);  V = x W_v (B, T, dv)
        C = softmax(Q K^T / sqrt(d), over the allowed keys) V        (B, T, dv)
        y = C W_o                                                   (B, T, D_out)

    x (B, T, D), Wq, Wk (D, d), Wv (D, dv), Wo (dv, D_out). causal=True lets position i see only positions j <= i
    (what a model that generates left to right must obey); mask (B, T) marks real positions (padding False).
    Every position is computed at once: no step waits for the previous one. Returns y, alpha (B, T, T), cache.
    keras.layers.MultiHeadAttention(num_heads=1, key_dim=d, value_dim=dv, use_bias=False) computes the same with
    kernels Wq[:, None, :], Wk[:, None, :], Wv[:, None, :] and Wo[None].
    """
    fn = "self_attention_forward"
    x = _array(fn, "x", x, 3, "(B, T, D)")
    Wq, Wk, Wv, Wo = _check_self_params(fn, x, Wq, Wk, Wv, Wo)
    x, Wq, Wk, Wv, Wo = _checks.cast_common(x, Wq, Wk, Wv, Wo)
    B, T, _ = x.shape
    m = None if mask is None else check_mask(fn, mask, B, T, T)
    if causal:
        cm = causal_mask(T, B=B)
        m = cm if m is None else m & cm
        check_mask(fn, m, B, T, T)
    Q, K, V = x @ Wq, x @ Wk, x @ Wv
    C, alpha, att_cache = dot_attention_forward(Q, K, V, None, 1 / np.sqrt(Wq.shape[1]), mask=m)
    return C @ Wo, alpha, {"x": x, "Wq": Wq, "Wk": Wk, "Wv": Wv, "Wo": Wo, "C": C, "att": att_cache}


def self_attention_backward(dy, cache):
    """Gradients of self_attention_forward. dy (B, T, D_out). Returns dx (B, T, D), dWq, dWk, dWv, dWo."""
    x, C, Wo = cache["x"], cache["C"], cache["Wo"]
    dy = _checks.check_upstream("self_attention_backward", "dy", dy, C.shape[:2] + Wo.shape[1:], "(B, T, D_out)",
                                x.dtype)
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    dWo = flat(C).T @ flat(dy)
    dQ, dK, dV, _, _ = dot_attention_backward(dy @ Wo.T, cache["att"])
    dWq, dWk, dWv = flat(x).T @ flat(dQ), flat(x).T @ flat(dK), flat(x).T @ flat(dV)
    dx = dQ @ cache["Wq"].T + dK @ cache["Wk"].T + dV @ cache["Wv"].T
    return dx, dWq, dWk, dWv, dWo


def self_attention_step(x_t, kv, Wq, Wk, Wv, Wo):
    """One step of causal self-attention when generating left to right, with a cache of the past keys and values.

    x_t (B, D): the newest position; kv: None at the first step, else (K, V) of shapes (B, t, d), (B, t, dv) for
    the t positions so far. Returns y_t (B, D_out) and the cache grown by one position. Fed x_1, x_2, ... one at a
    time, it returns the rows of self_attention_forward(x, ..., causal=True); the cache grows with every step, so
    the memory and the work per step grow with the length generated.
    """
    fn = "self_attention_step"
    x_t = _array(fn, "x_t", x_t, 2, "(B, D)")
    Wq, Wk, Wv, Wo = _check_self_params(fn, x_t, Wq, Wk, Wv, Wo)
    k_new, v_new = (x_t @ Wk)[:, None], (x_t @ Wv)[:, None]
    if kv is None:
        K, V = k_new, v_new
    else:
        K, V = np.concatenate([kv[0], k_new], axis=1), np.concatenate([kv[1], v_new], axis=1)
    q = (x_t @ Wq)[:, None]
    c, _, _ = dot_attention_forward(q, K, V, None, 1 / np.sqrt(Wq.shape[1]))
    return c[:, 0] @ Wo, (K, V)
