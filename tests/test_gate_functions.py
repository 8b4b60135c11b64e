"""course_pkg's gate functions (what the assignments ask students to write) agree with the fused step functions the
book explains: each gate is the step's own gate, for every cell and both GRU conventions."""

import numpy as np
import pytest

from course_pkg import gru, lstm

SHAPES = [(1, 3, 5), (4, 6, 2), (3, 4, 4)]  # (B, D, H): one row, D > H, D == H


def _rng_arrays(B, D, H, gates, bias_shape):
    rng = np.random.default_rng(B * 100 + D * 10 + H)
    return (rng.standard_normal((B, D)), 0.5 * rng.standard_normal((B, H)), rng.standard_normal((D, gates * H)),
            rng.standard_normal((H, gates * H)), rng.standard_normal(bias_shape))


@pytest.mark.parametrize("B,D,H", SHAPES)
def test_lstm_gates_are_the_step_gates(B, D, H):
    x, h, W, U, b = _rng_arrays(B, D, H, 4, (4 * H,))
    c = np.random.default_rng(0).standard_normal((B, H))
    h_t, c_t, cache = lstm.lstm_step_forward(x, h, c, W, U, b)
    gates = {name: fn(x, h, W, U, b) for name, fn in
             [("i", lstm.input_gate), ("f", lstm.forget_gate), ("g", lstm.candidate), ("o", lstm.output_gate)]}
    for name, value in gates.items():
        np.testing.assert_allclose(value, cache[name], rtol=1e-13, atol=1e-15, err_msg=name)
    np.testing.assert_allclose(gates["f"] * c + gates["i"] * gates["g"], c_t, rtol=1e-13)
    np.testing.assert_allclose(gates["o"] * np.tanh(c_t), h_t, rtol=1e-13)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("B,D,H", SHAPES)
def test_gru_gates_are_the_step_gates(B, D, H, reset_after):
    x, h, W, U, b = _rng_arrays(B, D, H, 3, (2, 3 * H) if reset_after else (3 * H,))
    h_t, cache = gru.gru_step_forward(x, h, W, U, b, reset_after=reset_after)
    z = gru.update_gate(x, h, W, U, b, reset_after)
    r = gru.reset_gate(x, h, W, U, b, reset_after)
    h_tilde = gru.candidate(x, h, r, W, U, b, reset_after)
    for name, value in [("z", z), ("r", r), ("h_tilde", h_tilde)]:
        np.testing.assert_allclose(value, cache[name], rtol=1e-13, atol=1e-15, err_msg=name)
    np.testing.assert_allclose(z * h + (1 - z) * h_tilde, h_t, rtol=1e-13, atol=1e-15)


def test_the_two_reset_conventions_give_different_candidates():
    x, h, W, U, b = _rng_arrays(3, 4, 4, 3, (3 * 4,))
    r = gru.reset_gate(x, h, W, U, b, reset_after=False)
    before = gru.candidate(x, h, r, W, U, b, reset_after=False)
    after = gru.candidate(x, h, r, W, U, np.stack([b, np.zeros_like(b)]), reset_after=True)
    assert np.max(np.abs(before - after)) > 1e-3


def test_float32_stays_float32():
    x, h, W, U, b = (a.astype(np.float32) for a in _rng_arrays(2, 3, 4, 4, (16,)))
    assert lstm.forget_gate(x, h, W, U, b).dtype == np.float32
    assert gru.update_gate(x, h, W[:, :12], U[:, :12], b[:12], reset_after=False).dtype == np.float32


@pytest.mark.parametrize("call,message", [
    (lambda: lstm.forget_gate(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((3, 12)), np.zeros((4, 16)),
                              np.zeros(16)), "forget_gate"),
    (lambda: gru.update_gate(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((3, 12)), np.zeros((4, 12)),
                             np.zeros(12), reset_after=True), r"\(2, 3H\)"),
    (lambda: gru.candidate(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 5)), np.zeros((3, 12)),
                           np.zeros((4, 12)), np.zeros(12), reset_after=False), "'r'"),
])
def test_wrong_shapes_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
