"""An encoder-decoder (Sutskever et al. 2014, Cho et al. 2014), with or without attention (Luong et al. 2015).

Source ids src (B, S), right-padded with PAD (id 0) beyond src_len; targets tgt (B, T) ending with EOS, PAD beyond
tgt_len. The cell is an LSTM or a GRU (reset_after=True), in course_pkg's (Keras') layout.

Encoder. x_j = E_src[src_j] (B, D); s_j = cell(x_j, s_{j-1}) where position j is real, s_j = s_{j-1} where it is
padding (Keras' mask_zero semantics: the state is carried over padding). Outputs enc (B, S, H), the states; the
final state s_S (h, and c for the LSTM) is the state after each sequence's last real input.

Decoder step t (inputs y_{t-1}, BOS at t = 1; state from the encoder's final state at t = 1):
    x_t = E_tgt[y_{t-1}]                                   (B, D)
    h_t = cell(x_t, h_{t-1})                               (B, H)      (and c_t for the LSTM)
  without attention:
    o_t = h_t
  with attention (Luong's global attention; the query is the current state h_t):
    ctx_t, alpha_t = attention(query h_t, keys enc, values enc, mask: the real source positions)     (B, H), (B, S)
    o_t = tanh([ctx_t, h_t] W_c + b_c)                     (B, H)      W_c (2H, H), b_c (H,)
  logits_t = o_t V + c                                      (B, V_tgt)

attention is None, "additive" (Bahdanau's score v . tanh(h_t W_q + enc_j W_k), W_q, W_k (H, A), v (A,)), "dot"
(h_t . enc_j) or "general" (h_t W_a . enc_j, W_a (H, H)).

Loss: the mean cross-entropy of the target tokens (EOS included, PAD excluded). Teacher forcing feeds y_{t-1} =
tgt_{t-1}, the reference; free running feeds the model's own previous prediction (argmax); scheduled sampling
(Bengio et al. 2015) chooses per token, with `feed` (B, T) saying where the model's own token is fed. Fed-back tokens
are constants: no gradient flows through the choice of a token.

Parameters (a dict): E_src (V_src, D), W_enc (D, GH), U_enc (H, GH), b_enc, E_tgt (V_tgt, D), W_dec, U_dec, b_dec,
V (H, V_tgt), c (V_tgt,); with attention also W_c (2H, H), b_c (H,) and Wq, Wk, v (additive) or Wa (general).
G = 4 (LSTM) or 3 (GRU, b of shape (2, 3H)).
"""

import numpy as np

from . import _checks
from .attention import additive_attention_backward, additive_attention_forward, dot_attention_backward, \
    dot_attention_forward
from ._affine import affine_backward, batch_major, flat
from .gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from .init import glorot_uniform, init_gru, init_lstm
from .layers import softmax_cross_entropy
from .lstm import _cell_backward as _lstm_cell_backward
from .lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from .seq_tasks import BOS, PAD

CELLS = ("lstm", "gru")
ATTENTIONS = (None, "additive", "dot", "general")


# --------------------------------------------------------------------------------------------------------------------
# Parameters and checks
# --------------------------------------------------------------------------------------------------------------------


def _check_config(fn, cell, attention):
    if cell not in CELLS:
        raise ValueError(f"{fn}: argument 'cell' must be 'lstm' or 'gru'; got {cell!r}")
    if attention not in ATTENTIONS:
        raise ValueError(f"{fn}: argument 'attention' must be None, 'additive', 'dot' or 'general'; got {attention!r}")


def param_shapes(V_src, V_tgt, D, H, cell="lstm", attention=None, A=None):
    """The shape of every parameter, by name (see the module's docstring)."""
    _check_config("param_shapes", cell, attention)
    G = 4 if cell == "lstm" else 3
    b = (G * H,) if cell == "lstm" else (2, G * H)
    shapes = {"E_src": (V_src, D), "W_enc": (D, G * H), "U_enc": (H, G * H), "b_enc": b,
              "E_tgt": (V_tgt, D), "W_dec": (D, G * H), "U_dec": (H, G * H), "b_dec": b,
              "V": (H, V_tgt), "c": (V_tgt,)}
    if attention is not None:
        shapes.update({"W_c": (2 * H, H), "b_c": (H,)})
    if attention == "additive":
        A = H if A is None else A
        shapes.update({"Wq": (H, A), "Wk": (H, A), "v": (A,)})
    elif attention == "general":
        shapes["Wa"] = (H, H)
    return shapes


