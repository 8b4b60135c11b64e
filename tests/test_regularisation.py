"""course_pkg.regularisation, checked like the rest: forward passes against course_pkg.lstm and Keras (with the same
dropout masks), backward passes by gradient checking in float64, and the initialisers' stated properties."""

import numpy as np
import pytest

from course_pkg.gradcheck import gradcheck
from course_pkg.init import init_lstm
from course_pkg.lstm import lstm_backward, lstm_forward
from course_pkg.regularisation import (
    chrono_bias,
    dropout_mask,
    identity_recurrence,
    lstm_backward_dropout,
    lstm_backward_zoneout,
    lstm_forward_dropout,
    lstm_forward_zoneout,
    zoneout_masks,
)

B, T, D, H = 3, 5, 4, 6


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    W, U, b = init_lstm(D, H, rng, dtype=np.float64)
    b = b + rng.normal(0, 0.3, 4 * H)
    x = rng.standard_normal((B, T, D))
    h0, c0 = 0.3 * rng.standard_normal((2, B, H))
    dh = rng.standard_normal((B, T, H))
    return dict(x=x, h0=h0, c0=c0, W=W, U=U, b=b), dh, rng


def test_no_masks_is_lstm_forward_and_backward(problem):
    inputs, dh, _ = problem
    h, c, cache = lstm_forward_dropout(**inputs)
    h_ref, c_ref, cache_ref = lstm_forward(**inputs)
    np.testing.assert_allclose(h, h_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c, c_ref, rtol=1e-12, atol=1e-14)
    for ours, ref in zip(lstm_backward_dropout(dh, cache), lstm_backward(dh, cache_ref)):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_a_shared_mask_is_the_per_gate_mask_repeated(problem):
    inputs, _, rng = problem
    m = dropout_mask((B, H), 0.5, rng, np.float64)
    h1 = lstm_forward_dropout(**inputs, mask_h=m)[0]
    h2 = lstm_forward_dropout(**inputs, mask_h=np.repeat(m[:, None], 4, axis=1))[0]
    np.testing.assert_array_equal(h1, h2)


