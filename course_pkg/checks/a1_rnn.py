"""Checks and common mistakes for assignment a1_rnn: the simple RNN and its gradient check.

The notebook's test cells call check(key, globals()) (a self-check; the grader scores the same checks on hidden cases);
the test of the gradient check the student runs calls check_gradient_errors(globals()).
"""

import numpy as np

from .. import gradcheck, rnn
from ..activations import sigmoid
from . import cases
from .core import CacheLayout, Mistake, Registry, Spec, function_summary, kind_of

F64 = np.dtype(np.float64)
BOTH = (np.dtype(np.float64), np.dtype(np.float32))


# ---------------------------------------------------------------- inputs

def _step_case(rng, dtype, square=False):
    B, _, D, H = cases.dims(rng, square)
    W, U, b = cases.params(rng, D, H, 1, dtype)
    inputs = {"x_t": cases.normal(rng, (B, D), dtype), "h_prev": cases.normal(rng, (B, H), dtype, 0.5),
              "W": W, "U": U, "b": b, "dh_t": cases.normal(rng, (B, H), dtype)}
    return cases.case(inputs, dtype, B=B, D=D, H=H)


def _seq_case(rng, dtype, square=False):
    B, T, D, H = cases.dims(rng, square)
    W, U, b = cases.params(rng, D, H, 1, dtype)
    inputs = {"x": cases.normal(rng, (B, T, D), dtype), "h0": cases.normal(rng, (B, H), dtype, 0.5),
              "W": W, "U": U, "b": b, "dh": cases.normal(rng, (B, T, H), dtype)}
    return cases.case(inputs, dtype, B=B, T=T, D=D, H=H)


def _fixed(make, square=False):
    """The notebook's visible example: float64, always the same numbers (the hidden cases are not these).

    The step functions' example has D == H: x and h swapped is then a wrong value the checker can name rather than
    a shape error (the hidden cases alternate D == H and D != H, so shapes are still checked there)."""
    return lambda: make(np.random.default_rng(20261123), F64, square)


# ---------------------------------------------------------------- the cache the notebook prescribes
# A step's cache is the tuple (x_t, h_prev, W, U, h_t); a sequence's is the list of its steps' caches. The forward
# checks compare the cache too, and the backward checks run on a cache the checker makes, so that a mistake in a
# forward function never costs the backward function's points, nor the other way round.

STEP_CACHE = CacheLayout("tuple", ("x_t", "h_prev", "W", "U", "h_t"))


def step_forward(x_t, h_prev, W, U, b):
    """course_pkg.rnn.rnn_step_forward, returning the notebook's cache."""
    h_t, c = rnn.rnn_step_forward(x_t, h_prev, W, U, b)
    return h_t, (c["x_t"], c["h_prev"], c["W"], c["U"], h_t)


def step_backward(dh_t, cache):
    """course_pkg.rnn.rnn_step_backward on the notebook's cache."""
    x_t, h_prev, W, U, h_t = STEP_CACHE.values(cache)
    return rnn.rnn_step_backward(dh_t, {"x_t": x_t, "h_prev": h_prev, "W": W, "U": U, "h_t": h_t})


def forward(x, h0, W, U, b):
    """course_pkg.rnn.rnn_forward, returning the list of the notebook's step caches."""
    h, c = rnn.rnn_forward(x, h0, W, U, b)
    hs = c["hs"]  # (T + 1, B, H): h0, then every state
    return h, [(c["xs"][t], hs[t], c["W"], c["U"], hs[t + 1]) for t in range(h.shape[1])]


def backward(dh, caches):
    """course_pkg.rnn.rnn_backward on the list of the notebook's step caches."""
    steps = [STEP_CACHE.values(c) for c in caches]
    xs = np.stack([s[0] for s in steps])
    hs = np.stack([steps[0][1]] + [s[4] for s in steps])
    return rnn.rnn_backward(dh, {"xs": xs, "hs": hs, "W": steps[0][2], "U": steps[0][3]})


# ---------------------------------------------------------------- runs

def _run_step_forward(get, i):
    h_t, cache = get("rnn_step_forward")(i["x_t"], i["h_prev"], i["W"], i["U"], i["b"])
    return h_t, STEP_CACHE.entries(cache)


