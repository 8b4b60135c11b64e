"""keras_interop's cells (RNNCell, LSTMCell, GRUCell) inside keras.layers.RNN against Keras' own layers and course_pkg.

Fixtures (model, shape, rng, helpers) are in conftest.py.
"""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from course_pkg.keras_interop import GRUCell, LSTMCell, RNNCell, get_params, set_params  # noqa: E402

TOL = 1e-5
GRAD_TOL = 1e-4


def _pair(model, H, D, rng):
    """Keras' layer with random weights, and keras.layers.RNN around our cell holding a copy of them."""
    reference = model.keras_layer(H)
    reference.build((None, None, D))
    set_params(reference, *model.random_params(D, H, rng))
    ours = keras.layers.RNN(model.our_cell(H), return_sequences=True, return_state=True)
    ours.build((None, None, D))
    ours.set_weights(reference.get_weights())  # Keras' own copy, in Keras' own order: no reshuffling
    return reference, ours


def test_cells_match_keras_layers_and_course_pkg(model, shape, rng, helpers):
    B, T, D, H = shape
    reference, ours = _pair(model, H, D, rng)
    x, states = model.random_inputs(B, T, D, H, rng)
    h, finals = helpers.run_keras(ours, x, states)
    h_ref, finals_ref = helpers.run_keras(reference, x, states)
    h_np, finals_np, _ = model.forward(x, states, *get_params(ours))
    assert np.max(np.abs(h_np)) > 0.05
    for what, expected, expected_finals in [("Keras", h_ref, finals_ref), ("course_pkg", h_np, finals_np)]:
        err = helpers.max_error(h, expected)
        assert err <= TOL, f"hidden states vs {what}: error {err:.2e}"
        assert len(finals) == len(expected_finals)
        for s, s_ref in zip(finals, expected_finals):
            err = helpers.max_error(s, s_ref)
            assert err <= TOL, f"final state vs {what}: error {err:.2e}"


def test_cell_gradients_match_keras_layers(model, shape, rng, helpers):
    B, T, D, H = shape
    reference, ours = _pair(model, H, D, rng)
    x, states = model.random_inputs(B, T, D, H, rng)
    dh = tf.constant(rng.standard_normal((B, T, H)).astype(np.float32))
    grads = []
    for layer in (ours, reference):
        xs = [tf.constant(x)] + [tf.constant(s) for s in states]
        with tf.GradientTape() as tape:
            tape.watch(xs)
            h, _ = helpers.run_keras(layer, xs[0], xs[1:])
            loss = tf.reduce_sum(h * dh)
        grads.append(tape.gradient(loss, xs + list(layer.trainable_weights)))
    names = ["x", "h0", "c0"][: 1 + model.n_states] + ["kernel", "recurrent_kernel", "bias"]
    assert [w.name for w in ours.trainable_weights] == names[-3:]
    for name, g, g_ref in zip(names, *grads):
        assert np.max(np.abs(g_ref)) > 1e-3, name
        err = helpers.max_error(g, g_ref)
        assert err <= GRAD_TOL, f"d{name}: error {err:.2e}"


def test_initial_weights_follow_keras_defaults(model):
    """Glorot-uniform kernel, orthogonal recurrent kernel, zero bias with ones in the LSTM's forget slice."""
    D, H = 20, 6
    cell = model.our_cell(H)
    cell.build((None, D))
    W, U, b = get_params(cell)
    G = model.gates * H
    limit = np.sqrt(6 / (D + G))
    assert np.max(np.abs(W)) <= limit and np.max(np.abs(W)) > 0.8 * limit
    assert abs(np.std(W) - limit / np.sqrt(3)) < 0.15 * limit  # the std of U(-limit, limit)
    np.testing.assert_allclose(U @ U.T, np.eye(H), atol=1e-5)  # orthonormal rows
    expected_b = np.zeros(model.bias_shape(H), np.float32)
    if model.name == "lstm":
        expected_b[H : 2 * H] = 1
    np.testing.assert_array_equal(b, expected_b)

    no_forget = LSTMCell(H, unit_forget_bias=False)
    no_forget.build((None, D))
    assert not np.any(get_params(no_forget)[2])


def test_training_matches_keras_lstm():
    """RNN(LSTMCell(8)) + Dense and LSTM(8) + Dense, from identical weights, follow the same loss trajectory."""
    B, T, D, H = 32, 6, 3, 8
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    y = (np.tanh(x[:, :, 0].sum(axis=1) / 2) - x[:, -1, 1])[:, None]  # needs memory of x_0 and the last x_1

    def make(rnn_layer):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((T, D)), rnn_layer, keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse", jit_compile=False)
        return model

    ours = make(keras.layers.RNN(LSTMCell(H)))
    reference = make(keras.layers.LSTM(H))
    reference.set_weights(ours.get_weights())
    losses = []
    for model in (ours, reference):
        keras.utils.set_random_seed(1)
        history = model.fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0)
        losses.append(np.array(history.history["loss"]))
    ours_loss, reference_loss = losses
    assert reference_loss[-1] < 0.7 * reference_loss[0], reference_loss  # it did learn something
    np.testing.assert_allclose(ours_loss, reference_loss, rtol=1e-4)
    for w, w_ref in zip(ours.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(w, w_ref, atol=1e-4)


@pytest.mark.parametrize(
    "cell, expected",
    [
        (RNNCell(3), {"units": 3}),
        (LSTMCell(3, unit_forget_bias=False), {"units": 3, "unit_forget_bias": False}),
        (GRUCell(3), {"units": 3, "reset_after": True}),
        (GRUCell(3, reset_after=False), {"units": 3, "reset_after": False}),
    ],
    ids=["rnn", "lstm", "gru_ra", "gru_nra"],
)
def test_config_round_trip(cell, expected):
    config = cell.get_config()
    assert expected.items() <= config.items()
    clone = type(cell).from_config(config)
    assert type(clone) is type(cell) and clone.get_config() == config

    layer = keras.layers.RNN(cell, return_sequences=True)
    restored = keras.layers.deserialize(keras.layers.serialize(layer))  # no custom_objects: the cells are registered
    assert type(restored.cell) is type(cell)
    assert restored.cell.get_config() == {**config, "name": restored.cell.name}


# Keras' own saving code calls np.array on its variables, which numpy 2 flags; not ours to fix.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_saved_model_file_reloads_without_custom_objects(tmp_path, rng):
    D, T, H = 3, 4, 5
    model = keras.Sequential(
        [keras.Input((T, D)), keras.layers.RNN(GRUCell(H, reset_after=False)), keras.layers.Dense(2)]
    )
    x = rng.standard_normal((2, T, D)).astype(np.float32)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[0].cell, GRUCell) and not loaded.layers[0].cell.reset_after
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
