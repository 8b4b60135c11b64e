"""course_pkg's forward passes against keras.layers.SimpleRNN, LSTM and GRU, and keras_interop's weight transfer.

Fixtures (model, shape, rng, helpers) are in conftest.py. Every comparison is float32 with a tolerance of 1e-5.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from course_pkg import gru  # noqa: E402
from course_pkg.keras_interop import GRUCell, LSTMCell, RNNCell, get_params, set_params  # noqa: E402

TOL = 1e-5


def _assert_close(helpers, actual, expected, what):
    err = helpers.max_error(actual, expected)
    assert err <= TOL, f"{what}: error {err:.2e} > {TOL:.0e}"


def _assert_sequences_match(helpers, keras_out, numpy_out):
    (h_k, finals_k), (h_n, finals_n) = keras_out, numpy_out
    assert np.max(np.abs(h_n)) > 0.05  # a comparison of two near-zero outputs would prove nothing
    _assert_close(helpers, h_k, h_n, "hidden states")
    assert len(finals_k) == len(finals_n)
    for name, s_k, s_n in zip(["h_T", "c_T"], finals_k, finals_n):
        _assert_close(helpers, s_k, s_n, f"final state {name}")


def test_forward_with_course_pkg_weights(model, shape, rng, helpers):
    """set_params puts course_pkg's W, U, b into the Keras layer; both compute the same sequence."""
    B, T, D, H = shape
    W, U, b = model.random_params(D, H, rng)
    x, states = model.random_inputs(B, T, D, H, rng)
    layer = model.keras_layer(H)
    layer.build((None, None, D))
    set_params(layer, W, U, b)
    h, finals, _ = model.forward(x, states, W, U, b)
    _assert_sequences_match(helpers, helpers.run_keras(layer, x, states), (h, finals))


def test_forward_with_keras_weights(model, shape, rng, helpers):
    """get_params reads a randomly initialised Keras layer (random bias too); course_pkg computes the same."""
    B, T, D, H = shape
    keras.utils.set_random_seed(int(rng.integers(2**31)))
    layer = model.keras_layer(H, bias_initializer=keras.initializers.RandomNormal(stddev=0.5))
    x, states = model.random_inputs(B, T, D, H, rng)
    keras_out = helpers.run_keras(layer, x, states)  # builds the layer
    W, U, b = get_params(layer)
    assert np.any(b != 0)
    h, finals, _ = model.forward(x, states, W, U, b)
    _assert_sequences_match(helpers, keras_out, (h, finals))


def test_step_functions_match_keras_cells(model, rng, helpers):
    """course_pkg's step function against one call of the Keras layer's cell, and the layer on a 1-step sequence."""
    B, D, H = 3, 4, 5
    W, U, b = model.random_params(D, H, rng)
    x, states = model.random_inputs(B, 1, D, H, rng)
    layer = model.keras_layer(H)
    layer.build((None, None, D))
    set_params(layer, W, U, b)
    h_t, new_states, _ = model.step(x[:, 0], states, W, U, b)

    out, new_states_k = layer.cell(x[:, 0], states)
    _assert_close(helpers, out, h_t, "cell output")
    assert len(new_states_k) == len(new_states)
    for s_k, s_n in zip(new_states_k, new_states):
        _assert_close(helpers, s_k, s_n, "cell state")

    _assert_sequences_match(helpers, helpers.run_keras(layer, x, states), (h_t[:, None], new_states))