def init_seq2seq(V_src, V_tgt, D, H, cell="lstm", attention=None, A=None, seed=None, dtype=np.float32):
    """Parameters drawn as Keras draws them: embeddings U(-0.05, 0.05), kernels Glorot-uniform, recurrent kernels
    orthogonal, biases zero (the LSTM's forget-gate bias 1), the additive score's v Glorot-uniform as a (1, A)
    matrix (Keras' AdditiveAttention scale)."""
    rng = np.random.default_rng(seed)
    shapes = param_shapes(V_src, V_tgt, D, H, cell, attention, A)
    init_cell = init_lstm if cell == "lstm" else init_gru
    p = {"E_src": rng.uniform(-0.05, 0.05, shapes["E_src"]).astype(dtype),
         "E_tgt": rng.uniform(-0.05, 0.05, shapes["E_tgt"]).astype(dtype)}
    p["W_enc"], p["U_enc"], p["b_enc"] = init_cell(D, H, rng, dtype)
    p["W_dec"], p["U_dec"], p["b_dec"] = init_cell(D, H, rng, dtype)
    p["V"], p["c"] = glorot_uniform(shapes["V"], rng, dtype), np.zeros(shapes["c"], dtype)
    if attention is not None:
        p["W_c"], p["b_c"] = glorot_uniform(shapes["W_c"], rng, dtype), np.zeros(shapes["b_c"], dtype)
    if attention == "additive":
        p["Wq"], p["Wk"] = glorot_uniform(shapes["Wq"], rng, dtype), glorot_uniform(shapes["Wk"], rng, dtype)
        p["v"] = glorot_uniform((1, shapes["v"][0]), rng, dtype)[0]
    elif attention == "general":
        p["Wa"] = glorot_uniform(shapes["Wa"], rng, dtype)
    return p


def config_of(params):
    """(cell, attention) read from the parameter names and shapes."""
    cell = "lstm" if params["W_enc"].shape[1] == 4 * params["U_enc"].shape[0] else "gru"
    if "Wq" in params:
        attention = "additive"
    elif "Wa" in params:
        attention = "general"
    elif "W_c" in params:
        attention = "dot"
    else:
        attention = None
    return cell, attention


def check_params(fn, params):
    """Every parameter present, floating, of the right shape; returns (cell, attention, H)."""
    missing = {"E_src", "E_tgt", "W_enc", "U_enc", "V"} - set(params)
    if missing:
        raise ValueError(f"{fn}: the parameter dict lacks {sorted(missing)}")
    cell, attention = config_of(params)
    V_src, D = np.shape(params["E_src"])
    V_tgt = np.shape(params["E_tgt"])[0]
    H = np.shape(params["U_enc"])[0]
    A = np.shape(params["Wq"])[1] if attention == "additive" else None
    expected = param_shapes(V_src, V_tgt, D, H, cell, attention, A)
    extra = set(params) - set(expected)
    if extra or set(expected) - set(params):
        raise ValueError(f"{fn}: a {cell} encoder-decoder with attention={attention!r} has the parameters "
                         f"{sorted(expected)}; got {sorted(params)}")
    for name, shape in expected.items():
        arr = _checks.as_float_array(fn, name, params[name])
        _checks.check_shape(fn, name, arr, shape, str(shape))
    return cell, attention, H


def _check_ids(fn, name, ids, V, rank, meaning):
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{fn}: argument '{name}' must hold integer token ids; got dtype {ids.dtype}")
    _checks.check_rank(fn, name, ids, rank, meaning)
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        raise ValueError(f"{fn}: argument '{name}' holds ids outside [0, {V}) (the vocabulary): "
                         f"min {ids.min()}, max {ids.max()}")
    return ids


def _check_lengths(fn, name, lengths, B, T):
    lengths = np.asarray(lengths)
    if lengths.dtype.kind not in "iu" or lengths.shape != (B,):
        raise ValueError(f"{fn}: argument '{name}' must be an integer array of shape (B,) = ({B},); got "
                         f"{lengths.dtype} {lengths.shape}")
    if np.any(lengths < 1) or np.any(lengths > T):
        raise ValueError(f"{fn}: argument '{name}' must hold lengths in [1, {T}]; got {lengths.min()}..{lengths.max()}")
    return lengths


