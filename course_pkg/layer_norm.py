"""Layer normalisation (Ba et al. 2016) and the LSTM with layer normalisation inside the cell.

    LN(z; g, beta) = g * (z - mean(z)) / sqrt(var(z) + eps) + beta      over the last axis, per sample

The layer-normalised LSTM normalises the input and the recurrent contributions separately, and the cell before its
output (Ba et al. 2016, section 6.3, in Keras' layout W (D, 4H), U (H, 4H), b (4H,), gates i, f, g, o):

    a_t = LN(x_t W; g_x, beta_x) + LN(h_{t-1} U; g_h, beta_h) + b
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(LN(c_t; g_c, beta_c))

g_x, beta_x, g_h, beta_h have shape (4H,) and g_c, beta_c (H,); they start at 1 and 0.
"""

import numpy as np

from .activations import sigmoid

#: keras.layers.LayerNormalization's default.
EPS = 1e-3


def layer_norm_forward(z, g, beta, eps=EPS):
    """z (..., N), g (N,), beta (N,) -> y (..., N) and the cache for layer_norm_backward."""
    mu = z.mean(axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt(((z - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    zhat = (z - mu) * inv_std
    return g * zhat + beta, (zhat, inv_std, g)


def layer_norm_backward(dy, cache):
    """dy (..., N) -> dz (..., N), dg (N,), dbeta (N,) (summed over the leading axes)."""
    zhat, inv_std, g = cache
    dzhat = dy * g
    n = zhat.shape[-1]
    dz = inv_std / n * (n * dzhat - dzhat.sum(axis=-1, keepdims=True)
                        - zhat * (dzhat * zhat).sum(axis=-1, keepdims=True))
    lead = tuple(range(dy.ndim - 1))
    return dz, (dy * zhat).sum(axis=lead), dy.sum(axis=lead)


def init_ln_params(H, dtype=np.float32):
    """The normalisation parameters at their initial values: gains 1, shifts 0."""
    return {"g_x": np.ones(4 * H, dtype), "beta_x": np.zeros(4 * H, dtype), "g_h": np.ones(4 * H, dtype),
            "beta_h": np.zeros(4 * H, dtype), "g_c": np.ones(H, dtype), "beta_c": np.zeros(H, dtype)}


def ln_lstm_forward(x, h0, c0, W, U, b, g_x, beta_x, g_h, beta_h, g_c, beta_c):
    """The layer-normalised LSTM over a sequence: x (B, T, D), h0, c0 (B, H), W (D, 4H), U (H, 4H), b (4H,), the
    normalisation parameters as in the module docstring. Returns h (B, T, H), c (B, T, H), cache."""
    B, T, _ = x.shape
    H = h0.shape[1]
    xs = np.swapaxes(x, 0, 1)
    ax, cache_x = layer_norm_forward(xs @ W, g_x, beta_x)  # (T, B, 4H): the input side, all steps at once
    hs, cs = [h0], [c0]
    steps = []
    for t in range(T):
        ah, cache_h = layer_norm_forward(hs[-1] @ U, g_h, beta_h)
        a = ax[t] + ah + b
        i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 3 * H:])
        g = np.tanh(a[:, 2 * H:3 * H])
        c = f * cs[-1] + i * g
        lc, cache_c = layer_norm_forward(c, g_c, beta_c)
        tanh_lc = np.tanh(lc)
        hs.append(o * tanh_lc)
        cs.append(c)
        steps.append((i, f, g, o, tanh_lc, cache_h, cache_c))
    cache = {"xs": xs, "hs": hs, "cs": cs, "steps": steps, "cache_x": cache_x, "W": W, "U": U}
    return np.stack(hs[1:], axis=1), np.stack(cs[1:], axis=1), cache


def ln_lstm_backward(dh, cache):
    """dh (B, T, H) -> dict of gradients: x, h0, c0, W, U, b, g_x, beta_x, g_h, beta_h, g_c, beta_c."""
    xs, hs, cs, W, U = cache["xs"], cache["hs"], cache["cs"], cache["W"], cache["U"]
    T = xs.shape[0]
    H = hs[0].shape[1]
    da_all = np.empty((T,) + (hs[0].shape[0], 4 * H), dtype=np.result_type(dh, W))
    grads = {k: 0.0 for k in ("U", "g_h", "beta_h", "g_c", "beta_c")}
    dh_carry = np.zeros_like(hs[0])
    dc_carry = np.zeros_like(cs[0])
    for t in reversed(range(T)):
        i, f, g, o, tanh_lc, cache_h, cache_c = cache["steps"][t]
        dh_t = dh[:, t] + dh_carry
        do = dh_t * tanh_lc
        dlc = dh_t * o * (1 - tanh_lc**2)
        dc_ln, dg_c, dbeta_c = layer_norm_backward(dlc, cache_c)
        dc = dc_carry + dc_ln
        da = np.concatenate([dc * g * i * (1 - i), dc * cs[t] * f * (1 - f), dc * i * (1 - g**2),
                             do * o * (1 - o)], axis=1)
        dc_carry = dc * f
        dzh, dg_h, dbeta_h = layer_norm_backward(da, cache_h)
        grads["U"] = grads["U"] + hs[t].T @ dzh
        grads["g_h"] = grads["g_h"] + dg_h
        grads["beta_h"] = grads["beta_h"] + dbeta_h
        grads["g_c"] = grads["g_c"] + dg_c
        grads["beta_c"] = grads["beta_c"] + dbeta_c
        dh_carry = dzh @ U.T
        da_all[t] = da
    dzx, dg_x, dbeta_x = layer_norm_backward(da_all, cache["cache_x"])
    grads.update({
        "x": np.swapaxes(dzx @ W.T, 0, 1), "h0": dh_carry, "c0": dc_carry,
        "W": np.einsum("tbd,tbk->dk", xs, dzx), "b": da_all.sum(axis=(0, 1)), "g_x": dg_x, "beta_x": dbeta_x,
    })
    return grads
