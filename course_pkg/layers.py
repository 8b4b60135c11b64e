"""What sits on top of a recurrent layer in the book's experiments: a dense read-out and the losses.

Shapes: h (..., H), V (H, K), c (K,). The leading axes can be (B,) for one output per sequence or (B, T) for one
per step; everything is vectorised over them.
"""

import numpy as np

from . import _checks


def dense_forward(h, V, c):
    """y = h V + c, for h (..., H), V (H, K), c (K,). Returns y (..., K) and a cache."""
    h = _checks.as_float_array("dense_forward", "h", h)
    V = _checks.as_float_array("dense_forward", "V", V)
    c = _checks.as_float_array("dense_forward", "c", c)
    H = h.shape[-1]
    if V.ndim != 2 or V.shape[0] != H:
        raise ValueError(f"dense_forward: argument 'V' must have shape (H, K) with H={H}; got {V.shape}")
    _checks.check_shape("dense_forward", "c", c, (V.shape[1],), f"(K,) with K={V.shape[1]}")
    return h @ V + c, (h, V)


def dense_backward(dy, cache):
    """Gradients of y = h V + c: dh (..., H), dV (H, K), dc (K,)."""
    h, V = cache
    K = V.shape[1]
    dy2 = dy.reshape(-1, K)
    return dy @ V.T, h.reshape(-1, h.shape[-1]).T @ dy2, dy2.sum(axis=0)


def softmax(logits, axis=-1):
    """Softmax along `axis`, shifted by the maximum so that exp never overflows."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def softmax_cross_entropy(logits, targets, mask=None):
    """Mean cross-entropy of integer targets under softmax(logits), and its gradient with respect to the logits.

    logits (..., K), targets (...) integers in [0, K), mask (...) of 0/1 weights (None: all ones). The mean is over
    the positions where mask is 1, so padding beyond a sequence's end neither counts nor receives a gradient.
    Returns (loss, dlogits).
    """
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy: argument 'targets' must hold integers; got dtype {targets.dtype}")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"softmax_cross_entropy: argument 'targets' must have shape {logits.shape[:-1]} (the logits' shape "
            f"without K); got {targets.shape}"
        )
    w = np.ones(targets.shape, dtype=logits.dtype) if mask is None else np.asarray(mask, dtype=logits.dtype)
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    nll = -np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
    n = max(w.sum(), 1)
    loss = float((nll * w).sum() / n)
    dlogits = np.exp(log_p)
    np.put_along_axis(dlogits, targets[..., None], np.take_along_axis(dlogits, targets[..., None], -1) - 1, -1)
    dlogits *= (w / n)[..., None]
    return loss, dlogits


def mse(pred, target):
    """Mean squared error and its gradient with respect to pred. Returns (loss, dpred)."""
    pred = np.asarray(pred)
    target = np.asarray(target, dtype=pred.dtype)
    if pred.shape != target.shape:
        raise ValueError(f"mse: 'pred' has shape {pred.shape} but 'target' has shape {target.shape}")
    diff = pred - target
    return float(np.mean(diff * diff)), 2 * diff / diff.size