def source_mask(src_len, S):
    """(B, S) bool: True at the real positions j < src_len[b]."""
    return np.arange(S)[None, :] < np.asarray(src_len)[:, None]


# --------------------------------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------------------------------


def _cell_step(cell, x, state, W, U, b):
    if cell == "lstm":
        h, c, cache = lstm_step_forward(x, state[0], state[1], W, U, b)
        return (h, c), cache
    h, cache = gru_step_forward(x, state[0], W, U, b)
    return (h,), cache


def _cell_step_backward(cell, dstate, cache):
    """dstate: (dh,) or (dh, dc). Returns dx, dstate_prev (tuple), dW, dU, db."""
    if cell == "lstm":
        dx, dh, dc, dW, dU, db = lstm_step_backward(dstate[0], dstate[1], cache)
        return dx, (dh, dc), dW, dU, db
    dx, dh, dW, dU, db = gru_step_backward(dstate[0], cache)
    return dx, (dh,), dW, dU, db


def encoder_forward(src, src_len, params):
    """Run the encoder over the right-padded source.

    src (B, S) ids, src_len (B,). Returns enc (B, S, H) (the hidden state at every position; at padding, the state
    carried from the last real position), the final state (h,) or (h, c), each (B, H), and the cache.

    The recurrence runs over all S positions at once with lstm_forward / gru_forward, padding included: padding lies
    after each sequence's real positions, so it cannot change the states there, and the final state is read at each
    sequence's last real position. The states the recurrence computed over the padding are then replaced by the
    carried state, which is what the masked recurrence of the module's docstring gives.
    """
    fn = "encoder_forward"
    cell, _, H = check_params(fn, params)
    E = params["E_src"]
    src = _check_ids(fn, "src", src, E.shape[0], 2, "(B, S)")
    B, S = src.shape
    src_len = _check_lengths(fn, "src_len", src_len, B, S)
    mask = source_mask(src_len, S)
    x = E[src]
    h0 = np.zeros((B, H), E.dtype)
    if cell == "lstm":
        h, c, rnn_cache = lstm_forward(x, h0, h0, params["W_enc"], params["U_enc"], params["b_enc"])
    else:
        h, rnn_cache = gru_forward(x, h0, params["W_enc"], params["U_enc"], params["b_enc"])
    rows, last = np.arange(B), src_len - 1
    state = (h[rows, last],) if cell == "gru" else (h[rows, last], c[rows, last])
    enc = np.where(mask[..., None], h, state[0][:, None, :])
    return enc, state, {"cell": cell, "src": src, "src_len": src_len, "mask": mask, "rnn_cache": rnn_cache,
                        "H": H, "V_src": E.shape[0], "dtype": E.dtype}


def _lstm_backward_with_dc(dh, dc, cache):
    """lstm_backward with a gradient dc (B, T, H) reaching the cell state at every position, besides dh."""
    hs, cs, A, U = cache["hs"], cache["cs"], cache["gates"], cache["U"]
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dA = np.empty_like(A)
    dh_carry = np.zeros((B, H), dtype=hs.dtype)
    dc_carry = np.zeros((B, H), dtype=hs.dtype)
    for t in reversed(range(T)):
        dc_carry = _lstm_cell_backward(dh[:, t] + dh_carry, dc_carry + dc[:, t], A[t], cs[t], cache["tanh_cs"][t],
                                       dA[t])
        dh_carry = dA[t] @ U.T
    xs = cache["xs"]
    dxs, dW, dU, db = affine_backward(flat(xs), flat(hs[:-1]), flat(dA), cache["W"])
    return batch_major(dxs.reshape(xs.shape)), dW, dU, db


