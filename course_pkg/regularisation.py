"""Dropout for recurrent networks, zoneout, and initialisations of the LSTM and the simple RNN.

The LSTM here is course_pkg.lstm's (Keras' layout: W (D, 4H), U (H, 4H), b (4H,), gates i, f, g, o), with noise:

- variational dropout (Gal & Ghahramani 2016): one mask per sequence, the same at every step, on the input x_t and
  on the previous state h_{t-1}, one mask per gate g:
      a_t,g = (x_t * m_x,g) W_g + (h_{t-1} * m_h,g) U_g + b_g
  This is what keras.layers.LSTM computes in training with `recurrent_dropout` > 0 (it then switches to its
  per-gate implementation and draws four input masks and four recurrent masks per batch, cached for all steps);
  with `dropout` alone it draws one input mask shared by the gates. `lstm_forward_dropout` takes either: a mask of
  shape (B, D) or (B, H) is shared by the gates, (B, 4, D) or (B, 4, H) is one per gate.
- zoneout (Krueger et al. 2017): at every step each unit keeps its previous value with probability z instead of
  taking the new one (masks k_c, k_h of shape (B, T, H), 1 = keep):
      c~_t = f_t * c_{t-1} + i_t * g_t,   c_t = k_c * c_{t-1} + (1 - k_c) * c~_t
      h_t = k_h * h_{t-1} + (1 - k_h) * o_t * tanh(c~_t)
  At test time the masks are replaced by their expectation z.
- weight dropout (DropConnect on U, Merity et al. 2018): U * M with one mask M (H, 4H) per batch; it needs no new
  forward pass (lstm_forward with U * M; the gradient of U is dU * M).

Masks are "inverted" for dropout (entries 0 or 1 / (1 - p), so the expectation is unchanged) and 0/1 for zoneout.
"""

import numpy as np

