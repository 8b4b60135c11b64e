"""Decoding a sequence from a model that predicts one token at a time: greedy search, beam search, sampling.

Every function works on a generic *step function*, so the same code decodes a character language model, a
sequence-to-sequence decoder with or without attention, or a hand-written table of probabilities:

    logits, state = step(tokens, state)

tokens (N,) integers: the last token of each of N hypotheses; state: the hypotheses' states, an array or a tuple,
list or dict of arrays (nested as you like) whose first axis has length N (or None); logits (N, V): the scores of
the next token, turned into log-probabilities by a log-softmax here. Beam search reorders and repeats the rows of
the state (so an encoder's outputs that a decoder attends to can travel inside the state).

A decoded sequence starts after `bos` (not included) and ends with `eos` (included in its length and its
log-probability, excluded from `tokens`); a hypothesis that reaches `max_len` tokens without `eos` is returned
unfinished (finished = False). Its log-probability is log p(y_1 .. y_n | input) = sum_t log p(y_t | y_<t, input),
always under the model itself (temperature 1).

Beam search ranks hypotheses by score = log p / n**length_penalty, with n the number of tokens generated so far
(eos included): length_penalty 0 ranks by log-probability, 1 by the mean log-probability per token. Note what beam
search does and does not promise: width 1 is greedy search, and a beam wide enough to hold every hypothesis is an
exact search; in between, a wider beam finds a hypothesis at least as good as a narrower one *often but not always*
(the test suite holds a model on which width 2 returns a worse hypothesis than width 1).
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Decoded:
    """What a decoder returns for a batch of B inputs.

    tokens: list of B integer arrays (eos not included); logp (B,): log-probability of each sequence under the
    model (eos included when finished); score (B,): what the search ranked by (logp for greedy search and sampling);
    finished (B,): whether the sequence ended with eos within max_len. beams (beam search only): for each input the
    whole final beam, best first, as a list of (tokens, logp, score, finished).
    """

    tokens: list
    logp: np.ndarray
    score: np.ndarray
    finished: np.ndarray
    beams: list = field(default=None, repr=False)


def log_softmax(logits, axis=-1):
    """log softmax(logits) along `axis`, computed in float64 with the maximum subtracted (no overflow)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def tempered_probs(logits, temperature):
    """softmax(logits / temperature) along the last axis, in float64.

    temperature 1 is the model's distribution; towards 0 it tends to the one-hot vector of the argmax (for a
    unique maximum); towards infinity to the uniform distribution.
    """
    temperature = _check_positive("tempered_probs", "temperature", temperature)
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


# --------------------------------------------------------------------------------------------------------------------
# States and checks
# --------------------------------------------------------------------------------------------------------------------


def take_rows(state, idx):
    """The rows idx of every array in a state (array, tuple, list, dict, nested, or None)."""
    if state is None:
        return None
    if isinstance(state, dict):
        return {k: take_rows(v, idx) for k, v in state.items()}
    if isinstance(state, (tuple, list)):
        return type(state)(take_rows(v, idx) for v in state)
    return np.asarray(state)[idx]


def _rows(state):
    """The number of rows N of a state (the first axis of its arrays), or None for an empty state."""
    if state is None:
        return None
    if isinstance(state, dict):
        state = list(state.values())
    if isinstance(state, (tuple, list)):
        counts = {n for n in (_rows(s) for s in state) if n is not None}
        if len(counts) > 1:
            raise ValueError(f"decoding: the arrays of the state have different numbers of rows {sorted(counts)}; "
                             "every array's first axis must be the hypothesis (the batch row)")
        return counts.pop() if counts else None
    return np.shape(state)[0]