def encoder_backward(denc, dstate, cache):
    """Backward pass of encoder_forward. denc (B, S, H); dstate (dh,) or (dh, dc), the gradient of the final state.

    Returns a dict of gradients for E_src, W_enc, U_enc, b_enc (E_src's gradient as a dense (V_src, D) array).
    """
    src, mask, H = cache["src"], cache["mask"], cache["H"]
    B, S = src.shape
    dtype = cache["dtype"]
    denc = _checks.check_upstream("encoder_backward", "denc", denc, (B, S, H), "(B, S, H)", dtype)
    dstate = tuple(_checks.check_upstream("encoder_backward", "dstate", d, (B, H), "(B, H)", dtype) for d in dstate)
    rows, last = np.arange(B), cache["src_len"] - 1
    dh = denc * mask[..., None]  # the real positions' own states
    # the final state, and the carried copies of it at the padding, are the state at the last real position
    dh[rows, last] += dstate[0] + (denc * ~mask[..., None]).sum(axis=1)
    if cache["cell"] == "lstm":
        dc = np.zeros_like(dh)
        dc[rows, last] = dstate[1]
        dx, dW, dU, db = _lstm_backward_with_dc(dh, dc, cache["rnn_cache"])
    else:
        dx, _, dW, dU, db = gru_backward(dh, cache["rnn_cache"])
    dE = np.zeros((cache["V_src"], dx.shape[2]), dtype)
    np.add.at(dE, src, dx)
    return {"E_src": dE, "W_enc": dW, "U_enc": dU, "b_enc": db}


# --------------------------------------------------------------------------------------------------------------------
# Decoder step
# --------------------------------------------------------------------------------------------------------------------


def decoder_step_forward(y_prev, state, enc, src_mask, params):
    """One decoder step: y_prev (B,) ids, state (h,) or (h, c) each (B, H), enc (B, S, H), src_mask (B, S).

    Returns logits (B, V_tgt), the new state, alpha (B, S) (None without attention) and the cache.
    """
    fn = "decoder_step_forward"
    cell, attention, H = check_params(fn, params)
    E = params["E_tgt"]
    y_prev = _check_ids(fn, "y_prev", y_prev, E.shape[0], 1, "(B,)")
    B = y_prev.shape[0]
    n_states = 2 if cell == "lstm" else 1
    if not isinstance(state, (tuple, list)) or len(state) != n_states:
        raise ValueError(f"{fn}: argument 'state' must be a tuple of {n_states} array(s) "
                         f"({'(h, c)' if n_states == 2 else '(h,)'}) for a {cell} decoder")
    for s in state:
        _checks.check_shape(fn, "state", np.asarray(s), (B, H), f"(B, H) with B={B}, H={H}")
    x = E[y_prev]
    new, cell_cache = _cell_step(cell, x, tuple(state), params["W_dec"], params["U_dec"], params["b_dec"])
    h = new[0]
    cache = {"cell": cell, "attention": attention, "y_prev": y_prev, "cell_cache": cell_cache, "params": params,
             "V_tgt": E.shape[0]}
    alpha = None
    if attention is None:
        out = h
    else:
        if enc is None or np.ndim(enc) != 3 or np.shape(enc)[0] != B or np.shape(enc)[2] != H:
            raise ValueError(f"{fn}: argument 'enc' must have shape (B, S, H) with B={B}, H={H}; got "
                             f"{None if enc is None else np.shape(enc)}")
        q = h[:, None, :]
        if attention == "additive":
            ctx, alpha, att_cache = additive_attention_forward(q, enc, enc, params["Wq"], params["Wk"], params["v"],
                                                               mask=src_mask)
        else:
            ctx, alpha, att_cache = dot_attention_forward(q, enc, enc, params.get("Wa"), 1.0, mask=src_mask)
        cat = np.concatenate([ctx[:, 0], h], axis=1)  # (B, 2H)
        out = np.tanh(cat @ params["W_c"] + params["b_c"])
        alpha = alpha[:, 0]
        cache.update({"att_cache": att_cache, "cat": cat})
    logits = out @ params["V"] + params["c"]
    cache["out"] = out
    return logits, new, alpha, cache


