"""LSTM variants of Greff et al. (2017), "LSTM: A Search Space Odyssey", as switches on one cell.

The base is course_pkg.lstm (Keras' LSTM: forget gate, no peepholes; Greff et al. call it NP). Each variant changes
one part:

    name      what changes                                         i        f                 g          h
    vanilla   nothing (course_pkg.lstm's cell)                     sig(a_i) sig(a_f)          tanh(a_g)  o tanh(c)
    peephole  gates also see the cell: p_i c_{t-1}, p_f c_{t-1},   sig(a_i + p_i c_{t-1}) ...        o = sig(a_o + p_o c_t)
              p_o c_t (Gers & Schmidhuber 2000; Greff's "V")
    NIG       no input gate                                        1
    NFG       no forget gate (the LSTM of 1997)                             1
    NOG       no output gate                                                                         o = 1
    NIAF      no input activation                                                             a_g
    NOAF      no output activation                                                                   o c
    CIFG      coupled input and forget gate                                 1 - i

Every variant keeps the parameter layout W (D, 4H), U (H, 4H), b (4H,) with blocks i, f, g, o, plus P (3, H) for
the peepholes (rows p_i, p_f, p_o; ignored unless peepholes are on). The blocks a variant does not use take no part
in the computation and get zero gradients; `effective_parameter_count` counts only the used ones.
"""

import numpy as np

from . import _checks
from ._affine import affine_backward, batch_major, flat, input_projection, time_major
from .activations import sigmoid

#: name -> the switches that define it
VARIANTS = {
    "vanilla": {},
    "peephole": {"peepholes": True},
    "NIG": {"input_gate": False},
    "NFG": {"forget_gate": False},
    "NOG": {"output_gate": False},
    "NIAF": {"input_activation": False},
    "NOAF": {"output_activation": False},
    "CIFG": {"coupled": True},
}

_DEFAULTS = {
    "peepholes": False, "input_gate": True, "forget_gate": True, "output_gate": True,
    "input_activation": True, "output_activation": True, "coupled": False,
}


def _switches(variant):
    if variant not in VARIANTS:
        raise ValueError(f"unknown LSTM variant {variant!r}; expected one of {sorted(VARIANTS)}")
    return {**_DEFAULTS, **VARIANTS[variant]}


def effective_parameter_count(D, H, variant):
    """The number of parameters the variant actually uses."""
    s = _switches(variant)
    gates = int(s["input_gate"]) + int(s["forget_gate"] and not s["coupled"]) + int(s["output_gate"])
    peepholes = gates * H if s["peepholes"] else 0
    return (1 + gates) * (D + H + 1) * H + peepholes


def _step(a, c_prev, P, s):
    """One cell update from the pre-activations a (B, 4H) = x W + h U + b. Returns h, c and what backward needs."""
    H = c_prev.shape[1]
    a_i, a_f, a_g, a_o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    pi, pf, po = (P[0], P[1], P[2]) if s["peepholes"] else (0, 0, 0)
    ones = np.ones_like(c_prev)
    i = sigmoid(a_i + pi * c_prev) if s["input_gate"] else ones
    if s["coupled"]:
        f = 1 - i
    else:
        f = sigmoid(a_f + pf * c_prev) if s["forget_gate"] else ones
    g = np.tanh(a_g) if s["input_activation"] else a_g.copy()
    c = f * c_prev + i * g
    o = sigmoid(a_o + po * c) if s["output_gate"] else ones
    act_c = np.tanh(c) if s["output_activation"] else c
    h = o * act_c
    return h, c, {"i": i, "f": f, "g": g, "o": o, "c": c, "c_prev": c_prev, "act_c": act_c}


