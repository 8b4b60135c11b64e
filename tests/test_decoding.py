"""course_pkg.decoding: greedy search, beam search and sampling on generic step functions.

What is checked, and why these are the true statements:
- Beam width 1 is greedy search (same tokens, same log-probabilities), with and without length normalisation.
- A beam wide enough to hold every hypothesis is exact: it returns exhaustive search's best sequence.
- No beam returns a hypothesis better than the exact best (a beam is a search, never better than exhaustive).
- A wider beam does NOT always return a hypothesis at least as good as a narrower one: on a small table model, width
  2 returns a hypothesis of lower log-probability than width 1. The statement "a beam never returns a lower-scoring
  hypothesis than a narrower beam" is therefore false in general; the test pins the counterexample down (width 2
  prunes every hypothesis on the greedy path at the second step; width 3 keeps it and recovers the greedy answer).
- Sampling: seeded (same seed, same sequences), distributed as the model says (frequencies of the first token), and
  its temperature limits: towards 0 it becomes greedy search, towards infinity uniform.
- Every decoder's reported log-probability equals sequence_logp of the sequence it returned.
"""

import zlib

import numpy as np
import pytest

from course_pkg import decoding as dec

EOS, BOS = 0, 99


def rng_for(*parts):
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


class RandomRNN:
    """A small random recurrent model: h' = tanh(E[token] + h U), logits = sharpness * h' O. State: h (N, H)."""

    def __init__(self, V, H, seed, sharpness=3.0, eos_bias=0.0):
        rng = np.random.default_rng(seed)
        self.E = rng.standard_normal((max(V, BOS + 1), H))
        self.U = rng.standard_normal((H, H)) / np.sqrt(H)
        self.O = rng.standard_normal((H, V)) / np.sqrt(H)
        self.sharpness, self.eos_bias, self.V, self.H = sharpness, eos_bias, V, H

    def __call__(self, tokens, h):
        h = np.tanh(self.E[tokens] + h @ self.U)
        logits = self.sharpness * h @ self.O
        logits[:, EOS] += self.eos_bias
        return logits, h

    def init(self, B, seed):
        return np.random.default_rng(seed).standard_normal((B, self.H))


class Table:
    """A model given by a table: the next-token probabilities as a function of the whole prefix.

    The state is the prefix (N, L) padded with -1; `probs(prefix)` gives the distribution over V tokens.
    """

    def __init__(self, probs, V, L=8):
        self.probs, self.V, self.L = probs, V, L

    def __call__(self, tokens, prefix):
        prefix = prefix.copy()
        for r, y in enumerate(tokens):
            if y != BOS:
                prefix[r, np.argmax(prefix[r] < 0)] = y
        logits = np.log([self.probs(tuple(int(v) for v in row if v >= 0)) for row in prefix])
        return logits, prefix

    def init(self, B):
        return np.full((B, self.L), -1, dtype=np.int64)


def counterexample_probs(prefix):
    """Width 1 follows 1 -> 1 -> eos (p = 0.5 * 0.34 * 0.98); width 2 keeps the two children of 2, which beat
    every child of 1 at the second step, and so never sees that ending."""
    table = {
        (): [0.001, 0.5, 0.449, 0.05],
        (1,): [0.01, 0.34, 0.33, 0.32],
        (2,): [0.01, 0.495, 0.495, 0.0],
        (1, 1): [0.98, 0.0066, 0.0067, 0.0067],
    }
    p = np.array(table.get(prefix, [0.1, 0.3, 0.3, 0.3] if len(prefix) < 3 else [0.9, 0.04, 0.03, 0.03]))
    p = np.maximum(p, 1e-12)
    return p / p.sum()


def hashed_probs(seed, V):
    """A table model with a random, prefix-dependent distribution (deterministic)."""

    def probs(prefix):
        rng = np.random.default_rng([seed, len(prefix), *prefix])
        return rng.dirichlet(np.full(V, 0.5)) * 0.98 + 0.02 / V

    return probs


MODELS = [("rnn", V, H, seed) for V, H, seed in [(5, 4, 0), (7, 6, 1), (3, 3, 2)]]


def rnn_model(V, H, seed, **kw):
    return RandomRNN(V, H, seed, **kw)


