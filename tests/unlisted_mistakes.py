"""Twelve realistic mistakes that the hand-written library (course_pkg/checks/a*.py) does not list, each a whole
function as a student might write it, for the tests of the grader's automatic diagnosis (tests/test_diagnosis.py) and
the benchmark of its cost (bench/autograde_speed.py --diagnosis both).

The first eight are those of issue 10 that got "No common mistake matches these outputs"; the last four are more of
the same kind (a gate or factor left out, a block misread, a variable confused with another).

UNLISTED = [Unlisted(id, assignment, function, {check key: words the explanation must contain}, code)]; `code` defines
the function (numpy as np and course_pkg.activations' sigmoid in scope, the other graded functions by name).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Unlisted:
    id: str
    assignment: str
    function: str
    named: dict  # check key -> (operator, words that the explanation's text contains)
    code: str


UNLISTED = [
    Unlisted("forget-gate-dropped", "a2_lstm", "lstm_step_forward",
             {"lstm_step_forward": ("gate", "the forget gate f is left out of the product f * c_prev")}, '''
def lstm_step_forward(x_t, h_prev, c_prev, W, U, b):
    i = input_gate(x_t, h_prev, W, U, b)
    f = forget_gate(x_t, h_prev, W, U, b)
    g = candidate(x_t, h_prev, W, U, b)
    o = output_gate(x_t, h_prev, W, U, b)
    c_next = c_prev + i * g
    h_next = o * np.tanh(c_next)
    return h_next, c_next, {"x_t": x_t, "h_prev": h_prev, "c_prev": c_prev, "W": W, "U": U,
                            "i": i, "f": f, "g": g, "o": o, "c_t": c_next}
'''),
    Unlisted("sigmoid-of-cell", "a2_lstm", "lstm_step_forward",
             {"lstm_step_forward": ("activation", "a sigmoid is applied to the new cell state c_t where tanh")}, '''
def lstm_step_forward(x_t, h_prev, c_prev, W, U, b):
    gates = [fn(x_t, h_prev, W, U, b) for fn in (input_gate, forget_gate, candidate, output_gate)]
    i, f, g, o = gates
    c_t = f * c_prev + i * g
    h_t = o * sigmoid(c_t)
    cache = dict(x_t=x_t, h_prev=h_prev, c_prev=c_prev, W=W, U=U, i=i, f=f, g=g, o=o, c_t=c_t)
    return h_t, c_t, cache
'''),
    Unlisted("relu-candidate", "a2_lstm", "candidate",
             {"candidate": ("activation", "ReLU is applied")}, '''
def candidate(x_t, h_prev, W, U, b):
    H = U.shape[0]
    pre = x_t @ W[:, 2 * H:3 * H] + h_prev @ U[:, 2 * H:3 * H] + b[2 * H:3 * H]
    return np.maximum(0, pre)
'''),
    Unlisted("bias-twice", "a2_lstm", "forget_gate",
             {"forget_gate": ("term", "the bias b is counted twice")}, '''
def forget_gate(x_t, h_prev, W, U, b):
    H = h_prev.shape[1]
    Wf, Uf, bf = W[:, H:2 * H], U[:, H:2 * H], b[H:2 * H]
    return sigmoid((x_t @ Wf + bf) + (h_prev @ Uf + bf))
'''),
    Unlisted("reset-gate-ignored", "a3_gru", "candidate",
             {"candidate_reset_after": ("gate", "reset gate r is left out"),
              "candidate_reset_before": ("gate", "reset gate r is left out")}, '''
def candidate(x_t, h_prev, r, W, U, b, reset_after=True):
    H = h_prev.shape[1]
    Wh, Uh = W[:, 2 * H:], U[:, 2 * H:]
    if reset_after:
        return np.tanh(x_t @ Wh + b[0, 2 * H:] + h_prev @ Uh + b[1, 2 * H:])
    return np.tanh(x_t @ Wh + h_prev @ Uh + b[2 * H:])
'''),
    Unlisted("bias-rows-swapped", "a3_gru", "candidate",
             {"candidate_reset_after": ("block", "the two rows of b (input side and recurrent side) are exchanged")},
             '''
def candidate(x_t, h_prev, r, W, U, b, reset_after=True):
    H = h_prev.shape[1]
    Wh, Uh = W[:, 2 * H:], U[:, 2 * H:]
    if reset_after:
        b_in, b_rec = b[1, 2 * H:], b[0, 2 * H:]
        return np.tanh(x_t @ Wh + b_in + r * (h_prev @ Uh + b_rec))
    return np.tanh(x_t @ Wh + (r * h_prev) @ Uh + b[2 * H:])
'''),
    Unlisted("reset-on-input-side", "a3_gru", "candidate",
             {"candidate_reset_after": ("product", "the reset gate r multiplies the input's part (x_t W + b[0]) "
                                                   "instead of the previous state's part (h_prev U + b[1])")}, '''
def candidate(x_t, h_prev, r, W, U, b, reset_after=True):
    H = h_prev.shape[1]
    Wh, Uh = W[:, 2 * H:], U[:, 2 * H:]
    if reset_after:
        return np.tanh(r * (x_t @ Wh + b[0, 2 * H:]) + h_prev @ Uh + b[1, 2 * H:])
    return np.tanh(x_t @ Wh + (r * h_prev) @ Uh + b[2 * H:])
'''),
    Unlisted("half-updated-state", "a3_gru", "gru_step_forward",
             {"gru_step_forward": ("variable", "a half-computed h_t")}, '''
def gru_step_forward(x_t, h_prev, W, U, b, reset_after=True):
    z = update_gate(x_t, h_prev, W, U, b, reset_after)
    r = reset_gate(x_t, h_prev, W, U, b, reset_after)
    h = z * h_prev
    h_tilde = candidate(x_t, h, r, W, U, b, reset_after)
    h = h + (1 - z) * h_tilde
    return h, {"x_t": x_t, "h_prev": h_prev, "W": W, "U": U, "b": b, "reset_after": reset_after,
               "z": z, "r": r, "h_tilde": h_tilde}
'''),
    Unlisted("input-gate-dropped", "a2_lstm", "lstm_step_forward",
             {"lstm_step_forward": ("gate", "the input gate i is left out of the product i * g")}, '''
def lstm_step_forward(x_t, h_prev, c_prev, W, U, b):
    i = input_gate(x_t, h_prev, W, U, b)
    f = forget_gate(x_t, h_prev, W, U, b)
    g = candidate(x_t, h_prev, W, U, b)
    o = output_gate(x_t, h_prev, W, U, b)
    c_t = f * c_prev + g
    h_t = o * np.tanh(c_t)
    return h_t, c_t, {"x_t": x_t, "h_prev": h_prev, "c_prev": c_prev, "W": W, "U": U,
                      "i": i, "f": f, "g": g, "o": o, "c_t": c_t}
'''),
    Unlisted("update-gate-reads-candidate-block", "a3_gru", "update_gate",
             {"update_gate": ("block", "the candidate's block (block 2 in the order z, r, h) is read instead of "
                                       "the update gate's block")}, '''
def update_gate(x_t, h_prev, W, U, b, reset_after=True):
    H = h_prev.shape[1]
    bias = b[0, 2 * H:] + b[1, 2 * H:] if reset_after else b[2 * H:]
    return sigmoid(x_t @ W[:, 2 * H:] + h_prev @ U[:, 2 * H:] + bias)
'''),
    Unlisted("one-minus-z-dropped", "a3_gru", "gru_step_forward",
             {"gru_step_forward": ("factor", "the factor 1 - z is missing")}, '''
def gru_step_forward(x_t, h_prev, W, U, b, reset_after=True):
    z = update_gate(x_t, h_prev, W, U, b, reset_after)
    r = reset_gate(x_t, h_prev, W, U, b, reset_after)
    h_tilde = candidate(x_t, h_prev, r, W, U, b, reset_after)
    h_t = z * h_prev + h_tilde
    return h_t, {"x_t": x_t, "h_prev": h_prev, "W": W, "U": U, "b": b, "reset_after": reset_after,
                 "z": z, "r": r, "h_tilde": h_tilde}
'''),
    Unlisted("state-as-cell", "a2_lstm", "lstm_forward",
             {"lstm_forward": ("variable", "uses the running state h_t where the running cell state c_t belongs")},
             '''
def lstm_forward(x, h0, c0, W, U, b):
    B, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((B, T, H), dtype=x.dtype)
    c = np.zeros((B, T, H), dtype=x.dtype)
    caches = []
    h_t, c_t = h0, c0
    for t in range(T):
        h_t, c_t, cache_t = lstm_step_forward(x[:, t, :], h_t, h_t, W, U, b)
        h[:, t, :], c[:, t, :] = h_t, c_t
        caches.append(cache_t)
    return h, c, caches
'''),
]
