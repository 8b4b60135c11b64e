"""The mistakes of course_pkg.checks.a3_gru injected into the source solution of assignment a3_gru.

INJECTIONS = [(mistake_id, grade_id of the solution cell, old, new, {test cell: expected score})]: replacing `old`
(unique in that cell) by `new` gives the mistake; the dict lists only the test cells that lose points. The expected
scores are what the grader gives (grader.scoring, on hidden cases drawn from assignment_tools.TEST_SECRET). Most are
whole cells, which no secret changes; two mistakes pass their cell's visible example and show only in the hidden cases
of one convention, and since the hidden cases draw their convention at random, their score is a ConventionShare: the
cell's points times the share of hidden cases in the other convention. Why more than one cell can lose:
a visible check that fails makes its cell score 0; the gradient check runs the student's own chain (gates, candidate,
step forward and backward), so a mistake anywhere in it fails there too. The backward checks run on a cache the
checker makes and the Keras matches run course_pkg's gru_forward, so no other cell loses points. Every test cell that
loses points names the mistake: the gradient check's test runs the checks of the chain's functions when the reports
fail, and the candidate's sigmoid and the swapped Keras kernels are each one mistake that both cells of a convention
pair recognise.
"""

import dataclasses

from course_pkg.checks import a3_gru, core


@dataclasses.dataclass(frozen=True)
class ConventionShare:
    """The score of a cell whose mistake shows only in the hidden cases of one convention (reset_after ==
    shows_when): points * (hidden cases of the other convention) / (hidden cases), rounded as the grader rounds."""

    key: str
    points: float
    shows_when: bool

    def passing(self, seed_for):
        """(hidden cases in which the mistake does not show, hidden cases) for these seeds."""
        cases = core.hidden_cases(a3_gru.REGISTRY.spec(self.key), seed_for(self.key))
        return sum(c.inputs["reset_after"] is not self.shows_when for c in cases), len(cases)

    def score(self, seed_for):
        passed, total = self.passing(seed_for)
        return round(self.points * passed / total, 2)


def expected_score(value, seed_for):
    return value.score(seed_for) if isinstance(value, ConventionShare) else float(value)


_SWAP_OLD = "x_t @ W[:, block] + h_prev @ U[:, block]"
_SWAP_NEW = "x_t @ U[:, block] + h_prev @ W[:, block]"
_BLOCK = {"update_gate": "slice(0, H)", "reset_gate": "slice(H, 2 * H)"}
_CHAIN = {"test_gradient_check": 0}  # the gradient check runs the student's own functions
_KERAS = {"test_gru_keras_match_reset_after": 0, "test_gru_keras_match_reset_before": 0}