def test_gru_reset_after_true_and_false_are_different_models(models, rng, helpers):
    """Same W and U, and biases that agree (b for reset_after=False; rows [b, 0] for reset_after=True).

    From a zero state the first step agrees (the reset multiplies zero either way); from then on the outputs differ,
    in course_pkg and in Keras alike.
    """
    B, T, D, H = 4, 6, 3, 5
    W, U, b = models["gru_nra"].random_params(D, H, rng)
    b2 = np.stack([b, np.zeros_like(b)])
    x, (h0,) = models["gru_nra"].random_inputs(B, T, D, H, rng)
    zero = np.zeros_like(h0)
    outputs = {}
    for reset_after, bias in [(False, b), (True, b2)]:
        layer = models["gru_ra" if reset_after else "gru_nra"].keras_layer(H)
        layer.build((None, None, D))
        set_params(layer, W, U, bias)
        for name, start in [("h0", h0), ("zero", zero)]:
            h_np, _ = gru.gru_forward(x, start, W, U, bias, reset_after=reset_after)
            h_k, _ = helpers.run_keras(layer, x, [start])
            _assert_close(helpers, h_k, h_np, f"reset_after={reset_after}, start {name}")
            outputs[reset_after, name] = np.asarray(h_np)
    _assert_close(helpers, outputs[True, "zero"][:, 0], outputs[False, "zero"][:, 0], "first step from h0 = 0")
    assert np.max(np.abs(outputs[True, "zero"] - outputs[False, "zero"])) > 1e-3
    assert np.max(np.abs(outputs[True, "h0"] - outputs[False, "h0"])) > 1e-3


def _containers(model, H, D):
    """The Keras layer, its own cell, keras.layers.RNN around our cell, and our bare cell, all built for D inputs."""
    layer = model.keras_layer(H)
    layer.build((None, None, D))
    wrapped = keras.layers.RNN(model.our_cell(H))
    wrapped.build((None, None, D))
    bare = model.our_cell(H)
    bare.build((None, D))
    return {"keras layer": layer, "keras cell": layer.cell, "RNN(our cell)": wrapped, "our cell": bare}


def test_round_trip(model, rng):
    D, H = 3, 4
    W, U, b = model.random_params(D, H, rng)
    for where, container in _containers(model, H, D).items():
        assert set_params(container, W, U, b) is container
        got = get_params(container)
        for name, expected, actual in zip("WUb", (W, U, b), got):
            assert isinstance(actual, np.ndarray) and actual.dtype == np.float32, (where, name)
            np.testing.assert_array_equal(actual, expected, err_msg=f"{where}: {name}")


def test_weights_copy_unchanged_between_keras_layers_and_our_cells(model, rng):
    """Keras' own get_weights/set_weights move weights between keras.layers.X and RNN(our cell): same layout."""
    D, H = 3, 4
    c = _containers(model, H, D)
    W, U, b = model.random_params(D, H, rng)
    set_params(c["keras layer"], W, U, b)
    c["RNN(our cell)"].set_weights(c["keras layer"].get_weights())
    for name, expected, actual in zip("WUb", (W, U, b), get_params(c["RNN(our cell)"])):
        np.testing.assert_array_equal(actual, expected, err_msg=name)


def test_use_bias_false(model, rng):
    D, H = 3, 4
    layer = model.keras_layer(H, use_bias=False)
    layer.build((None, None, D))
    W, U, b = get_params(layer)
    assert b.shape == model.bias_shape(H) and not np.any(b)
    W2, U2, _ = model.random_params(D, H, rng)
    set_params(layer, W2, U2, np.zeros(model.bias_shape(H), np.float32))
    np.testing.assert_array_equal(get_params(layer)[0], W2)
    with pytest.raises(ValueError, match="use_bias=False"):
        set_params(layer, W2, U2, np.ones(model.bias_shape(H), np.float32))


# ------------------------------------------------------------------------------------------------------------------
# Errors a student will meet


def _built(models, name, H=8, D=3, **kwargs):
    layer = models[name].keras_layer(H, **kwargs)
    layer.build((None, None, D))
    return layer


