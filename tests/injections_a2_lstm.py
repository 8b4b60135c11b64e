"""The mistakes of course_pkg.checks.a2_lstm injected into the source solution of assignment a2_lstm.

INJECTIONS = [(mistake_id, grade_id of the solution cell, old, new, {test cell: expected score})]: replacing `old`
(unique in that cell) by `new` gives the mistake; the dict lists only the test cells that lose points. The expected
scores are what the grader gives (grader.scoring, on hidden cases drawn from assignment_tools.TEST_SECRET); every one
is a whole cell, so none depends on the secret: a visible check that fails makes its cell score 0 (its hidden cases
are not run). Each mistake costs its own cell only: the backward checks run on a cache the checker makes, and the
Keras match runs course_pkg's lstm_forward on the student's get_params.
"""

_SWAP_OLD = "x_t @ W[:, cols] + h_prev @ U[:, cols]"
_SWAP_NEW = "x_t @ U[:, cols] + h_prev @ W[:, cols]"
_BLOCK = {"input_gate": "slice(0, H)", "forget_gate": "slice(H, 2 * H)", "candidate": "slice(2 * H, 3 * H)",
          "output_gate": "slice(3 * H, 4 * H)"}

INJECTIONS = [
    # the gates: each costs its own cell only (the other checks use course_pkg's gates)
    ("lstm-input-gate-tanh", "input_gate", "return sigmoid(a_i)", "return np.tanh(a_i)", {"test_input_gate": 0}),
    ("lstm-input-no-bias", "input_gate", " + b[cols]", "", {"test_input_gate": 0}),
    ("lstm-input-x-h-swapped", "input_gate", _SWAP_OLD, _SWAP_NEW, {"test_input_gate": 0}),
    ("lstm-input-reads-f-block", "input_gate", _BLOCK["input_gate"], _BLOCK["forget_gate"], {"test_input_gate": 0}),
    ("lstm-forget-gate-tanh", "forget_gate", "return sigmoid(a_f)", "return np.tanh(a_f)", {"test_forget_gate": 0}),
    ("lstm-forget-no-bias", "forget_gate", " + b[cols]", "", {"test_forget_gate": 0}),
    ("lstm-forget-x-h-swapped", "forget_gate", _SWAP_OLD, _SWAP_NEW, {"test_forget_gate": 0}),
    ("lstm-forget-reads-i-block", "forget_gate", _BLOCK["forget_gate"], _BLOCK["input_gate"],
     {"test_forget_gate": 0}),
    ("lstm-candidate-sigmoid", "candidate", "return np.tanh(a_g)", "return sigmoid(a_g)", {"test_candidate": 0}),
    ("lstm-candidate-no-bias", "candidate", " + b[cols]", "", {"test_candidate": 0}),
    ("lstm-candidate-x-h-swapped", "candidate", _SWAP_OLD, _SWAP_NEW, {"test_candidate": 0}),
    ("lstm-candidate-reads-o-block", "candidate", _BLOCK["candidate"], _BLOCK["output_gate"], {"test_candidate": 0}),
    ("lstm-candidate-reads-i-block", "candidate", _BLOCK["candidate"], _BLOCK["input_gate"], {"test_candidate": 0}),
    ("lstm-output-gate-tanh", "output_gate", "return sigmoid(a_o)", "return np.tanh(a_o)", {"test_output_gate": 0}),
    ("lstm-output-no-bias", "output_gate", " + b[cols]", "", {"test_output_gate": 0}),
    ("lstm-output-x-h-swapped", "output_gate", _SWAP_OLD, _SWAP_NEW, {"test_output_gate": 0}),
    ("lstm-output-reads-g-block", "output_gate", _BLOCK["output_gate"], _BLOCK["candidate"], {"test_output_gate": 0}),
    ("lstm-output-reads-i-block", "output_gate", _BLOCK["output_gate"], _BLOCK["input_gate"],
     {"test_output_gate": 0}),
    # one step forward
    ("lstm-no-tanh-on-cell", "lstm_step_forward", "h_t = o * np.tanh(c_t)", "h_t = o * c_t",
     {"test_lstm_step_forward": 0}),
    ("lstm-h-from-c-prev", "lstm_step_forward", "h_t = o * np.tanh(c_t)", "h_t = o * np.tanh(c_prev)",
     {"test_lstm_step_forward": 0}),
    ("lstm-i-f-swapped-in-cell", "lstm_step_forward", "c_t = f * c_prev + i * g", "c_t = i * c_prev + f * g",
     {"test_lstm_step_forward": 0}),
    # the sequence forward
    ("lstm-c-not-carried", "lstm_forward", "lstm_step_forward(x[:, t], h_t, c_t, W, U, b)",
     "lstm_step_forward(x[:, t], h_t, c0, W, U, b)",
     {"test_lstm_forward": 0}),
    ("lstm-h-not-carried", "lstm_forward", "lstm_step_forward(x[:, t], h_t, c_t, W, U, b)",
     "lstm_step_forward(x[:, t], h0, c_t, W, U, b)",
     {"test_lstm_forward": 0}),
    ("lstm-c0-ignored", "lstm_forward", "h_t, c_t = h0, c0", "h_t, c_t = h0, np.zeros_like(c0)",
     {"test_lstm_forward": 0}),
    # one step backward
    ("lstm-df-uses-c-t", "lstm_step_backward", "df = dc * c_prev", "df = dc * c_t", {"test_lstm_step_backward": 0}),
    ("lstm-dtanh-cell-not-squared", "lstm_step_backward", "dh_t * o * (1 - tanh_c ** 2)", "dh_t * o * (1 - tanh_c)",
     {"test_lstm_step_backward": 0}),
    ("lstm-dtanh-candidate-not-squared", "lstm_step_backward", "dg * (1 - g ** 2)", "dg * (1 - g)",
     {"test_lstm_step_backward": 0}),
    ("lstm-cell-gradient-missing", "lstm_step_backward", "dc = dc_t + dh_t * o * (1 - tanh_c ** 2)", "dc = dc_t",
     {"test_lstm_step_backward": 0}),
    ("lstm-dc-prev-without-forget", "lstm_step_backward", "dc_prev = dc * f", "dc_prev = dc",
     {"test_lstm_step_backward": 0}),
    # the sequence backward
    ("lstm-grads-not-accumulated", "lstm_backward", "dW, dU, db = dW + dW_t, dU + dU_t, db + db_t",
     "dW, dU, db = dW_t, dU_t, db_t", {"test_lstm_backward": 0}),
    ("lstm-dc-not-carried", "lstm_backward", "dh_next, dc_next, cache[t]", "dh_next, np.zeros_like(dc_next), cache[t]",
     {"test_lstm_backward": 0}),
    ("lstm-dh-not-carried", "lstm_backward", "dh[:, t] + dh_next", "dh[:, t]", {"test_lstm_backward": 0}),
    # reading the Keras layer
    ("keras-kernels-swapped", "get_params", "W, U, b = layer.get_weights()", "U, W, b = layer.get_weights()",
     {"test_lstm_keras_match": 0}),
    ("keras-bias-dropped", "get_params", "return W, U, b", "return W, U, np.zeros_like(b)",
     {"test_lstm_keras_match": 0}),
    ("keras-blocks-reordered", "get_params", "return W, U, b",
     "H = U.shape[0]\n    i_f_o_c = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]\n"
     "    return W[:, i_f_o_c], U[:, i_f_o_c], b[i_f_o_c]",
     {"test_lstm_keras_match": 0}),
]
