"""The mistakes of course_pkg.checks.a4_attention injected into the source solution of assignment a4_attention.

INJECTIONS = [(mistake_id, grade_id of the solution cell, old, new, {test cell: expected score})]: replacing `old`
(unique in that cell) by `new` gives the mistake; the dict lists only the test cells that lose points. The expected
scores are what the grader gives (grader.scoring, on hidden cases drawn from assignment_tools.TEST_SECRET). A mistake
whose visible check fails scores 0 whatever the secret. The two mask mistakes pass the visible example (no mask) and
the 2 hidden cases without a mask (a4_attention.MASKED fixes which, by position): 2/6 of 2 points whatever the
secret. Each mistake costs its own cell only: the backward check runs on a cache the checker makes, the decoder step
on course_pkg's attention.
"""

_WHERE = "e = np.where(allowed, e, -np.inf)"
_NORM = "alpha = p / p.sum(axis=2, keepdims=True)"

INJECTIONS = [
    # additive attention, forward
    ("att-softmax-over-queries", "additive_attention_forward",
     "e = e - e.max(axis=2, keepdims=True)\n    p = np.exp(e)\n    alpha = p / p.sum(axis=2, keepdims=True)",
     "e = e - e.max(axis=1, keepdims=True)\n    p = np.exp(e)\n    alpha = p / p.sum(axis=1, keepdims=True)",
     {"test_additive_attention_forward": 0}),
    ("att-mask-ignored", "additive_attention_forward", _WHERE, "pass", {"test_additive_attention_forward": 0.67}),
    ("att-mask-after-softmax", "additive_attention_forward", f"{_WHERE}\n    e = e - e.max(axis=2, keepdims=True)\n"
     f"    p = np.exp(e)\n    {_NORM}",
     f"pass\n    e = e - e.max(axis=2, keepdims=True)\n    p = np.exp(e)\n    {_NORM}\n    if mask is not None:\n"
     "        alpha = alpha * allowed", {"test_additive_attention_forward": 0.67}),
    ("att-no-tanh", "additive_attention_forward", "t = np.tanh(qp[:, :, None, :] + kp[:, None, :, :])",
     "t = qp[:, :, None, :] + kp[:, None, :, :]", {"test_additive_attention_forward": 0}),
    ("att-score-without-v", "additive_attention_forward", "e = t @ v", "e = t.sum(axis=-1)",
     {"test_additive_attention_forward": 0}),
    ("att-context-from-keys", "additive_attention_forward", "c = alpha @ values", "c = alpha @ keys",
     {"test_additive_attention_forward": 0}),
    # additive attention, backward
    ("att-backward-no-softmax-jacobian", "additive_attention_backward",
     "de = alpha * (dalpha - np.sum(alpha * dalpha, axis=2, keepdims=True))", "de = dalpha",
     {"test_additive_attention_backward": 0}),
    ("att-backward-softmax-diagonal-only", "additive_attention_backward",
     "de = alpha * (dalpha - np.sum(alpha * dalpha, axis=2, keepdims=True))", "de = alpha * dalpha",
     {"test_additive_attention_backward": 0}),
    ("att-backward-dtanh-not-squared", "additive_attention_backward", "(1 - t ** 2)", "(1 - t)",
     {"test_additive_attention_backward": 0}),
    # the decoder step
    ("dec-query-previous-state", "decoder_step_forward", "additive_attention_forward(h[:, None, :]",
     "additive_attention_forward(h_prev[:, None, :]", {"test_decoder_step_forward": 0}),
    ("dec-output-without-tanh", "decoder_step_forward",
     'o = np.tanh(np.concatenate([ctx[:, 0], h], axis=1) @ params["W_c"] + params["b_c"])',
     'o = np.concatenate([ctx[:, 0], h], axis=1) @ params["W_c"] + params["b_c"]', {"test_decoder_step_forward": 0}),
    ("dec-logits-from-state", "decoder_step_forward", 'logits = o @ params["V"]', 'logits = h @ params["V"]',
     {"test_decoder_step_forward": 0}),
    ("dec-mask-not-passed", "decoder_step_forward", "mask=src_mask", "mask=None", {"test_decoder_step_forward": 0}),
    # beam search
    ("beam-no-length-normalisation", "beam_search", "hyps = [([], 0.0, False)]",
     "length_penalty = 0.0\n    hyps = [([], 0.0, False)]", {"test_beam_search": 0}),
    ("beam-carried-length-grows", "beam_search", "children.append((lp / len(tokens) ** length_penalty",
     "children.append((lp / (t + 1) ** length_penalty", {"test_beam_search": 0}),
    ("beam-finished-dropped", "beam_search",
     "children.append((lp / len(tokens) ** length_penalty, lp, tokens, True, k))\n", "",
     {"test_beam_search": 0}),
    ("beam-state-not-reordered", "beam_search", "states = new_states[[child[4] for child in kept]]",
     "states = new_states", {"test_beam_search": 0}),
]
