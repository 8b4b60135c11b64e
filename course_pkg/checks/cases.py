"""Random inputs for the checks: shapes small enough to run in milliseconds, values away from saturation so that a
wrong activation or a missing term changes the outputs visibly."""

import numpy as np

from .core import Case


def dims(rng, square=False):
    """B, T, D, H: B from 1 (a batch of one hides broadcasting bugs), T from 2 (one step hides bugs of the recurrence), D == H when square (x and h swapped is then
    not a shape error but a wrong value, which the checker can name)."""
    B = int(rng.integers(1, 5))
    T = int(rng.integers(2, 7))
    H = int(rng.integers(2, 6))
    D = H if square else int(rng.choice([d for d in range(1, 7) if d != H]))
    return B, T, D, H


def normal(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def params(rng, D, H, gates, dtype, bias_shape=None):
    """W (D, gH), U (H, gH), b: scaled so that pre-activations have unit-order spread, and a bias that is not zero."""
    W = normal(rng, (D, gates * H), dtype, 1.0 / np.sqrt(D))
    U = normal(rng, (H, gates * H), dtype, 1.0 / np.sqrt(H))
    b = normal(rng, bias_shape or (gates * H,), dtype, 0.5)
    return W, U, b


def label(dtype, **sizes):
    return f"{np.dtype(dtype).name}, " + " ".join(f"{k}={v}" for k, v in sizes.items())


def case(inputs, dtype, **sizes):
    return Case(inputs, label(dtype, **sizes), np.dtype(dtype))
