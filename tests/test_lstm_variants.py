"""The LSTM variants of Greff et al. (2017): gradients by central differences, and each switch doing what it says."""

import numpy as np
import pytest

from course_pkg import lstm
from course_pkg.gradcheck import gradcheck
from course_pkg.lstm_variants import VARIANTS, effective_parameter_count, lstm_variant_backward, lstm_variant_forward

NAMES = ["x", "h0", "c0", "W", "U", "b", "P"]


def _inputs(B=2, T=4, D=3, H=5, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((B, T, D)), h0=rng.standard_normal((B, H)), c0=rng.standard_normal((B, H)),
        W=0.5 * rng.standard_normal((D, 4 * H)), U=0.5 * rng.standard_normal((H, 4 * H)),
        b=0.5 * rng.standard_normal(4 * H), P=0.5 * rng.standard_normal((3, H)),
    ), rng.standard_normal((B, T, H))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("shape", [(2, 4, 3, 5), (1, 1, 2, 3)])
def test_variant_gradients_match_central_differences(variant, shape):
    inputs, dh = _inputs(*shape)
    _, _, cache = lstm_variant_forward(**inputs, variant=variant)
    grads = dict(zip(NAMES, lstm_variant_backward(dh, cache)))
    report = gradcheck(lambda **k: lstm_variant_forward(**k, variant=variant)[0], inputs, grads, dh)
    assert report.passed, f"{variant}\n{report}"


def test_vanilla_is_course_pkg_lstm():
    inputs, dh = _inputs()
    P = inputs.pop("P")
    h, c, cache = lstm_variant_forward(**inputs, P=P, variant="vanilla")
    h_ref, c_ref, cache_ref = lstm.lstm_forward(**inputs)
    np.testing.assert_array_equal(h, h_ref)
    np.testing.assert_array_equal(c, c_ref)
    for ours, ref in zip(lstm_variant_backward(dh, cache), lstm.lstm_backward(dh, cache_ref)):
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def _gates(variant):
    inputs, _ = _inputs()
    _, _, cache = lstm_variant_forward(**inputs, variant=variant)
    return cache["steps"]


def test_switches_do_what_they_say():
    assert all(np.all(st["i"] == 1) for st in _gates("NIG"))
    assert all(np.all(st["f"] == 1) for st in _gates("NFG"))
    assert all(np.all(st["o"] == 1) for st in _gates("NOG"))
    assert all(np.allclose(st["f"], 1 - st["i"]) for st in _gates("CIFG"))
    assert all(np.allclose(st["act_c"], st["c"]) for st in _gates("NOAF"))
    assert not all(np.all(np.abs(st["g"]) <= 1) for st in _gates("NIAF")), "NIAF's candidate is not squashed"
    inputs, _ = _inputs()
    h_p, _, _ = lstm_variant_forward(**inputs, variant="peephole")
    h_v, _, _ = lstm_variant_forward(**inputs, variant="vanilla")
    assert np.abs(h_p - h_v).max() > 1e-3, "non-zero peepholes must change the output"


def test_effective_parameter_counts():
    D, H = 3, 5
    full = 4 * (D + H + 1) * H
    assert effective_parameter_count(D, H, "vanilla") == full
    assert effective_parameter_count(D, H, "peephole") == full + 3 * H
    for v in ("NIG", "NFG", "NOG", "CIFG"):
        assert effective_parameter_count(D, H, v) == 3 * (D + H + 1) * H
    with pytest.raises(ValueError, match="unknown LSTM variant"):
        effective_parameter_count(D, H, "nope")


def test_peephole_shape_is_checked():
    inputs, _ = _inputs()
    inputs["P"] = np.zeros((4, 5))
    with pytest.raises(ValueError, match=r"'P' must have shape \(3, H\)"):
        lstm_variant_forward(**inputs, variant="peephole")
