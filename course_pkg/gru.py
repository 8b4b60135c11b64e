"""The gated recurrent unit (Cho et al. 2014), in Keras' layout, in both of its conventions.

Gate order z (update), r (reset), h (candidate). W (D, 3H), U (H, 3H).

reset_after=True (Keras' default, cuDNN, PyTorch), b (2, 3H): row 0 on the input side, row 1 on the recurrent side:
    xw = x_t W + b[0],  hu = h_{t-1} U + b[1]
    z = sigmoid(xw_z + hu_z),  r = sigmoid(xw_r + hu_r)
    h~ = tanh(xw_h + r * hu_h)                      reset applied after the matrix product

reset_after=False (Cho et al. 2014), b (3H,):
    xw = x_t W + b
    z = sigmoid(xw_z + h_{t-1} U_z),  r = sigmoid(xw_r + h_{t-1} U_r)
    h~ = tanh(xw_h + (r * h_{t-1}) U_h)             reset applied before the matrix product

Both:  h_t = z * h_{t-1} + (1 - z) * h~   (z near 1 keeps the old state; some texts swap z and 1 - z)
The two conventions are different models: the same weights give different outputs.
"""

import numpy as np

from . import _checks
from ._affine import affine_backward, batch_major, flat, input_projection, time_major
from .activations import sigmoid


def _bias_shape(reset_after):
    if reset_after:
        return lambda H: ((2, 3 * H), f"(2, 3H) with H={H} (reset_after=True)")
    return lambda H: ((3 * H,), f"(3H,) with H={H} (reset_after=False)")


def _check_reset_after(fn, reset_after):
    if not isinstance(reset_after, (bool, np.bool_)):
        raise TypeError(f"{fn}: argument 'reset_after' must be True or False; got {reset_after!r}")
    return bool(reset_after)


def _cell(gates, h_prev, U, b_rec, h_t, aux):
    """One GRU update, in place.

    gates (B, 3H) holds x_t W + b_in on entry and z, r, h~ on exit. b_rec is b[1] (reset_after=True) or None.
    aux (B, H) receives hu_h = h_{t-1} U_h + b_rec_h (reset_after=True) or r * h_{t-1} (reset_after=False), which
    the backward pass needs. h_t (B, H) receives the new state.
    """
    H = h_prev.shape[1]
    zr, cand = gates[:, : 2 * H], gates[:, 2 * H :]
    if b_rec is not None:
        hu = h_prev @ U
        hu += b_rec
        zr += hu[:, : 2 * H]
        sigmoid(zr, out=zr)
        np.multiply(gates[:, H : 2 * H], hu[:, 2 * H :], out=aux)
        cand += aux
        aux[:] = hu[:, 2 * H :]
    else:
        zr += h_prev @ U[:, : 2 * H]
        sigmoid(zr, out=zr)
        np.multiply(gates[:, H : 2 * H], h_prev, out=aux)
        cand += aux @ U[:, 2 * H :]
    np.tanh(cand, out=cand)
    z = gates[:, :H]
    np.subtract(h_prev, cand, out=h_t)  # h_t = h~ + z * (h_{t-1} - h~)
    h_t *= z
    h_t += cand


def _cell_backward(dh, gates, h_prev, aux, U, reset_after, da_x, da_h):
    """Backward through one GRU update given dL/dh_t.

    Writes dL/d(xw) into da_x (B, 3H) and dL/d(hu) into da_h: (B, 3H) for reset_after=True, where hu = h U + b[1];
    (B, 3H) for reset_after=False too, where the last block is the gradient of (r * h_{t-1}) U_h's pre-activation.
    Returns dL/dh_{t-1}.
    """
    H = h_prev.shape[1]
    z, r, cand = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :]
    dx_z, dx_r, dx_h = da_x[:, :H], da_x[:, H : 2 * H], da_x[:, 2 * H :]
    np.multiply(dh * (1 - z), 1 - cand * cand, out=dx_h)  # through the tanh of the candidate
    np.multiply(dh * (h_prev - cand), z * (1 - z), out=dx_z)
    dh_prev = dh * z
    if reset_after:
        np.multiply(dx_h * aux, r * (1 - r), out=dx_r)  # aux = hu_h
        da_h[:, : 2 * H] = da_x[:, : 2 * H]
        np.multiply(dx_h, r, out=da_h[:, 2 * H :])
        dh_prev += da_h @ U.T
    else:
        d_rh = dx_h @ U[:, 2 * H :].T  # dL/d(r * h_{t-1})
        np.multiply(d_rh * h_prev, r * (1 - r), out=dx_r)
        dh_prev += d_rh * r
        da_h[:] = da_x
        dh_prev += da_x[:, : 2 * H] @ U[:, : 2 * H].T
    return dh_prev


