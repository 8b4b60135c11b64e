"""The LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), in Keras' layout.

    a_t = x_t W + h_{t-1} U + b                  (B, 4H), split into four blocks in the order i, f, g, o
    i_t = sigmoid(a_i)   input gate
    f_t = sigmoid(a_f)   forget gate
    g_t = tanh(a_g)      candidate cell
    o_t = sigmoid(a_o)   output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Shapes: W (D, 4H), U (H, 4H), b (4H,), exactly keras.layers.LSTM's kernel, recurrent_kernel and bias.
Writing the four gates as one (B, 4H) block is the same model as four separate affine maps on [x_t, h_{t-1}]:
W and U are those four matrices side by side.
"""

import numpy as np

from . import _checks
from ._affine import affine_backward, batch_major, flat, input_projection, time_major
from .activations import sigmoid


def _gates(a):
    """Turn the pre-activation block a (B, 4H) into the gates, in place; return views i, f, g, o."""
    H = a.shape[-1] // 4
    sigmoid(a[..., : 2 * H], out=a[..., : 2 * H])  # i and f sit side by side: one call
    np.tanh(a[..., 2 * H : 3 * H], out=a[..., 2 * H : 3 * H])
    sigmoid(a[..., 3 * H :], out=a[..., 3 * H :])
    return a[..., :H], a[..., H : 2 * H], a[..., 2 * H : 3 * H], a[..., 3 * H :]


def _split(a):
    H = a.shape[-1] // 4
    return a[..., :H], a[..., H : 2 * H], a[..., 2 * H : 3 * H], a[..., 3 * H :]


def _cell_backward(dh, dc, gates, c_prev, tanh_c, da):
    """Backward through one cell update, given dL/dh_t and dL/dc_t (from later steps).

    Writes dL/da (B, 4H) into `da` and returns dL/dc_{t-1}.
    """
    i, f, g, o = _split(gates)
    da_i, da_f, da_g, da_o = _split(da)
    dc = dc + dh * o * (1 - tanh_c * tanh_c)  # c_t reaches the loss directly and through h_t
    np.multiply(dh * tanh_c, o * (1 - o), out=da_o)
    np.multiply(dc * g, i * (1 - i), out=da_i)
    np.multiply(dc * c_prev, f * (1 - f), out=da_f)
    np.multiply(dc * i, 1 - g * g, out=da_g)
    return dc * f  # the additive path: dc_{t-1} = dc_t * f_t


def _gate_preactivation(fn, k, x_t, h_prev, W, U, b):
    """Block k (0 i, 1 f, 2 g, 3 o) of x_t W + h_prev U + b, in Keras' order."""
    x_t, h_prev, W, U, b = _checks.cast_common(
        *_checks.check_step_inputs(fn, x_t, [("h_prev", h_prev)], W, U, b, gates=4)
    )
    H = h_prev.shape[1]
    block = slice(k * H, (k + 1) * H)
    return x_t @ W[:, block] + h_prev @ U[:, block] + b[block]


def input_gate(x_t, h_prev, W, U, b):
    """i_t = sigmoid(x_t W_i + h_prev U_i + b_i): how much of the candidate enters the cell. Returns (B, H).

    W (D, 4H), U (H, 4H), b (4H,) hold the blocks in Keras' order i, f, g, o; this gate reads block 0.
    """
    return sigmoid(_gate_preactivation("input_gate", 0, x_t, h_prev, W, U, b))


def forget_gate(x_t, h_prev, W, U, b):
    """f_t = sigmoid(x_t W_f + h_prev U_f + b_f): how much of c_{t-1} the cell keeps (block 1). Returns (B, H)."""
    return sigmoid(_gate_preactivation("forget_gate", 1, x_t, h_prev, W, U, b))


def candidate(x_t, h_prev, W, U, b):
    """g_t = tanh(x_t W_g + h_prev U_g + b_g): the new content proposed for the cell (block 2). Returns (B, H)."""
    return np.tanh(_gate_preactivation("candidate", 2, x_t, h_prev, W, U, b))


def output_gate(x_t, h_prev, W, U, b):
    """o_t = sigmoid(x_t W_o + h_prev U_o + b_o): how much of tanh(c_t) is shown as h_t (block 3). Returns (B, H)."""
    return sigmoid(_gate_preactivation("output_gate", 3, x_t, h_prev, W, U, b))


def lstm_step_forward(x_t, h_prev, c_prev, W, U, b):
    """One LSTM step.

    Inputs: x_t (B, D), h_prev (B, H), c_prev (B, H), W (D, 4H), U (H, 4H), b (4H,).
    Returns h_t (B, H), c_t (B, H) and a cache in which cache["i"], cache["f"], cache["g"], cache["o"] are the gates.
    """
    x_t, h_prev, c_prev, W, U, b = _checks.cast_common(
        *_checks.check_step_inputs(
            "lstm_step_forward", x_t, [("h_prev", h_prev), ("c_prev", c_prev)], W, U, b, gates=4
        )
    )
    a = x_t @ W + h_prev @ U + b
    i, f, g, o = _gates(a)
    c_t = f * c_prev + i * g
    tanh_c = np.tanh(c_t)
    h_t = o * tanh_c
    cache = {
        "x_t": x_t, "h_prev": h_prev, "c_prev": c_prev, "W": W, "U": U,
        "gates": a, "i": i, "f": f, "g": g, "o": o, "c_t": c_t, "tanh_c": tanh_c,
    }
    return h_t, c_t, cache


