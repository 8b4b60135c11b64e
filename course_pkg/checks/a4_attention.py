"""Checks and common mistakes for assignment a4_attention: additive (Bahdanau) attention forward and backward, the
decoder step of an encoder-decoder with attention, and beam search.

The notebook's test cells call check(key, globals()) (a self-check; the grader scores the same checks on hidden cases).

Each function is checked on its own: the backward check runs on a cache in the notebook's layout made by course_pkg's
forward pass; inside the decoder step, the attention and the LSTM step are course_pkg's; beam search runs on a step
function the checker gives (a small random recurrent "language model", a table of weights), and its returned beam is
compared exactly (tokens) and within the tolerances (log-probabilities, scores) with course_pkg.decoding.beam_search.
"""

import numpy as np

from .. import attention, decoding, lstm, seq2seq
from . import cases
from .core import CacheLayout, CheckFailure, Mistake, Registry, Spec, kind_of

F64 = np.dtype(np.float64)
F32 = np.dtype(np.float32)
BOTH = (F64, F32)

VISIBLE_SEED = 20261202  # the visible examples' numbers
BEAM_VISIBLE_SEED = 20261208  # beam search's: a beam of 4 over 4 steps on which each beam mistake shows

# Which hidden cases (by position: 4 float64 then 2 float32) of the attention forward check carry a key mask with
# padding; the visible example has none, so that a softmax over the wrong axis is named there (with padding it
# would give NaN, which no mistake can match). A mask mistake thus passes the visible example and 2 of 6 hidden
# cases, whatever the course secret.
MASKED = (True, False, True, True, False, True)
# The length penalty of beam search's hidden cases by position (0: rank by log-probability).
PENALTIES = (1.0, 0.0, 0.6, 1.0, 0.0, 1.0)


def _mask(rng, B, T):
    """(B, T) bool key mask of right-padded sequences: every row keeps at least one key, row 0 has padding."""
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = rng.integers(1, T)
    return np.arange(T)[None, :] < lengths[:, None]


# ---------------------------------------------------------------- inputs

def _attention_case(rng, dtype, square=False, index=None, masked=None):
    """query (B, Tq, Dq), keys (B, Tk, Dk), values (B, Tk, Dv), Wq (Dq, A), Wk (Dk, A), v (A,), mask (B, Tk) or None,
    and the upstream gradient dc (B, Tq, Dv). Square: Dk == Dv (keys and values swapped is then a wrong value)."""
    B = int(rng.integers(1, 4))
    Tq, Tk = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    Dq, Dk, A = (int(rng.integers(2, 6)) for _ in range(3))
    Dv = Dk if square else int(rng.choice([d for d in range(2, 7) if d != Dk]))
    if masked is None:
        masked = MASKED[index % len(MASKED)] if index is not None else bool(rng.integers(0, 2))
    inputs = {"query": cases.normal(rng, (B, Tq, Dq), dtype), "keys": cases.normal(rng, (B, Tk, Dk), dtype),
              "values": cases.normal(rng, (B, Tk, Dv), dtype),
              "Wq": cases.normal(rng, (Dq, A), dtype, 1 / np.sqrt(Dq)),
              "Wk": cases.normal(rng, (Dk, A), dtype, 1 / np.sqrt(Dk)), "v": cases.normal(rng, (A,), dtype),
              "mask": _mask(rng, B, Tk) if masked else None, "dc": cases.normal(rng, (B, Tq, Dv), dtype)}
    return cases.case(inputs, dtype, B=B, Tq=Tq, Tk=Tk, Dq=Dq, Dk=Dk, Dv=Dv, A=A,
                      mask="padded" if masked else "none")


def _backward_case(rng, dtype, square=False, index=None):
    """As the forward's, with a padded mask in every other case (the backward reads the mask through alpha)."""
    return _attention_case(rng, dtype, square, masked=(index % 2 == 0) if index is not None else True)


