"""Stacked and bidirectional recurrent layers, built from the sequence functions of rnn, lstm and gru.

A *layer* here is one of course_pkg's recurrent sequence functions run from a zero initial state (Keras' default),
with its parameters as a tuple p = (W, U, b) in Keras' layout. `cell` names the kind: "rnn", "lstm" or "gru"
(the GRU in either convention, chosen by `reset_after`, True by default as in Keras).

    h, cache = sequence_forward("lstm", x, (W, U, b))            x (B, T, D) -> h (B, T, H)
    dx, (dW, dU, db) = sequence_backward(dh, cache)              dh (B, T, H) -> dx (B, T, D)

A bidirectional layer (Schuster & Paliwal 1997) runs one layer over x and another, with its own parameters, over x
reversed in time; the second one's states are reversed back, so that position t of the output holds the forward
state that has read x_0 .. x_t and the backward state that has read x_{T-1} .. x_t:

    y, cache = bidirectional_forward("lstm", x, p_fwd, p_bwd)    x (B, T, D) -> y (B, T, 2H) (merge_mode="concat")
    dx, g_fwd, g_bwd = bidirectional_backward(dy, cache)

This is keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True)) with p_fwd, p_bwd the weights of its
forward_layer and backward_layer. A stack feeds each layer's output sequence to the next layer as its input:

    hs, cache = stack_forward("lstm", x, [p1, p2, p3])           hs[l] (B, T, H_l), the output of layer l
    dx, grads = stack_backward(dhs, cache)                       grads[l] = (dW, dU, db) of layer l
"""

import numpy as np

from . import gru, lstm, rnn
from .init import init_gru, init_lstm, init_rnn

__all__ = [
    "GATES",
    "parameter_count",
    "init_layer",
    "reverse_time",
    "sequence_forward",
    "sequence_backward",
    "bidirectional_forward",
    "bidirectional_backward",
    "init_stack",
    "stack_forward",
    "stack_backward",
]

#: Number of gate blocks side by side in W, U and b.
GATES = {"rnn": 1, "lstm": 4, "gru": 3}

MERGE_MODES = ("concat", "sum")


def _check_cell(fn, cell):
    if cell not in GATES:
        raise ValueError(f"{fn}: argument 'cell' must be one of {sorted(GATES)}; got {cell!r}")


def _check_params(fn, name, p):
    if not isinstance(p, (tuple, list)) or len(p) != 3:
        raise TypeError(f"{fn}: argument '{name}' must be a tuple (W, U, b); got {type(p).__name__}")
    return tuple(p)


def parameter_count(cell, D, H, bidirectional=False, reset_after=True):
    """Number of parameters of one recurrent layer with input size D and hidden size H (per direction).

    A layer has W (D, gH), U (H, gH) and b: g(D H + H^2 + H) with g = 1, 4, 3 for the simple RNN, LSTM and GRU, and
    g H more for a GRU with reset_after=True (its bias is (2, 3H)). A bidirectional layer has twice as many.
    """
    _check_cell("parameter_count", cell)
    g = GATES[cell]
    n = g * (D * H + H * H + H) + (g * H if cell == "gru" and reset_after else 0)
    return 2 * n if bidirectional else n


def init_layer(cell, D, H, seed=None, dtype=np.float32, reset_after=True):
    """(W, U, b) with Keras' default initialisers (course_pkg.init) for a layer with input size D, hidden size H."""
    _check_cell("init_layer", cell)
    if cell == "rnn":
        return init_rnn(D, H, seed, dtype)
    if cell == "lstm":
        return init_lstm(D, H, seed, dtype)
    return init_gru(D, H, seed, dtype, reset_after=reset_after)


def reverse_time(a):
    """a (B, T, ...) with its time axis reversed, as a contiguous copy: out[:, t] = a[:, T - 1 - t]."""
    return np.ascontiguousarray(np.asarray(a)[:, ::-1])


