"""What every cell shares: the affine pre-activation a = x W + h_prev U + b and its backward pass.

A sequence layer calls these once for all T steps at a time (x and h_prev flattened to (T*B, .)), which is why the
input projection x W and the parameter gradients cost one large matrix product each instead of T small ones.
"""

import numpy as np


def time_major(x):
    """(B, T, D) -> contiguous (T, B, D): each step's slice is then one contiguous block."""
    return np.ascontiguousarray(np.swapaxes(x, 0, 1))


def batch_major(a):
    """(T, B, ...) -> contiguous (B, T, ...)."""
    return np.ascontiguousarray(np.swapaxes(a, 0, 1))


def input_projection(xs, W, b):
    """x_t W + b for every step at once: xs (T, B, D) -> (T, B, G) with G = W.shape[1]."""
    T, B, D = xs.shape
    xw = xs.reshape(T * B, D) @ W
    xw += b
    return xw.reshape(T, B, W.shape[1])


def flat(a):
    """(T, B, K) -> (T*B, K) without copying."""
    return a.reshape(-1, a.shape[-1])


def affine_backward(x, h_prev, da_x, W, da_h=None):
    """Gradients of a_x = x W + b and a_h = h_prev U given da_x and da_h (da_h defaults to da_x).

    x (N, D), h_prev (N, H), da_x (N, G), da_h (N, G) -> dx (N, D), dW (D, G), dU (H, G), db (G,).
    N is B for one step, or T*B for a whole sequence.
    """
    if da_h is None:
        da_h = da_x
    dx = da_x @ W.T
    dW = x.T @ da_x
    dU = h_prev.T @ da_h
    db = da_x.sum(axis=0)
    return dx, dW, dU, db