def _decoder_case(rng, dtype, square=False):
    """One decoder step of an LSTM encoder-decoder with additive attention, in course_pkg.seq2seq's layout: y_prev
    (B,) ids, state (h, c) each (B, H), enc (B, S, H), src_mask (B, S) with padding, params (random, biases not 0)."""
    B, S = int(rng.integers(1, 4)), int(rng.integers(2, 6))
    H, D, A = int(rng.integers(2, 5)), int(rng.integers(2, 5)), int(rng.integers(2, 5))
    if square:
        D = A = H
    V_src, V_tgt = int(rng.integers(3, 7)), int(rng.integers(3, 7))
    shapes = seq2seq.param_shapes(V_src, V_tgt, D, H, "lstm", "additive", A)
    params = {}
    for name, shape in shapes.items():
        fan_in = shape[0] if len(shape) == 2 and not name.startswith("E_") else 1
        params[name] = cases.normal(rng, shape, dtype, 1 / np.sqrt(fan_in) if len(shape) == 2 else 0.5)
    inputs = {"y_prev": rng.integers(0, V_tgt, size=B), "h": cases.normal(rng, (B, H), dtype, 0.5),
              "c": cases.normal(rng, (B, H), dtype), "enc": cases.normal(rng, (B, S, H), dtype),
              "src_mask": _mask(rng, B, S), "params": params}
    return cases.case(inputs, dtype, B=B, S=S, D=D, H=H, A=A, V=V_tgt)


def _beam_case(rng, dtype, square=False, index=None, penalty=None):
    """A small random recurrent model as a table of weights: E (V+1, H) (row V embeds bos), Wh (H, H), Wo (H, V),
    bo (V,) with eos (token 0) favoured so that hypotheses end at different lengths; the initial state h0 (1, H);
    beam width K, max_len, length_penalty."""
    V, H = int(rng.integers(3, 6)), int(rng.integers(2, 5))
    K = int(rng.integers(1, 5)) if index != 1 else 1  # one hidden case has width 1: greedy search
    max_len = int(rng.integers(3, 6))
    if penalty is None:
        penalty = PENALTIES[index % len(PENALTIES)] if index is not None else 1.0
    bo = cases.normal(rng, (V,), dtype, 0.5)
    bo[0] += dtype.type(rng.uniform(0.5, 1.5))
    inputs = {"E": cases.normal(rng, (V + 1, H), dtype), "Wh": cases.normal(rng, (H, H), dtype, 1 / np.sqrt(H)),
              "Wo": cases.normal(rng, (H, V), dtype, 1.5), "bo": bo, "h0": cases.normal(rng, (1, H), dtype, 0.5),
              "bos": V, "eos": 0, "max_len": max_len, "beam_width": K, "length_penalty": float(penalty)}
    return cases.case(inputs, dtype, V=V, H=H, K=K, max_len=max_len, length_penalty=penalty)


def _fixed(make, square=False, dtype=F64, seed=VISIBLE_SEED, **options):
    """The notebook's visible example: always the same numbers (the hidden cases are not these)."""
    return lambda: make(np.random.default_rng(seed), dtype, square=square, **options)


def table_step(E, Wh, Wo, bo):
    """The step function of a beam search case: step(tokens (N,), state (N, H)) -> logits (N, V), new state (N, H),
    with h' = tanh(E[token] + h Wh), logits = h' Wo + bo (what the notebook's `make_step` builds)."""
    def step(tokens, state):
        h = np.tanh(E[np.asarray(tokens, dtype=np.int64)] + np.asarray(state) @ Wh)
        return h @ Wo + bo, h
    return step


# ---------------------------------------------------------------- the cache the notebook prescribes
# additive_attention_forward's cache is a dict of the inputs query, keys, values, Wq, Wk, v, the tanh t
# (B, Tq, Tk, A) and the weights alpha (B, Tq, Tk) (0 at masked keys: the backward pass needs no mask).

CACHE = CacheLayout("dict", ("query", "keys", "values", "Wq", "Wk", "v", "t", "alpha"))


def attention_forward(query, keys, values, Wq, Wk, v, mask=None):
    """course_pkg.attention.additive_attention_forward, returning the notebook's cache."""
    c, alpha, cc = attention.additive_attention_forward(query, keys, values, Wq, Wk, v, mask=mask)
    s = cc["scores"]
    cache = {"query": s["query"], "keys": s["keys"], "values": cc["context"]["values"], "Wq": s["Wq"],
             "Wk": s["Wk"], "v": s["v"], "t": s["t"], "alpha": alpha}
    return c, alpha, {k: np.array(val) for k, val in cache.items()}