# --------------------------------------------------------------------------------------------------------------------
# Greedy = beam of width 1; exactness of a wide beam; beams never beat exact search
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("V,H,seed", [(5, 4, 0), (7, 6, 1), (3, 3, 2), (12, 8, 3)])
def test_beam_width_one_is_greedy(V, H, seed, length_penalty):
    model = rnn_model(V, H, seed, eos_bias=-1.0)
    h0 = model.init(16, seed)
    g = dec.greedy_decode(model, h0, BOS, EOS, max_len=12)
    b = dec.beam_search(model, h0, BOS, EOS, max_len=12, beam_width=1, length_penalty=length_penalty)
    for s1, s2 in zip(g.tokens, b.tokens):
        np.testing.assert_array_equal(s1, s2)
    np.testing.assert_allclose(g.logp, b.logp, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(g.finished, b.finished)


@pytest.mark.parametrize("length_penalty", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("kind", ["rnn", "table"])
def test_wide_beam_is_exact_and_no_beam_beats_exact(kind, length_penalty):
    V, max_len, B = 4, 4, 6  # 3 non-eos tokens: 1 + 3 + 9 + 27 + 81 sequences
    if kind == "rnn":
        model, state = rnn_model(V, 5, 7, sharpness=2.0), None
        state = model.init(B, 7)
    else:
        model = Table(hashed_probs(11, V), V)
        state = model.init(B)
        # different inputs: start each row from a different first token
        state = model.init(B)
        state[:, 0] = np.arange(B) % (V - 1) + 1
    exact = dec.exhaustive_search(model, state, BOS, EOS, max_len, V, length_penalty)
    wide = dec.beam_search(model, state, BOS, EOS, max_len, beam_width=3**max_len, length_penalty=length_penalty)
    np.testing.assert_allclose(wide.score, exact.score, rtol=0, atol=1e-12)
    for s1, s2 in zip(wide.tokens, exact.tokens):
        np.testing.assert_array_equal(s1, s2)
    for K in (1, 2, 3, 5, 8):
        beam = dec.beam_search(model, state, BOS, EOS, max_len, beam_width=K, length_penalty=length_penalty)
        assert np.all(beam.score[beam.finished] <= exact.score[beam.finished] + 1e-12), K


def test_wider_beam_can_return_a_worse_hypothesis():
    """The counterexample: width 2 returns a sequence of lower log-probability than width 1 (greedy)."""
    model = Table(counterexample_probs, V=4)
    state = model.init(1)
    narrow = dec.beam_search(model, state, BOS, EOS, max_len=5, beam_width=1)
    wide = dec.beam_search(model, state, BOS, EOS, max_len=5, beam_width=2)
    np.testing.assert_array_equal(narrow.tokens[0], [1, 1])
    assert np.isclose(narrow.logp[0], np.log(counterexample_probs(())[1] * counterexample_probs((1,))[1]
                                             * counterexample_probs((1, 1))[0]))
    assert wide.finished[0] and wide.tokens[0][0] == 2  # the greedy path was pruned at the second step
    assert wide.logp[0] < narrow.logp[0] - 0.5
    # What does hold: the wider beam lost because every hypothesis on the greedy path was pruned.
    # Width 3 keeps the greedy path (three children of 2 cannot all beat (1, 1)), and recovers it.
    wider = dec.beam_search(model, state, BOS, EOS, max_len=5, beam_width=3)
    assert wider.logp[0] >= narrow.logp[0] - 1e-12
    exact = dec.exhaustive_search(model, state, BOS, EOS, 5, 4)
    assert np.isclose(exact.logp[0], narrow.logp[0])


def test_final_beam_is_sorted_and_consistent():
    model = rnn_model(6, 5, 4, eos_bias=0.5)
    h0 = model.init(3, 4)
    res = dec.beam_search(model, h0, BOS, EOS, max_len=10, beam_width=4, length_penalty=0.7)
    for b, beam in enumerate(res.beams):
        assert len(beam) == 4
        finished = [h for h in beam if h[3]]
        assert [h[2] for h in finished] == sorted((h[2] for h in finished), reverse=True)
        np.testing.assert_array_equal(beam[0][0], res.tokens[b])
        for seq, logp, score, done in beam:
            assert done and EOS not in seq
            assert np.isclose(score, logp / (len(seq) + 1) ** 0.7)


# --------------------------------------------------------------------------------------------------------------------
# Log-probabilities reported = log-probabilities of the returned sequences
# --------------------------------------------------------------------------------------------------------------------


def test_reported_logp_is_the_sequences_logp():
    model = rnn_model(8, 6, 5, eos_bias=0.5)
    h0 = model.init(10, 5)
    for res in (dec.greedy_decode(model, h0, BOS, EOS, 15),
                dec.beam_search(model, h0, BOS, EOS, 15, beam_width=3),
                dec.sample_decode(model, h0, BOS, EOS, 15, temperature=1.5, seed=0)):
        assert res.finished.any()
        np.testing.assert_allclose(dec.sequence_logp(model, h0, BOS, EOS, res.tokens, res.finished), res.logp,
                                   atol=1e-10)


def test_max_len_leaves_sequences_unfinished():
    model = rnn_model(5, 4, 6, eos_bias=-30.0)  # eos practically never
    h0 = model.init(4, 6)
    for res in (dec.greedy_decode(model, h0, BOS, EOS, 7), dec.beam_search(model, h0, BOS, EOS, 7, beam_width=2),
                dec.sample_decode(model, h0, BOS, EOS, 7, seed=1)):
        assert not res.finished.any()
        assert all(len(s) == 7 for s in res.tokens)


# --------------------------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------------------------


def test_sampling_is_seeded():
    model = rnn_model(9, 6, 8, sharpness=1.0)
    h0 = model.init(20, 8)
    a = dec.sample_decode(model, h0, BOS, EOS, 12, seed=123)
    b = dec.sample_decode(model, h0, BOS, EOS, 12, seed=123)
    c = dec.sample_decode(model, h0, BOS, EOS, 12, seed=124)
    assert all(np.array_equal(x, y) for x, y in zip(a.tokens, b.tokens))
    assert not all(np.array_equal(x, y) for x, y in zip(a.tokens, c.tokens))
    gen = np.random.default_rng(5)
    d = dec.sample_decode(model, h0, BOS, EOS, 12, seed=gen)
    e = dec.sample_decode(model, h0, BOS, EOS, 12, seed=np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(d.tokens, e.tokens))


def test_samples_follow_the_model():
    """First tokens of 40,000 samples from one state: frequencies within 5 standard errors of the model's."""
    model = rnn_model(6, 4, 9, sharpness=1.5)
    N = 40_000
    h0 = np.repeat(model.init(1, 9), N, axis=0)
    first = np.array([s[0] if len(s) else EOS for s in dec.sample_decode(model, h0, BOS, EOS, 1, seed=0).tokens])
    p = np.exp(dec.log_softmax(model(np.array([BOS]), h0[:1])[0]))[0]
    freq = np.bincount(first, minlength=6) / N
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / N))


