"""The pieces the book's training loops are built from: read-out, losses, clipping, optimisers, tasks, text."""

import numpy as np
import pytest

from course_pkg.gradcheck import gradcheck
from course_pkg.layers import dense_backward, dense_forward, mse, softmax, softmax_cross_entropy
from course_pkg.optim import SGD, Adam, clip_by_global_norm, global_norm
from course_pkg.tasks import ADDING_BASELINE_MSE, adding_problem
from course_pkg.text import CharVocab, python_docs_text

rng = np.random.default_rng(0)


@pytest.mark.parametrize("lead", [(3,), (2, 4)])
def test_dense_gradients(lead):
    h, V, c = rng.standard_normal(lead + (4,)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    y, cache = dense_forward(h, V, c)
    dy = rng.standard_normal(y.shape)
    report = gradcheck(lambda **k: dense_forward(**k)[0], dict(h=h, V=V, c=c), dict(zip("hVc", dense_backward(dy, cache))), dy)
    assert report.passed, report


def test_dense_rejects_mismatched_V():
    with pytest.raises(ValueError, match=r"'V' must have shape \(H, K\) with H=4; got \(3, 5\)"):
        dense_forward(np.ones((2, 4)), np.ones((3, 5)), np.ones(5))


def test_softmax_cross_entropy_value_gradient_and_mask():
    logits = rng.standard_normal((2, 3, 5))
    targets = rng.integers(0, 5, (2, 3))
    mask = np.array([[1, 1, 0], [1, 0, 0]], dtype=float)
    loss, d = softmax_cross_entropy(logits, targets, mask)
    p = softmax(logits)
    nll = -np.log(p[np.arange(2)[:, None], np.arange(3)[None, :], targets])
    assert loss == pytest.approx((nll * mask).sum() / mask.sum(), rel=1e-12)
    assert np.all(d[mask == 0] == 0), "masked positions must get no gradient"
    report = gradcheck(lambda logits: softmax_cross_entropy(logits, targets, mask)[0], {"logits": logits}, {"logits": d}, 1.0)
    assert report.passed, report


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, d = softmax_cross_entropy(logits, np.array([0]))
    assert loss == pytest.approx(0.0, abs=1e-12) and np.all(np.isfinite(d))


def test_softmax_cross_entropy_rejects_float_targets():
    with pytest.raises(TypeError, match="integers"):
        softmax_cross_entropy(np.zeros((2, 3)), np.zeros(2))


def test_mse_value_and_gradient():
    pred, target = rng.standard_normal(6), rng.standard_normal(6)
    loss, d = mse(pred, target)
    assert loss == pytest.approx(np.mean((pred - target) ** 2))
    report = gradcheck(lambda pred: mse(pred, target)[0], {"pred": pred}, {"pred": d}, 1.0)
    assert report.passed, report


def test_clip_by_global_norm_caps_length_and_keeps_direction():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    assert global_norm(grads) == pytest.approx(5.0)
    clipped, norm = clip_by_global_norm(grads, 1.0)
    assert norm == pytest.approx(5.0)
    assert global_norm(clipped) == pytest.approx(1.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0])
    same, _ = clip_by_global_norm(grads, 10.0)
    np.testing.assert_array_equal(same["b"], grads["b"])
    with pytest.raises(ValueError, match="max_norm"):
        clip_by_global_norm(grads, 0)


@pytest.mark.parametrize("opt", [lambda p: SGD(p, lr=0.1), lambda p: Adam(p, lr=0.1)])
def test_optimisers_minimise_a_quadratic_in_place(opt):
    params = {"w": np.array([3.0, -2.0])}
    w = params["w"]
    o = opt(params)
    for _ in range(300):
        o.step({"w": 2 * params["w"]})
    assert params["w"] is w, "parameters must be updated in place"
    assert np.abs(params["w"]).max() < 1e-2


def test_adam_first_step_has_length_lr():
    params = {"w": np.array([1.0, 1.0])}
    Adam(params, lr=0.01).step({"w": np.array([5.0, -0.1])})
    np.testing.assert_allclose(params["w"], [0.99, 1.01], rtol=1e-6)


def test_adding_problem_layout_and_baseline():
    x, y = adding_problem(20000, 30, seed=1)
    assert x.shape == (20000, 30, 2) and y.shape == (20000,) and x.dtype == np.float32
    markers = x[..., 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :15].sum(axis=1) == 1), "one marker in the first half"
    np.testing.assert_allclose(y, (x[..., 0] * markers).sum(axis=1), rtol=1e-6)
    assert np.mean((y - 1) ** 2) == pytest.approx(ADDING_BASELINE_MSE, rel=0.03)
    x2, _ = adding_problem(5, 30, seed=1)
    np.testing.assert_array_equal(x2, adding_problem(5, 30, seed=1)[0])


def test_python_docs_text_round_trips_through_the_vocabulary():
    text = python_docs_text(5000)
    assert len(text) == 5000 and text == python_docs_text()[:5000]
    vocab = CharVocab(text)
    assert vocab.decode(vocab.encode(text)) == text
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("\x00")


def test_copy_task_layout_and_baseline():
    from course_pkg.tasks import copy_task, copy_task_baseline

    x, y = copy_task(50, 7, seed=3)
    assert x.shape == y.shape == (50, 27)
    np.testing.assert_array_equal(y[:, -10:], x[:, :10])
    assert np.all(x[:, 16] == 9) and np.all((x[:, :10] >= 1) & (x[:, :10] <= 8))
    assert np.all(y[:, :17] == 0) and np.all(x[:, 17:] == 0)
    assert copy_task_baseline(7) == pytest.approx(10 * np.log(8) / 27)


def test_embedded_reber_strings_follow_the_grammar():
    from course_pkg.tasks import embedded_reber, embedded_reber_successors

    strings = embedded_reber(200, seed=0)
    assert embedded_reber(200, seed=0) == strings
    for s in strings:
        sets = embedded_reber_successors(s)
        assert len(sets) == len(s)
        assert all(nxt in allowed for nxt, allowed in zip(s[1:], sets))
        assert sets[-3] == {s[1]}, "the long-range dependency: the second symbol decides the second-to-last"
    assert {s[1] for s in strings} == {"T", "P"}
    for bad in ("BTBTXXETE", "BTBTSSETP", "BTBPVVEPE"):
        with pytest.raises(ValueError, match="not an embedded Reber string"):
            embedded_reber_successors(bad)
