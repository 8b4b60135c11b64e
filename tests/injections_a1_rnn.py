"""The mistakes of course_pkg.checks.a1_rnn, each injected into the source solution of a1_rnn by one replacement.

INJECTIONS: (mistake_id, grade_id of the solution cell, old, new, {test cell grade_id: expected score}), listing only
the test cells that lose points. The expected scores are what the grader gives (grader.scoring, through
assignment_tools.run_in_process, on hidden cases drawn from assignment_tools.TEST_SECRET): a cell whose visible check
fails scores 0 (its hidden cases are not run), which is why most losses are whole cells; the one partial score is a
share of hidden cases that does not depend on the secret (the two float32 cases of six). The one loss beyond the mistake's own cell: the
gradient check the student runs (test_gradient_check) fails whenever a forward, a backward or the numerical gradient
it relies on is wrong. The backward checks run on a cache the checker makes, so a forward mistake never costs them.
"""

_FORWARD_STEP_LINES = ("h_t, step_cache = rnn_step_forward(x[:, t], h_t, W, U, b)\n"
                       "        h[:, t] = h_t")
_CENTRAL = ("p[j] = saved - eps\n"
            "        loss_minus = loss()\n"
            "        p[j] = saved\n"
            "        grad[j] = (loss_plus - loss_minus) / (2 * eps)")
_ACCUMULATE = "dW += dW_t\n        dU += dU_t\n        db += db_t"

INJECTIONS = [
    # rnn_step_forward
    ("rnn-sigmoid-state", "rnn_step_forward", "np.tanh(a_t)", "1 / (1 + np.exp(-a_t))",
     {"test_rnn_step_forward": 0.0, "test_gradient_check": 0.0}),
    ("rnn-missing-bias", "rnn_step_forward", "h_prev @ U + b", "h_prev @ U",
     {"test_rnn_step_forward": 0.0, "test_gradient_check": 0.0}),
    ("rnn-x-h-swapped", "rnn_step_forward", "x_t @ W + h_prev @ U", "x_t @ U + h_prev @ W",
     {"test_rnn_step_forward": 0.0, "test_gradient_check": 0.0}),
    ("rnn-no-activation", "rnn_step_forward", "h_t = np.tanh(a_t)", "h_t = a_t",
     {"test_rnn_step_forward": 0.0, "test_gradient_check": 0.0}),
    # rnn_step_backward
    ("rnn-dtanh-not-squared", "rnn_step_backward", "(1 - h_t ** 2)", "(1 - h_t)",
     {"test_rnn_step_backward": 0.0, "test_gradient_check": 0.0}),
    ("rnn-dtanh-missing", "rnn_step_backward", "da = dh_t * (1 - h_t ** 2)", "da = dh_t",
     {"test_rnn_step_backward": 0.0, "test_gradient_check": 0.0}),
    ("rnn-weight-grads-swapped", "rnn_step_backward", "dW = x_t.T @ da\n    dU = h_prev.T @ da",
     "dW = h_prev.T @ da\n    dU = x_t.T @ da",
     {"test_rnn_step_backward": 0.0, "test_gradient_check": 0.0}),
    # rnn_forward
    ("rnn-h0-ignored", "rnn_forward", "h_t = h0\n", "h_t = np.zeros_like(h0)\n",
     {"test_rnn_forward": 0.0, "test_gradient_check": 0.0}),
    ("rnn-states-shifted", "rnn_forward", _FORWARD_STEP_LINES,
     "h[:, t] = h_t\n        h_t, step_cache = rnn_step_forward(x[:, t], h_t, W, U, b)",
     {"test_rnn_forward": 0.0, "test_gradient_check": 0.0}),
    ("rnn-state-not-carried", "rnn_forward", "rnn_step_forward(x[:, t], h_t, W, U, b)",
     "rnn_step_forward(x[:, t], h0, W, U, b)",
     {"test_rnn_forward": 0.0, "test_gradient_check": 0.0}),
    ("rnn-states-float64", "rnn_forward", ", dtype=x.dtype)", ")",
     {"test_rnn_forward": 1.33}),  # the visible check is float64: only the 2 float32 hidden cases of 6 fail
    # rnn_backward
    ("rnn-grads-not-accumulated", "rnn_backward", _ACCUMULATE, "dW = dW_t\n        dU = dU_t\n        db = db_t",
     {"test_rnn_backward": 0.0, "test_gradient_check": 0.0}),
    ("rnn-no-gradient-through-time", "rnn_backward", "dh[:, t] + dh_next", "dh[:, t]",
     {"test_rnn_backward": 0.0, "test_gradient_check": 0.0}),
    ("rnn-backward-not-reversed", "rnn_backward", "reversed(range(T))", "range(T)",
     {"test_rnn_backward": 0.0, "test_gradient_check": 0.0}),
    # numerical_gradient
    ("ng-one-sided", "numerical_gradient", _CENTRAL, "p[j] = saved\n        grad[j] = (loss_plus - loss()) / eps",
     {"test_numerical_gradient": 0.0, "test_gradient_check": 0.0}),
    ("ng-missing-half", "numerical_gradient", "/ (2 * eps)", "/ eps",
     {"test_numerical_gradient": 0.0, "test_gradient_check": 0.0}),
    ("ng-not-restored", "numerical_gradient", "        p[j] = saved\n", "",
     {"test_numerical_gradient": 0.0, "test_gradient_check": 0.0}),
    ("ng-perturbs-copy", "numerical_gradient", "p = inputs[name]\n", "p = inputs[name].copy()\n",
     {"test_numerical_gradient": 0.0, "test_gradient_check": 0.0}),
]