def _param_grads(x, h_prev, aux, da_x, da_h, W, reset_after):
    """dx, dW, dU, db from the pre-activation gradients; works on one step or on T*B rows at once."""
    if reset_after:
        dx, dW, dU, db_in = affine_backward(x, h_prev, da_x, W, da_h)
        return dx, dW, dU, np.stack([db_in, da_h.sum(axis=0)])
    H = h_prev.shape[1]
    dx, dW, dU, db = affine_backward(x, h_prev, da_x, W, da_h)
    dU[:, 2 * H :] = aux.T @ da_x[:, 2 * H :]  # the candidate's U_h sees r * h_{t-1}, not h_{t-1}
    return dx, dW, dU, db


def _gate_parts(fn, k, x_t, h_prev, W, U, b, reset_after):
    """Block k (0 z, 1 r, 2 h) of the input side x_t W + b_in and of the recurrent side h_prev U (+ b_rec)."""
    reset_after = _check_reset_after(fn, reset_after)
    x_t, h_prev, W, U, b = _checks.cast_common(
        *_checks.check_step_inputs(fn, x_t, [("h_prev", h_prev)], W, U, b, 3, _bias_shape(reset_after))
    )
    H = h_prev.shape[1]
    block = slice(k * H, (k + 1) * H)
    b_in, b_rec = (b[0], b[1]) if reset_after else (b, None)
    xw = x_t @ W[:, block] + b_in[block]
    hu = h_prev @ U[:, block]
    if b_rec is not None:
        hu = hu + b_rec[block]
    return xw, hu, h_prev, U[:, block]


def update_gate(x_t, h_prev, W, U, b, reset_after=True):
    """z_t = sigmoid(x_t W_z + h_prev U_z + biases): the share of h_{t-1} kept (block 0). Returns (B, H)."""
    xw, hu, _, _ = _gate_parts("update_gate", 0, x_t, h_prev, W, U, b, reset_after)
    return sigmoid(xw + hu)


def reset_gate(x_t, h_prev, W, U, b, reset_after=True):
    """r_t = sigmoid(x_t W_r + h_prev U_r + biases): how much of h_{t-1} the candidate sees (block 1). (B, H)."""
    xw, hu, _, _ = _gate_parts("reset_gate", 1, x_t, h_prev, W, U, b, reset_after)
    return sigmoid(xw + hu)


def candidate(x_t, h_prev, r, W, U, b, reset_after=True):
    """The candidate state h~_t (block 2), given the reset gate r (B, H). Returns (B, H).

    reset_after=True:  tanh(x_t W_h + b_in_h + r * (h_prev U_h + b_rec_h))   reset after the product (Keras default)
    reset_after=False: tanh(x_t W_h + (r * h_prev) U_h + b_h)                reset before the product (Cho et al.)
    """
    xw, hu, h_prev, U_h = _gate_parts("candidate", 2, x_t, h_prev, W, U, b, reset_after)
    r = _checks.check_upstream("candidate", "r", r, h_prev.shape, "(B, H)", h_prev.dtype)
    if reset_after:
        return np.tanh(xw + r * hu)
    return np.tanh(xw + (r * h_prev) @ U_h)


def gru_step_forward(x_t, h_prev, W, U, b, reset_after=True):
    """One GRU step.

    Inputs: x_t (B, D), h_prev (B, H), W (D, 3H), U (H, 3H), b (2, 3H) if reset_after else (3H,).
    Returns h_t (B, H) and a cache in which cache["z"], cache["r"] and cache["h_tilde"] (the candidate) are exposed.
    """
    fn = "gru_step_forward"
    reset_after = _check_reset_after(fn, reset_after)
    x_t, h_prev, W, U, b = _checks.cast_common(
        *_checks.check_step_inputs(fn, x_t, [("h_prev", h_prev)], W, U, b, 3, _bias_shape(reset_after))
    )
    gates = x_t @ W + (b[0] if reset_after else b)
    h_t = np.empty_like(h_prev)
    aux = np.empty_like(h_prev)
    _cell(gates, h_prev, U, b[1] if reset_after else None, h_t, aux)
    H = h_prev.shape[1]
    cache = {
        "x_t": x_t, "h_prev": h_prev, "W": W, "U": U, "reset_after": reset_after, "gates": gates, "aux": aux,
        "z": gates[:, :H], "r": gates[:, H : 2 * H], "h_tilde": gates[:, 2 * H :], "h_t": h_t,
    }
    return h_t, cache