def _step_backward(dh, dc, st, P, s, da):
    """Backward through _step: writes dL/da into da (B, 4H); returns dc_prev and dP (3, H)."""
    H = dh.shape[1]
    i, f, g, o, c, c_prev, act_c = (st[k] for k in ("i", "f", "g", "o", "c", "c_prev", "act_c"))
    dP = np.zeros((3, H), dtype=dh.dtype)
    da[:] = 0
    dact = dh * o
    dc = dc + (dact * (1 - act_c * act_c) if s["output_activation"] else dact)
    if s["output_gate"]:
        da[:, 3 * H :] = dh * act_c * o * (1 - o)
        if s["peepholes"]:
            dc += da[:, 3 * H :] * P[2]
            dP[2] = (da[:, 3 * H :] * c).sum(axis=0)
    di, df = dc * g, dc * c_prev
    dg = dc * i
    dc_prev = dc * f
    if s["coupled"]:
        di = di - df  # f = 1 - i
    elif s["forget_gate"]:
        da[:, H : 2 * H] = df * f * (1 - f)
    if s["input_gate"]:
        da[:, :H] = di * i * (1 - i)
    da[:, 2 * H : 3 * H] = dg * (1 - g * g) if s["input_activation"] else dg
    if s["peepholes"]:
        dc_prev += da[:, :H] * P[0] + da[:, H : 2 * H] * P[1]
        dP[0] = (da[:, :H] * c_prev).sum(axis=0)
        dP[1] = (da[:, H : 2 * H] * c_prev).sum(axis=0)
    return dc_prev, dP


def init_peepholes(H, dtype=np.float32):
    """Peephole weights P (3, H), zero (Keras has no peepholes; a zero start is the usual choice)."""
    return np.zeros((3, H), dtype=dtype)


def lstm_variant_forward(x, h0, c0, W, U, b, P=None, variant="vanilla"):
    """Run an LSTM variant over a sequence: x (B, T, D), h0, c0 (B, H), W (D, 4H), U (H, 4H), b (4H,), P (3, H).

    Returns h (B, T, H), c (B, T, H) and the cache for lstm_variant_backward. With variant="vanilla" this is
    exactly course_pkg.lstm.lstm_forward.
    """
    fn = "lstm_variant_forward"
    s = _switches(variant)
    x, h0, c0, W, U, b = _checks.cast_common(
        *_checks.check_sequence_inputs(fn, x, [("h0", h0), ("c0", c0)], W, U, b, gates=4)
    )
    B, T, _ = x.shape
    H = h0.shape[1]
    if P is None:
        P = init_peepholes(H, x.dtype)
    P = _checks.as_float_array(fn, "P", P).astype(x.dtype, copy=False)
    _checks.check_shape(fn, "P", P, (3, H), f"(3, H) with H={H}")
    xs = time_major(x)
    A = input_projection(xs, W, b)
    hs = np.empty((T + 1, B, H), dtype=x.dtype)
    cs = np.empty((T + 1, B, H), dtype=x.dtype)
    hs[0], cs[0] = h0, c0
    steps = []
    for t in range(T):
        A[t] += hs[t] @ U
        hs[t + 1], cs[t + 1], st = _step(A[t], cs[t], P, s)
        steps.append(st)
    cache = {"xs": xs, "hs": hs, "steps": steps, "W": W, "U": U, "P": P, "switches": s}
    return batch_major(hs[1:]), batch_major(cs[1:]), cache


def lstm_variant_backward(dh, cache):
    """BPTT for lstm_variant_forward. dh (B, T, H). Returns dx, dh0, dc0, dW, dU, db, dP."""
    hs, U, P, s = cache["hs"], cache["U"], cache["P"], cache["switches"]
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dh = _checks.check_upstream("lstm_variant_backward", "dh", dh, (B, T, H), "(B, T, H)", hs.dtype)
    dA = np.empty((T, B, 4 * H), dtype=hs.dtype)
    dP = np.zeros((3, H), dtype=hs.dtype)
    dh_carry = np.zeros((B, H), dtype=hs.dtype)
    dc_carry = np.zeros((B, H), dtype=hs.dtype)
    for t in reversed(range(T)):
        dc_carry, dP_t = _step_backward(dh[:, t] + dh_carry, dc_carry, cache["steps"][t], P, s, dA[t])
        dP += dP_t
        dh_carry = dA[t] @ U.T
    xs = cache["xs"]
    dxs, dW, dU, db = affine_backward(flat(xs), flat(hs[:-1]), flat(dA), cache["W"])
    if not s["peepholes"]:
        dP[:] = 0
    return batch_major(dxs.reshape(xs.shape)), dh_carry, dc_carry, dW, dU, db, dP