INJECTIONS = [
    # the gates: each costs its own cell (the other checks use course_pkg's gates) and the gradient check
    ("gru-update-gate-tanh", "update_gate", "return sigmoid(", "return np.tanh(", {"test_update_gate": 0, **_CHAIN}),
    ("gru-update-gate-no-bias", "update_gate", "U[:, block] + bias)", "U[:, block])",
     {"test_update_gate": 0, **_CHAIN}),
    # the visible check of update_gate uses reset_after=True, where the missing row shows
    ("gru-update-gate-recurrent-bias-ignored", "update_gate", "b[0, block] + b[1, block]", "b[0, block]",
     {"test_update_gate": 0, **_CHAIN}),
    ("gru-update-gate-x-h-swapped", "update_gate", _SWAP_OLD, _SWAP_NEW, {"test_update_gate": 0, **_CHAIN}),
    ("gru-update-gate-reads-r-block", "update_gate", _BLOCK["update_gate"], _BLOCK["reset_gate"],
     {"test_update_gate": 0, **_CHAIN}),
    ("gru-reset-gate-tanh", "reset_gate", "return sigmoid(", "return np.tanh(", {"test_reset_gate": 0, **_CHAIN}),
    ("gru-reset-gate-no-bias", "reset_gate", "U[:, block] + bias)", "U[:, block])", {"test_reset_gate": 0, **_CHAIN}),
    # reset_gate's visible check uses reset_after=False, where the mistake does not show (there is no recurrent bias
    # row): the hidden cases with reset_after=False pass
    ("gru-reset-gate-recurrent-bias-ignored", "reset_gate", "b[0, block] + b[1, block]", "b[0, block]",
     {"test_reset_gate": ConventionShare("reset_gate", 1, shows_when=True), **_CHAIN}),
    ("gru-reset-gate-x-h-swapped", "reset_gate", _SWAP_OLD, _SWAP_NEW, {"test_reset_gate": 0, **_CHAIN}),
    ("gru-reset-gate-reads-z-block", "reset_gate", _BLOCK["reset_gate"], _BLOCK["update_gate"],
     {"test_reset_gate": 0, **_CHAIN}),
    # the candidate: each convention's cell
    ("gru-reset-before-product", "candidate", "r * (h_prev @ U[:, block] + b[1, block])",
     "(r * h_prev) @ U[:, block] + b[1, block]", {"test_candidate_reset_after": 0, **_CHAIN}),
    ("gru-recurrent-bias-outside-reset", "candidate", "r * (h_prev @ U[:, block] + b[1, block])",
     "r * (h_prev @ U[:, block]) + b[1, block]", {"test_candidate_reset_after": 0, **_CHAIN}),
    ("gru-candidate-recurrent-bias-ignored", "candidate", " + b[1, block])", ")",
     {"test_candidate_reset_after": 0, **_CHAIN}),
    # one function, two checks (one per convention): both cells lose and name it
    ("gru-candidate-sigmoid", "candidate", "return np.tanh(a)", "return sigmoid(a)",
     {"test_candidate_reset_after": 0, "test_candidate_reset_before": 0, **_CHAIN}),
    ("gru-reset-after-product", "candidate", "(r * h_prev) @ U[:, block]", "r * (h_prev @ U[:, block])",
     {"test_candidate_reset_before": 0, **_CHAIN}),
    # one step and the sequence forward
    ("gru-z-swapped", "gru_step_forward", "z * h_prev + (1 - z) * h_tilde", "(1 - z) * h_prev + z * h_tilde",
     {"test_gru_step_forward": 0, **_CHAIN}),
    ("gru-reset-in-update", "gru_step_forward", "z * h_prev + (1 - z) * h_tilde", "r * h_prev + (1 - r) * h_tilde",
     {"test_gru_step_forward": 0, **_CHAIN}),
    # the sequence forward: its own cell only (the backward and Keras checks run course_pkg's forward)
    ("gru-h0-ignored", "gru_forward", "h_t = h0", "h_t = np.zeros_like(h0)",
     {"test_gru_forward": 0}),
    ("gru-h-not-carried", "gru_forward", "gru_step_forward(x[:, t], h_t,", "gru_step_forward(x[:, t], h0,",
     {"test_gru_forward": 0}),
    ("gru-states-shifted", "gru_forward",
     "        h_t, step_cache = gru_step_forward(x[:, t], h_t, W, U, b, reset_after)\n        h[:, t] = h_t\n",
     "        h[:, t] = h_t\n        h_t, step_cache = gru_step_forward(x[:, t], h_t, W, U, b, reset_after)\n",
     {"test_gru_forward": 0}),
    # one step backward: its own cell and the gradient check
    ("gru-dtanh-not-squared", "gru_step_backward", "(1 - h_tilde ** 2)", "(1 - h_tilde)",
     {"test_gru_step_backward": 0, **_CHAIN}),
    ("gru-direct-path-missing", "gru_step_backward", "dh_prev = dh_t * z ", "dh_prev = np.zeros_like(h_prev) ",
     {"test_gru_step_backward": 0, **_CHAIN}),
    ("gru-dz-sign-flipped", "gru_step_backward", "dz = dh_t * (h_prev - h_tilde)", "dz = dh_t * (h_tilde - h_prev)",
     {"test_gru_step_backward": 0, **_CHAIN}),
    ("gru-dr-without-recurrent-bias", "gru_step_backward", "q = h_prev @ U_h + b[1, 2 * H:]", "q = h_prev @ U_h",
     {"test_gru_step_backward": 0, **_CHAIN}),
    # the visible check of gru_step_backward uses reset_after=True, where this one does not show (r meets U_h's
    # product only with reset_after=False): the hidden cases with reset_after=True pass
    ("gru-dUh-without-reset", "gru_step_backward", "(r * h_prev).T @ da_h", "h_prev.T @ da_h",
     {"test_gru_step_backward": ConventionShare("gru_step_backward", 3, shows_when=False), **_CHAIN}),
    # the sequence backward
    ("gru-grads-not-accumulated", "gru_backward", "dW, dU, db = dW + dW_t, dU + dU_t, db + db_t",
     "dW, dU, db = dW_t, dU_t, db_t", {"test_gru_backward": 0}),
    ("gru-no-gradient-through-time", "gru_backward", "gru_step_backward(dh[:, t] + dh_next, cache[t])",
     "gru_step_backward(dh[:, t], cache[t])", {"test_gru_backward": 0}),
    # Keras
    ("gru-keras-kernels-swapped", "get_params", "return W, U, b", "return U, W, b", _KERAS),
]
