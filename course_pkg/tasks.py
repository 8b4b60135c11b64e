"""Synthetic sequence tasks from the literature, generated (nothing downloaded), seeded and reproducible."""

import numpy as np

#: The MSE of always predicting 1, the mean of the adding problem's target: Var(X1 + X2) = 2/12 for X ~ U[0, 1].
ADDING_BASELINE_MSE = 1 / 6


def adding_problem(n, T, seed=None, dtype=np.float32):
    """The adding problem as in Le et al. (2015) and Arjovsky et al. (2016).

    Each of the n sequences has T steps of two channels: a value ~ U[0, 1] and a marker that is 1 at exactly two
    steps, one drawn in each half of the sequence, and 0 elsewhere. The target is the sum of the two marked values.
    Returns x (n, T, 2) and y (n,). A model that ignores the input does best by predicting 1: MSE 1/6.
    """
    if T < 2:
        raise ValueError(f"adding_problem: T must be at least 2 (one marker in each half); got {T}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    values = rng.uniform(0, 1, size=(n, T))
    half = T // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, T, size=n)
    markers = np.zeros((n, T))
    rows = np.arange(n)
    markers[rows, first] = 1
    markers[rows, second] = 1
    x = np.stack([values, markers], axis=-1).astype(dtype)
    y = (values[rows, first] + values[rows, second]).astype(dtype)
    return x, y