def attention_backward(dc, cache):
    """course_pkg.attention's backward steps (weighted sum, masked softmax, additive scores) on the notebook's cache."""
    query, keys, values, Wq, Wk, v, t, alpha = CACHE.values(cache)
    dalpha, dvalues = attention.context_backward(dc, {"alpha": alpha, "values": values})
    de = attention.masked_softmax_backward(dalpha, {"alpha": alpha})
    dq, dk, dWq, dWk, dv = attention.additive_scores_backward(
        de, {"query": query, "keys": keys, "Wq": Wq, "Wk": Wk, "v": v, "t": t})
    return dq, dk, dvalues, dWq, dWk, dv


def decoder_step(y_prev, state, enc, src_mask, params):
    """course_pkg.seq2seq.decoder_step_forward without its cache: logits (B, V), (h_t, c_t), alpha (B, S)."""
    logits, new, alpha, _ = seq2seq.decoder_step_forward(y_prev, state, enc, src_mask, params)
    return logits, tuple(new), alpha


def lstm_step(x_t, h_prev, c_prev, W, U, b):
    """course_pkg.lstm.lstm_step_forward with a cache of plain arrays (the notebook's given LSTM step)."""
    h_t, c_t, cache = lstm.lstm_step_forward(x_t, h_prev, c_prev, W, U, b)
    return h_t, c_t, {k: np.array(val) for k, val in cache.items() if isinstance(val, np.ndarray)}


def beam(step, state, bos, eos, max_len, beam_width, length_penalty=0.0):
    """course_pkg.decoding.beam_search for one input: the final beam, best first, as a list of
    (tokens, logp, score, finished)."""
    found = decoding.beam_search(step, state, bos, eos, max_len, beam_width, length_penalty, batch_size=1)
    return [(np.asarray(t), float(lp), float(sc), bool(fin)) for t, lp, sc, fin in found.beams[0]]


# ---------------------------------------------------------------- runs

def _run_forward(get, i):
    c, alpha, cache = get("additive_attention_forward")(i["query"], i["keys"], i["values"], i["Wq"], i["Wk"],
                                                        i["v"], mask=i["mask"])
    return c, alpha, CACHE.entries(cache)


def _run_backward(get, i):
    _, _, cache = attention_forward(i["query"], i["keys"], i["values"], i["Wq"], i["Wk"], i["v"], mask=i["mask"])
    return tuple(get("additive_attention_backward")(i["dc"], cache))


def _run_decoder(get, i):
    out = get("decoder_step_forward")(i["y_prev"], (i["h"], i["c"]), i["enc"], i["src_mask"], i["params"])
    if not isinstance(out, tuple) or len(out) != 3:
        raise CheckFailure("decoder_step_forward must return three values: logits, the new state (h_t, c_t) and "
                           "alpha")
    logits, state, alpha = out
    if not isinstance(state, (tuple, list)) or len(state) != 2:
        raise CheckFailure("the state decoder_step_forward returns must be a tuple (h_t, c_t)")
    return logits, state[0], state[1], alpha


def _beam_outputs(found, max_len):
    """The returned beam as arrays: tokens (n, max_len) padded with -1, logp (n,), score (n,), finished (n,) as
    0/1, all float64; CheckFailure saying what is wrong with it otherwise."""
    what = ("beam_search must return the final beam, best first, as a list of (tokens, logp, score, finished) "
            "tuples")
    if not isinstance(found, (list, tuple)) or not found:
        raise CheckFailure(f"{what}; got {getattr(found, 'type_name', type(found).__name__)}")
    n = len(found)
    tokens = np.full((n, max_len), -1.0)
    logp, score, finished = np.zeros(n), np.zeros(n), np.zeros(n)
    for k, hyp in enumerate(found):
        try:
            seq, lp, sc, fin = hyp
            seq = np.asarray(seq)
            if seq.dtype.kind not in "iuf" or seq.ndim != 1 or seq.size > max_len or np.any(seq != np.round(seq)):
                raise ValueError
            tokens[k, :seq.size] = seq
            logp[k], score[k], finished[k] = float(lp), float(sc), float(bool(fin))
        except (TypeError, ValueError):
            raise CheckFailure(f"{what}, tokens a 1-d array of at most max_len={max_len} token ids (eos left "
                               f"out); entry {k} is not") from None
    return tokens, logp, score, finished


def _run_beam(get, i):
    step = table_step(i["E"], i["Wh"], i["Wo"], i["bo"])
    found = get("beam_search")(step, i["h0"], i["bos"], i["eos"], i["max_len"], i["beam_width"],
                               length_penalty=i["length_penalty"])
    return _beam_outputs(found, i["max_len"])