def _run_step_backward(get, i):
    _, cache = step_forward(i["x_t"], i["h_prev"], i["W"], i["U"], i["b"])
    return tuple(get("rnn_step_backward")(i["dh_t"], cache))


def _run_forward(get, i):
    h, cache = get("rnn_forward")(i["x"], i["h0"], i["W"], i["U"], i["b"])
    return h, STEP_CACHE.sequence_entries(cache, i["x"].shape[1])


def _run_backward(get, i):
    _, cache = forward(i["x"], i["h0"], i["W"], i["U"], i["b"])
    return tuple(get("rnn_backward")(i["dh"], cache))


# numerical_gradient is checked on a small smooth two-output function, with eps = 1e-4: central differences are then
# accurate to ~1e-8 (relative), one-sided ones only to ~1e-4, so the two can be told apart.
def _probe(A, B, C):
    return np.tanh(A @ B) * C, np.sin(A).sum(axis=1) * (C ** 2).sum()


def _ng_case(rng, dtype, square=False):
    n, k, m = (int(v) for v in rng.integers(1, 5, size=3))
    inputs = {"A": cases.normal(rng, (n, k), F64), "B": cases.normal(rng, (k, m), F64),
              "C": cases.normal(rng, (n, m), F64), "dY": cases.normal(rng, (n, m), F64),
              "dZ": cases.normal(rng, (n,), F64), "name": "ABC"[int(rng.integers(0, 3))]}
    return cases.case(inputs, F64, n=n, k=k, m=m, wrt=inputs["name"])


def _run_numerical_gradient(get, i):
    inputs = {"A": i["A"], "B": i["B"], "C": i["C"]}
    before = {k: v.copy() for k, v in inputs.items()}
    grad = get("numerical_gradient")(_probe, inputs, i["name"], (i["dY"], i["dZ"]), 1e-4)
    # the inputs must come back as they were: a gradient check that leaves them perturbed corrupts the next one
    changed = max(float(np.max(np.abs(inputs[k] - before[k]))) for k in inputs)
    return grad, np.asarray(changed)


SPECS = [
    Spec("rnn_step_forward", rnn.rnn_step_forward, _step_case, _fixed(_step_case, square=True), _run_step_forward,
         ("h_t", "cache"), prescribed=step_forward),
    Spec("rnn_step_backward", rnn.rnn_step_backward, _step_case, _fixed(_step_case, square=True), _run_step_backward,
         ("dx_t", "dh_prev", "dW", "dU", "db"), prescribed=step_backward,
         note="checked on a cache made by course_pkg's rnn_step_forward, in the notebook's layout"),
    Spec("rnn_forward", rnn.rnn_forward, _seq_case, _fixed(_seq_case), _run_forward, ("h", "cache"),
         isolate=("rnn_step_forward",), prescribed=forward,
         note="rnn_step_forward inside it is course_pkg's during this check"),
    Spec("rnn_backward", rnn.rnn_backward, _seq_case, _fixed(_seq_case), _run_backward,
         ("dx", "dh0", "dW", "dU", "db"), isolate=("rnn_step_backward",), prescribed=backward,
         note="checked on a cache made by course_pkg's rnn_forward, in the notebook's layout; rnn_step_backward "
              "inside it is course_pkg's"),
    Spec("numerical_gradient", gradcheck.numerical_gradient, _ng_case, _fixed(_ng_case), _run_numerical_gradient,
         ("gradient", "largest change left in the inputs")),
]


# ---------------------------------------------------------------- mistakes (wrong versions, same signatures)
# Each keeps the notebook's cache layout: a forward mistake is recognised by its outputs and its cache, a backward
# mistake on the checker's cache.

def _step(act=np.tanh, bias=True, swap=False):
    def rnn_step_forward(x_t, h_prev, W, U, b):
        a = (x_t @ U + h_prev @ W) if swap else (x_t @ W + h_prev @ U)
        h_t = act(a + b if bias else a)
        return h_t, (x_t, h_prev, W, U, h_t)
    return rnn_step_forward


def _step_backward(dtanh, swap_weight_grads=False):
    def rnn_step_backward(dh_t, cache):
        x_t, h_prev, W, U, h_t = cache
        da = dh_t * dtanh(h_t)
        dW, dU = x_t.T @ da, h_prev.T @ da
        if swap_weight_grads:
            dW, dU = dU, dW
        return da @ W.T, da @ U.T, dW, dU, da.sum(axis=0)
    return rnn_step_backward