def _check_positive(fn, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value > 0:
        raise ValueError(f"{fn}: argument '{name}' must be a positive number; got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{fn}: argument '{name}' must be finite; got {value!r}")
    return float(value)


def _check_int(fn, name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{fn}: argument '{name}' must be an integer >= {low}; got {value!r}")
    return int(value)


def _batch(fn, state, batch_size):
    n = _rows(state)
    if batch_size is None:
        if n is None:
            raise ValueError(f"{fn}: the state holds no array to count the inputs from; pass batch_size")
        return n
    batch_size = _check_int(fn, "batch_size", batch_size, 1)
    if n is not None and n != batch_size:
        raise ValueError(f"{fn}: batch_size={batch_size} but the state has {n} rows")
    return batch_size


def _call(fn, step, tokens, state, V=None):
    logits, state = step(tokens, state)
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] != tokens.shape[0]:
        raise ValueError(f"{fn}: the step function must return logits of shape (N, V) with N={tokens.shape[0]} "
                         f"(one row per token passed in); got {logits.shape}")
    if V is not None and logits.shape[1] != V:
        raise ValueError(f"{fn}: the step function returned {logits.shape[1]} logits per row, before {V}")
    return logits, state


def _check_token(fn, name, value):
    return _check_int(fn, name, value, 0)


# --------------------------------------------------------------------------------------------------------------------
# Greedy search and sampling
# --------------------------------------------------------------------------------------------------------------------


def _left_to_right(fn, step, state, bos, eos, max_len, batch_size, choose):
    """The loop greedy search and sampling share: choose(logp (n, V)) -> tokens (n,), for the rows still running."""
    bos, eos = _check_token(fn, "bos", bos), _check_token(fn, "eos", eos)
    max_len = _check_int(fn, "max_len", max_len, 1)
    B = _batch(fn, state, batch_size)
    tokens = np.full((B, max_len), -1, dtype=np.int64)
    lengths = np.zeros(B, dtype=np.int64)
    logp = np.zeros(B)
    finished = np.zeros(B, dtype=bool)
    running = np.arange(B)  # the inputs whose sequence has not ended
    last = np.full(B, bos, dtype=np.int64)
    V = None
    for t in range(max_len):
        logits, state = _call(fn, step, last, state, V)
        V = logits.shape[1]
        lp = log_softmax(logits)
        y = choose(logits, lp)
        logp[running] += lp[np.arange(len(running)), y]
        tokens[running, t] = y
        lengths[running] += 1
        done = y == eos
        finished[running[done]] = True
        keep = np.flatnonzero(~done)
        running, last = running[keep], y[keep]
        if len(running) == 0:
            break
        state = take_rows(state, keep)
    seqs = [tokens[b, : lengths[b] - 1] if finished[b] else tokens[b, : lengths[b]] for b in range(B)]
    return Decoded(seqs, logp, logp.copy(), finished)


def greedy_decode(step, state, bos, eos, max_len, batch_size=None):
    """Greedy search: at every step the most probable next token (the first one on ties), until eos or max_len.

    state: the initial state of the B inputs (first axis B). Returns a Decoded.
    """
    return _left_to_right("greedy_decode", step, state, bos, eos, max_len, batch_size,
                          lambda logits, lp: np.argmax(lp, axis=1))


def sample_decode(step, state, bos, eos, max_len, temperature=1.0, seed=None, batch_size=None):
    """Ancestral sampling: each next token drawn from softmax(logits / temperature), until eos or max_len.

    seed: an integer or a np.random.Generator (the same seed gives the same sequences). temperature 1 samples the
    model's own distribution; lower sharpens it towards greedy search, higher flattens it towards uniform. The
    returned logp is under the model (temperature 1), whatever the temperature used to sample.
    """
    temperature = _check_positive("sample_decode", "temperature", temperature)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def choose(logits, lp):
        p = tempered_probs(logits, temperature)
        u = rng.random((p.shape[0], 1))
        cdf = np.cumsum(p, axis=1)
        return np.minimum((u > cdf).sum(axis=1), p.shape[1] - 1)  # inverse-CDF sampling, one uniform per row

    return _left_to_right("sample_decode", step, state, bos, eos, max_len, batch_size, choose)


# --------------------------------------------------------------------------------------------------------------------
# Beam search
# --------------------------------------------------------------------------------------------------------------------


def beam_search(step, state, bos, eos, max_len, beam_width, length_penalty=0.0, batch_size=None):
    """Beam search of width K = beam_width for each of the B inputs at once (B*K rows through the step function).

    The beam holds K hypotheses. At each step every unfinished hypothesis is extended by every token (V children,
    log p added) and every finished one is carried over unchanged; the K children with the highest score
    log p / n**length_penalty (n = tokens so far, eos included) form the next beam (ties: the first in order). The
    search stops when every hypothesis in the beam has ended with eos, or after max_len tokens. Returns a Decoded
    with the beam's best hypothesis by score for each input (a finished one if the beam holds any) and the whole
    final beam in `beams`.
    """
    fn = "beam_search"
    bos, eos = _check_token(fn, "bos", bos), _check_token(fn, "eos", eos)
    max_len = _check_int(fn, "max_len", max_len, 1)
    K = _check_int(fn, "beam_width", beam_width, 1)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float, np.integer, np.floating)) \
            or not np.isfinite(length_penalty) or length_penalty < 0:
        raise ValueError(f"{fn}: argument 'length_penalty' must be a number >= 0; got {length_penalty!r}")
    alpha = float(length_penalty)
    B = _batch(fn, state, batch_size)
    rows = np.repeat(np.arange(B), K)
    state = take_rows(state, rows)  # row b*K + k is hypothesis k of input b
    tokens = np.zeros((B, K, 0), dtype=np.int64)
    logp = np.full((B, K), -np.inf)
    logp[:, 0] = 0.0  # one hypothesis to start from; the other slots are empty (-inf) until filled
    finished = np.zeros((B, K), dtype=bool)
    last = np.full(B * K, bos, dtype=np.int64)
    V = None
    for t in range(max_len):
        n = t + 1
        logits, state = _call(fn, step, last, state, V)
        V = logits.shape[1]
        lp = log_softmax(logits).reshape(B, K, V)
        child_logp = np.where(finished[..., None], -np.inf, logp[..., None] + lp)  # (B, K, V)
        # a finished hypothesis has one child, itself, which takes the place of its token `eos`
        carried = np.where(finished, logp, -np.inf)
        child_logp[:, :, eos] = np.where(finished, carried, child_logp[:, :, eos])
        child_len = np.where(finished, _lengths(tokens, eos), n)[..., None]  # a carried child keeps its length
        score = _score(child_logp, child_len, alpha).reshape(B, K * V)
        order = np.argsort(-score, axis=1, kind="stable")[:, :K]  # (B, K): the K best children, ties by order
        parent, token = order // V, order % V
        bi = np.arange(B)[:, None]
        was_finished = finished[bi, parent]
        logp = child_logp.reshape(B, K * V)[bi, order]
        new_tok = np.where(was_finished, -1, token)  # a carried hypothesis gets no new token
        tokens = np.concatenate([tokens[bi, parent], new_tok[..., None]], axis=2)
        finished = was_finished | (token == eos)
        finished &= np.isfinite(logp)
        last = np.where(finished, eos, token).reshape(B * K)
        state = take_rows(state, (np.arange(B)[:, None] * K + parent).reshape(B * K))
        if np.all(finished | ~np.isfinite(logp)):
            break
    return _collect(tokens, logp, finished, eos, alpha)