def decoder_step_backward(dlogits, dstate, cache):
    """Backward pass of one decoder step. dlogits (B, V_tgt); dstate (dh,) or (dh, dc): the gradient reaching the
    new state from later steps.

    Returns dstate_prev (a tuple like the state), denc (B, S, H) or None without attention, and a dict of parameter
    gradients (E_tgt dense (V_tgt, D), W_dec, U_dec, b_dec, V, c, and the attention's).
    """
    p, out = cache["params"], cache["out"]
    dlogits = _checks.check_upstream("decoder_step_backward", "dlogits", dlogits, (out.shape[0], p["V"].shape[1]),
                                     "(B, V_tgt)", out.dtype)
    grads = {"V": out.T @ dlogits, "c": dlogits.sum(axis=0)}
    dout = dlogits @ p["V"].T
    denc = None
    if cache["attention"] is None:
        dh = dout
    else:
        H = out.shape[1]
        da = dout * (1 - out * out)
        grads["W_c"] = cache["cat"].T @ da
        grads["b_c"] = da.sum(axis=0)
        dcat = da @ p["W_c"].T
        dctx, dh = dcat[:, None, :H], dcat[:, H:]
        if cache["attention"] == "additive":
            dq, dk, dval, grads["Wq"], grads["Wk"], grads["v"] = additive_attention_backward(dctx, cache["att_cache"])
        else:
            dq, dk, dval, dWa, _ = dot_attention_backward(dctx, cache["att_cache"])
            if cache["attention"] == "general":
                grads["Wa"] = dWa
        dh = dh + dq[:, 0]
        denc = dk + dval
    dstate = tuple(dstate)
    dx, dprev, grads["W_dec"], grads["U_dec"], grads["b_dec"] = _cell_step_backward(
        cache["cell"], (dh + dstate[0],) + dstate[1:], cache["cell_cache"])
    dE = np.zeros((cache["V_tgt"], dx.shape[1]), dx.dtype)
    np.add.at(dE, cache["y_prev"], dx)
    grads["E_tgt"] = dE
    return dprev, denc, grads


# --------------------------------------------------------------------------------------------------------------------
# The whole model: loss with teacher forcing, free running or scheduled sampling
# --------------------------------------------------------------------------------------------------------------------


def _decoder_teacher_forward(params, enc, mask, state, tgt_in):
    """The decoder over all T steps at once, given its inputs tgt_in (B, T) (teacher forcing).

    Luong's arrangement makes this possible: the recurrence reads only the known input tokens, so it runs first
    (lstm_forward / gru_forward), and the attention of all T steps is then one call with T queries.
    Returns logits (B, T, V_tgt), alpha (B, T, S) or None, and the cache.
    """
    cell, attention = config_of(params)
    x = params["E_tgt"][tgt_in]
    if cell == "lstm":
        h, _, rnn_cache = lstm_forward(x, state[0], state[1], params["W_dec"], params["U_dec"], params["b_dec"])
    else:
        h, rnn_cache = gru_forward(x, state[0], params["W_dec"], params["U_dec"], params["b_dec"])
    cache = {"cell": cell, "attention": attention, "tgt_in": tgt_in, "rnn_cache": rnn_cache, "params": params}
    alpha = None
    if attention is None:
        out = h
    else:
        if attention == "additive":
            ctx, alpha, att_cache = additive_attention_forward(h, enc, enc, params["Wq"], params["Wk"], params["v"],
                                                               mask=mask)
        else:
            ctx, alpha, att_cache = dot_attention_forward(h, enc, enc, params.get("Wa"), 1.0, mask=mask)
        cat = np.concatenate([ctx, h], axis=2)  # (B, T, 2H)
        out = np.tanh(cat @ params["W_c"] + params["b_c"])
        cache.update({"att_cache": att_cache, "cat": cat})
    cache["out"] = out
    return out @ params["V"] + params["c"], alpha, cache


