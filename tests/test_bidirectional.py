"""course_pkg.bidirectional: gradient checks (float64, central differences) and forward passes against Keras.

The Keras comparisons copy weights with keras_interop.set_params into layer.forward_layer and layer.backward_layer of
keras.layers.Bidirectional and compare in float32 with a tolerance of 1e-5.
"""

import os

import numpy as np
import pytest

from course_pkg import bidirectional as bd
from course_pkg import gru, lstm, rnn
from course_pkg.gradcheck import gradcheck

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TOL = 1e-5
# (name, cell, reset_after): the GRU in both conventions
CELLS = [("rnn", "rnn", True), ("lstm", "lstm", True), ("gru_after", "gru", True), ("gru_before", "gru", False)]
CELL_IDS = [c[0] for c in CELLS]


def random_params(cell, D, H, rng, reset_after=True, dtype=np.float64, scale=0.5):
    """W, U and a non-zero b of the layer's shapes, of order `scale`."""
    G = bd.GATES[cell] * H
    b_shape = (2, G) if cell == "gru" and reset_after else (G,)
    return tuple(
        (scale * rng.standard_normal(s)).astype(dtype) for s in ((D, G), (H, G), b_shape)
    )


# --------------------------------------------------------------------------------------------------------------------
# Plain numpy facts
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,cell,reset_after", CELLS, ids=CELL_IDS)
def test_sequence_forward_is_course_pkgs_layer_from_zero_state(name, cell, reset_after):
    rng = np.random.default_rng(1)
    B, T, D, H = 2, 5, 3, 4
    x = rng.standard_normal((B, T, D))
    p = random_params(cell, D, H, rng, reset_after)
    h, _ = bd.sequence_forward(cell, x, p, reset_after)
    h0 = np.zeros((B, H))
    if cell == "rnn":
        expected = rnn.rnn_forward(x, h0, *p)[0]
    elif cell == "lstm":
        expected = lstm.lstm_forward(x, h0, h0, *p)[0]
    else:
        expected = gru.gru_forward(x, h0, *p, reset_after=reset_after)[0]
    np.testing.assert_array_equal(h, expected)


def test_bidirectional_reads_the_future_and_forward_half_does_not():
    """Changing x at the last step changes only the backward half at earlier steps."""
    rng = np.random.default_rng(2)
    B, T, D, H = 2, 6, 3, 4
    x = rng.standard_normal((B, T, D))
    pf, pb = random_params("lstm", D, H, rng), random_params("lstm", D, H, rng)
    y, _ = bd.bidirectional_forward("lstm", x, pf, pb)
    x2 = x.copy()
    x2[:, -1] += 1.0
    y2, _ = bd.bidirectional_forward("lstm", x2, pf, pb)
    assert y.shape == (B, T, 2 * H)
    np.testing.assert_array_equal(y[:, :-1, :H], y2[:, :-1, :H])  # the forward half is causal
    assert np.all(np.abs(y[:, 0, H:] - y2[:, 0, H:]).max(axis=-1) > 1e-6)  # the backward half sees step T-1


def test_sum_is_the_sum_of_the_concat_halves():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3))
    pf, pb = random_params("gru", 3, 5, rng), random_params("gru", 3, 5, rng)
    y_cat, _ = bd.bidirectional_forward("gru", x, pf, pb, "concat")
    y_sum, _ = bd.bidirectional_forward("gru", x, pf, pb, "sum")
    np.testing.assert_allclose(y_sum, y_cat[..., :5] + y_cat[..., 5:], rtol=0, atol=1e-12)


def test_bad_arguments_raise():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 3))
    p = random_params("rnn", 3, 4, rng)
    with pytest.raises(ValueError, match="merge_mode"):
        bd.bidirectional_forward("rnn", x, p, p, merge_mode="mul")
    with pytest.raises(ValueError, match="cell"):
        bd.sequence_forward("elman", x, p)
    with pytest.raises(ValueError, match="same shapes"):
        bd.bidirectional_forward("rnn", x, p, random_params("rnn", 3, 5, rng))
    _, cache = bd.stack_forward("rnn", x, [p, random_params("rnn", 4, 2, rng)])
    with pytest.raises(ValueError, match="2 layers"):
        bd.stack_backward([None, None, np.ones((2, 3, 2))], cache)
    with pytest.raises(ValueError, match="no gradient"):
        bd.stack_backward([np.ones((2, 3, 4)), None], cache)