@pytest.mark.parametrize("T", [1.0, 0.5, 2.0])
def test_tempered_samples_follow_tempered_probs(T):
    model = rnn_model(5, 4, 10, sharpness=1.5)
    N = 30_000
    h0 = np.repeat(model.init(1, 10), N, axis=0)
    res = dec.sample_decode(model, h0, BOS, EOS, 1, temperature=T, seed=1)
    first = np.array([s[0] if len(s) else EOS for s in res.tokens])
    p = dec.tempered_probs(model(np.array([BOS]), h0[:1])[0], T)[0]
    freq = np.bincount(first, minlength=5) / N
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / N))


def test_temperature_limits():
    rng = rng_for("temperature")
    logits = rng.standard_normal((50, 7)) * 3
    cold = dec.tempered_probs(logits, 1e-3)
    np.testing.assert_allclose(cold, np.eye(7)[np.argmax(logits, axis=1)], atol=1e-12)
    hot = dec.tempered_probs(logits, 1e6)
    np.testing.assert_allclose(hot, 1 / 7, atol=1e-5)
    np.testing.assert_allclose(dec.tempered_probs(logits, 1.0), np.exp(dec.log_softmax(logits)), atol=1e-15)
    # the entropy grows with the temperature
    ent = [float(-(p * np.log(p + 1e-300)).sum(axis=1).mean()) for p in
           (dec.tempered_probs(logits, T) for T in (0.25, 0.5, 1, 2, 4))]
    assert all(a < b for a, b in zip(ent, ent[1:]))
    # sampling at a very low temperature is greedy search
    model = rnn_model(8, 6, 12)
    h0 = model.init(30, 12)
    g = dec.greedy_decode(model, h0, BOS, EOS, 10)
    s = dec.sample_decode(model, h0, BOS, EOS, 10, temperature=1e-4, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(g.tokens, s.tokens))
    np.testing.assert_allclose(g.logp, s.logp)