def _loop_forward(h0_ignored=False, shifted=False, carried=True, states_dtype=None):
    def rnn_forward(x, h0, W, U, b):
        h = np.zeros_like(h0) if h0_ignored else h0
        hs, caches = [], []
        for t in range(x.shape[1]):
            if shifted:
                hs.append(h)
            h_t, cache = step_forward(x[:, t], h if carried else h0, W, U, b)
            h = h_t
            if not shifted:
                hs.append(h)
            caches.append(cache)
        return np.stack(hs, axis=1).astype(states_dtype or x.dtype), caches
    return rnn_forward


def _loop_backward(accumulate=True, carry=True, reverse=True):
    """BPTT over the notebook's step caches; the keyword arguments switch one part off."""
    def rnn_backward(dh, caches):
        B, T, H = dh.shape
        dx = np.zeros((B, T, caches[0][0].shape[1]), dtype=dh.dtype)
        dW, dU, db = 0, 0, 0
        dh_next = np.zeros((B, H), dtype=dh.dtype)
        for t in (reversed(range(T)) if reverse else range(T)):
            dx[:, t], dh_prev, dW_t, dU_t, db_t = step_backward(dh[:, t] + dh_next, caches[t])
            dh_next = dh_prev if carry else np.zeros_like(dh_prev)
            if accumulate:
                dW, dU, db = dW + dW_t, dU + dU_t, db + db_t
            else:
                dW, dU, db = dW_t, dU_t, db_t
        return dx, dh_prev, dW, dU, db
    return rnn_backward


def _ng(kind):
    kind_of(kind, ("forward", "no-half", "not-restored", "copy"), "_ng")

    def numerical_gradient(f, inputs, name, douts, eps=1e-6):
        p = inputs[name].copy() if kind == "copy" else inputs[name]
        grad = np.zeros_like(p)

        def loss():
            out = f(**inputs)
            return sum(float(np.sum(y * d)) for y, d in zip(out, douts))

        for j in np.ndindex(p.shape):
            old = p[j]
            p[j] = old + eps
            plus = loss()
            if kind == "forward":
                p[j] = old
                grad[j] = (plus - loss()) / eps
                continue
            p[j] = old - eps
            minus = loss()
            if kind != "not-restored":
                p[j] = old
            grad[j] = (plus - minus) / (eps if kind == "no-half" else 2 * eps)
        return grad
    return numerical_gradient


