"""The simple (Elman) recurrent network, in Keras' parameter layout.

    h_t = tanh(x_t W + h_{t-1} U + b)

Shapes: x_t (B, D), h (B, H), W (D, H), U (H, H), b (H,). Sequences are batch-major: x (B, T, D), h (B, T, H).
The parameters are exactly keras.layers.SimpleRNN's kernel, recurrent_kernel and bias.
"""

import numpy as np

from . import _checks
from ._affine import affine_backward, batch_major, flat, input_projection, time_major


def rnn_step_forward(x_t, h_prev, W, U, b):
    """One step of the simple RNN.

    Inputs: x_t (B, D), h_prev (B, H), W (D, H), U (H, H), b (H,).
    Returns h_t (B, H) and the cache that rnn_step_backward needs.
    """
    x_t, h_prev, W, U, b = _checks.cast_common(
        *_checks.check_step_inputs("rnn_step_forward", x_t, [("h_prev", h_prev)], W, U, b, gates=1)
    )
    h_t = np.tanh(x_t @ W + h_prev @ U + b)
    cache = {"x_t": x_t, "h_prev": h_prev, "W": W, "U": U, "h_t": h_t}
    return h_t, cache


def _da(dh, h):
    """Through the tanh: dL/da = dL/dh * (1 - h^2)."""
    return dh * (1 - h * h)


def rnn_step_backward(dh_t, cache):
    """Backward pass of one step.

    dh_t (B, H) is the gradient of the loss with respect to h_t.
    Returns dx_t (B, D), dh_prev (B, H), dW (D, H), dU (H, H), db (H,).
    """
    h_t = cache["h_t"]
    dh_t = _checks.check_upstream("rnn_step_backward", "dh_t", dh_t, h_t.shape, "(B, H)", h_t.dtype)
    da = _da(dh_t, h_t)
    dh_prev = da @ cache["U"].T
    dx_t, dW, dU, db = affine_backward(cache["x_t"], cache["h_prev"], da, cache["W"])
    return dx_t, dh_prev, dW, dU, db


def rnn_forward(x, h0, W, U, b):
    """Run the simple RNN over a whole sequence.

    Inputs: x (B, T, D), h0 (B, H), W (D, H), U (H, H), b (H,).
    Returns h (B, T, H), every hidden state, and the cache for rnn_backward.

    The input projection x_t W + b does not depend on the recurrence, so it is computed for all T steps in one
    matrix product before the loop; only h_{t-1} U has to wait for the previous step.
    """
    x, h0, W, U, b = _checks.cast_common(
        *_checks.check_sequence_inputs("rnn_forward", x, [("h0", h0)], W, U, b, gates=1)
    )
    B, T, _ = x.shape
    H = h0.shape[1]
    xs = time_major(x)
    xw = input_projection(xs, W, b)  # (T, B, H)
    hs = np.empty((T + 1, B, H), dtype=x.dtype)  # hs[t + 1] is h_t; hs[0] is h0
    hs[0] = h0
    for t in range(T):
        np.matmul(hs[t], U, out=hs[t + 1])
        hs[t + 1] += xw[t]
        np.tanh(hs[t + 1], out=hs[t + 1])
    cache = {"xs": xs, "hs": hs, "W": W, "U": U}
    return batch_major(hs[1:]), cache


def rnn_backward(dh, cache, truncate=None):
    """Backpropagation through time.

    dh (B, T, H) is the gradient of the loss with respect to every hidden state h_t (zeros where a step has no loss).
    Returns dx (B, T, D), dh0 (B, H), dW (D, H), dU (H, H), db (H,).

    truncate=k cuts the sequence into chunks of k steps (0..k-1, k..2k-1, ...) and lets no gradient cross from one
    chunk into the previous one: what training on chunks of k steps, carrying h forward but not its gradient, computes.
    truncate=None (or any k >= T) is full BPTT.
    """
    hs, xs, U = cache["hs"], cache["xs"], cache["U"]
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dh = _checks.check_upstream("rnn_backward", "dh", dh, (B, T, H), "(B, T, H)", hs.dtype)
    k = _checks.check_truncate("rnn_backward", truncate, T)
    dA = np.empty((T, B, H), dtype=hs.dtype)
    carry = np.zeros((B, H), dtype=hs.dtype)  # dL/dh_t arriving from step t + 1
    for t in reversed(range(T)):
        dA[t] = _da(dh[:, t] + carry, hs[t + 1])
        if t % k == 0 and t > 0:
            carry[:] = 0
        else:
            carry = dA[t] @ U.T
    dxs, dW, dU, db = affine_backward(flat(xs), flat(hs[:-1]), flat(dA), cache["W"])
    return batch_major(dxs.reshape(xs.shape)), carry, dW, dU, db
