"""course_pkg's backward passes against TensorFlow's automatic differentiation through the Keras layers.

The loss is L = sum_t <h_t, dh_t> with a random dh over every step, so that dL/dh_t = dh_t is exactly what
rnn_backward, lstm_backward and gru_backward take. Gradients with respect to x, the initial state(s), the kernel, the
recurrent kernel and the bias must agree to 1e-4 in float32 (relative to the gradient's size when that exceeds 1).
"""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

from course_pkg.keras_interop import set_params  # noqa: E402

TOL = 1e-4
NAMES = ["x", "h0", "c0"]


def _keras_gradients(layer, x, states, upstream, run):
    """dL/d(x, states..., kernel, recurrent_kernel, bias) by tf.GradientTape, with L = sum <outputs, upstream>."""
    x = tf.constant(x)
    states = [tf.constant(s) for s in states]
    cell = layer.cell if hasattr(layer, "cell") else layer
    with tf.GradientTape() as tape:
        tape.watch([x, *states])
        outputs = run(layer, x, states)
        loss = sum(tf.reduce_sum(y * dy) for y, dy in zip(outputs, upstream))
    return tape.gradient(loss, [x, *states, cell.kernel, cell.recurrent_kernel, cell.bias])


def _compare(helpers, keras_grads, numpy_grads, n_states):
    dx, dstates, dW, dU, db = numpy_grads
    names = NAMES[: 1 + n_states] + ["kernel", "recurrent_kernel", "bias"]
    assert len(keras_grads) == len(names)
    for name, g_k, g_n in zip(names, keras_grads, [dx, *dstates, dW, dU, db]):
        assert g_k is not None, f"no Keras gradient for {name}"
        assert np.max(np.abs(g_n)) > 1e-3, f"{name}: gradient too small for the comparison to mean anything"
        err = helpers.max_error(g_k, g_n)
        assert err <= TOL, f"d{name}: error {err:.2e} > {TOL:.0e}"


def test_sequence_gradients_match_gradient_tape(model, shape, rng, helpers):
    B, T, D, H = shape
    W, U, b = model.random_params(D, H, rng)
    x, states = model.random_inputs(B, T, D, H, rng)
    dh = rng.standard_normal((B, T, H)).astype(np.float32)
    layer = model.keras_layer(H)
    layer.build((None, None, D))
    set_params(layer, W, U, b)

    def run(layer, x, states):
        return [helpers.run_keras(layer, x, states)[0]]

    keras_grads = _keras_gradients(layer, x, states, [dh], run)
    _, _, cache = model.forward(x, states, W, U, b)
    _compare(helpers, keras_grads, model.backward(dh, cache), model.n_states)


def test_step_gradients_match_gradient_tape(model, rng, helpers):
    """The step backward functions against the tape through one call of the Keras cell; the LSTM also gets dc_t."""
    B, D, H = 3, 4, 5
    W, U, b = model.random_params(D, H, rng)
    x, states = model.random_inputs(B, 1, D, H, rng)
    x_t = x[:, 0]
    upstream = [rng.standard_normal((B, H)).astype(np.float32) for _ in range(model.n_states)]
    layer = model.keras_layer(H)
    layer.build((None, None, D))
    set_params(layer, W, U, b)

    def run(cell, x_t, states):
        return cell(x_t, states)[1]  # the new states: [h_t] or [h_t, c_t]

    keras_grads = _keras_gradients(layer.cell, x_t, states, upstream, run)
    _, _, cache = model.step(x_t, states, W, U, b)
    _compare(helpers, keras_grads, model.step_backward(upstream[0], cache, *upstream[1:]), model.n_states)