# --------------------------------------------------------------------------------------------------------------------
# Gradient checks
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
@pytest.mark.parametrize("name,cell,reset_after", CELLS, ids=CELL_IDS)
def test_bidirectional_backward_gradcheck(name, cell, reset_after, merge_mode):
    rng = np.random.default_rng(5)
    B, T, D, H = 2, 4, 3, 3
    x = rng.standard_normal((B, T, D))
    pf = random_params(cell, D, H, rng, reset_after)
    pb = random_params(cell, D, H, rng, reset_after)
    inputs = {"x": x, **dict(zip(["Wf", "Uf", "bf"], pf)), **dict(zip(["Wb", "Ub", "bb"], pb))}

    def f(x, Wf, Uf, bf, Wb, Ub, bb):
        return bd.bidirectional_forward(cell, x, (Wf, Uf, bf), (Wb, Ub, bb), merge_mode, reset_after)[0]

    y, cache = bd.bidirectional_forward(cell, x, pf, pb, merge_mode, reset_after)
    dy = rng.standard_normal(y.shape)
    dx, gf, gb = bd.bidirectional_backward(dy, cache)
    analytic = {"x": dx, **dict(zip(["Wf", "Uf", "bf"], gf)), **dict(zip(["Wb", "Ub", "bb"], gb))}
    report = gradcheck(f, inputs, analytic, dy)
    assert report.passed, str(report)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["unidirectional", "bidirectional"])
@pytest.mark.parametrize("direct_losses", [False, True], ids=["top-loss", "loss-on-every-layer"])
def test_stack_backward_gradcheck(bidirectional, direct_losses):
    """Three LSTM layers of different sizes; with a loss on the top layer only, or on every layer's output."""
    rng = np.random.default_rng(6)
    B, T, D, sizes = 2, 4, 3, [4, 2, 3]
    params = bd.init_stack("lstm", D, sizes, rng, dtype=np.float64, bidirectional=bidirectional)
    for layer in params:  # a non-zero bias everywhere, so that every bias gradient is tested
        for p in layer if bidirectional else (layer,):
            p[2][:] = 0.3 * rng.standard_normal(p[2].shape)
    flat = [p for layer in params for p in (layer if bidirectional else (layer,))]
    names = [f"{k}{i}" for i in range(len(flat)) for k in "WUb"]
    inputs = {"x": rng.standard_normal((B, T, D)), **dict(zip(names, [a for p in flat for a in p]))}

    def rebuild(values):
        triples = [tuple(values[3 * i : 3 * i + 3]) for i in range(len(flat))]
        return [tuple(triples[2 * i : 2 * i + 2]) for i in range(len(sizes))] if bidirectional else triples

    def f(x, **kw):
        hs, _ = bd.stack_forward("lstm", x, rebuild([kw[n] for n in names]), bidirectional)
        return tuple(hs) if direct_losses else hs[-1]

    hs, cache = bd.stack_forward("lstm", inputs["x"], params, bidirectional)
    assert [h.shape[-1] for h in hs] == [(2 if bidirectional else 1) * H for H in sizes]
    dhs = [rng.standard_normal(h.shape) for h in hs]
    dx, grads = bd.stack_backward(dhs if direct_losses else dhs[-1], cache)
    flat_grads = [g for layer in grads for g in (layer if bidirectional else (layer,))]
    analytic = {"x": dx, **dict(zip(names, [a for g in flat_grads for a in g]))}
    report = gradcheck(f, inputs, analytic, tuple(dhs) if direct_losses else dhs[-1])
    assert report.passed, str(report)


# --------------------------------------------------------------------------------------------------------------------
# Against Keras
# --------------------------------------------------------------------------------------------------------------------

KERAS_CELLS = [("rnn", "SimpleRNN"), ("lstm", "LSTM"), ("gru", "GRU")]


def _max_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)))


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
@pytest.mark.parametrize("cell,layer_name", KERAS_CELLS, ids=[c for c, _ in KERAS_CELLS])
def test_matches_keras_bidirectional(keras, cell, layer_name, merge_mode):
    from course_pkg.keras_interop import get_params, set_params

    rng = np.random.default_rng(7)
    B, T, D, H = 3, 7, 4, 5
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    layer = keras.layers.Bidirectional(
        getattr(keras.layers, layer_name)(H, return_sequences=True), merge_mode=merge_mode
    )
    layer.build((None, T, D))
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards
    pf = random_params(cell, D, H, rng, dtype=np.float32)
    pb = random_params(cell, D, H, rng, dtype=np.float32)
    set_params(layer.forward_layer, *pf)
    set_params(layer.backward_layer, *pb)
    for got, sent in zip(get_params(layer.backward_layer), pb):
        np.testing.assert_array_equal(got, sent)
    y_keras = np.asarray(layer(x))
    y, _ = bd.bidirectional_forward(cell, x, pf, pb, merge_mode)
    assert y.shape == y_keras.shape == (B, T, 2 * H if merge_mode == "concat" else H)
    assert np.max(np.abs(y)) > 0.05  # comparing two near-zero outputs would prove nothing
    assert _max_error(y, y_keras) <= TOL
    # The two directions are not interchangeable: swapping their weights gives a different output.
    y_swapped, _ = bd.bidirectional_forward(cell, x, pb, pf, merge_mode)
    assert _max_error(y_swapped, y_keras) > 1e-2


