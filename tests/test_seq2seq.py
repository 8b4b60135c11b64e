"""course_pkg.seq2seq and course_pkg.seq_tasks: the encoder-decoder's backward passes, Keras, padding, decoding.

1. Gradient checks in float64 (course_pkg.gradcheck): the encoder over a padded batch (gradients of every state and
   of the final state), one decoder step for each cell and attention (the state, the encoder outputs and every
   parameter), and the whole loss with teacher forcing, free running and a scheduled-sampling mix.
2. keras_seq2seq computes the same teacher-forced logits as seq2seq_forward with the same weights, for both cells and
   all four attention choices, on a padded batch (float32, 1e-5); weights go both ways unchanged.
3. Padding: an example's logits in a padded batch equal its logits alone; free running feeds exactly the tokens that
   greedy search through course_pkg.decoding produces.
4. The task: number_to_words against an independent parser written here, and the encoding of batches.
"""

import os
import zlib

import numpy as np
import pytest

from course_pkg import decoding, seq2seq as s2s, seq_tasks as st
from course_pkg.gradcheck import gradcheck

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONFIGS = [(cell, att) for cell in ("lstm", "gru") for att in (None, "additive", "dot", "general")]
IDS = [f"{c}-{a or 'plain'}" for c, a in CONFIGS]
V_SRC, V_TGT, D, H, A = 7, 6, 3, 4, 5


def rng_for(*parts):
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


def params_for(cell, attention, rng, dtype=np.float64, scale=0.5):
    shapes = s2s.param_shapes(V_SRC, V_TGT, D, H, cell, attention, A)
    return {k: (scale * rng.standard_normal(s)).astype(dtype) for k, s in shapes.items()}


def batch(rng, B=3, S=5, T=4):
    """Random ids, right-padded: lengths all different, the longest filling S (T); one length-1 source."""
    src_len = np.array([S, 1, 3][:B])
    tgt_len = np.array([2, T, 3][:B])
    src = np.zeros((B, S), np.int64)
    tgt = np.zeros((B, T), np.int64)
    for b in range(B):
        src[b, : src_len[b]] = rng.integers(3, V_SRC, src_len[b])
        tgt[b, : tgt_len[b] - 1] = rng.integers(3, V_TGT, tgt_len[b] - 1)
        tgt[b, tgt_len[b] - 1] = st.EOS
    return src, src_len, tgt, tgt_len


# --------------------------------------------------------------------------------------------------------------------
# 1. Gradient checks
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_encoder_gradients(cell):
    rng = rng_for("encoder", cell)
    p = params_for(cell, None, rng)
    src, src_len, _, _ = batch(rng)
    names = ("E_src", "W_enc", "U_enc", "b_enc")
    inputs = {k: p[k] for k in names}

    def f(**kw):
        enc, state, _ = s2s.encoder_forward(src, src_len, {**p, **kw})
        return (enc, *state)

    outs = f(**inputs)
    douts = tuple(rng.standard_normal(o.shape) for o in outs)
    douts[0][~s2s.source_mask(src_len, src.shape[1])] = 0  # nothing reads the carried states at padding...
    _, _, cache = s2s.encoder_forward(src, src_len, p)
    analytic = s2s.encoder_backward(douts[0], douts[1:], cache)
    report = gradcheck(f, inputs, {k: analytic[k] for k in names}, douts)
    assert report.passed, f"\n{report}"
    # ...and if something did, its gradient would reach the last real position's state: check that too
    douts = tuple(rng.standard_normal(o.shape) for o in outs)
    analytic = s2s.encoder_backward(douts[0], douts[1:], cache)
    report = gradcheck(f, inputs, {k: analytic[k] for k in names}, douts)
    assert report.passed, f"\n{report}"