MISTAKES = [
    Mistake("rnn-sigmoid-state", "rnn_step_forward", "hidden state",
            "the new state goes through a sigmoid; the simple RNN's state is tanh of the pre-activation.",
            "sigmoid squashes to (0, 1) and suits gates; a state must be able to go negative: see chapter 2.",
            {"rnn_step_forward": _step(act=sigmoid)}, BOTH),
    Mistake("rnn-missing-bias", "rnn_step_forward", "pre-activation",
            "the bias b is not added to the pre-activation.",
            "the pre-activation has three terms, one from the input, one from the previous state and the bias.",
            {"rnn_step_forward": _step(bias=False)}, BOTH),
    Mistake("rnn-x-h-swapped", "rnn_step_forward", "pre-activation",
            "x_t is multiplied by U and h_prev by W: the two weight matrices are swapped.",
            "W (D, H) maps the input, U (H, H) maps the previous state; with D != H the swap is a shape error.",
            {"rnn_step_forward": _step(swap=True)}, BOTH),
    Mistake("rnn-no-activation", "rnn_step_forward", "hidden state",
            "the state is the pre-activation itself: tanh is missing.",
            "without the nonlinearity the RNN is a linear system; apply tanh to the whole pre-activation.",
            {"rnn_step_forward": _step(act=lambda a: a)}, BOTH),
    Mistake("rnn-dtanh-not-squared", "rnn_step_backward", "tanh derivative",
            "the derivative of tanh is taken as 1 - h_t; it is 1 - h_t squared.",
            "d tanh(a)/da = 1 - tanh(a)^2, and tanh(a) is the h_t you cached.",
            {"rnn_step_backward": _step_backward(lambda h: 1 - h)}, BOTH),
    Mistake("rnn-dtanh-missing", "rnn_step_backward", "tanh derivative",
            "the upstream gradient goes to the weights without being multiplied by tanh's derivative.",
            "the chain rule passes through tanh first: multiply dh_t by d tanh(a)/da elementwise.",
            {"rnn_step_backward": _step_backward(lambda h: 1)}, BOTH),
    Mistake("rnn-weight-grads-swapped", "rnn_step_backward", "weight gradients",
            "dW and dU are swapped: dW is built from h_prev and dU from x_t.",
            "W multiplies x_t, so its gradient pairs x_t with the gradient of the pre-activation; U pairs with "
            "h_prev. Each gradient has the shape of its parameter: W (D, H), U (H, H).",
            {"rnn_step_backward": _step_backward(lambda h: 1 - h ** 2, swap_weight_grads=True)}, BOTH),
    Mistake("rnn-h0-ignored", "rnn_forward", "initial state",
            "the recurrence starts from zeros instead of h0.",
            "the first step's previous state is the h0 argument.",
            {"rnn_forward": _loop_forward(h0_ignored=True)}, BOTH),
    Mistake("rnn-states-shifted", "rnn_forward", "output",
            "h holds h_0 ... h_{T-1}: the states are shifted one step back and the last one is missing.",
            "h[:, t] is the state after reading x[:, t]; store the state each step returns.",
            {"rnn_forward": _loop_forward(shifted=True)}, BOTH),
    Mistake("rnn-state-not-carried", "rnn_forward", "recurrence",
            "every step starts from h0: the state a step returns is not passed to the next step.",
            "step t reads the state that step t - 1 returned; only the first step reads h0.",
            {"rnn_forward": _loop_forward(carried=False)}, BOTH),
    Mistake("rnn-states-float64", "rnn_forward", "output dtype",
            "float32 inputs give float64 states: the array that collects the states is created as float64.",
            "an array created without a dtype is float64; give it the dtype of the inputs, so that a float32 "
            "network stays float32.",
            {"rnn_forward": _loop_forward(states_dtype=np.float64)},
            (np.dtype(np.float32),)),
    Mistake("rnn-grads-not-accumulated", "rnn_backward", "parameter gradients",
            "dW, dU and db hold one step's gradient (the last one computed) instead of the sum over all steps.",
            "the same W, U, b are used at every step, so their gradient is the sum of every step's contribution.",
            {"rnn_backward": _loop_backward(accumulate=False)}, BOTH),
    Mistake("rnn-no-gradient-through-time", "rnn_backward", "recurrent gradient",
            "each step receives only its own dh[:, t]; the gradient from later steps (dh_prev) is dropped.",
            "h_t affects the loss directly and through h_{t+1}: add the dh_prev of step t+1 to dh[:, t].",
            {"rnn_backward": _loop_backward(carry=False)}, BOTH),
    Mistake("rnn-backward-not-reversed", "rnn_backward", "order of the steps",
            "the steps are differentiated from the first to the last, so each dh_prev is handed to the wrong step.",
            "the gradient into h_t needs the dh_prev of step t+1, so the loop must run from the last step back to "
            "the first; the dh_prev of the first step is dh0.",
            {"rnn_backward": _loop_backward(reverse=False)}, BOTH),
    Mistake("ng-one-sided", "numerical_gradient", "difference quotient",
            "a one-sided difference (f(p + eps) - f(p)) / eps: its error is of order eps, not eps^2.",
            "evaluate the loss on both sides of p and divide by the distance between the two points.",
            {"numerical_gradient": _ng("forward")}),
    Mistake("ng-missing-half", "numerical_gradient", "difference quotient",
            "the central difference is divided by eps instead of 2 eps: every entry is twice too large.",
            "p + eps and p - eps are 2 eps apart.",
            {"numerical_gradient": _ng("no-half")}),
    Mistake("ng-not-restored", "numerical_gradient", "perturbation",
            "the perturbed entry is not put back to its value: the inputs come back changed.",
            "save each entry before you perturb it and restore it before moving on.",
            {"numerical_gradient": _ng("not-restored")}),
    Mistake("ng-perturbs-copy", "numerical_gradient", "perturbation",
            "the gradient is zero everywhere: the array you perturb is a copy, and f still reads the original.",
            "f sees only what is in the inputs dict: change the entries of that very array (in place), then put "
            "them back.",
            {"numerical_gradient": _ng("copy")}),
]

