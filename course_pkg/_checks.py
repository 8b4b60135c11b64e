"""Input checks shared by every layer.

Each check raises a TypeError or ValueError whose message names the function, the argument, what was expected and
what came, so that a student who passes the wrong thing learns what to fix.
"""

import numpy as np

_FLOAT_KINDS = ("f",)


def as_float_array(fn, name, value):
    """Return `value` as a floating numpy array, or raise a TypeError naming `name`."""
    arr = np.asarray(value)
    if arr.dtype.kind not in _FLOAT_KINDS:
        raise TypeError(
            f"{fn}: argument '{name}' must be a floating-point array (float32 or float64); "
            f"got dtype {arr.dtype}"
        )
    return arr


def check_shape(fn, name, arr, expected, meaning):
    """Raise a ValueError unless arr.shape == expected.

    `meaning` spells the expected shape in symbols, for example "(D, 4H)".
    """
    if arr.shape != tuple(expected):
        raise ValueError(
            f"{fn}: argument '{name}' must have shape {meaning} = {tuple(expected)}; got {arr.shape}"
        )


def check_rank(fn, name, arr, rank, meaning):
    if arr.ndim != rank:
        raise ValueError(
            f"{fn}: argument '{name}' must be {rank}-dimensional with shape {meaning}; "
            f"got {arr.ndim} dimension(s), shape {arr.shape}"
        )


def common_dtype(*arrays):
    """The dtype the computation runs in: numpy's promotion of the inputs (float32 stays float32)."""
    return np.result_type(*arrays)


def cast_common(*arrays):
    """All arrays in their common dtype (float32 stays float32; float32 with float64 gives float64)."""
    dtype = common_dtype(*arrays)
    return [a.astype(dtype, copy=False) for a in arrays]


def check_params(fn, W, U, b, D, H, gates, b_shape=None, b_meaning=None):
    """Check W (D, gates*H), U (H, gates*H) and b against the sizes taken from x and the state."""
    g = "" if gates == 1 else str(gates)
    W = as_float_array(fn, "W", W)
    U = as_float_array(fn, "U", U)
    b = as_float_array(fn, "b", b)
    check_shape(fn, "W", W, (D, gates * H), f"(D, {g}H) with D={D}, H={H}")
    check_shape(fn, "U", U, (H, gates * H), f"(H, {g}H) with H={H}")
    if b_shape is None:
        b_shape, b_meaning = (gates * H,), f"({g}H,) with H={H}"
    check_shape(fn, "b", b, b_shape, b_meaning)
    return W, U, b


def _check_inputs(fn, x_name, x, x_meaning, states, W, U, b, gates, b_shape_fn):
    """x (B, [T,] D), states [(name, array)] each (B, H), then W, U, b; returns them converted, in that order."""
    x = as_float_array(fn, x_name, x)
    check_rank(fn, x_name, x, x_meaning.count(",") + 1, x_meaning)
    B, D = x.shape[0], x.shape[-1]
    if x.ndim == 3 and x.shape[1] == 0:
        raise ValueError(f"{fn}: argument '{x_name}' must hold at least one time step; got shape {x.shape}")
    out = [x]
    H = None
    for name, s in states:
        s = as_float_array(fn, name, s)
        check_rank(fn, name, s, 2, "(B, H)")
        if H is None:
            H = s.shape[1]
        check_shape(fn, name, s, (B, H), f"(B, H) with B={B} from {x_name}, H={H}")
        out.append(s)
    b_shape, b_meaning = b_shape_fn(H) if b_shape_fn else (None, None)
    out.extend(check_params(fn, W, U, b, D, H, gates, b_shape, b_meaning))
    return out


def check_step_inputs(fn, x_t, states, W, U, b, gates, b_shape_fn=None):
    """Validate a single-step call: x_t (B, D) and states [(name, array)] each (B, H).

    Returns the arrays converted, in the order x_t, *states, W, U, b.
    """
    return _check_inputs(fn, "x_t", x_t, "(B, D)", states, W, U, b, gates, b_shape_fn)


def check_sequence_inputs(fn, x, states, W, U, b, gates, b_shape_fn=None):
    """Validate a whole-sequence call: x (B, T, D) and initial states (B, H), then W, U, b."""
    return _check_inputs(fn, "x", x, "(B, T, D)", states, W, U, b, gates, b_shape_fn)


def check_upstream(fn, name, d, expected, meaning, dtype=None):
    """Check an upstream gradient; cast it to `dtype` (the forward pass's) so all gradients come out in that dtype."""
    d = as_float_array(fn, name, d)
    check_shape(fn, name, d, expected, meaning)
    return d if dtype is None else d.astype(dtype, copy=False)


def check_truncate(fn, truncate, T):
    if truncate is None:
        return T
    if isinstance(truncate, bool) or not isinstance(truncate, (int, np.integer)) or truncate < 1:
        raise ValueError(f"{fn}: argument 'truncate' must be None or a positive integer k; got {truncate!r}")
    return int(truncate)
