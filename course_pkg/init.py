"""Parameter initialisers with Keras' defaults, driven by numpy's random Generator.

Keras initialises every recurrent layer with a Glorot-uniform kernel W, an orthogonal recurrent kernel U and a zero
bias, and the LSTM with ones in the forget-gate slice of the bias (unit_forget_bias=True). These functions draw from
the same distributions; they cannot give Keras' very numbers (different random streams), which is what
keras_interop is for.
"""

import numpy as np


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def glorot_uniform(shape, seed=None, dtype=np.float32):
    """U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)); fan_in = shape[0], fan_out = shape[1]."""
    fan_in, fan_out = shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return _rng(seed).uniform(-limit, limit, size=shape).astype(dtype)


def orthogonal(shape, seed=None, gain=1.0, dtype=np.float32):
    """A matrix with orthonormal rows (if rows <= cols) or columns, as keras.initializers.Orthogonal.

    A square (H, H) kernel is orthogonal: it keeps the length of every vector. A stacked (H, 4H) LSTM kernel (or
    (H, 3H) GRU kernel) gets orthonormal rows, U U^T = I, and nothing more: a gate's (H, H) block U_g is not an
    isometry. The blocks share the identity, sum_g U_g U_g^T = I, so their singular values lie in [0, 1], and their
    mean square, over all four blocks, is 1/4 (1/3 for the GRU's three).
    """
    rows, cols = shape
    a = _rng(seed).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # makes the draw uniform over orthogonal matrices
    if rows < cols:
        q = q.T
    return (gain * q).astype(dtype)


def _params(D, H, gates, seed, dtype):
    rng = _rng(seed)
    return glorot_uniform((D, gates * H), rng, dtype), orthogonal((H, gates * H), rng, dtype=dtype)


def init_rnn(D, H, seed=None, dtype=np.float32):
    """W (D, H), U (H, H), b (H,) as keras.layers.SimpleRNN initialises them."""
    W, U = _params(D, H, 1, seed, dtype)
    return W, U, np.zeros(H, dtype=dtype)


def init_lstm(D, H, seed=None, dtype=np.float32, unit_forget_bias=True):
    """W (D, 4H), U (H, 4H), b (4H,) as keras.layers.LSTM initialises them: b_f = 1, the rest 0."""
    W, U = _params(D, H, 4, seed, dtype)
    b = np.zeros(4 * H, dtype=dtype)
    if unit_forget_bias:
        b[H : 2 * H] = 1
    return W, U, b


def init_gru(D, H, seed=None, dtype=np.float32, reset_after=True):
    """W (D, 3H), U (H, 3H), and b, (2, 3H) or (3H,), as keras.layers.GRU initialises them."""
    W, U = _params(D, H, 3, seed, dtype)
    return W, U, np.zeros((2, 3 * H) if reset_after else 3 * H, dtype=dtype)