def _lengths(tokens, eos):
    """Number of generated tokens of each hypothesis (eos included; the -1 padding of carried steps excluded)."""
    return (tokens >= 0).sum(axis=2)


def _score(logp, n, alpha):
    if alpha == 0:
        return logp
    return logp / np.power(np.maximum(n, 1), alpha)


def _collect(tokens, logp, finished, eos, alpha):
    B, K, _ = tokens.shape
    n = _lengths(tokens, eos)
    score = _score(logp, n, alpha)
    beams, best_tokens = [], []
    best_logp, best_score, best_finished = np.empty(B), np.empty(B), np.zeros(B, dtype=bool)
    for b in range(B):
        hyps = []
        for k in range(K):
            if not np.isfinite(logp[b, k]):
                continue
            seq = tokens[b, k][tokens[b, k] >= 0]
            if finished[b, k]:
                seq = seq[:-1]  # drop eos
            hyps.append((seq, float(logp[b, k]), float(score[b, k]), bool(finished[b, k])))
        # best first: finished before unfinished, then by score (stable: beam order on ties)
        hyps.sort(key=lambda h: (not h[3], -h[2]))
        beams.append(hyps)
        best_tokens.append(hyps[0][0])
        best_logp[b], best_score[b], best_finished[b] = hyps[0][1], hyps[0][2], hyps[0][3]
    return Decoded(best_tokens, best_logp, best_score, best_finished, beams)


# --------------------------------------------------------------------------------------------------------------------
# Scoring a given sequence, and exhaustive search (for tests and small demonstrations)
# --------------------------------------------------------------------------------------------------------------------