@pytest.mark.parametrize(
    "name, W_shape, U_shape, b_shape, match",
    [
        ("lstm", (3, 24), (8, 32), (32,), r"argument 'W' must have shape \(D, 4H\).*\(3, 32\); got \(3, 24\)"),
        ("lstm", (5, 32), (8, 32), (32,), r"argument 'W' must have shape .*D=3.*\(3, 32\); got \(5, 32\)"),
        ("lstm", (3, 32), (32, 8), (32,), r"argument 'U' must have shape \(H, 4H\).*\(8, 32\); got \(32, 8\)"),
        ("lstm", (3, 32), (8, 32), (24,), r"argument 'b' must have shape \(4H,\).*\(32,\); got \(24,\)"),
        ("rnn", (3, 8), (8, 8), (1, 8), r"argument 'b' must have shape \(H,\).*\(8,\); got \(1, 8\)"),
        ("gru_ra", (3, 24), (8, 24), (24,), r"reset_after mismatch.*reset_after=True.*\(2, 24\); got \(24,\)"),
        ("gru_nra", (3, 24), (8, 24), (2, 24), r"reset_after mismatch.*reset_after=False.*\(24,\); got \(2, 24\)"),
        ("gru_ra", (3, 24), (8, 24), (2, 8), r"argument 'b' must have shape \(2, 3H\).*\(2, 24\); got \(2, 8\)"),
    ],
    ids=[
        "lstm-W-cols", "lstm-W-rows", "lstm-U-transposed", "lstm-b", "rnn-b-2d",
        "gru-ra-given-3H", "gru-nra-given-2x3H", "gru-ra-b",
    ],
)
def test_set_params_shape_errors_name_argument_and_shapes(models, name, W_shape, U_shape, b_shape, match):
    layer = _built(models, name)
    before = [w.copy() for w in get_params(layer)]
    args = [np.zeros(s, np.float32) for s in (W_shape, U_shape, b_shape)]
    with pytest.raises(ValueError, match=match):
        set_params(layer, *args)
    for old, new in zip(before, get_params(layer)):
        np.testing.assert_array_equal(old, new)  # nothing written before the error


def test_set_params_rejects_integer_arrays(models):
    layer = _built(models, "rnn")
    with pytest.raises(TypeError, match="argument 'W' must be a floating-point array"):
        set_params(layer, np.zeros((3, 8), int), np.zeros((8, 8)), np.zeros(8))


@pytest.mark.parametrize("fn", [get_params, lambda layer: set_params(layer, None, None, None)], ids=["get", "set"])
def test_unsupported_unbuilt_and_non_default_layers(models, fn):
    with pytest.raises(TypeError, match="expected keras.layers.SimpleRNN, LSTM or GRU.*got Dense"):
        fn(keras.layers.Dense(3))
    with pytest.raises(TypeError, match="expected .*got RNN around a StackedRNNCells"):
        fn(keras.layers.RNN([keras.layers.LSTMCell(2), keras.layers.LSTMCell(2)]))
    bidirectional = keras.layers.Bidirectional(keras.layers.LSTM(2))
    bidirectional.build((None, None, 3))
    with pytest.raises(TypeError, match="forward_layer"):
        fn(bidirectional)
    for unbuilt in [keras.layers.GRU(4), keras.layers.LSTMCell(4), LSTMCell(4), keras.layers.RNN(RNNCell(4))]:
        with pytest.raises(ValueError, match="call the layer on an input or build it first"):
            fn(unbuilt)
    for kwargs, what in [
        ({"activation": "relu"}, "activation='relu'"),
        ({"recurrent_activation": "hard_sigmoid"}, "recurrent_activation='hard_sigmoid'"),
    ]:
        with pytest.raises(ValueError, match=f"{what}.*implements only the defaults"):
            fn(_built(models, "lstm", **kwargs))
    with pytest.raises(ValueError, match="activation='relu'"):
        fn(_built(models, "rnn", activation="relu"))


def test_non_default_but_equivalent_activations_are_accepted(models):
    layer = _built(models, "gru_ra", activation=keras.ops.tanh, recurrent_activation=keras.activations.sigmoid)
    assert get_params(layer)[2].shape == (2, 24)


def test_cells_reject_bad_units():
    for cls in (RNNCell, LSTMCell, GRUCell):
        for units in (0, -3, 2.5, True):
            with pytest.raises(ValueError, match="'units' must be a positive integer"):
                cls(units)


def test_import_course_pkg_does_not_import_keras():
    code = (
        "import sys, course_pkg, course_pkg.rnn, course_pkg.lstm, course_pkg.gru, course_pkg.init, "
        "course_pkg.gradcheck; print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