def lstm_step_backward(dh_t, dc_t, cache):
    """Backward pass of one LSTM step.

    dh_t, dc_t (B, H): gradients of the loss with respect to h_t and c_t.
    Returns dx_t (B, D), dh_prev (B, H), dc_prev (B, H), dW (D, 4H), dU (H, 4H), db (4H,).
    """
    shape = cache["c_t"].shape
    dh_t = _checks.check_upstream("lstm_step_backward", "dh_t", dh_t, shape, "(B, H)", cache["c_t"].dtype)
    dc_t = _checks.check_upstream("lstm_step_backward", "dc_t", dc_t, shape, "(B, H)", cache["c_t"].dtype)
    da = np.empty_like(cache["gates"])
    dc_prev = _cell_backward(dh_t, dc_t, cache["gates"], cache["c_prev"], cache["tanh_c"], da)
    dh_prev = da @ cache["U"].T
    dx_t, dW, dU, db = affine_backward(cache["x_t"], cache["h_prev"], da, cache["W"])
    return dx_t, dh_prev, dc_prev, dW, dU, db


def lstm_forward(x, h0, c0, W, U, b):
    """Run an LSTM over a whole sequence.

    Inputs: x (B, T, D), h0 (B, H), c0 (B, H), W (D, 4H), U (H, 4H), b (4H,).
    Returns h (B, T, H), c (B, T, H) and the cache for lstm_backward; cache["i"] ... cache["o"] are the gates,
    each (B, T, H).

    The same equations as lstm_step_forward; x_t W + b is computed for all steps in one matrix product before the
    loop, and each step's gate block is updated in place.
    """
    x, h0, c0, W, U, b = _checks.cast_common(
        *_checks.check_sequence_inputs("lstm_forward", x, [("h0", h0), ("c0", c0)], W, U, b, gates=4)
    )
    B, T, _ = x.shape
    H = h0.shape[1]
    xs = time_major(x)
    A = input_projection(xs, W, b)  # (T, B, 4H): becomes the gates i, f, g, o step by step
    hs = np.empty((T + 1, B, H), dtype=x.dtype)
    cs = np.empty((T + 1, B, H), dtype=x.dtype)
    tanh_cs = np.empty((T, B, H), dtype=x.dtype)
    hs[0], cs[0] = h0, c0
    hu = np.empty((B, 4 * H), dtype=x.dtype)
    ig = np.empty((B, H), dtype=x.dtype)
    for t in range(T):
        np.matmul(hs[t], U, out=hu)
        A[t] += hu
        i, f, g, o = _gates(A[t])
        np.multiply(f, cs[t], out=cs[t + 1])
        np.multiply(i, g, out=ig)
        cs[t + 1] += ig
        np.tanh(cs[t + 1], out=tanh_cs[t])
        np.multiply(o, tanh_cs[t], out=hs[t + 1])
    cache = {"xs": xs, "hs": hs, "cs": cs, "tanh_cs": tanh_cs, "gates": A, "W": W, "U": U}
    for name, gate in zip("ifgo", _split(A)):
        cache[name] = np.swapaxes(gate, 0, 1)  # (B, T, H) views, for plotting
    return batch_major(hs[1:]), batch_major(cs[1:]), cache


def lstm_backward(dh, cache, truncate=None):
    """Backpropagation through time for the LSTM.

    dh (B, T, H) is the gradient of the loss with respect to every hidden state h_t.
    Returns dx (B, T, D), dh0 (B, H), dc0 (B, H), dW (D, 4H), dU (H, 4H), db (4H,).
    truncate=k: as in rnn_backward, no gradient (of h or of c) crosses the start of a k-step chunk.
    """
    hs, cs, A, U = cache["hs"], cache["cs"], cache["gates"], cache["U"]
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dh = _checks.check_upstream("lstm_backward", "dh", dh, (B, T, H), "(B, T, H)", hs.dtype)
    k = _checks.check_truncate("lstm_backward", truncate, T)
    dA = np.empty_like(A)
    dh_carry = np.zeros((B, H), dtype=hs.dtype)
    dc_carry = np.zeros((B, H), dtype=hs.dtype)
    for t in reversed(range(T)):
        dc_carry = _cell_backward(dh[:, t] + dh_carry, dc_carry, A[t], cs[t], cache["tanh_cs"][t], dA[t])
        if t % k == 0 and t > 0:
            dh_carry[:] = 0
            dc_carry[:] = 0
        else:
            dh_carry = dA[t] @ U.T
    xs = cache["xs"]
    dxs, dW, dU, db = affine_backward(flat(xs), flat(hs[:-1]), flat(dA), cache["W"])
    return batch_major(dxs.reshape(xs.shape)), dh_carry, dc_carry, dW, dU, db