def gru_step_backward(dh_t, cache):
    """Backward pass of one GRU step.

    dh_t (B, H). Returns dx_t (B, D), dh_prev (B, H), dW (D, 3H), dU (H, 3H), db (shape of b).
    """
    h_t = cache["h_t"]
    dh_t = _checks.check_upstream("gru_step_backward", "dh_t", dh_t, h_t.shape, "(B, H)", h_t.dtype)
    da_x = np.empty_like(cache["gates"])
    da_h = np.empty_like(da_x)
    ra = cache["reset_after"]
    dh_prev = _cell_backward(dh_t, cache["gates"], cache["h_prev"], cache["aux"], cache["U"], ra, da_x, da_h)
    dx_t, dW, dU, db = _param_grads(cache["x_t"], cache["h_prev"], cache["aux"], da_x, da_h, cache["W"], ra)
    return dx_t, dh_prev, dW, dU, db


def gru_forward(x, h0, W, U, b, reset_after=True):
    """Run a GRU over a whole sequence.

    Inputs: x (B, T, D), h0 (B, H), W (D, 3H), U (H, 3H), b (2, 3H) if reset_after else (3H,).
    Returns h (B, T, H) and the cache for gru_backward; cache["z"], cache["r"], cache["h_tilde"] are (B, T, H).
    """
    fn = "gru_forward"
    reset_after = _check_reset_after(fn, reset_after)
    x, h0, W, U, b = _checks.cast_common(
        *_checks.check_sequence_inputs(fn, x, [("h0", h0)], W, U, b, 3, _bias_shape(reset_after))
    )
    B, T, _ = x.shape
    H = h0.shape[1]
    xs = time_major(x)
    G = input_projection(xs, W, b[0] if reset_after else b)  # (T, B, 3H): becomes z, r, h~
    hs = np.empty((T + 1, B, H), dtype=x.dtype)
    aux = np.empty((T, B, H), dtype=x.dtype)
    hs[0] = h0
    b_rec = b[1] if reset_after else None
    for t in range(T):
        _cell(G[t], hs[t], U, b_rec, hs[t + 1], aux[t])
    cache = {"xs": xs, "hs": hs, "gates": G, "aux": aux, "W": W, "U": U, "reset_after": reset_after}
    for name, sl in (("z", slice(0, H)), ("r", slice(H, 2 * H)), ("h_tilde", slice(2 * H, 3 * H))):
        cache[name] = np.swapaxes(G[:, :, sl], 0, 1)
    return batch_major(hs[1:]), cache


def gru_backward(dh, cache, truncate=None):
    """Backpropagation through time for the GRU.

    dh (B, T, H): gradient of the loss with respect to every hidden state.
    Returns dx (B, T, D), dh0 (B, H), dW (D, 3H), dU (H, 3H), db (shape of b).
    truncate=k: as in rnn_backward.
    """
    hs, G, aux, U, ra = cache["hs"], cache["gates"], cache["aux"], cache["U"], cache["reset_after"]
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dh = _checks.check_upstream("gru_backward", "dh", dh, (B, T, H), "(B, T, H)", hs.dtype)
    k = _checks.check_truncate("gru_backward", truncate, T)
    dAx = np.empty_like(G)
    dAh = np.empty_like(G)
    carry = np.zeros((B, H), dtype=hs.dtype)
    for t in reversed(range(T)):
        carry = _cell_backward(dh[:, t] + carry, G[t], hs[t], aux[t], U, ra, dAx[t], dAh[t])
        if t % k == 0 and t > 0:
            carry[:] = 0
    xs = cache["xs"]
    dxs, dW, dU, db = _param_grads(flat(xs), flat(hs[:-1]), flat(aux), flat(dAx), flat(dAh), cache["W"], ra)
    return batch_major(dxs.reshape(xs.shape)), carry, dW, dU, db