SPECS = [
    Spec("additive_attention_forward", attention.additive_attention_forward, _attention_case,
         _fixed(_attention_case, square=True, masked=False), _run_forward, ("c", "alpha", "cache"),
         prescribed=attention_forward,
         note="the hidden cases include key masks with padding; the visible example has none"),
    Spec("additive_attention_backward", attention.additive_attention_backward, _backward_case,
         _fixed(_attention_case, square=True, masked=True), _run_backward,
         ("dquery", "dkeys", "dvalues", "dWq", "dWk", "dv"), prescribed=attention_backward,
         note="checked on a cache made by course_pkg's additive attention, in the notebook's layout"),
    Spec("decoder_step_forward", seq2seq.decoder_step_forward, _decoder_case, _fixed(_decoder_case, square=True),
         _run_decoder, ("logits", "h_t", "c_t", "alpha"),
         isolate=("additive_attention_forward", "lstm_step_forward"), prescribed=decoder_step,
         note="additive_attention_forward and lstm_step_forward inside it are course_pkg's during this check"),
    Spec("beam_search", decoding.beam_search, _beam_case, _fixed(_beam_case, seed=BEAM_VISIBLE_SEED, penalty=1.0), _run_beam,
         ("tokens (padded with -1)", "logp", "score", "finished"), prescribed=beam,
         note="on small random models given as step functions, compared with course_pkg.decoding.beam_search; "
              "one hidden case has width 1 (greedy search)"),
]


# ---------------------------------------------------------------- mistakes (wrong versions, same signatures)

def _forward(kind):
    kind_of(kind, ("softmax-over-queries", "mask-ignored", "mask-after-softmax", "no-tanh", "no-v",
                   "context-from-keys"), "_forward")

    def additive_attention_forward(query, keys, values, Wq, Wk, v, mask=None):
        pre = (query @ Wq)[:, :, None, :] + (keys @ Wk)[:, None, :, :]
        t = pre if kind == "no-tanh" else np.tanh(pre)
        e = t.sum(axis=-1) if kind == "no-v" else t @ v
        allowed = None if mask is None else np.asarray(mask, dtype=bool)[:, None, :]
        if allowed is not None and kind not in ("mask-ignored", "mask-after-softmax"):
            e = np.where(allowed, e, -np.inf)
        axis = 1 if kind == "softmax-over-queries" else 2
        with np.errstate(invalid="ignore"):  # over the queries, a padded key's column is all -inf: NaN
            p = np.exp(e - e.max(axis=axis, keepdims=True))
            alpha = p / p.sum(axis=axis, keepdims=True)
        if allowed is not None and kind == "mask-after-softmax":
            alpha = alpha * allowed
        c = alpha @ (keys if kind == "context-from-keys" else values)
        cache = {"query": query, "keys": keys, "values": values, "Wq": Wq, "Wk": Wk, "v": v, "t": t,
                 "alpha": alpha}
        return c, alpha, cache
    return additive_attention_forward


def _backward(kind):
    kind_of(kind, ("no-softmax-jacobian", "softmax-diagonal-only", "dtanh-not-squared"), "_backward")

    def additive_attention_backward(dc, cache):
        query, keys, values, Wq, Wk, v, t, alpha = CACHE.values(cache)
        dalpha = dc @ np.swapaxes(values, 1, 2)
        dvalues = np.swapaxes(alpha, 1, 2) @ dc
        if kind == "no-softmax-jacobian":
            de = dalpha
        elif kind == "softmax-diagonal-only":
            de = alpha * dalpha
        else:
            de = alpha * (dalpha - np.sum(alpha * dalpha, axis=2, keepdims=True))
        dv = np.einsum("bij,bija->a", de, t)
        da = de[..., None] * v * ((1 - t) if kind == "dtanh-not-squared" else (1 - t ** 2))
        dqp, dkp = da.sum(axis=2), da.sum(axis=1)
        dWq = np.einsum("bid,bia->da", query, dqp)
        dWk = np.einsum("bjd,bja->da", keys, dkp)
        return dqp @ Wq.T, dkp @ Wk.T, dvalues, dWq, dWk, dv
    return additive_attention_backward