def _decoder_teacher_backward(dlogits, cache):
    """Backward pass of _decoder_teacher_forward: (dstate0, denc or None, grads)."""
    p, out = cache["params"], cache["out"]
    H = out.shape[2]
    grads = {"V": flat(out).T @ flat(dlogits), "c": flat(dlogits).sum(axis=0)}
    dout = dlogits @ p["V"].T
    denc = None
    if cache["attention"] is None:
        dh = dout
    else:
        da = dout * (1 - out * out)
        grads["W_c"] = flat(cache["cat"]).T @ flat(da)
        grads["b_c"] = flat(da).sum(axis=0)
        dcat = da @ p["W_c"].T
        dctx, dh = dcat[..., :H], dcat[..., H:]
        if cache["attention"] == "additive":
            dq, dk, dval, grads["Wq"], grads["Wk"], grads["v"] = additive_attention_backward(dctx, cache["att_cache"])
        else:
            dq, dk, dval, dWa, _ = dot_attention_backward(dctx, cache["att_cache"])
            if cache["attention"] == "general":
                grads["Wa"] = dWa
        dh = dh + dq
        denc = dk + dval
    if cache["cell"] == "lstm":
        dx, dh0, dc0, grads["W_dec"], grads["U_dec"], grads["b_dec"] = lstm_backward(dh, cache["rnn_cache"])
        dstate = (dh0, dc0)
    else:
        dx, dh0, grads["W_dec"], grads["U_dec"], grads["b_dec"] = gru_backward(dh, cache["rnn_cache"])
        dstate = (dh0,)
    dE = np.zeros(p["E_tgt"].shape, dx.dtype)
    np.add.at(dE, cache["tgt_in"], dx)
    grads["E_tgt"] = dE
    return dstate, denc, grads