def test_input_mask_is_masking_the_input(problem):
    inputs, _, rng = problem
    m = dropout_mask((B, D), 0.4, rng, np.float64)
    ours = lstm_forward_dropout(**inputs, mask_x=m)[0]
    ref = lstm_forward(**{**inputs, "x": inputs["x"] * m[:, None, :]})[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("per_gate", [False, True])
def test_dropout_gradients(problem, per_gate):
    inputs, dh, rng = problem
    mx = dropout_mask((B, 4, D) if per_gate else (B, D), 0.3, rng, np.float64)
    mh = dropout_mask((B, 4, H) if per_gate else (B, H), 0.3, rng, np.float64)
    h, c, cache = lstm_forward_dropout(**inputs, mask_x=mx, mask_h=mh)
    dx, dh0, dc0, dW, dU, db = lstm_backward_dropout(dh, cache)

    def f(x, h0, c0, W, U, b):
        return lstm_forward_dropout(x, h0, c0, W, U, b, mx, mh)[0]

    report = gradcheck(f, inputs, dict(x=dx, h0=dh0, c0=dc0, W=dW, U=dU, b=db), dh)
    assert report.passed, report


@pytest.mark.parametrize("z", [0.0, 0.3, 1.0])
def test_zoneout_gradients(problem, z):
    inputs, dh, rng = problem
    kc, kh = zoneout_masks((B, T, H), z, rng, np.float64), zoneout_masks((B, T, H), z, rng, np.float64)
    h, c, cache = lstm_forward_zoneout(**inputs, keep_c=kc, keep_h=kh)
    grads = lstm_backward_zoneout(dh, cache)

    def f(x, h0, c0, W, U, b):
        return lstm_forward_zoneout(x, h0, c0, W, U, b, kc, kh)[0]

    report = gradcheck(f, inputs, dict(zip(["x", "h0", "c0", "W", "U", "b"], grads)), dh)
    assert report.passed, report


def test_zoneout_limits(problem):
    """Keep nothing: the LSTM. Keep everything: the initial state forever."""
    inputs, _, _ = problem
    h, c, _ = lstm_forward_zoneout(**inputs, keep_c=0.0, keep_h=0.0)
    h_ref, c_ref, _ = lstm_forward(**inputs)
    np.testing.assert_allclose(h, h_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c, c_ref, rtol=1e-12, atol=1e-14)
    h, c, _ = lstm_forward_zoneout(**inputs, keep_c=1.0, keep_h=1.0)
    np.testing.assert_array_equal(h, np.broadcast_to(inputs["h0"][:, None], h.shape))
    np.testing.assert_array_equal(c, np.broadcast_to(inputs["c0"][:, None], c.shape))


def test_masks_are_inverted_and_have_the_right_rate():
    m = dropout_mask((200, 500), 0.25, seed=1)
    assert set(np.unique(m)) == {0.0, np.float32(1 / 0.75)}
    assert abs((m == 0).mean() - 0.25) < 0.01 and abs(m.mean() - 1) < 0.01
    k = zoneout_masks((100, 10, 50), 0.1, seed=2)
    assert set(np.unique(k)) == {0.0, 1.0} and abs(k.mean() - 0.1) < 0.01
    with pytest.raises(ValueError):
        dropout_mask((2, 2), 1.0)


def test_chrono_bias():
    b = chrono_bias(1000, 50, seed=3, dtype=np.float64)
    H = 1000
    b_i, b_f, rest = b[:H], b[H : 2 * H], b[2 * H :]
    np.testing.assert_array_equal(b_i, -b_f)
    assert np.all(rest == 0) and b_f.min() >= 0 and b_f.max() <= np.log(49)
    np.testing.assert_allclose(np.exp(b_f).mean(), 25, rtol=0.05)  # u ~ U[1, 49]


def test_identity_recurrence():
    np.testing.assert_array_equal(identity_recurrence(4, 0.5), 0.5 * np.eye(4, dtype=np.float32))


@pytest.mark.slow
def test_keras_recurrent_dropout_with_our_masks_is_our_forward():
    """keras.layers.LSTM in training mode with recurrent_dropout > 0, its dropout masks replaced by ours, gives our
    forward with per-gate masks: Keras multiplies x_t and h_{t-1} by one mask per gate, the same at every step. And
    Keras' own masks are four, drawn once per batch: asked twice, the cell returns the same ones."""
    import keras

    from course_pkg.keras_interop import set_params

    rng = np.random.default_rng(4)
    Bk, Tk, Dk, Hk = 4, 7, 3, 5
    layer = keras.layers.LSTM(Hk, dropout=0.3, recurrent_dropout=0.4, return_sequences=True)
    layer.build((None, None, Dk))
    W, U, b = init_lstm(Dk, Hk, rng)
    b = b + rng.normal(0, 0.3, 4 * Hk).astype(np.float32)
    set_params(layer, W, U, b)
    x = rng.standard_normal((Bk, Tk, Dk)).astype(np.float32)
    mx, mh = dropout_mask((Bk, 4, Dk), 0.3, rng), dropout_mask((Bk, 4, Hk), 0.4, rng)
    cell = layer.cell
    seen = []
    cell.get_dropout_mask = lambda inputs: [keras.ops.convert_to_tensor(mx[:, g]) for g in range(4)]

    def recurrent_mask(h):
        seen.append(1)
        return [keras.ops.convert_to_tensor(mh[:, g]) for g in range(4)]

    cell.get_recurrent_dropout_mask = recurrent_mask
    ours = lstm_forward_dropout(x, np.zeros((Bk, Hk), np.float32), np.zeros((Bk, Hk), np.float32), W, U, b, mx, mh)[0]
    theirs = keras.ops.convert_to_numpy(layer(x, training=True))
    assert seen, "Keras did not ask for a recurrent dropout mask"
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-6)
    # Keras' own masks: one per sequence
    fresh = keras.layers.LSTM(Hk, recurrent_dropout=0.4).cell
    fresh.build((None, Dk))
    h = keras.ops.ones((Bk, Hk))
    first = [keras.ops.convert_to_numpy(m) for m in fresh.get_recurrent_dropout_mask(h)]
    again = [keras.ops.convert_to_numpy(m) for m in fresh.get_recurrent_dropout_mask(h)]
    assert len(first) == 4 and not np.array_equal(first[0], first[1])  # four different masks, one per gate
    for a, b_ in zip(first, again):
        np.testing.assert_array_equal(a, b_)
        assert 0 < (a == 0).mean() < 1


def test_relu_rnn_gradients():
    from course_pkg.regularisation import relu_rnn_backward, relu_rnn_forward

    rng = np.random.default_rng(5)
    inputs = dict(x=rng.standard_normal((B, T, D)), h0=np.abs(rng.standard_normal((B, H))),
                  W=0.5 * rng.standard_normal((D, H)), U=identity_recurrence(H, 0.9, np.float64)
                  + 0.1 * rng.standard_normal((H, H)), b=0.1 * rng.standard_normal(H))
    h, cache = relu_rnn_forward(**inputs)
    assert (h == 0).any() and (h > 0).any()  # both sides of the kink are tested
    dh = rng.standard_normal(h.shape)
    grads = relu_rnn_backward(dh, cache)
    report = gradcheck(lambda **kw: relu_rnn_forward(**kw)[0], inputs, dict(zip(["x", "h0", "W", "U", "b"], grads)), dh)
    assert report.passed, report


@pytest.mark.slow
def test_relu_rnn_is_keras_simple_rnn_with_relu():
    import keras

    from course_pkg.regularisation import relu_rnn_forward

    rng = np.random.default_rng(6)
    layer = keras.layers.SimpleRNN(H, activation="relu", return_sequences=True)
    layer.build((None, None, D))
    W, U, b = (0.5 * rng.standard_normal(s).astype(np.float32) for s in ((D, H), (H, H), (H,)))
    # (set_params refuses a ReLU layer, since course_pkg.rnn is tanh only: write the weights directly)
    for variable, value in zip((layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias), (W, U, b)):
        variable.assign(value)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    ours = relu_rnn_forward(x, np.zeros((B, H), np.float32), W, U, b)[0]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), ours, rtol=1e-5, atol=1e-6)
