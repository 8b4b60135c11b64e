"""Initialisers with Keras' defaults: Glorot-uniform W, orthogonal U, zero bias (ones for the LSTM forget gate)."""

import numpy as np
import pytest

from course_pkg.init import glorot_uniform, init_gru, init_lstm, init_rnn, orthogonal


def glorot_limit(fan_in, fan_out):
    return np.sqrt(6.0 / (fan_in + fan_out))


# --------------------------------------------------------------------------------------------------------------------
# Glorot uniform
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(200, 300), (64, 256), (1, 4000)])
def test_glorot_uniform_bounds_mean_and_variance(shape):
    w = glorot_uniform(shape, seed=0, dtype=np.float64)
    assert w.shape == shape and w.dtype == np.float64
    limit = glorot_limit(*shape)
    assert np.all(np.abs(w) <= limit)
    assert w.max() > 0.99 * limit and w.min() < -0.99 * limit  # the whole interval is used
    n = w.size
    var = limit**2 / 3  # = 2 / (fan_in + fan_out), Glorot's variance
    np.testing.assert_allclose(var, 2.0 / sum(shape))
    # sample mean and variance within 5 standard errors
    assert abs(w.mean()) < 5 * np.sqrt(var / n)
    assert abs(w.var() - var) < 5 * np.sqrt((limit**4 / 5 - var**2) / n)
    # uniform: each tenth of the interval holds about a tenth of the draws
    counts, _ = np.histogram(w, bins=10, range=(-limit, limit))
    expected = n / 10
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_glorot_uniform_dtype_default_float32():
    w = glorot_uniform((3, 4), seed=1)
    assert w.dtype == np.float32
    assert glorot_uniform((3, 4), seed=1, dtype=np.float64).dtype == np.float64