def _decoder(kind):
    kind_of(kind, ("query-previous-state", "no-tanh", "logits-from-state", "mask-not-passed"), "_decoder")

    def decoder_step_forward(y_prev, state, enc, src_mask, params):
        h_prev, c_prev = state
        p = params
        h, c, _ = lstm_step(p["E_tgt"][y_prev], h_prev, c_prev, p["W_dec"], p["U_dec"], p["b_dec"])
        q = h_prev if kind == "query-previous-state" else h
        ctx, alpha, _ = attention_forward(q[:, None, :], enc, enc, p["Wq"], p["Wk"], p["v"],
                                          mask=None if kind == "mask-not-passed" else src_mask)
        a = np.concatenate([ctx[:, 0], h], axis=1) @ p["W_c"] + p["b_c"]
        o = a if kind == "no-tanh" else np.tanh(a)
        logits = (h if kind == "logits-from-state" else o) @ p["V"] + p["c"]
        return logits, (h, c), alpha[:, 0]
    return decoder_step_forward


def _beam(kind=None):
    """Beam search for one input, right (kind None: what course_pkg.decoding.beam_search computes) or wrong in one
    place."""
    kind_of(kind, (None, "no-length-penalty", "carried-length-grows", "finished-dropped", "state-not-reordered"),
            "_beam")

    def beam_search(step, state, bos, eos, max_len, beam_width, length_penalty=0.0):
        alpha = 0.0 if kind == "no-length-penalty" else length_penalty
        hyps = [([], 0.0, False)]  # (tokens with eos, logp, finished)
        states, last = state, np.array([bos])
        for t in range(max_len):
            logits, new_states = step(last, states)
            z = logits - logits.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            children = []
            for k, (tokens, lp, done) in enumerate(hyps):
                if done:
                    if kind != "finished-dropped":
                        n = t + 1 if kind == "carried-length-grows" else len(tokens)
                        children.append((lp / n ** alpha, lp, tokens, True, k))
                    continue
                for y in range(logp.shape[1]):
                    total = lp + float(logp[k, y])
                    children.append((total / (t + 1) ** alpha, total, tokens + [y], y == eos, k))
            children.sort(key=lambda ch: -ch[0])
            kept = children[:beam_width]
            hyps = [(ch[2], ch[1], ch[3]) for ch in kept]
            states = new_states if kind == "state-not-reordered" else new_states[[ch[4] for ch in kept]]
            last = np.array([ch[2][-1] for ch in kept])
            if all(done for _, _, done in hyps):
                break
        out = []
        for tokens, lp, done in hyps:
            n = len(tokens)
            out.append((np.array(tokens[:-1] if done else tokens, dtype=np.int64), lp, lp / n ** alpha, done))
        out.sort(key=lambda h: (not h[3], -h[2]))
        return out
    return beam_search


def _m(id, function, where, what, hint, impl):
    return Mistake(id, function, where, what, hint, {function: impl}, BOTH)