@pytest.mark.parametrize("cell,attention", CONFIGS, ids=IDS)
def test_decoder_step_gradients(cell, attention):
    rng = rng_for("step", cell, attention)
    p = params_for(cell, attention, rng)
    B, S = 3, 5
    y_prev = np.array([1, 4, 2])
    state = tuple(rng.uniform(-0.9, 0.9, (B, H)) for _ in range(2 if cell == "lstm" else 1))
    enc = rng.uniform(-0.9, 0.9, (B, S, H))
    mask = s2s.source_mask(np.array([5, 1, 3]), S)
    state_names = ("h_prev", "c_prev")[: len(state)]

    def f(enc, **kw):
        st_ = tuple(kw.pop(n) for n in state_names)
        logits, new, _, _ = s2s.decoder_step_forward(y_prev, st_, enc, mask, {**p, **kw})
        return (logits, *new)

    inputs = {"enc": enc, **dict(zip(state_names, state)), **p}
    outs = f(**inputs)
    douts = tuple(rng.standard_normal(o.shape) for o in outs)
    _, _, _, cache = s2s.decoder_step_forward(y_prev, state, enc, mask, p)
    dprev, denc, grads = s2s.decoder_step_backward(douts[0], douts[1:], cache)
    analytic = {**grads, **dict(zip(state_names, dprev))}
    if attention is not None:
        analytic["enc"] = denc
    else:
        assert denc is None
        inputs.pop("enc")
        f_ = f
        f = lambda **kw: f_(enc, **kw)  # noqa: E731
    for k in p:
        if k.endswith("_enc") or k == "E_src":  # the encoder's parameters do not enter a decoder step
            inputs.pop(k)
            analytic.pop(k, None)
    assert set(analytic) == set(inputs)
    report = gradcheck(f, inputs, analytic, douts)
    assert report.passed, f"\n{report}"


def _loss_gradcheck(p, src, src_len, tgt, tgt_len, feed=None):
    loss, cache = s2s.seq2seq_forward(p, src, src_len, tgt, tgt_len, feed=feed)
    grads = s2s.seq2seq_backward(cache)
    assert set(grads) == set(p)

    def f(**kw):
        loss, c = s2s.seq2seq_forward(kw, src, src_len, tgt, tgt_len, feed=feed)
        np.testing.assert_array_equal(c["fed"], cache["fed"])  # the fed tokens must not flip under the perturbation
        return np.array(loss)

    # eps 1e-5, not the default 1e-6: the mean loss gives some parameters (the additive score's Wq) gradients of
    # order 1e-5, where rounding in the loss (1e-16 / eps) is no longer negligible against them at eps = 1e-6
    return gradcheck(f, p, grads, np.array(1.0), eps=1e-5), cache


@pytest.mark.parametrize("cell,attention", CONFIGS, ids=IDS)
def test_teacher_forced_loss_gradients(cell, attention):
    rng = rng_for("loss", cell, attention)
    p = params_for(cell, attention, rng, scale=1.0)
    for k in ("Wq", "Wk", "v", "Wa"):  # scores that vary across the source: the attention matters to the loss
        if k in p:
            p[k] *= 3
    report, _ = _loss_gradcheck(p, *batch(rng))
    assert report.passed, f"\n{report}"


@pytest.mark.parametrize("feed", ["free", "scheduled"])
@pytest.mark.parametrize("cell,attention", [("lstm", "additive"), ("gru", "general"), ("gru", None)])
def test_free_running_and_scheduled_loss_gradients(cell, attention, feed):
    rng = rng_for("free", cell, attention, feed)
    p = params_for(cell, attention, rng, scale=1.0)
    src, src_len, tgt, tgt_len = batch(rng)
    if feed == "scheduled":
        feed = rng.random(tgt.shape) < 0.5
    report, cache = _loss_gradcheck(p, src, src_len, tgt, tgt_len, feed)
    assert report.passed, f"\n{report}"
    teacher = s2s.teacher_inputs(tgt)
    assert np.any(cache["fed"][:, 1:] != teacher[:, 1:])  # the model's own tokens were fed somewhere