def seq2seq_forward(params, src, src_len, tgt, tgt_len, feed=None, sample=False, seed=None):
    """The loss of the targets given the sources, and what the backward pass needs.

    src (B, S), src_len (B,), tgt (B, T) (ending with EOS, then PAD), tgt_len (B,).
    feed: None (teacher forcing: step t receives tgt_{t-1}); "free" (free running: step t receives the model's own
    token from step t-1); or a (B, T) bool array, True where step t receives the model's own token (scheduled
    sampling; column 0 is ignored, step 1 always receives BOS). The model's own token is its argmax, or a sample
    from its distribution if sample=True (seed: an int or a Generator).

    With teacher forcing the decoder's inputs are known in advance, and all T steps are computed at once (the
    recurrence over the known inputs, then the attention of all steps in one call); otherwise each step waits for
    the previous step's token, and the decoder runs step by step (decoder_step_forward). Both compute the same
    function: feed=None and a feed of all False give the same loss.

    Returns loss (mean cross-entropy per target token, PAD excluded) and a cache with "logits" (B, T, V_tgt),
    "alpha" (B, T, S) or None, "fed" (B, T), the tokens each step received.
    """
    fn = "seq2seq_forward"
    check_params(fn, params)
    tgt = _check_ids(fn, "tgt", tgt, params["E_tgt"].shape[0], 2, "(B, T)")
    B, T = tgt.shape
    if np.shape(src)[:1] != (B,):
        raise ValueError(f"{fn}: src and tgt must have the same batch size B; got {np.shape(src)} and {tgt.shape}")
    tgt_len = _check_lengths(fn, "tgt_len", tgt_len, B, T)
    if isinstance(feed, str):
        if feed != "free":
            raise ValueError(f"{fn}: argument 'feed' must be None, 'free' or a (B, T) bool array; got {feed!r}")
        feed = np.ones((B, T), dtype=bool)
    elif feed is not None:
        feed = np.asarray(feed, dtype=bool)
        _checks.check_shape(fn, "feed", feed, (B, T), f"(B, T) = {(B, T)}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    enc, state, enc_cache = encoder_forward(src, src_len, params)
    mask = enc_cache["mask"]
    cache = {"enc_cache": enc_cache, "enc": enc, "shapes": {k: np.shape(v) for k, v in params.items()}}
    if feed is None:
        fed = teacher_inputs(tgt)
        logits, alpha, cache["decoder"] = _decoder_teacher_forward(params, enc, mask, state, fed)
    else:
        logits = np.empty((B, T, params["V"].shape[1]), enc.dtype)
        alphas = [] if config_of(params)[1] is not None else None
        fed = np.empty((B, T), dtype=np.int64)
        caches = []
        y_prev = np.full(B, BOS, dtype=np.int64)
        for t in range(T):
            if t > 0:
                y_prev = tgt[:, t - 1]
                if feed[:, t].any():
                    if sample:
                        p = np.exp(logits[:, t - 1] - logits[:, t - 1].max(axis=1, keepdims=True))
                        p /= p.sum(axis=1, keepdims=True)
                        own = (rng.random((B, 1)) > np.cumsum(p, axis=1)).sum(axis=1).clip(max=p.shape[1] - 1)
                    else:
                        own = np.argmax(logits[:, t - 1], axis=1)
                    y_prev = np.where(feed[:, t], own, y_prev)
            fed[:, t] = y_prev
            logits[:, t], state, a, step_cache = decoder_step_forward(y_prev, state, enc, mask, params)
            if alphas is not None:
                alphas.append(a)
            caches.append(step_cache)
        alpha = None if alphas is None else np.stack(alphas, axis=1)
        cache["steps"] = caches
    tmask = np.arange(T)[None, :] < tgt_len[:, None]
    loss, dlogits = softmax_cross_entropy(logits, tgt, tmask)
    cache.update({"dlogits": dlogits, "logits": logits, "fed": fed, "alpha": alpha})
    return loss, cache


def seq2seq_backward(cache):
    """Gradients of the loss of seq2seq_forward with respect to every parameter (a dict like the parameters)."""
    grads = {k: np.zeros(s, cache["logits"].dtype) for k, s in cache["shapes"].items()}
    enc = cache["enc"]
    if "decoder" in cache:
        dstate, denc, g = _decoder_teacher_backward(cache["dlogits"], cache["decoder"])
        denc = np.zeros_like(enc) if denc is None else denc
        for k, v in g.items():
            grads[k] += v
    else:
        denc = np.zeros_like(enc)
        B, _, H = enc.shape
        n_states = 2 if cache["enc_cache"]["cell"] == "lstm" else 1
        dstate = tuple(np.zeros((B, H), enc.dtype) for _ in range(n_states))
        for t in reversed(range(len(cache["steps"]))):
            dstate, d_enc_t, g = decoder_step_backward(cache["dlogits"][:, t], dstate, cache["steps"][t])
            if d_enc_t is not None:
                denc += d_enc_t
            for k, v in g.items():
                grads[k] += v
    g = encoder_backward(denc, dstate, cache["enc_cache"])
    for k in ("E_src", "W_enc", "U_enc", "b_enc"):
        grads[k] += g[k]
    return grads


# --------------------------------------------------------------------------------------------------------------------
# Decoding: a step function for course_pkg.decoding
# --------------------------------------------------------------------------------------------------------------------


def decoding_start(params, src, src_len):
    """Encode the sources and return the decoding state: a dict of arrays with one row per input (h, c for the
    LSTM, the encoder outputs and the source mask), ready for course_pkg.decoding with decoding_step(params)."""
    enc, state, cache = encoder_forward(src, src_len, params)
    out = {"h": state[0], "enc": enc, "mask": cache["mask"]}
    if len(state) == 2:
        out["c"] = state[1]
    return out


def decoding_step(params, keep_alpha=False):
    """A step function step(tokens, state) -> (logits, state) for course_pkg.decoding's greedy search, beam search
    and sampling. keep_alpha=True appends each step's attention weights (N, S) to state["alphas"] (a (N, t, S)
    array that beam search reorders with the rest)."""
    cell, attention, _ = check_params("decoding_step", params)

    def step(tokens, state):
        prev = (state["h"], state["c"]) if cell == "lstm" else (state["h"],)
        logits, new, alpha, _ = decoder_step_forward(tokens, prev, state["enc"], state["mask"], params)
        out = dict(state, h=new[0])
        if cell == "lstm":
            out["c"] = new[1]
        if keep_alpha and alpha is not None:
            old = state.get("alphas")
            out["alphas"] = alpha[:, None] if old is None else np.concatenate([old, alpha[:, None]], axis=1)
        return logits, out

    return step



# --------------------------------------------------------------------------------------------------------------------
# The same model in Keras (for fast teacher-forced training), and weights both ways
# --------------------------------------------------------------------------------------------------------------------


def keras_seq2seq(V_src, V_tgt, D, H, cell="lstm", attention=None, A=None):
    """A keras.Model computing the same teacher-forced logits as seq2seq_forward (feed=None).

    Inputs [src (B, S) ids, tgt_in (B, T) ids: BOS then tgt[:, :-1]]; output logits (B, T, V_tgt). The layers are
    named after the parameters they hold: E_src, encoder, E_tgt, decoder, Wq, Wk, attention (the additive score's
    v is its `scale`), Wa, W_c (W_c, b_c), V (V, c). Use set_keras_params / get_keras_params to move weights.
    """
    _check_config("keras_seq2seq", cell, attention)
    import keras

    layer = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    src = keras.Input((None,), dtype="int32", name="src")
    tgt_in = keras.Input((None,), dtype="int32", name="tgt_in")
    x = keras.layers.Embedding(V_src, D, mask_zero=True, name="E_src")(src)
    enc, *state = layer(H, return_sequences=True, return_state=True, name="encoder")(x)
    y = keras.layers.Embedding(V_tgt, D, name="E_tgt")(tgt_in)
    dec = layer(H, return_sequences=True, name="decoder")(y, initial_state=state)
    if attention is None:
        out = dec
    else:
        src_mask = keras.ops.not_equal(src, PAD)
        if attention == "additive":
            A = H if A is None else A
            q = keras.layers.Dense(A, use_bias=False, name="Wq")(dec)
            k = keras.layers.Dense(A, use_bias=False, name="Wk")(enc)
            ctx = keras.layers.AdditiveAttention(use_scale=True, name="attention")([q, enc, k], mask=[None, src_mask])
        else:
            q = dec if attention == "dot" else keras.layers.Dense(H, use_bias=False, name="Wa")(dec)
            ctx = keras.layers.Attention(name="attention")([q, enc, enc], mask=[None, src_mask])
        cat = keras.layers.Concatenate(name="concat")([ctx, dec])
        out = keras.layers.Dense(H, activation="tanh", name="W_c")(cat)
    logits = keras.layers.Dense(V_tgt, name="V")(out)
    return keras.Model([src, tgt_in], logits, name=f"seq2seq_{cell}_{attention or 'plain'}")


def _cell_weights(p, prefix):
    return [p[f"W_{prefix}"], p[f"U_{prefix}"], p[f"b_{prefix}"]]


def set_keras_params(model, params):
    """Copy course_pkg parameters into a model made by keras_seq2seq (same sizes). Returns the model."""
    cell, attention, _ = check_params("set_keras_params", params)
    model.get_layer("E_src").set_weights([params["E_src"]])
    model.get_layer("E_tgt").set_weights([params["E_tgt"]])
    model.get_layer("encoder").set_weights(_cell_weights(params, "enc"))
    model.get_layer("decoder").set_weights(_cell_weights(params, "dec"))
    model.get_layer("V").set_weights([params["V"], params["c"]])
    if attention is not None:
        model.get_layer("W_c").set_weights([params["W_c"], params["b_c"]])
    if attention == "additive":
        model.get_layer("Wq").set_weights([params["Wq"]])
        model.get_layer("Wk").set_weights([params["Wk"]])
        model.get_layer("attention").set_weights([params["v"]])
    elif attention == "general":
        model.get_layer("Wa").set_weights([params["Wa"]])
    return model


def get_keras_params(model):
    """The parameters of a model made by keras_seq2seq, as a course_pkg dict (float32 arrays)."""
    names = {layer.name for layer in model.layers}
    p = {"E_src": model.get_layer("E_src").get_weights()[0], "E_tgt": model.get_layer("E_tgt").get_weights()[0]}
    p["W_enc"], p["U_enc"], p["b_enc"] = model.get_layer("encoder").get_weights()
    p["W_dec"], p["U_dec"], p["b_dec"] = model.get_layer("decoder").get_weights()
    p["V"], p["c"] = model.get_layer("V").get_weights()
    if "W_c" in names:
        p["W_c"], p["b_c"] = model.get_layer("W_c").get_weights()
    if "Wq" in names:
        p["Wq"] = model.get_layer("Wq").get_weights()[0]
        p["Wk"] = model.get_layer("Wk").get_weights()[0]
        p["v"] = model.get_layer("attention").get_weights()[0]
    if "Wa" in names:
        p["Wa"] = model.get_layer("Wa").get_weights()[0]
    return {k: np.asarray(v, dtype=np.float32) for k, v in p.items()}


def teacher_inputs(tgt):
    """The decoder's teacher-forced inputs: BOS, then tgt[:, :-1]. tgt (B, T) -> (B, T)."""
    tgt = np.asarray(tgt)
    return np.concatenate([np.full((tgt.shape[0], 1), BOS, dtype=tgt.dtype), tgt[:, :-1]], axis=1)