def sequence_forward(cell, x, params, reset_after=True):
    """One recurrent layer over x (B, T, D) from zero initial states; params = (W, U, b).

    Returns h (B, T, H), every hidden state, and a cache for sequence_backward. The same numbers as
    rnn.rnn_forward, lstm.lstm_forward (h only) or gru.gru_forward with h0 (and c0) zero.
    """
    fn = "sequence_forward"
    _check_cell(fn, cell)
    W, U, b = _check_params(fn, "params", params)
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"{fn}: argument 'x' must have shape (B, T, D); got shape {x.shape}")
    U = np.asarray(U)
    h0 = np.zeros((x.shape[0], U.shape[0]), dtype=np.result_type(x, W, U, b))
    if cell == "rnn":
        h, inner = rnn.rnn_forward(x, h0, W, U, b)
    elif cell == "lstm":
        h, _, inner = lstm.lstm_forward(x, h0, h0, W, U, b)
    else:
        h, inner = gru.gru_forward(x, h0, W, U, b, reset_after=reset_after)
    return h, {"cell": cell, "inner": inner}


def sequence_backward(dh, cache):
    """BPTT through one layer: dh (B, T, H), the gradient of the loss with respect to its output sequence.

    Returns dx (B, T, D) and the parameter gradients (dW, dU, db). The initial states are constants (zeros), so
    their gradients are dropped.
    """
    cell, inner = cache["cell"], cache["inner"]
    if cell == "rnn":
        dx, _, dW, dU, db = rnn.rnn_backward(dh, inner)
    elif cell == "lstm":
        dx, _, _, dW, dU, db = lstm.lstm_backward(dh, inner)
    else:
        dx, _, dW, dU, db = gru.gru_backward(dh, inner)
    return dx, (dW, dU, db)


def bidirectional_forward(cell, x, params_fwd, params_bwd, merge_mode="concat", reset_after=True):
    """A bidirectional layer over x (B, T, D).

    params_fwd and params_bwd are two (W, U, b) tuples of the same hidden size H. The forward layer reads
    x_0 .. x_{T-1}; the backward layer reads x_{T-1} .. x_0 (it runs over reverse_time(x)), and its states are put back
    in the time order of x. merge_mode "concat" returns y (B, T, 2H) = [forward | backward] along the last axis;
    "sum" returns their sum (B, T, H). The same as keras.layers.Bidirectional(..., merge_mode=merge_mode) with
    return_sequences=True. Returns y and a cache for bidirectional_backward.
    """
    fn = "bidirectional_forward"
    if merge_mode not in MERGE_MODES:
        raise ValueError(f"{fn}: argument 'merge_mode' must be one of {MERGE_MODES}; got {merge_mode!r}")
    params_fwd = _check_params(fn, "params_fwd", params_fwd)
    params_bwd = _check_params(fn, "params_bwd", params_bwd)
    if np.shape(params_fwd[1]) != np.shape(params_bwd[1]):
        raise ValueError(
            f"{fn}: the two directions must have the same shapes; U is {np.shape(params_fwd[1])} forward and "
            f"{np.shape(params_bwd[1])} backward"
        )
    h_f, cache_f = sequence_forward(cell, x, params_fwd, reset_after)
    h_b_rev, cache_b = sequence_forward(cell, reverse_time(x), params_bwd, reset_after)
    h_b = reverse_time(h_b_rev)  # h_b[:, t] has read x_{T-1} .. x_t
    y = np.concatenate([h_f, h_b], axis=-1) if merge_mode == "concat" else h_f + h_b
    return y, {"fwd": cache_f, "bwd": cache_b, "merge_mode": merge_mode, "H": h_f.shape[-1]}


