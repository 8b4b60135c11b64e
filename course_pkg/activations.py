"""The two squashing functions of every recurrent cell, and their derivatives.

The logistic sigmoid is written through tanh:

    sigmoid(a) = 1 / (1 + exp(-a)) = (1 + tanh(a / 2)) / 2

The left form overflows exp(-a) for a < -88 in float32 (a warning, then a correct 0); the right form never
overflows, needs no masks for the sign of a, keeps the dtype, and can be computed in place on a gate block. Its error is at most one rounding unit of 1 in absolute terms; for
a < -20, where sigmoid(a) < 2e-9, it loses relative accuracy (sigmoid(-40) comes out as 0, not 4e-18), which no gate
can notice.
"""

import numpy as np


def sigmoid(a, out=None):
    """Logistic sigmoid, elementwise, for any finite input; float32 in, float32 out.

    With `out` (may be `a` itself) the result is written there and no new array is made.
    """
    a = np.asarray(a)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    if out is None:
        out = np.empty_like(a)
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def dsigmoid_from_output(s):
    """d sigmoid(a) / da written with s = sigmoid(a): s (1 - s)."""
    return s * (1 - s)


def dtanh_from_output(t):
    """d tanh(a) / da written with t = tanh(a): 1 - t^2."""
    return 1 - t * t