# --------------------------------------------------------------------------------------------------------------------
# 2. Keras
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell,attention", CONFIGS, ids=IDS)
def test_keras_model_computes_the_same_logits(cell, attention):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    rng = rng_for("keras", cell, attention)
    Vs, Vt = len(st.SRC_VOCAB), len(st.TGT_VOCAB)
    model = s2s.keras_seq2seq(Vs, Vt, 8, 6, cell, attention, A=5)
    p = s2s.init_seq2seq(Vs, Vt, 8, 6, cell, attention, A=5, seed=1)
    p = {k: (v + 0.3 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in p.items()}
    s2s.set_keras_params(model, p)
    got = s2s.get_keras_params(model)
    assert set(got) == set(p)
    for k in p:
        np.testing.assert_array_equal(got[k], p[k], err_msg=k)
    src, src_len, tgt, tgt_len = st.encode_pairs(st.numbers_pairs(7, (1, 9), seed=3))
    assert len(set(src_len)) > 2  # a padded batch
    _, cache = s2s.seq2seq_forward(p, src, src_len, tgt, tgt_len)
    logits_k = np.asarray(model([src, s2s.teacher_inputs(tgt)]))
    assert np.abs(cache["logits"]).max() > 0.1
    np.testing.assert_allclose(cache["logits"], logits_k, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------------------------------------------
# 3. Padding, feeding, decoding
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell,attention", [("lstm", "additive"), ("gru", "dot"), ("lstm", None)])
def test_padding_changes_nothing(cell, attention):
    rng = rng_for("pad", cell, attention)
    p = params_for(cell, attention, rng)
    src, src_len, tgt, tgt_len = batch(rng)
    _, cache = s2s.seq2seq_forward(p, src, src_len, tgt, tgt_len)
    for b in range(len(src)):
        _, alone = s2s.seq2seq_forward(p, src[b : b + 1, : src_len[b]], src_len[b : b + 1],
                                       tgt[b : b + 1, : tgt_len[b]], tgt_len[b : b + 1])
        np.testing.assert_allclose(cache["logits"][b, : tgt_len[b]], alone["logits"][0], atol=1e-12)
        if attention is not None:
            np.testing.assert_allclose(cache["alpha"][b, : tgt_len[b], : src_len[b]], alone["alpha"][0], atol=1e-12)
            assert np.all(cache["alpha"][b, :, src_len[b]:] == 0)


@pytest.mark.parametrize("cell,attention", [("lstm", "general"), ("gru", None)])
def test_free_running_feeds_greedy_search_tokens(cell, attention):
    rng = rng_for("greedy", cell, attention)
    p = params_for(cell, attention, rng, scale=1.0)
    src, src_len, tgt, tgt_len = batch(rng, T=6)
    tgt_len[:] = 6
    _, cache = s2s.seq2seq_forward(p, src, src_len, tgt, tgt_len, feed="free")
    greedy = decoding.greedy_decode(s2s.decoding_step(p), s2s.decoding_start(p, src, src_len), st.BOS, st.EOS, 6)
    for b, seq in enumerate(greedy.tokens):
        n = len(seq)
        np.testing.assert_array_equal(cache["fed"][b, 1 : n + 1], seq[: 5])
    # and teacher forcing is feed=None, or a feed mask of all False
    l1, c1 = s2s.seq2seq_forward(p, src, src_len, tgt, tgt_len)
    l2, c2 = s2s.seq2seq_forward(p, src, src_len, tgt, tgt_len, feed=np.zeros(tgt.shape, bool))
    assert np.isclose(l1, l2, rtol=1e-12)
    np.testing.assert_array_equal(c1["fed"], s2s.teacher_inputs(tgt))
    np.testing.assert_array_equal(c2["fed"], s2s.teacher_inputs(tgt))


@pytest.mark.parametrize("cell,attention", CONFIGS, ids=IDS)
def test_parallel_teacher_forcing_equals_the_step_by_step_decoder(cell, attention):
    """feed=None computes all decoder steps at once; a feed of all False runs decoder_step_forward step by step.
    Same logits, weights, loss and gradients (float64, to rounding)."""
    rng = rng_for("paths", cell, attention)
    p = params_for(cell, attention, rng, scale=1.0)
    src, src_len, tgt, tgt_len = batch(rng)
    l1, c1 = s2s.seq2seq_forward(p, src, src_len, tgt, tgt_len)
    l2, c2 = s2s.seq2seq_forward(p, src, src_len, tgt, tgt_len, feed=np.zeros(tgt.shape, bool))
    assert "decoder" in c1 and "steps" in c2  # the two paths were taken
    np.testing.assert_allclose(c1["logits"], c2["logits"], atol=1e-12)
    if attention is not None:
        np.testing.assert_allclose(c1["alpha"], c2["alpha"], atol=1e-12)
    g1, g2 = s2s.seq2seq_backward(c1), s2s.seq2seq_backward(c2)
    for k in p:
        np.testing.assert_allclose(g1[k], g2[k], atol=1e-12, err_msg=k)


def test_beam_search_through_the_decoder_keeps_alignments():
    rng = rng_for("beam")
    p = params_for("lstm", "additive", rng, scale=1.0)
    src, src_len, _, _ = batch(rng)
    state = s2s.decoding_start(p, src, src_len)
    res = decoding.beam_search(s2s.decoding_step(p, keep_alpha=True), state, st.BOS, st.EOS, 6, beam_width=3)
    one = decoding.beam_search(s2s.decoding_step(p), state, st.BOS, st.EOS, 6, beam_width=1)
    greedy = decoding.greedy_decode(s2s.decoding_step(p), state, st.BOS, st.EOS, 6)
    for a, b in zip(one.tokens, greedy.tokens):
        np.testing.assert_array_equal(a, b)
    assert len(res.tokens) == 3


def test_bad_inputs():
    rng = rng_for("bad")
    p = params_for("lstm", "additive", rng)
    src, src_len, tgt, tgt_len = batch(rng)
    with pytest.raises(ValueError, match=r"ids outside \[0, 7\)"):
        s2s.seq2seq_forward(p, src + 5, src_len, tgt, tgt_len)
    with pytest.raises(TypeError, match="integer token ids"):
        s2s.seq2seq_forward(p, src.astype(float), src_len, tgt, tgt_len)
    with pytest.raises(ValueError, match=r"'src_len' must hold lengths in \[1, 5\]"):
        s2s.seq2seq_forward(p, src, src_len + 1, tgt, tgt_len)
    with pytest.raises(ValueError, match=r"'tgt_len' must be an integer array of shape \(B,\)"):
        s2s.seq2seq_forward(p, src, src_len, tgt, tgt_len[:2])
    with pytest.raises(ValueError, match="'feed' must be None, 'free'"):
        s2s.seq2seq_forward(p, src, src_len, tgt, tgt_len, feed="sometimes")
    broken = dict(p)
    broken.pop("Wk")
    with pytest.raises(ValueError, match="has the parameters"):
        s2s.seq2seq_forward(broken, src, src_len, tgt, tgt_len)
    with pytest.raises(ValueError, match=r"'W_c' must have shape"):
        s2s.seq2seq_forward({**p, "W_c": p["W_c"][:3]}, src, src_len, tgt, tgt_len)
    with pytest.raises(ValueError, match="'cell' must be 'lstm' or 'gru'"):
        s2s.init_seq2seq(5, 5, 2, 3, cell="rnn")


# --------------------------------------------------------------------------------------------------------------------
# 4. The task
# --------------------------------------------------------------------------------------------------------------------


def parse_words(words):
    """An independent reading of English number words (short scale), for checking number_to_words."""
    small = {w: i for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                         "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                                         "sixteen", "seventeen", "eighteen", "nineteen"])}
    tens = {w: 10 * (i + 2) for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy",
                                                   "eighty", "ninety"])}
    scales = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
    total, group = 0, 0
    for w in words:
        if w in small:
            group += small[w]
        elif w in tens:
            group += tens[w]
        elif w == "hundred":
            group *= 100
        else:
            total += group * scales[w]
            group = 0
    return total + group


def test_number_words_read_back():
    for x in st.random_numbers(3000, (1, st.MAX_DIGITS), seed=0) + [0, 10, 100, 1000, 10**12, 10**15 - 1]:
        words = st.number_to_words(x)
        assert parse_words(words) == x, (x, words)
        assert all(w in st.SRC_VOCAB.index for w in words)
    assert " ".join(st.number_to_words(312506)) == "three hundred twelve thousand five hundred six"
    assert " ".join(st.number_to_words(40000007)) == "forty million seven"


def test_random_numbers_have_the_asked_digits():
    xs = st.random_numbers(2000, (3, 7), seed=1)
    lengths = np.array([len(str(x)) for x in xs])
    assert lengths.min() == 3 and lengths.max() == 7
    assert np.all(np.bincount(lengths)[3:] > 300)
    assert st.random_numbers(5, 4, seed=2) == st.random_numbers(5, 4, seed=2)
    with pytest.raises(ValueError, match="digits"):
        st.random_numbers(5, (0, 3))


def test_encode_pairs():
    pairs = [(["forty", "million", "seven"], "40000007"), (["zero"], "0")]
    src, src_len, tgt, tgt_len = st.encode_pairs(pairs)
    assert src.shape == (2, 3) and list(src_len) == [3, 1] and list(tgt_len) == [9, 2]
    assert src[1, 1] == st.PAD and tgt[1, 1] == st.EOS and tgt[1, 2] == st.PAD
    assert st.TGT_VOCAB.decode(tgt[0]) == "40000007"
    assert st.SRC_VOCAB.decode(src[0], sep=" ") == "forty million seven"