def bidirectional_backward(dy, cache):
    """Backward pass of bidirectional_forward: dy has the shape of y, (B, T, 2H) for "concat", (B, T, H) for "sum".

    Returns dx (B, T, D) and the parameter gradients of each direction, (dW, dU, db) forward and backward. The
    gradient reaching x is the sum of what the two directions send back; the backward direction's share is reversed
    in time, as its input was.
    """
    H = cache["H"]
    dy = np.asarray(dy)
    if cache["merge_mode"] == "concat":
        dh_f, dh_b = dy[..., :H], dy[..., H:]
    else:
        dh_f = dh_b = dy
    dx_f, grads_f = sequence_backward(np.ascontiguousarray(dh_f), cache["fwd"])
    dx_b_rev, grads_b = sequence_backward(reverse_time(dh_b), cache["bwd"])
    return dx_f + reverse_time(dx_b_rev), grads_f, grads_b


def init_stack(cell, D, sizes, seed=None, dtype=np.float32, bidirectional=False, reset_after=True):
    """Parameters for a stack of len(sizes) layers with hidden sizes `sizes`, the first reading inputs of size D.

    Layer l reads the output of layer l - 1: size sizes[l - 1], or 2 sizes[l - 1] for a bidirectional stack with
    "concat" merging. Returns a list with one (W, U, b) per layer, or one pair ((W, U, b), (W, U, b)) per layer
    (forward, backward) if bidirectional.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    params, d_in = [], D
    for H in sizes:
        if bidirectional:
            params.append(tuple(init_layer(cell, d_in, H, rng, dtype, reset_after) for _ in range(2)))
            d_in = 2 * H
        else:
            params.append(init_layer(cell, d_in, H, rng, dtype, reset_after))
            d_in = H
    return params


def stack_forward(cell, x, params, bidirectional=False, reset_after=True):
    """A stack of recurrent layers: layer 0 reads x (B, T, D), layer l reads the output sequence of layer l - 1.

    params: one (W, U, b) per layer, or one pair (forward, backward) per layer if bidirectional (merge "concat").
    Returns hs, the list of every layer's output: hs[l] (B, T, H_l), or (B, T, 2 H_l) if bidirectional; hs[-1] is
    what a read-out on top sees. Also returns a cache for stack_backward.
    """
    hs, caches, inp = [], [], x
    for p in params:
        if bidirectional:
            h, c = bidirectional_forward(cell, inp, p[0], p[1], "concat", reset_after)
        else:
            h, c = sequence_forward(cell, inp, p, reset_after)
        hs.append(h)
        caches.append(c)
        inp = h
    return hs, {"caches": caches, "bidirectional": bidirectional}


def stack_backward(dhs, cache):
    """Backward pass of stack_forward.

    dhs: the gradient of the loss with respect to the top layer's output (an array shaped like hs[-1]), or a list
    with one entry per layer, dhs[l] the gradient of a loss that reads hs[l] directly (None for none). The upstream
    gradient of layer l is then dhs[l] plus the dx that layer l + 1 sends back.
    Returns dx (B, T, D) and grads: one (dW, dU, db) per layer, or one pair (forward, backward) if bidirectional.
    """
    caches = cache["caches"]
    L = len(caches)
    if not isinstance(dhs, (list, tuple)):
        dhs = [None] * (L - 1) + [dhs]
    if len(dhs) != L:
        raise ValueError(f"stack_backward: {len(dhs)} gradients for a stack of {L} layers")
    grads = [None] * L
    carry = None  # dx of the layer above: the gradient with respect to this layer's output sequence
    for l in reversed(range(L)):
        parts = [d for d in (dhs[l], carry) if d is not None]
        if not parts:
            raise ValueError(f"stack_backward: no gradient reaches layer {l} (the top entry of dhs is None)")
        dh = parts[0] if len(parts) == 1 else parts[0] + parts[1]
        if cache["bidirectional"]:
            carry, g_f, g_b = bidirectional_backward(dh, caches[l])
            grads[l] = (g_f, g_b)
        else:
            carry, grads[l] = sequence_backward(dh, caches[l])
    return carry, grads
