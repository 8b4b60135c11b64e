"""Updating parameters: gradient clipping and the two optimisers the book's experiments use.

Parameters and gradients are dicts name -> array; the optimisers update the parameter arrays in place, so the
dict that holds them (and every reference to the arrays) sees the new values.
"""

import numpy as np


def global_norm(grads):
    """The Euclidean norm of all gradients together, as if concatenated into one vector."""
    return float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values())))


def clip_by_global_norm(grads, max_norm):
    """Rescale all gradients together so that their global norm is at most max_norm (Pascanu et al. 2013).

    Returns (clipped, norm) with norm measured before clipping. The direction of the update is kept; only its
    length is capped. A norm that is inf or NaN is returned with the gradients unchanged: no rescaling can repair
    them, and the caller should see the overflow (the book's training loops stop or skip such a step).
    """
    if not max_norm > 0:
        raise ValueError(f"clip_by_global_norm: argument 'max_norm' must be positive; got {max_norm!r}")
    norm = global_norm(grads)
    if norm <= max_norm or not np.isfinite(norm):
        return dict(grads), norm
    scale = max_norm / norm
    return {k: g * g.dtype.type(scale) for k, g in grads.items()}, norm


class SGD:
    """p <- p - lr * g."""

    def __init__(self, params, lr=0.1):
        self.params, self.lr = params, lr

    def step(self, grads):
        for k, g in grads.items():
            self.params[k] -= self.params[k].dtype.type(self.lr) * g


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction."""

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.params, self.lr, self.beta1, self.beta2, self.eps = params, lr, beta1, beta2, eps
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t = 0

    def step(self, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        lr_t = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for k, g in grads.items():
            m, v = self.m[k], self.v[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            self.params[k] -= (lr_t * m / (np.sqrt(v) + self.eps)).astype(self.params[k].dtype, copy=False)