REGISTRY = Registry("a1_rnn")
for _spec in SPECS:
    REGISTRY.add_spec(_spec)
for _mistake in MISTAKES:
    REGISTRY.add_mistake(_mistake)
check = REGISTRY.check


# ---------------------------------------------------------------- the gradient check the student runs

GRADIENT_CHECK_TOL = 1e-7
# the dicts the notebook's gradient check stores: name -> (the backward pass it checks, the inputs it must cover)
GRADIENT_CHECK_DICTS = {
    "step_errors": ("rnn_step_backward", ("x_t", "h_prev", "W", "U", "b")),
    "errors": ("rnn_backward", ("x", "h0", "W", "U", "b")),
}


def _dict_problems(var, value, function, inputs, tol):
    """What is wrong with one dict of relative errors (a list of sentences; empty if nothing)."""
    if value is None:
        return [f"{var} is not defined: the gradient check cell must store the relative errors of your {function} "
                f"in a dict named {var}."]
    if not isinstance(value, dict):
        return [f"{var} is a {type(value).__name__}; expected a dict with one relative error per input: "
                f"{', '.join(inputs)}."]
    problems = []
    missing = [n for n in inputs if n not in value]
    if missing:
        problems.append(f"{var} has no relative error for {', '.join(missing)}; expected one for each input of "
                        f"{function}: {', '.join(inputs)}.")
    for name in inputs:
        if name not in value:
            continue
        try:
            err = float(value[name])
        except (TypeError, ValueError):
            problems.append(f"{var}[{name!r}] is a {type(value[name]).__name__}, not a number: store the relative "
                            "error itself.")
            continue
        if not 0 <= err <= 1:  # also catches NaN
            problems.append(f"{var}[{name!r}] = {err:.3g} is not a relative error (those lie between 0 and 1).")
        elif not err < tol:
            problems.append(f"{var}[{name!r}] = {err:.2e}: above the tolerance {tol:.0e}, so your {function} and "
                            "your numerical gradient disagree on this input.")
    return problems


def _function_checks(namespace, registry=None):
    """One line per graded function: does it pass its visible check, and which known mistake matches it."""
    keys = ("rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward", "numerical_gradient")
    registry = registry or REGISTRY  # the grader's copy also searches mutants of the solution
    return function_summary(registry, namespace, {key: [registry.spec(key).visible_case()] for key in keys})


def check_gradient_errors(namespace, tol=GRADIENT_CHECK_TOL, out=None, registry=None):
    """The test of the gradient check the student runs: the dicts of GRADIENT_CHECK_DICTS in the notebook's
    namespace hold one relative error per input, each below tol. Raises AssertionError saying what is missing or too
    large, followed by what the checks of the five graded functions say (a gradient check fails when the backward
    pass, the forward pass it differentiates or the numerical gradient is wrong)."""
    problems = []
    for var, (function, inputs) in GRADIENT_CHECK_DICTS.items():
        problems += _dict_problems(var, namespace.get(var), function, inputs, tol)
    if problems:
        lines = ["Gradient check not passed:", *(f"  - {p}" for p in problems),
                 "What the checks of your functions say (on their small examples):",
                 *_function_checks(namespace, registry),
                 "If they all pass, look at the gradient check itself: the function you differentiate, the upstream "
                 "gradient you give, and which analytic gradient you compare with which input."]
        raise AssertionError("\n".join(lines))
    worst = max(((float(namespace[var][n]), f"{var}[{n!r}]") for var, (_, inputs) in GRADIENT_CHECK_DICTS.items()
                 for n in inputs))
    count = sum(len(inputs) for _, inputs in GRADIENT_CHECK_DICTS.values())
    print(f"gradient check: all {count} relative errors are below {tol:.0e} (largest {worst[0]:.1e}, {worst[1]})",
          file=out)


REGISTRY.cell_checks["gradient_check"] = check_gradient_errors
REGISTRY.gradient_cases = lambda: {
    ("rnn_step_forward", "rnn_step_backward"): [REGISTRY.spec("rnn_step_backward").visible_case()],
    ("rnn_forward", "rnn_backward"): [REGISTRY.spec("rnn_backward").visible_case()],
}