# --------------------------------------------------------------------------------------------------------------------
# Orthogonal
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("H,G", [(4, 1), (4, 3), (4, 4), (16, 4), (1, 4), (7, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_orthogonal_rows_are_orthonormal(H, G, dtype):
    U = orthogonal((H, G * H), seed=2, dtype=dtype)
    assert U.shape == (H, G * H) and U.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(U.astype(np.float64) @ U.T.astype(np.float64), np.eye(H), rtol=0, atol=tol)
    if G == 1:  # square: orthogonal both ways
        np.testing.assert_allclose(U.T.astype(np.float64) @ U.astype(np.float64), np.eye(H), rtol=0, atol=tol)


@pytest.mark.parametrize("G", [3, 4])
def test_a_gate_block_of_a_stacked_orthogonal_kernel_is_not_an_isometry(G):
    """What the docstring says: sum_g U_g U_g^T = I, so each block's singular values are at most 1, their mean square
    over all blocks is exactly 1/G (each block's near it); a block is not orthogonal (its smallest singular value is
    well below 1)."""
    H = 64
    U = orthogonal((H, G * H), seed=7, dtype=np.float64)
    blocks = [U[:, g * H : (g + 1) * H] for g in range(G)]
    np.testing.assert_allclose(sum(B @ B.T for B in blocks), np.eye(H), atol=1e-12)
    singular = [np.linalg.svd(B, compute_uv=False) for B in blocks]
    np.testing.assert_allclose(np.mean([np.mean(s**2) for s in singular]), 1 / G, rtol=1e-12)  # trace(U U^T) / (G H)
    for s in singular:
        assert s.max() <= 1 + 1e-12
        assert abs(np.mean(s**2) - 1 / G) < 0.1 / G
        assert s.min() < 0.5  # far from an isometry


def test_orthogonal_tall_matrix_has_orthonormal_columns():
    Q = orthogonal((12, 5), seed=3, dtype=np.float64)
    np.testing.assert_allclose(Q.T @ Q, np.eye(5), atol=1e-12)


def test_orthogonal_gain():
    Q = orthogonal((6, 18), seed=4, gain=2.5, dtype=np.float64)
    np.testing.assert_allclose(Q @ Q.T, 2.5**2 * np.eye(6), atol=1e-12)


def test_orthogonal_is_not_always_the_same_matrix():
    """Uniform over orthogonal matrices: different seeds differ, and entries are symmetric about zero on average."""
    a = orthogonal((8, 8), seed=5, dtype=np.float64)
    b = orthogonal((8, 8), seed=6, dtype=np.float64)
    assert not np.allclose(a, b)
    # the sign fix makes the distribution Haar: the diagonal's mean over many draws is near zero
    diag = np.array([np.diag(orthogonal((4, 4), seed=s, dtype=np.float64)) for s in range(400)])
    assert abs(diag.mean()) < 5 * np.sqrt(1 / 4 / diag.size)  # each entry has variance 1/n


# --------------------------------------------------------------------------------------------------------------------
# Whole layers
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("D,H", [(3, 5), (10, 2), (1, 1)])
def test_init_rnn(D, H):
    W, U, b = init_rnn(D, H, seed=0)
    assert W.shape == (D, H) and U.shape == (H, H) and b.shape == (H,)
    assert {W.dtype, U.dtype, b.dtype} == {np.dtype(np.float32)}
    assert np.all(np.abs(W) <= glorot_limit(D, H) * (1 + 1e-6))
    np.testing.assert_allclose(U @ U.T, np.eye(H), atol=1e-6)
    assert not np.any(b)


@pytest.mark.parametrize("D,H", [(3, 5), (10, 2), (1, 1)])
def test_init_lstm(D, H):
    W, U, b = init_lstm(D, H, seed=0)
    assert W.shape == (D, 4 * H) and U.shape == (H, 4 * H) and b.shape == (4 * H,)
    assert np.all(np.abs(W) <= glorot_limit(D, 4 * H) * (1 + 1e-6))  # fans of the whole (D, 4H) kernel
    np.testing.assert_allclose(U @ U.T, np.eye(H), atol=1e-6)
    # forget gate (second block in the order i, f, g, o) ones, the rest zeros
    expected = np.zeros(4 * H)
    expected[H : 2 * H] = 1
    np.testing.assert_array_equal(b, expected)
    np.testing.assert_array_equal(b[:H], 0)
    np.testing.assert_array_equal(b[2 * H :], 0)

    _, _, b0 = init_lstm(D, H, seed=0, unit_forget_bias=False)
    np.testing.assert_array_equal(b0, np.zeros(4 * H))


@pytest.mark.parametrize("reset_after,b_shape", [(True, lambda H: (2, 3 * H)), (False, lambda H: (3 * H,))])
@pytest.mark.parametrize("D,H", [(3, 5), (10, 2), (1, 1)])
def test_init_gru(D, H, reset_after, b_shape):
    W, U, b = init_gru(D, H, seed=0, reset_after=reset_after)
    assert W.shape == (D, 3 * H) and U.shape == (H, 3 * H)
    assert b.shape == b_shape(H)
    assert not np.any(b)
    assert np.all(np.abs(W) <= glorot_limit(D, 3 * H) * (1 + 1e-6))
    np.testing.assert_allclose(U @ U.T, np.eye(H), atol=1e-6)


def test_gru_default_is_reset_after_true():
    assert init_gru(3, 4, seed=0)[2].shape == (2, 12)


INITS = {
    "rnn": lambda **kw: init_rnn(3, 4, **kw),
    "lstm": lambda **kw: init_lstm(3, 4, **kw),
    "gru": lambda **kw: init_gru(3, 4, **kw),
    "gru_before": lambda **kw: init_gru(3, 4, reset_after=False, **kw),
}


@pytest.mark.parametrize("name", INITS)
def test_same_seed_same_params_different_seed_different(name):
    init = INITS[name]
    a, b, c = init(seed=123), init(seed=123), init(seed=124)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])
    # W and U are not drawn from the same numbers
    assert not np.allclose(np.sort(np.abs(a[0].ravel()))[:4], np.sort(np.abs(a[1].ravel()))[:4])


@pytest.mark.parametrize("name", INITS)
def test_generator_as_seed(name):
    init = INITS[name]
    rng = np.random.default_rng(7)
    first = init(seed=rng)
    second = init(seed=rng)  # the generator has moved on
    assert not np.array_equal(first[0], second[0])
    again = init(seed=np.random.default_rng(7))  # a fresh generator with the same seed repeats the first draw
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    # the integer seed means the same thing
    for x, y in zip(first, init(seed=7)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("name", INITS)
def test_dtype_is_honoured(name, dtype):
    params = INITS[name](seed=0, dtype=dtype)
    assert [p.dtype for p in params] == [np.dtype(dtype)] * 3
    # the float32 draw is the float64 draw rounded: dtype changes the precision, not the numbers
    p64 = INITS[name](seed=0, dtype=np.float64)
    for p, q in zip(params, p64):
        np.testing.assert_array_equal(p, q.astype(dtype))


def test_default_seed_none_gives_fresh_draws():
    assert not np.array_equal(init_lstm(3, 4)[0], init_lstm(3, 4)[0])


# --------------------------------------------------------------------------------------------------------------------
# Against Keras' own initialisers (same distributions, not the same numbers)
# --------------------------------------------------------------------------------------------------------------------


def test_same_distributions_as_keras():
    import keras  # tensorflow and keras are in the project's venv (the "keras" extra)
    D, H = 6, 5

    # Orthogonal on a (H, 4H) kernel: Keras also gives orthonormal rows, so U's orientation matches.
    Uk = np.asarray(keras.initializers.Orthogonal(seed=1)(shape=(H, 4 * H)), dtype=np.float64)
    np.testing.assert_allclose(Uk @ Uk.T, np.eye(H), atol=1e-5)
    U = orthogonal((H, 4 * H), seed=1, dtype=np.float64)
    np.testing.assert_allclose(U @ U.T, np.eye(H), atol=1e-12)

    # Glorot uniform on (D, 4H): the same limit
    Wk = np.asarray(keras.initializers.GlorotUniform(seed=1)(shape=(200, 300)), dtype=np.float64)
    W = glorot_uniform((200, 300), seed=1, dtype=np.float64)
    limit = glorot_limit(200, 300)
    for w in (Wk, W):
        assert np.abs(w).max() <= limit * (1 + 1e-6) and np.abs(w).max() > 0.99 * limit
    assert abs(Wk.var() - W.var()) < 0.05 * limit**2 / 3

    # The layers' parameter shapes and biases
    lstm = keras.layers.LSTM(H)
    lstm.build((None, 3, D))
    kernel, rec, bias = (np.asarray(v) for v in lstm.get_weights())
    ours = init_lstm(D, H, seed=0)
    assert [kernel.shape, rec.shape, bias.shape] == [p.shape for p in ours]
    np.testing.assert_array_equal(bias, ours[2])
    for reset_after in (True, False):
        gru = keras.layers.GRU(H, reset_after=reset_after)
        gru.build((None, 3, D))
        ours = init_gru(D, H, seed=0, reset_after=reset_after)
        assert [np.shape(v) for v in gru.get_weights()] == [p.shape for p in ours]
        np.testing.assert_array_equal(gru.get_weights()[2], ours[2])
    rnn = keras.layers.SimpleRNN(H)
    rnn.build((None, 3, D))
    assert [np.shape(v) for v in rnn.get_weights()] == [p.shape for p in init_rnn(D, H, seed=0)]
