"""course_pkg.layer_norm: layer normalisation against keras.layers.LayerNormalization, the layer-normalised LSTM
against the plain LSTM where they must agree, and every backward pass by gradient checking in float64."""

import numpy as np
import pytest

from course_pkg.gradcheck import gradcheck
from course_pkg.init import init_lstm
from course_pkg.layer_norm import (
    init_ln_params,
    layer_norm_backward,
    layer_norm_forward,
    ln_lstm_backward,
    ln_lstm_forward,
)

B, T, D, H = 3, 4, 3, 5


def test_layer_norm_gradients():
    rng = np.random.default_rng(0)
    inputs = dict(z=rng.standard_normal((2, 3, 7)), g=rng.standard_normal(7), beta=rng.standard_normal(7))
    y, cache = layer_norm_forward(**inputs)
    dy = rng.standard_normal(y.shape)
    dz, dg, dbeta = layer_norm_backward(dy, cache)
    report = gradcheck(lambda **kw: layer_norm_forward(**kw)[0], inputs, dict(z=dz, g=dg, beta=dbeta), dy)
    assert report.passed, report


def test_layer_norm_normalises():
    z = np.random.default_rng(1).normal(3, 5, size=(4, 50))
    y, _ = layer_norm_forward(z, np.ones(50), np.zeros(50), eps=0.0)
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=-1), 1, rtol=1e-12)


@pytest.mark.slow
def test_layer_norm_is_keras_layer_normalization():
    import keras

    rng = np.random.default_rng(2)
    z = rng.standard_normal((4, 8)).astype(np.float32)
    g, beta = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    layer = keras.layers.LayerNormalization()  # epsilon 1e-3, the module's EPS
    layer.build(z.shape)
    layer.gamma.assign(g)
    layer.beta.assign(beta)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(z)), layer_norm_forward(z, g, beta)[0],
                               rtol=1e-5, atol=1e-5)


@pytest.fixture
def problem():
    rng = np.random.default_rng(3)
    W, U, b = init_lstm(D, H, rng, dtype=np.float64)
    ln = {k: v + rng.normal(0, 0.3, v.shape) for k, v in init_ln_params(H, np.float64).items()}
    inputs = dict(x=rng.standard_normal((B, T, D)), h0=0.5 * rng.standard_normal((B, H)),
                  c0=0.5 * rng.standard_normal((B, H)), W=W, U=U, b=b + rng.normal(0, 0.3, 4 * H), **ln)
    return inputs, rng.standard_normal((B, T, H))


def test_ln_lstm_gradients(problem):
    inputs, dh = problem
    h, c, cache = ln_lstm_forward(**inputs)
    grads = ln_lstm_backward(dh, cache)
    assert set(grads) == set(inputs)
    report = gradcheck(lambda **kw: ln_lstm_forward(**kw)[0], inputs, grads, dh)
    assert report.passed, report


def test_ln_lstm_cell_is_the_lstm_cell_with_normalised_parts(problem):
    """One step, by hand: the gates from LN(x W) + LN(h U) + b, the output from LN(c)."""
    inputs, _ = problem
    h, c, _ = ln_lstm_forward(**inputs)
    x, h0, c0 = inputs["x"][:, 0], inputs["h0"], inputs["c0"]
    a = (layer_norm_forward(x @ inputs["W"], inputs["g_x"], inputs["beta_x"])[0]
         + layer_norm_forward(h0 @ inputs["U"], inputs["g_h"], inputs["beta_h"])[0] + inputs["b"])
    s = 1 / (1 + np.exp(-a))
    c1 = s[:, H:2 * H] * c0 + s[:, :H] * np.tanh(a[:, 2 * H:3 * H])
    h1 = s[:, 3 * H:] * np.tanh(layer_norm_forward(c1, inputs["g_c"], inputs["beta_c"])[0])
    np.testing.assert_allclose(c[:, 0], c1, rtol=1e-12)
    np.testing.assert_allclose(h[:, 0], h1, rtol=1e-12)