MISTAKES = [
    _m("att-softmax-over-queries", "additive_attention_forward", "softmax",
       "the softmax normalises over the queries instead of over the keys: each key's weights sum to 1, not each "
       "query's.",
       "alpha[b, i, :] is one distribution for query i over the keys it may look at; normalise along the keys' "
       "axis (the last), so every row of alpha sums to 1.",
       _forward("softmax-over-queries")),
    _m("att-mask-ignored", "additive_attention_forward", "mask",
       "the mask is ignored: padded keys get weight too.",
       "a key the mask marks False (padding) must get weight exactly 0; set its score to minus infinity before "
       "the softmax so the other weights are renormalised.",
       _forward("mask-ignored")),
    _m("att-mask-after-softmax", "additive_attention_forward", "mask",
       "the mask is applied after the softmax: padded keys get weight 0, but the remaining weights no longer sum "
       "to 1.",
       "mask the scores, not the weights: a padded key's score set to minus infinity before the softmax gives it "
       "weight 0 and renormalises the rest.",
       _forward("mask-after-softmax")),
    _m("att-no-tanh", "additive_attention_forward", "score",
       "the tanh is missing from the score: e is v . (q W_q + k W_k), which is linear in the query and the key.",
       "Bahdanau's score passes the summed projections through tanh before the dot product with v (and the cache's "
       "t holds that tanh).",
       _forward("no-tanh")),
    _m("att-score-without-v", "additive_attention_forward", "score",
       "the score sums the tanh over its A entries instead of weighting them by v.",
       "e_ij is the dot product of v (A,) with tanh(q_i W_q + k_j W_k): v is a learned weight per entry, not a "
       "plain sum.",
       _forward("no-v")),
    _m("att-context-from-keys", "additive_attention_forward", "context",
       "the context averages the keys instead of the values.",
       "the keys decide the weights (through the scores); the context is the weighted mean of the values, which "
       "may differ from the keys (in a decoder they are often the same encoder states).",
       _forward("context-from-keys")),
    _m("att-backward-no-softmax-jacobian", "additive_attention_backward", "softmax gradient",
       "the gradient is passed through the softmax unchanged: the gradient of the scores is taken to be that of "
       "the weights.",
       "the softmax couples every weight of a row to every score of the row: de_ij = alpha_ij (dalpha_ij - "
       "sum over j' of alpha_ij' dalpha_ij').",
       _backward("no-softmax-jacobian")),
    _m("att-backward-softmax-diagonal-only", "additive_attention_backward", "softmax gradient",
       "the softmax's gradient keeps only its diagonal: de = alpha times dalpha, without the term that subtracts "
       "the row's weighted mean.",
       "each weight depends on every score of its row through the normalisation; subtract from dalpha its mean "
       "under alpha, row by row, before multiplying by alpha.",
       _backward("softmax-diagonal-only")),
    _m("att-backward-dtanh-not-squared", "additive_attention_backward", "tanh derivative",
       "the derivative of the score's tanh is taken as 1 - t; it is 1 - t squared.",
       "t = tanh(a) has derivative 1 - tanh(a) squared, written with the t in the cache.",
       _backward("dtanh-not-squared")),
    _m("dec-query-previous-state", "decoder_step_forward", "attention query",
       "the attention is queried with the previous state h_{t-1} instead of the new state h_t.",
       "in course_pkg's (Luong's) layout the cell runs first and its new state h_t is the query; Bahdanau's "
       "original decoder queries with the previous state, a different model.",
       _decoder("query-previous-state")),
    _m("dec-output-without-tanh", "decoder_step_forward", "attentional output",
       "the attentional output o_t lacks its tanh: o_t is the affine map of [context, h_t] alone.",
       "o_t = tanh([ctx_t, h_t] W_c + b_c): squash the affine map before the output layer.",
       _decoder("no-tanh")),
    _m("dec-logits-from-state", "decoder_step_forward", "output layer",
       "the logits are computed from h_t, not from the attentional output o_t: the context never reaches them.",
       "the output layer reads o_t, which combines the context with the state; without it the attention changes "
       "nothing the model predicts.",
       _decoder("logits-from-state")),
    _m("dec-mask-not-passed", "decoder_step_forward", "mask",
       "the source mask is not passed to the attention: padded source positions get weight.",
       "give src_mask to your attention function as its mask, so that padding gets weight 0.",
       _decoder("mask-not-passed")),
    _m("beam-no-length-normalisation", "beam_search", "score",
       "the hypotheses are ranked by their log-probability alone: the length penalty is ignored.",
       "rank by score = log p divided by n to the power length_penalty, n the hypothesis' tokens so far (eos "
       "included); with length_penalty 0 that is log p itself.",
       _beam("no-length-penalty")),
    _m("beam-carried-length-grows", "beam_search", "finished hypotheses",
       "a finished hypothesis carried over is scored with the current step count as its length instead of its "
       "own length.",
       "a finished hypothesis keeps its tokens and its length; only the children of unfinished ones are one token "
       "longer at each step.",
       _beam("carried-length-grows")),
    _m("beam-finished-dropped", "beam_search", "finished hypotheses",
       "a finished hypothesis leaves the beam at the next step instead of competing with the new children.",
       "carry every finished hypothesis over unchanged: at each step it competes (with its score) with the "
       "children of the unfinished ones for the beam's places.",
       _beam("finished-dropped")),
    _m("beam-state-not-reordered", "beam_search", "state",
       "the state is not reordered with the beam: after a step the rows of the state no longer belong to the "
       "hypotheses in the same places.",
       "each kept child continues from its parent's new state: take the rows of the new state in the order of the "
       "kept children's parents.",
       _beam("state-not-reordered")),
]


REGISTRY = Registry("a4_attention")
for _spec in SPECS:
    REGISTRY.add_spec(_spec)
REGISTRY.add_reference("lstm_step_forward", lstm_step)
for _mistake in MISTAKES:
    REGISTRY.add_mistake(_mistake)
check = REGISTRY.check