@pytest.mark.parametrize("cell,layer_name", KERAS_CELLS, ids=[c for c, _ in KERAS_CELLS])
def test_keras_backward_layer_returns_its_states_in_reading_order(keras, cell, layer_name):
    """backward_layer (go_backwards=True) called alone: out[:, k] has read x_{T-1} .. x_{T-1-k}, not re-reversed."""
    from course_pkg.keras_interop import get_params

    rng = np.random.default_rng(8)
    B, T, D, H = 2, 6, 3, 4
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    keras.utils.set_random_seed(8)
    layer = keras.layers.Bidirectional(getattr(keras.layers, layer_name)(H, return_sequences=True))
    y_keras = np.asarray(layer(x))
    raw = np.asarray(layer.backward_layer(x))
    h_rev, _ = bd.sequence_forward(cell, bd.reverse_time(x), get_params(layer.backward_layer))
    assert _max_error(raw, h_rev) <= TOL
    assert _max_error(bd.reverse_time(raw), y_keras[..., H:]) <= TOL  # Bidirectional flips it back
    assert _max_error(raw, y_keras[..., H:]) > 1e-2


def test_keras_bidirectional_without_sequences_takes_the_backward_state_at_step_0(keras):
    """return_sequences=False: the backward half is the backward state at t = 0 (it has read the whole sequence)."""
    from course_pkg.keras_interop import get_params

    rng = np.random.default_rng(9)
    B, T, D, H = 3, 6, 4, 5
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    keras.utils.set_random_seed(9)
    layer = keras.layers.Bidirectional(keras.layers.LSTM(H))
    y_keras = np.asarray(layer(x))
    y, _ = bd.bidirectional_forward("lstm", x, get_params(layer.forward_layer), get_params(layer.backward_layer))
    assert _max_error(y_keras[:, :H], y[:, -1, :H]) <= TOL
    assert _max_error(y_keras[:, H:], y[:, 0, H:]) <= TOL
    assert _max_error(y_keras[:, H:], y[:, -1, H:]) > 1e-2


@pytest.mark.parametrize("bidirectional", [False, True], ids=["unidirectional", "bidirectional"])
def test_stack_matches_keras(keras, bidirectional):
    """Two stacked GRU layers, the first returning sequences; Keras' random weights copied into course_pkg."""
    from course_pkg.keras_interop import get_params

    rng = np.random.default_rng(10)
    B, T, D, sizes = 3, 5, 4, [6, 3]
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    keras.utils.set_random_seed(10)
    init = {"bias_initializer": keras.initializers.RandomNormal(stddev=0.5)}
    layers = [keras.layers.GRU(H, return_sequences=True, **init) for H in sizes]
    if bidirectional:
        layers = [keras.layers.Bidirectional(lay) for lay in layers]
    model = keras.Sequential([keras.Input((T, D)), *layers])
    y_keras = np.asarray(model(x))
    if bidirectional:
        params = [(get_params(lay.forward_layer), get_params(lay.backward_layer)) for lay in layers]
    else:
        params = [get_params(lay) for lay in layers]
    hs, _ = bd.stack_forward("gru", x, params, bidirectional)
    assert len(hs) == 2 and hs[-1].shape == y_keras.shape
    assert _max_error(hs[-1], y_keras) <= TOL


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell,layer_name", KERAS_CELLS, ids=[c for c, _ in KERAS_CELLS])
def test_parameter_count_matches_keras(keras, cell, layer_name, bidirectional):
    D, H = 7, 5
    layer = getattr(keras.layers, layer_name)(H, return_sequences=True)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer)
    layer.build((None, None, D))
    assert bd.parameter_count(cell, D, H, bidirectional) == layer.count_params()
    if cell == "gru":
        layer = keras.layers.GRU(H, reset_after=False)
        layer.build((None, None, D))
        assert bd.parameter_count(cell, D, H, reset_after=False) == layer.count_params()
