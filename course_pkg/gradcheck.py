"""Gradient checking by central differences, in float64.

For a function f whose outputs y_1, ..., y_m we give upstream gradients dy_1, ..., dy_m, the scalar
L = sum_k <y_k, dy_k> has dL/dp = what the backward pass returns for p, for every input p. The numerical gradient is

    dL/dp[j] ~ (L(p + eps e_j) - L(p - eps e_j)) / (2 eps)

with an error of order eps^2, which in float64 leaves a relative error far below 1e-7 for a correct backward pass
and of order 1 for a wrong one.
"""

import numpy as np


def relative_error(a, b):
    """|a - b| / (|a| + |b|) with Euclidean norms over the whole array; 0 when both are zero."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def numerical_gradient(f, inputs, name, douts, eps=1e-6):
    """dL/d inputs[name] by central differences, where L = sum_k <f(**inputs)[k], douts[k]>.

    `inputs` is a dict of float64 arrays; inputs[name] is perturbed in place and restored.
    """
    p = inputs[name]
    if not isinstance(p, np.ndarray) or p.dtype != np.float64:
        got = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
        raise TypeError(f"numerical_gradient: input '{name}' must be float64 for a meaningful check; got {got}")
    grad = np.zeros_like(p)
    it = np.nditer(p, flags=["multi_index"])
    for _ in it:
        j = it.multi_index
        old = p[j]
        p[j] = old + eps
        plus = _loss(f(**inputs), douts)
        p[j] = old - eps
        minus = _loss(f(**inputs), douts)
        p[j] = old
        grad[j] = (plus - minus) / (2 * eps)
    return grad


def _as_tuple(y):
    return y if isinstance(y, tuple) else (y,)


def _loss(outputs, douts):
    return sum(float(np.sum(y * dy)) for y, dy in zip(_as_tuple(outputs), douts))


class GradcheckReport:
    """Relative error of each analytic gradient against its numerical twin."""

    def __init__(self, errors, tol):
        self.errors = errors
        self.tol = tol

    @property
    def max_error(self):
        return max(self.errors.values())

    @property
    def passed(self):
        return self.max_error <= self.tol

    def __str__(self):
        width = max(len("input"), *(len(n) for n in self.errors))
        lines = [f"{'input':<{width}}  relative error  (tolerance {self.tol:.0e})"]
        for name, err in self.errors.items():
            lines.append(f"{name:<{width}}  {err:14.2e}  {'ok' if err <= self.tol else 'FAILED'}")
        return "\n".join(lines)

    __repr__ = __str__


def gradcheck(f, inputs, analytic, douts, eps=1e-6, tol=1e-7):
    """Compare analytic gradients with central differences.

    f(**inputs) returns an array or a tuple of arrays; douts holds one upstream gradient per output; analytic maps
    each input name to the gradient the backward pass computed. Returns a GradcheckReport (print it, or check
    report.passed).

    Inputs that are arrays are checked in float64 (converted); other inputs (reset_after=...) go to f unchanged and
    cannot be differentiated. The analytic gradients must be float64 and shaped like their inputs, and each upstream
    gradient shaped like its output; anything else raises a TypeError or ValueError saying which.
    """
    inputs = {k: np.array(v, dtype=np.float64) if isinstance(v, np.ndarray) else v for k, v in inputs.items()}
    douts = tuple(np.asarray(d, dtype=np.float64) for d in _as_tuple(douts))
    outputs = _as_tuple(f(**inputs))
    if len(douts) > len(outputs):
        raise ValueError(f"gradcheck: {len(douts)} upstream gradients (douts) for {len(outputs)} output(s) of f")
    for k, (y, dy) in enumerate(zip(outputs, douts)):
        if np.shape(y) != dy.shape:  # <y, dy> would broadcast silently
            raise ValueError(f"gradcheck: douts[{k}] has shape {dy.shape}; output {k} of f has shape {np.shape(y)}")
    errors = {}
    for name, grad in analytic.items():
        if name not in inputs:
            raise KeyError(f"gradcheck: analytic gradient for '{name}', which is not among the inputs {list(inputs)}")
        if not isinstance(inputs[name], np.ndarray):
            raise TypeError(
                f"gradcheck: input '{name}' must be a float64 array to be differentiated; "
                f"got {type(inputs[name]).__name__}"
            )
        if np.shape(grad) != inputs[name].shape:
            raise ValueError(
                f"gradcheck: gradient for '{name}' has shape {np.shape(grad)}; the input has {inputs[name].shape}"
            )
        if np.asarray(grad).dtype != np.float64:
            raise TypeError(
                f"gradcheck: analytic gradient for '{name}' must be float64 (a float32 backward pass cannot meet "
                f"tolerance {tol:.0e}: run the forward and backward passes in float64); got {np.asarray(grad).dtype}"
            )
        num = numerical_gradient(f, inputs, name, douts, eps)
        errors[name] = relative_error(grad, num)
    return GradcheckReport(errors, tol)