from .activations import sigmoid
from .lstm import _cell_backward


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def dropout_mask(shape, p, seed=None, dtype=np.float32):
    """An inverted dropout mask: 0 with probability p, else 1 / (1 - p). shape e.g. (B, D), (B, H) or (B, 4, H)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout_mask: p must be in [0, 1), got {p}")
    keep = _rng(seed).random(shape) >= p
    return (keep / (1 - p)).astype(dtype)


def zoneout_masks(shape, z, seed=None, dtype=np.float32):
    """0/1 masks for zoneout: 1 (keep the previous value) with probability z. shape (B, T, H)."""
    if not 0 <= z <= 1:
        raise ValueError(f"zoneout_masks: z must be in [0, 1], got {z}")
    return (_rng(seed).random(shape) < z).astype(dtype)


def _per_gate(mask, B, n, dtype, name):
    """A mask as (B, 4, n): a shared (B, n) mask repeated for the four gates; None means no dropout."""
    if mask is None:
        return np.ones((B, 4, n), dtype)
    mask = np.asarray(mask, dtype)
    if mask.shape == (B, n):
        return np.repeat(mask[:, None, :], 4, axis=1)
    if mask.shape != (B, 4, n):
        raise ValueError(f"{name} must be {(B, n)} (shared) or {(B, 4, n)} (one per gate), got {mask.shape}")
    return mask


def lstm_forward_dropout(x, h0, c0, W, U, b, mask_x=None, mask_h=None):
    """An LSTM over a sequence with variational dropout: x (B, T, D), h0, c0 (B, H), W (D, 4H), U (H, 4H), b (4H,),
    mask_x (B, D) or (B, 4, D), mask_h (B, H) or (B, 4, H): shared by the gates or one per gate; None: no dropout.

    Returns h (B, T, H), c (B, T, H) and the cache for lstm_backward_dropout. With no masks it is lstm_forward.
    """
    x, h0, c0, W, U, b = (np.asarray(a) for a in (x, h0, c0, W, U, b))
    dtype = np.result_type(x, W, U)
    B, T, D = x.shape
    H = h0.shape[1]
    mx = _per_gate(mask_x, B, D, dtype, "mask_x")
    mh = _per_gate(mask_h, B, H, dtype, "mask_h")
    U_g = U.reshape(H, 4, H)  # U_g[:, g] is gate g's (H, H) block
    W_g = W.reshape(D, 4, H)
    xm = x[:, :, None, :] * mx[:, None]  # (B, T, 4, D): what each gate's block of W multiplies
    A = (np.einsum("btgd,dgk->tbgk", xm, W_g).reshape(T, B, 4 * H) + b).astype(dtype)  # (T, B, 4H)
    hs = np.empty((T + 1, B, H), dtype)
    cs = np.empty((T + 1, B, H), dtype)
    hs[0], cs[0] = h0, c0
    for t in range(T):
        A[t] += np.einsum("bgh,hgk->bgk", hs[t][:, None, :] * mh, U_g).reshape(B, 4 * H)
        a = A[t]
        sigmoid(a[:, : 2 * H], out=a[:, : 2 * H])
        np.tanh(a[:, 2 * H : 3 * H], out=a[:, 2 * H : 3 * H])
        sigmoid(a[:, 3 * H :], out=a[:, 3 * H :])
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        cs[t + 1] = f * cs[t] + i * g
        hs[t + 1] = o * np.tanh(cs[t + 1])
    cache = {"xm": xm, "mx": mx, "mh": mh, "hs": hs, "cs": cs, "gates": A, "W_g": W_g, "U_g": U_g}
    return np.swapaxes(hs[1:], 0, 1).copy(), np.swapaxes(cs[1:], 0, 1).copy(), cache


def lstm_backward_dropout(dh, cache):
    """Backpropagation through time for lstm_forward_dropout. dh (B, T, H) -> dx (B, T, D), dh0 (B, H),
    dc0 (B, H), dW (D, 4H), dU (H, 4H), db (4H,). The masks are constants: gradients flow only where they are not 0,
    scaled by them."""
    hs, cs, A, U_g, mh = cache["hs"], cache["cs"], cache["gates"], cache["U_g"], cache["mh"]
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dA = np.empty_like(A)
    dh_carry = np.zeros((B, H), hs.dtype)
    dc_carry = np.zeros((B, H), hs.dtype)
    dU_g = np.zeros_like(U_g)
    for t in reversed(range(T)):
        dc_carry = _cell_backward(dh[:, t] + dh_carry, dc_carry, A[t], cs[t], np.tanh(cs[t + 1]), dA[t])
        da = dA[t].reshape(B, 4, H)
        hm = hs[t][:, None, :] * mh  # (B, 4, H): what each gate's block multiplied
        dU_g += np.einsum("bgh,bgk->hgk", hm, da)
        dh_carry = (np.einsum("bgk,hgk->bgh", da, U_g) * mh).sum(axis=1)
    dA_g = dA.reshape(T, B, 4, H)
    W_g = cache["W_g"]
    dW = np.einsum("btgd,tbgk->dgk", cache["xm"], dA_g).reshape(W_g.shape[0], 4 * H)
    dx = np.einsum("tbgk,dgk,bgd->btd", dA_g, W_g, cache["mx"])
    return dx, dh_carry, dc_carry, dW, dU_g.reshape(H, 4 * H), dA.sum(axis=(0, 1))


def lstm_forward_zoneout(x, h0, c0, W, U, b, keep_c, keep_h):
    """An LSTM with zoneout: keep_c, keep_h (B, T, H), 1 where a unit keeps its previous value (training: 0/1
    masks from zoneout_masks; test: the constant z). Other shapes as lstm_forward. Returns h, c (B, T, H), cache."""
    x, h0, c0, W, U, b = (np.asarray(a) for a in (x, h0, c0, W, U, b))
    dtype = np.result_type(x, W, U)
    B, T, _ = x.shape
    H = h0.shape[1]
    kc = np.broadcast_to(np.asarray(keep_c, dtype), (B, T, H))
    kh = np.broadcast_to(np.asarray(keep_h, dtype), (B, T, H))
    A = np.einsum("btd,dk->tbk", x, W) + b
    hs = np.empty((T + 1, B, H), dtype)
    cs = np.empty((T + 1, B, H), dtype)
    new_c = np.empty((T, B, H), dtype)  # c~_t, before zoneout
    hs[0], cs[0] = h0, c0
    for t in range(T):
        A[t] += hs[t] @ U
        a = A[t]
        sigmoid(a[:, : 2 * H], out=a[:, : 2 * H])
        np.tanh(a[:, 2 * H : 3 * H], out=a[:, 2 * H : 3 * H])
        sigmoid(a[:, 3 * H :], out=a[:, 3 * H :])
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        new_c[t] = f * cs[t] + i * g
        cs[t + 1] = kc[:, t] * cs[t] + (1 - kc[:, t]) * new_c[t]
        hs[t + 1] = kh[:, t] * hs[t] + (1 - kh[:, t]) * o * np.tanh(new_c[t])
    cache = {"x": x, "hs": hs, "cs": cs, "new_c": new_c, "gates": A, "W": W, "U": U, "kc": kc, "kh": kh}
    return np.swapaxes(hs[1:], 0, 1).copy(), np.swapaxes(cs[1:], 0, 1).copy(), cache


def lstm_backward_zoneout(dh, cache):
    """Backpropagation through time for lstm_forward_zoneout. dh (B, T, H) -> dx, dh0, dc0, dW, dU, db."""
    hs, cs, A, U, kc, kh = cache["hs"], cache["cs"], cache["gates"], cache["U"], cache["kc"], cache["kh"]
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    dA = np.empty_like(A)
    dh_carry = np.zeros((B, H), hs.dtype)
    dc_carry = np.zeros((B, H), hs.dtype)
    for t in reversed(range(T)):
        dh_t = dh[:, t] + dh_carry  # dL/dh_t
        # h_t = kh h_{t-1} + (1 - kh) o tanh(c~): the new part is an ordinary LSTM output of c~
        dh_new = (1 - kh[:, t]) * dh_t
        dc_new = (1 - kc[:, t]) * dc_carry  # c_t = kc c_{t-1} + (1 - kc) c~
        dc_prev = _cell_backward(dh_new, dc_new, A[t], cs[t], np.tanh(cache["new_c"][t]), dA[t])
        dc_carry = dc_prev + kc[:, t] * dc_carry
        dh_carry = dA[t] @ U.T + kh[:, t] * dh_t
    xs = np.swapaxes(cache["x"], 0, 1)
    dW = np.einsum("tbd,tbk->dk", xs, dA)
    dU = np.einsum("tbh,tbk->hk", hs[:-1], dA)
    dx = np.einsum("tbk,dk->btd", dA, cache["W"])
    return dx, dh_carry, dc_carry, dW, dU, dA.sum(axis=(0, 1))


# ----------------------------------------------------------------------------------------------------------------
# Initialisations


def chrono_bias(H, T_max, seed=None, dtype=np.float32):
    """Chrono initialisation (Tallec & Ollivier 2018) of an LSTM bias (4H,), gates i, f, g, o: b_f = log(u) with
    u ~ U[1, T_max - 1], b_i = -b_f, the rest 0. A unit's forget gate then starts near 1 - 1/u: its memory lasts
    about u steps, and the u spread over the range of dependencies one expects (up to T_max)."""
    if T_max <= 2:
        raise ValueError(f"chrono_bias: T_max must be above 2, got {T_max}")
    b = np.zeros(4 * H, dtype)
    b_f = np.log(_rng(seed).uniform(1, T_max - 1, size=H))
    b[H : 2 * H] = b_f
    b[:H] = -b_f
    return b


def identity_recurrence(H, scale=1.0, dtype=np.float32):
    """U = scale * I (H, H): the identity initialisation of the IRNN (Le et al. 2015) for a simple RNN."""
    return (scale * np.eye(H)).astype(dtype)


def relu_rnn_forward(x, h0, W, U, b):
    """The simple RNN with a ReLU, h_t = max(0, x_t W + h_{t-1} U + b), the cell of the IRNN (Le et al. 2015, with
    U = identity_recurrence(H) and b = 0) and of keras.layers.SimpleRNN(activation="relu").
    x (B, T, D), h0 (B, H), W (D, H), U (H, H), b (H,) -> h (B, T, H) and the cache for relu_rnn_backward."""
    x, h0, W, U, b = (np.asarray(a) for a in (x, h0, W, U, b))
    B, T, _ = x.shape
    xs = np.swapaxes(x, 0, 1)
    hs = np.empty((T + 1, B, h0.shape[1]), np.result_type(x, W, U))
    hs[0] = h0
    xw = xs @ W + b
    for t in range(T):
        hs[t + 1] = np.maximum(xw[t] + hs[t] @ U, 0)
    return np.swapaxes(hs[1:], 0, 1).copy(), {"xs": xs, "hs": hs, "W": W, "U": U}


def relu_rnn_backward(dh, cache):
    """Backpropagation through time for relu_rnn_forward. dh (B, T, H) -> dx (B, T, D), dh0, dW, dU, db.
    The ReLU's derivative is taken as 0 at 0."""
    xs, hs, W, U = cache["xs"], cache["hs"], cache["W"], cache["U"]
    T = xs.shape[0]
    da = np.empty_like(hs[1:])
    carry = np.zeros_like(hs[0])
    for t in reversed(range(T)):
        da[t] = (dh[:, t] + carry) * (hs[t + 1] > 0)
        carry = da[t] @ U.T
    dW = np.einsum("tbd,tbh->dh", xs, da)
    dU = np.einsum("tbh,tbk->hk", hs[:-1], da)
    dx = np.swapaxes(da @ W.T, 0, 1)
    return dx, carry, dW, dU, da.sum(axis=(0, 1))