# --------------------------------------------------------------------------------------------------------------------
# States of several arrays, and bad arguments
# --------------------------------------------------------------------------------------------------------------------


def test_state_can_be_a_nested_structure():
    """An LSTM-like state (h, c) plus encoder outputs in a dict: beam search reorders every array alike."""
    model = rnn_model(6, 4, 13, eos_bias=0.3)
    h0 = model.init(5, 13)
    memory = np.arange(5)[:, None] * np.ones((5, 3))  # row b remembers b

    def step(tokens, state):
        logits, h = model(tokens, state["h"])
        assert np.all(state["memory"][:, 0] == state["b"])  # rows stayed together
        return logits, {"h": h, "memory": state["memory"], "b": state["b"]}

    flat = dec.beam_search(model, h0, BOS, EOS, 9, beam_width=3)
    nested = dec.beam_search(step, {"h": h0, "memory": memory, "b": np.arange(5)}, BOS, EOS, 9, beam_width=3)
    for s1, s2 in zip(flat.tokens, nested.tokens):
        np.testing.assert_array_equal(s1, s2)


def test_bad_arguments():
    model = rnn_model(5, 4, 14)
    h0 = model.init(3, 14)
    with pytest.raises(ValueError, match="beam_width"):
        dec.beam_search(model, h0, BOS, EOS, 5, beam_width=0)
    with pytest.raises(ValueError, match="length_penalty"):
        dec.beam_search(model, h0, BOS, EOS, 5, beam_width=2, length_penalty=-1)
    with pytest.raises(ValueError, match="temperature"):
        dec.sample_decode(model, h0, BOS, EOS, 5, temperature=0)
    with pytest.raises(ValueError, match="max_len"):
        dec.greedy_decode(model, h0, BOS, EOS, 0)
    with pytest.raises(ValueError, match=r"logits of shape \(N, V\) with N=3"):
        dec.greedy_decode(lambda t, s: (np.zeros((2, 5)), s), h0, BOS, EOS, 5)
    with pytest.raises(ValueError, match="different numbers of rows"):
        dec.greedy_decode(model, (h0, h0[:2]), BOS, EOS, 5)
    with pytest.raises(ValueError, match="batch_size=4 but the state has 3 rows"):
        dec.greedy_decode(model, h0, BOS, EOS, 5, batch_size=4)


def test_language_model_metrics():
    rng = rng_for("metrics")
    p = rng.uniform(0.01, 1.0, 5000)  # probabilities a model gave to the correct tokens
    nats = float(-np.log(p).mean())
    assert np.isclose(dec.nats_to_bits(nats), -np.log2(p).mean())
    assert np.isclose(dec.perplexity(nats), np.prod(p ** (-1 / len(p))))  # geometric mean of 1/p
    assert np.isclose(dec.perplexity(np.log(37)), 37)  # uniform over 37 tokens
    assert np.isclose(2 ** dec.nats_to_bits(nats), dec.perplexity(nats))


def test_prefix_model_is_the_table_model():
    model = dec.PrefixModel(counterexample_probs, bos=BOS, max_len=8)
    table = Table(counterexample_probs, V=4)
    for K in (1, 2, 3):
        a = dec.beam_search(model, model.initial_state(1), BOS, EOS, 5, K)
        b = dec.beam_search(table, table.init(1), BOS, EOS, 5, K)
        np.testing.assert_array_equal(a.tokens[0], b.tokens[0])
        assert np.isclose(a.logp[0], b.logp[0])