def sequence_logp(step, state, bos, eos, sequences, finished=None, batch_size=None):
    """log p(sequence | input) of one given sequence per input, teacher-forced through the step function.

    sequences: list of B integer arrays (without eos); finished (B,) bool, default all True: where True the
    sequence is scored as ended, eos included (log p(y_1 .. y_n, eos)), where False as a prefix (log p(y_1 .. y_n)).
    Returns (B,) log-probabilities.
    """
    fn = "sequence_logp"
    B = _batch(fn, state, batch_size)
    if len(sequences) != B:
        raise ValueError(f"{fn}: {len(sequences)} sequences for {B} inputs")
    finished = np.ones(B, dtype=bool) if finished is None else np.asarray(finished, dtype=bool)
    L = max(len(s) for s in sequences) + 1
    target = np.full((B, L), eos, dtype=np.int64)
    for b, s in enumerate(sequences):
        target[b, : len(s)] = s
    ends = np.array([len(s) for s in sequences]) - 1 + finished  # the last position that counts
    total = np.zeros(B)
    last = np.full(B, bos, dtype=np.int64)
    for t in range(L):
        logits, state = _call(fn, step, last, state)
        lp = log_softmax(logits)[np.arange(B), target[:, t]]
        total += np.where(t <= ends, lp, 0.0)
        last = target[:, t]
    return total


def exhaustive_search(step, state, bos, eos, max_len, vocab_size, length_penalty=0.0, batch_size=None):
    """The exact best sequence under score log p / n**length_penalty, by scoring every sequence of at most max_len
    tokens (V**max_len of them: tiny models only). Unfinished sequences of max_len tokens compete too, as in
    beam_search. Returns a Decoded.
    """
    fn = "exhaustive_search"
    B = _batch(fn, state, batch_size)
    V = _check_int(fn, "vocab_size", vocab_size, 1)
    if (V - 1) ** max_len > 200_000:
        raise ValueError(f"{fn}: {V - 1}**{max_len} sequences are too many to enumerate")
    from itertools import product

    best = [(None, -np.inf, -np.inf, False)] * B
    non_eos = [v for v in range(V) if v != eos]
    for n in range(0, max_len + 1):
        for seq in product(non_eos, repeat=n):
            seqs = [np.array(seq, dtype=np.int64)] * B
            done = n < max_len  # a sequence of max_len tokens is unfinished: the log-probability of its tokens
            lp = sequence_logp(step, state, bos, eos, seqs, finished=np.full(B, done))
            length = n + 1 if done else n
            sc = _score(lp, length, float(length_penalty))
            for b in range(B):
                if (done and not best[b][3]) or (done == best[b][3] and sc[b] > best[b][2]):
                    best[b] = (seqs[b], float(lp[b]), float(sc[b]), done)
    return Decoded([h[0] for h in best], np.array([h[1] for h in best]), np.array([h[2] for h in best]),
                   np.array([h[3] for h in best]))



# --------------------------------------------------------------------------------------------------------------------
# Language-model metrics: one loss, three units
# --------------------------------------------------------------------------------------------------------------------


def nats_to_bits(nats):
    """Cross-entropy in bits from nats: L / ln 2 (bits per token when L is the mean loss per token)."""
    return np.asarray(nats, dtype=np.float64) / np.log(2.0)


def perplexity(mean_nats):
    """exp(L) for the mean cross-entropy L in nats per token: the geometric mean of 1 / p(correct token),
    2**(bits per token). A uniform guess among K tokens has perplexity exactly K."""
    return np.exp(np.asarray(mean_nats, dtype=np.float64))


# --------------------------------------------------------------------------------------------------------------------
# A model given by a table, for small demonstrations
# --------------------------------------------------------------------------------------------------------------------


class PrefixModel:
    """A step function whose next-token distribution is any function of the whole prefix generated so far.

    probs(prefix) -> (V,) probabilities, for prefix a tuple of token ids (bos excluded). The state is the prefix,
    an (N, max_len) integer array padded with -1: use initial_state(N). For demonstrations and tests of search
    algorithms on models small enough to enumerate.
    """

    def __init__(self, probs, bos, max_len=16):
        self.probs, self.bos, self.max_len = probs, bos, max_len

    def initial_state(self, n=1):
        return np.full((n, self.max_len), -1, dtype=np.int64)

    def __call__(self, tokens, prefix):
        prefix = prefix.copy()
        for r, y in enumerate(tokens):
            if y != self.bos:
                free = np.flatnonzero(prefix[r] < 0)
                if len(free) == 0:
                    raise ValueError(f"PrefixModel: a prefix is longer than max_len={self.max_len}")
                prefix[r, free[0]] = y
        p = np.array([self.probs(tuple(int(v) for v in row if v >= 0)) for row in prefix], dtype=np.float64)
        with np.errstate(divide="ignore"):
            return np.log(p), prefix
