"""Checks and common mistakes for assignment a3_gru: the GRU's gates and candidate in both reset conventions, its
step and sequence functions forward and backward, a gradient check, and its match with keras.layers.GRU.

The notebook's test cells call check(key, globals()) (a self-check; the grader scores the same checks on hidden cases);
the gradient check's cell calls check_gradient_reports(globals()).
Keras is imported only by the case makers of the two "gru_keras_match_*" checks, so importing this module stays fast.

Every case carries its convention in inputs["reset_after"]. The hidden cases of a check whose function takes
reset_after draw it at random, case by case, so that both conventions are graded; the two candidate checks and the
two Keras checks fix it instead, one check per convention.
"""

import numpy as np

from .. import gradcheck, gru
from ..activations import sigmoid
from . import cases
from .core import CacheLayout, Mistake, Registry, Spec, function_summary, kind_of, object_view

F64 = np.dtype(np.float64)
F32 = np.dtype(np.float32)
BOTH = (F64, F32)

GATES = ("update_gate", "reset_gate")
CELL_PARTS = (*GATES, "candidate")  # what gru_step_forward composes
STEP_INSIDE = ("gru_step_forward", *CELL_PARTS)  # what gru_forward calls
# Keras' order of the three blocks in W, U and each row of b
BLOCK = {"update_gate": 0, "reset_gate": 1, "candidate": 2}
LETTER = {0: "z", 1: "r", 2: "h"}
TITLE = {"update_gate": "update gate", "reset_gate": "reset gate", "candidate": "candidate"}


# ---------------------------------------------------------------- inputs

def bias_shape(H, reset_after):
    """(2, 3H) with reset_after=True (row 0 input side, row 1 recurrent side), (3H,) with reset_after=False."""
    return (2, 3 * H) if reset_after else (3 * H,)


# The hidden cases' conventions by position: with core.hidden_cases' dtypes (4 float64, 2 float32) and D == H on
# every other case, each check that takes both conventions sees each in 3 of its 6 cases, square and not, and in
# float32, whatever the course secret.
CONVENTIONS = (True, False, False, True, True, False)


def _convention(rng, reset_after, index=None):
    """The given convention; else the hidden case's by its position; else one drawn from the generator."""
    if reset_after is not None:
        return bool(reset_after)
    if index is not None:
        return CONVENTIONS[index % len(CONVENTIONS)]
    return bool(rng.integers(0, 2))


def _step_case(rng, dtype, square=False, reset_after=None, index=None):
    """One step: x_t (B, D), h_prev (B, H), W, U, b, reset_after, and the upstream gradient dh_t (B, H)."""
    ra = _convention(rng, reset_after, index)
    B, _, D, H = cases.dims(rng, square)
    W, U, b = cases.params(rng, D, H, 3, dtype, bias_shape(H, ra))
    inputs = {"x_t": cases.normal(rng, (B, D), dtype), "h_prev": cases.normal(rng, (B, H), dtype, 0.5),
              "W": W, "U": U, "b": b, "reset_after": ra, "dh_t": cases.normal(rng, (B, H), dtype)}
    return cases.case(inputs, dtype, B=B, D=D, H=H, reset_after=ra)


def _candidate_case(reset_after):
    """Inputs of candidate(): a step's, plus a reset gate r (B, H) in (0, 1), away from 0 and 1 so it matters."""
    def make(rng, dtype, square=False):
        case = _step_case(rng, dtype, square, reset_after)
        shape = case.inputs["h_prev"].shape
        case.inputs["r"] = sigmoid(cases.normal(rng, shape, dtype, 1.5))
        return case
    return make


def _seq_case(rng, dtype, square=False, reset_after=None, index=None):
    """A sequence: x (B, T, D), h0 (B, H), W, U, b, reset_after, and the upstream gradient dh (B, T, H)."""
    ra = _convention(rng, reset_after, index)
    B, T, D, H = cases.dims(rng, square)
    W, U, b = cases.params(rng, D, H, 3, dtype, bias_shape(H, ra))
    inputs = {"x": cases.normal(rng, (B, T, D), dtype), "h0": cases.normal(rng, (B, H), dtype, 0.5),
              "W": W, "U": U, "b": b, "reset_after": ra, "dh": cases.normal(rng, (B, T, H), dtype)}
    return cases.case(inputs, dtype, B=B, T=T, D=D, H=H, reset_after=ra)


def _keras_case(reset_after):
    """A keras.layers.GRU (returning every hidden state) of random sizes with random weights and non-zero biases,
    described by plain data (cases.KerasLayerSpec), and its inputs."""
    def make(rng, dtype, square=False):
        B, T, D, H = cases.dims(rng, square)
        layer = cases.keras_layer_case(rng, "GRU", D, H, 3, dtype, bias_shape(H, reset_after),
                                       reset_after=reset_after, return_sequences=True)
        inputs = {"layer": layer, "x": cases.normal(rng, (B, T, D), dtype),
                  "h0": cases.normal(rng, (B, H), dtype, 0.5), "reset_after": reset_after}
        return cases.case(inputs, dtype, B=B, T=T, D=D, H=H, reset_after=reset_after)
    return make


VISIBLE_SEED = 20261125  # the visible examples' numbers


def _fixed(make, square=False, dtype=F64, **convention):
    """The notebook's visible example: always the same numbers (the hidden cases are not these). Square (D == H)
    where swapping x_t and h_prev would otherwise be a shape error, so that the checker can name that mistake."""
    return lambda: make(np.random.default_rng(VISIBLE_SEED), dtype, square=square, **convention)


# ---------------------------------------------------------------- the cache the notebook prescribes
# A step's cache is a dict of x_t, h_prev, W, U, b, reset_after and z, r, h_tilde; a sequence's is the list of its
# steps' caches. The forward checks compare the cache too, and the backward checks run on a cache the checker makes,
# so that a mistake in a forward function never costs a backward function's points, nor the other way round.

STEP_CACHE = CacheLayout("dict", ("x_t", "h_prev", "W", "U", "b", "reset_after", "z", "r", "h_tilde"))


def step_forward(x_t, h_prev, W, U, b, reset_after=True):
    """course_pkg.gru.gru_step_forward, returning the notebook's cache."""
    h_t, c = gru.gru_step_forward(x_t, h_prev, W, U, b, reset_after)
    cache = {"x_t": c["x_t"], "h_prev": c["h_prev"], "W": c["W"], "U": c["U"], "b": np.asarray(b, h_t.dtype),
             "reset_after": bool(reset_after), "z": np.array(c["z"]), "r": np.array(c["r"]),
             "h_tilde": np.array(c["h_tilde"])}
    return h_t, cache


def step_backward(dh_t, cache):
    """course_pkg.gru.gru_step_backward on the notebook's cache."""
    x_t, h_prev, W, U, b, reset_after, *_ = STEP_CACHE.values(cache)
    return gru.gru_step_backward(dh_t, gru.gru_step_forward(x_t, h_prev, W, U, b, reset_after)[1])


def forward(x, h0, W, U, b, reset_after=True):
    """course_pkg's GRU over a sequence, step by step, returning the list of the notebook's step caches."""
    h_t, hs, caches = h0, [], []
    for t in range(x.shape[1]):
        h_t, cache = step_forward(x[:, t], h_t, W, U, b, reset_after)
        hs.append(h_t)
        caches.append(cache)
    return np.stack(hs, axis=1), caches


def backward(dh, caches):
    """Backpropagation through time over the notebook's step caches, with course_pkg's step backward."""
    B, T, H = dh.shape
    dh_next = np.zeros((B, H), dtype=dh.dtype)
    dxs, dW, dU, db = [], 0, 0, 0
    for t in reversed(range(T)):
        dx_t, dh_next, dW_t, dU_t, db_t = step_backward(dh[:, t] + dh_next, caches[t])
        dxs.append(dx_t)
        dW, dU, db = dW + dW_t, dU + dU_t, db + db_t
    return np.stack(dxs[::-1], axis=1), dh_next, dW, dU, db


# ---------------------------------------------------------------- runs

def _gate_run(name):
    def run(get, i):
        return (get(name)(i["x_t"], i["h_prev"], i["W"], i["U"], i["b"], reset_after=i["reset_after"]),)
    return run


def _run_candidate(get, i):
    return (get("candidate")(i["x_t"], i["h_prev"], i["r"], i["W"], i["U"], i["b"], reset_after=i["reset_after"]),)


def _run_step_forward(get, i):
    h_t, cache = get("gru_step_forward")(i["x_t"], i["h_prev"], i["W"], i["U"], i["b"],
                                         reset_after=i["reset_after"])
    return h_t, STEP_CACHE.entries(cache)


def _run_step_backward(get, i):
    _, cache = step_forward(i["x_t"], i["h_prev"], i["W"], i["U"], i["b"], reset_after=i["reset_after"])
    return tuple(get("gru_step_backward")(i["dh_t"], cache))


def _run_forward(get, i):
    h, cache = get("gru_forward")(i["x"], i["h0"], i["W"], i["U"], i["b"], reset_after=i["reset_after"])
    return h, STEP_CACHE.sequence_entries(cache, i["x"].shape[1])


def _run_backward(get, i):
    _, cache = forward(i["x"], i["h0"], i["W"], i["U"], i["b"], reset_after=i["reset_after"])
    return tuple(get("gru_backward")(i["dh"], cache))


def _run_keras(get, i):
    W, U, b = get("get_params")(i["layer"])
    h, _ = get("gru_forward")(i["x"], i["h0"], W, U, b, reset_after=i["reset_after"])
    return (h,)


def reference_get_params(layer):
    """course_pkg.keras_interop.get_params; on a layer's description, the weights it describes (the same arrays:
    course_pkg's layout is Keras')."""
    if isinstance(layer, cases.KerasLayerSpec):
        return tuple(layer.get_weights())
    from ..keras_interop import get_params

    return get_params(layer)


def _keras_spec(reset_after):
    key = "gru_keras_match_reset_" + ("after" if reset_after else "before")
    return Spec("get_params", reference_get_params, _keras_case(reset_after),
                _fixed(_keras_case(reset_after), square=True, dtype=F32), _run_keras, ("h",),
                key=key,
                note=f"course_pkg's gru_forward with reset_after={reset_after} on the weights your get_params reads "
                     "from a keras.layers.GRU, compared with the layer's own output (which course_pkg's matches)")


SPECS = [
    Spec("update_gate", gru.update_gate, _step_case, _fixed(_step_case, square=True, reset_after=True),
         _gate_run("update_gate"), ("z",)),
    Spec("reset_gate", gru.reset_gate, _step_case, _fixed(_step_case, square=True, reset_after=False),
         _gate_run("reset_gate"), ("r",)),
    Spec("candidate", gru.candidate, _candidate_case(True), _fixed(_candidate_case(True), square=True),
         _run_candidate, ("h_tilde",), key="candidate_reset_after", note="reset_after=True in every case"),
    Spec("candidate", gru.candidate, _candidate_case(False), _fixed(_candidate_case(False), square=True),
         _run_candidate, ("h_tilde",), key="candidate_reset_before", note="reset_after=False in every case"),
    Spec("gru_step_forward", gru.gru_step_forward, _step_case, _fixed(_step_case, square=True, reset_after=True),
         _run_step_forward, ("h_t", "cache"), isolate=CELL_PARTS, prescribed=step_forward,
         note="update_gate, reset_gate and candidate inside it are course_pkg's during this check"),
    Spec("gru_forward", gru.gru_forward, _seq_case, _fixed(_seq_case, reset_after=False), _run_forward,
         ("h", "cache"), isolate=STEP_INSIDE, prescribed=forward,
         note="gru_step_forward inside it is course_pkg's during this check"),
    Spec("gru_step_backward", gru.gru_step_backward, _step_case, _fixed(_step_case, reset_after=True),
         _run_step_backward, ("dx_t", "dh_prev", "dW", "dU", "db"), prescribed=step_backward,
         note="checked on a cache made by course_pkg's gru_step_forward, in the notebook's layout"),
    Spec("gru_backward", gru.gru_backward, _seq_case, _fixed(_seq_case, reset_after=False), _run_backward,
         ("dx", "dh0", "dW", "dU", "db"), isolate=("gru_step_backward",), prescribed=backward,
         note="checked on a cache made by course_pkg's GRU, in the notebook's layout; gru_step_backward inside it "
              "is course_pkg's"),
    _keras_spec(True),
    _keras_spec(False),
]


# ---------------------------------------------------------------- the gradient check section

GRADCHECK_REPORTS = {"report_after": True, "report_before": False}  # variable -> the reset_after it must check
GRADCHECK_INPUTS = ("x_t", "h_prev", "W", "U", "b")


# The functions the gradient check runs, as the student wrote them (no isolation there), and the conventions in which
# each check's small example is run when the gradient check fails: both where the function takes reset_after, since
# some mistakes show in one convention only (the recurrent bias row exists only with reset_after=True, r * h_prev meets
# U_h only with reset_after=False).
GRADCHECK_CHAIN = {"update_gate": (True, False), "reset_gate": (True, False), "candidate_reset_after": (True,),
                   "candidate_reset_before": (False,), "gru_step_forward": (True, False),
                   "gru_step_backward": (True, False)}


def _small_examples(key):
    """The check's small fixed example in each convention of GRADCHECK_CHAIN; square (D == H), so that x_t and
    h_prev swapped is a wrong value the checker can name, not a shape error."""
    spec = REGISTRY.spec(key)
    if key.startswith("candidate_"):  # the candidate checks fix their convention
        return [spec.visible_case()]
    return [_step_case(np.random.default_rng(VISIBLE_SEED), F64, square=True, reset_after=ra)
            for ra in GRADCHECK_CHAIN[key]]


def _function_checks(namespace, registry=None):
    """One line per function of the chain: does it pass on its small examples, and which known mistake matches."""
    # the grader's copy of the registry also searches mutants of the solution
    return function_summary(registry or REGISTRY, namespace, {key: _small_examples(key) for key in GRADCHECK_CHAIN})


def _stored_report(name, namespace):
    """(errors, tol) of the gradcheck report stored under name, or a sentence saying what is wrong with it."""
    view = object_view(namespace, name, ("errors", "tol"))
    if view is None:
        return f"{name} is not defined: run the gradient check cell above (and keep its variable names)."
    type_name, attrs = view
    if type_name != "course_pkg.gradcheck.GradcheckReport":
        return (f"{name} is a {type_name.rsplit('.', 1)[-1]}, not the report course_pkg.gradcheck.gradcheck "
                "returns.")
    errors, tol = attrs.get("errors"), attrs.get("tol")
    try:
        errors = {str(k): float(v) for k, v in errors.items()}
        tol = float(tol)
    except (AttributeError, TypeError, ValueError):
        return f"{name} is not a report that gradcheck made (its errors or tolerance are not numbers)."
    return errors, tol


def check_gradient_reports(namespace, out=None, registry=None):
    """The gradient check cell's test: report_after and report_before are course_pkg.gradcheck.gradcheck reports on
    all five inputs of gru_step_forward, at gradcheck's tolerance, and both passed. Raises AssertionError naming what
    is missing or which gradients disagree with central differences, followed by what the checks of the functions
    the gradient check runs say (a wrong gate, candidate or step forward fails it as surely as a wrong backward).
    Prints its verdict to `out` (default stdout)."""
    problems, worst = [], 0.0
    for name, reset_after in GRADCHECK_REPORTS.items():
        where = f"{name} (reset_after={reset_after})"
        stored = _stored_report(name, namespace)
        if isinstance(stored, str):
            problems.append(stored)
            continue
        errors, tol = stored
        missing = [n for n in GRADCHECK_INPUTS if n not in errors]
        if missing:
            problems.append(f"{where} checks no gradient for {', '.join(missing)}: give gradcheck the gradients of "
                            f"all of {', '.join(GRADCHECK_INPUTS)} that your gru_step_backward returns.")
            continue
        if tol > 1e-7:
            problems.append(f"{where} was run with tolerance {tol:.0e}; keep gradcheck's default, 1e-07, "
                            "which a correct float64 backward pass meets by orders of magnitude.")
            continue
        failed = [f"{n} ({e:.1e})" for n, e in errors.items() if not e <= tol]
        if failed:
            problems.append(f"{where}: the gradients of your gru_step_backward disagree with central differences "
                            f"for {', '.join(failed)} (relative errors; tolerance {tol:.0e}).")
            continue
        worst = max(worst, *errors.values())
    if problems:
        lines = ["", "gradient check:", *(f"  {p}" for p in problems),
                 "What the checks of the functions it runs say (on small examples, in both conventions):",
                 *_function_checks(namespace, registry),
                 "If they all pass, look at the gradient check itself: the function you differentiate, the upstream "
                 "gradient you give, and which analytic gradient you compare with which input; then compare each "
                 "block of your backward pass with the equations, for the convention that fails."]
        raise AssertionError("\n".join(lines))
    print(f"gradient check: both reports passed (largest relative error {worst:.1e}, tolerance 1e-07).", file=out)


# ---------------------------------------------------------------- mistakes (wrong versions, same signatures)

def _gate(name, act=sigmoid, block=None, bias="both", swap=False):
    """A gate function (update_gate or reset_gate) with one thing wrong.

    bias: "both" (right), "input-only" (b[1] ignored when reset_after=True), "none".
    """
    k = BLOCK[name] if block is None else block
    kind_of(bias, ("both", "input-only", "none"), "_gate")

    def gate(x_t, h_prev, W, U, b, reset_after=True):
        H = h_prev.shape[1]
        cols = slice(k * H, (k + 1) * H)
        a = (x_t @ U[:, cols] + h_prev @ W[:, cols]) if swap else (x_t @ W[:, cols] + h_prev @ U[:, cols])
        if bias != "none":
            if not reset_after:
                a = a + b[cols]
            else:
                a = a + b[0, cols] + (b[1, cols] if bias == "both" else 0)
        return act(a)

    gate.__name__ = name
    return gate


def _candidate(kind):
    """candidate() with one thing wrong; b_rec is the recurrent-side bias's candidate block (reset_after=True)."""
    kind_of(kind, ("reset-before", "reset-after", "rec-bias-ignored", "bias-outside", "sigmoid"), "_candidate")

    def candidate(x_t, h_prev, r, W, U, b, reset_after=True):
        H = h_prev.shape[1]
        cols = slice(2 * H, 3 * H)
        U_h = U[:, cols]
        a = x_t @ W[:, cols] + (b[0, cols] if reset_after else b[cols])
        b_rec = b[1, cols] if reset_after else 0
        if kind == "reset-before":  # reset_after=False's recurrent term, with the recurrent bias added
            a = a + (r * h_prev) @ U_h + b_rec
        elif (kind == "reset-after" and not reset_after) or (kind == "rec-bias-ignored" and reset_after):
            a = a + r * (h_prev @ U_h)
        elif kind == "bias-outside" and reset_after:
            a = a + r * (h_prev @ U_h) + b_rec
        elif reset_after:
            a = a + r * (h_prev @ U_h + b_rec)
        else:
            a = a + (r * h_prev) @ U_h
        return sigmoid(a) if kind == "sigmoid" else np.tanh(a)
    return candidate


def _step_forward(kind):
    """gru_step_forward with a wrong state update (its cache is the notebook's, and right)."""
    kind_of(kind, ("z-swapped", "reset-in-update"), "_step_forward")

    def gru_step_forward(x_t, h_prev, W, U, b, reset_after=True):
        _, cache = step_forward(x_t, h_prev, W, U, b, reset_after)
        z, r, h_tilde = cache["z"], cache["r"], cache["h_tilde"]
        keep = {"z-swapped": 1 - z, "reset-in-update": r}[kind]
        return keep * h_prev + (1 - keep) * h_tilde, cache
    return gru_step_forward


def _step_backward(kind=None):
    """gru_step_backward (wrong in one place, or right with kind=None) reading the notebook's step cache."""
    kind_of(kind, (None, "dz-sign", "no-direct-path", "dtanh-not-squared", "dr-no-rec-bias", "dUh-no-reset"),
            "_step_backward")

    def gru_step_backward(dh_t, cache):
        x_t, h_prev, W, U, b, ra = (cache[k] for k in ("x_t", "h_prev", "W", "U", "b", "reset_after"))
        z, r, h_tilde = cache["z"], cache["r"], cache["h_tilde"]
        H = h_prev.shape[1]
        U_h = U[:, 2 * H:]
        dz = dh_t * ((h_tilde - h_prev) if kind == "dz-sign" else (h_prev - h_tilde))
        dh_prev = np.zeros_like(h_prev) if kind == "no-direct-path" else dh_t * z
        dtanh = (1 - h_tilde) if kind == "dtanh-not-squared" else (1 - h_tilde ** 2)
        da_h = dh_t * (1 - z) * dtanh
        da_z = dz * z * (1 - z)
        if ra:
            q = h_prev @ U_h if kind == "dr-no-rec-bias" else h_prev @ U_h + b[1, 2 * H:]
            da_r = da_h * q * r * (1 - r)
            da_x = np.concatenate([da_z, da_r, da_h], axis=1)
            da_rec = np.concatenate([da_z, da_r, da_h * r], axis=1)
            dU = h_prev.T @ da_rec
            dh_prev = dh_prev + da_rec @ U.T
            db = np.stack([da_x.sum(axis=0), da_rec.sum(axis=0)])
        else:
            d_rh = da_h @ U_h.T
            da_r = d_rh * h_prev * r * (1 - r)
            da_x = np.concatenate([da_z, da_r, da_h], axis=1)
            seen = h_prev if kind == "dUh-no-reset" else r * h_prev
            dU = np.concatenate([h_prev.T @ da_x[:, :2 * H], seen.T @ da_h], axis=1)
            dh_prev = dh_prev + d_rh * r + da_x[:, :2 * H] @ U[:, :2 * H].T
            db = da_x.sum(axis=0)
        return da_x @ W.T, dh_prev, x_t.T @ da_x, dU, db
    return gru_step_backward


def _loop_forward(kind=None):
    """gru_forward as a loop over course_pkg's step, with the notebook's list of step caches."""
    kind_of(kind, (None, "h0-ignored", "shifted", "h-not-carried"), "_loop_forward")

    def gru_forward(x, h0, W, U, b, reset_after=True):
        h_t = np.zeros_like(h0) if kind == "h0-ignored" else h0
        hs, caches = [], []
        for t in range(x.shape[1]):
            if kind == "shifted":
                hs.append(h_t)
            h_in = h0 if kind == "h-not-carried" else h_t
            h_t, cache = step_forward(x[:, t], h_in, W, U, b, reset_after)
            if kind != "shifted":
                hs.append(h_t)
            caches.append(cache)
        return np.stack(hs, axis=1), caches
    return gru_forward


def _loop_backward(kind=None):
    """gru_backward over the notebook's step caches (wrong in one place, or right with kind=None)."""
    kind_of(kind, (None, "not-carried", "not-accumulated"), "_loop_backward")

    def gru_backward(dh, caches):
        B, T, H = dh.shape
        dh_next = np.zeros((B, H), dtype=dh.dtype)
        dxs, dW, dU, db = [], 0, 0, 0
        for t in reversed(range(T)):
            upstream = dh[:, t] if kind == "not-carried" else dh[:, t] + dh_next
            dx_t, dh_next, dW_t, dU_t, db_t = step_backward(upstream, caches[t])
            dxs.append(dx_t)
            if kind == "not-accumulated":
                dW, dU, db = dW_t, dU_t, db_t
            else:
                dW, dU, db = dW + dW_t, dU + dU_t, db + db_t
        return np.stack(dxs[::-1], axis=1), dh_next, dW, dU, db
    return gru_backward


def _get_params(kind):
    kind_of(kind, ("swapped",), "_get_params")

    def get_params(layer):
        W, U, b = layer.get_weights()
        return (U, W, b) if kind == "swapped" else (W, U, b)
    return get_params


def _gate_mistakes(name):
    """What a gate function can get wrong: tanh for sigmoid, a bias left out (all of it, or the recurrent row),
    x_t and h_prev swapped, and the other gate's block (z and r in the wrong order)."""
    k = BLOCK[name]
    title = TITLE[name]
    short = name.split("_")[0]
    other = 1 - k
    role = ("a fraction in (0, 1) of the old state to keep" if k == 0 else
            "a fraction in (0, 1) of the old state the candidate may see")
    return [
        Mistake(f"gru-{short}-gate-tanh", name, "activation",
                f"the {title} goes through tanh; a gate is a sigmoid of its pre-activation.",
                f"{LETTER[k]}_t is {role}; tanh would let it go negative and flip signs (chapter 6, 'Two gates and "
                "a candidate').",
                {name: _gate(name, act=np.tanh)}, BOTH),
        Mistake(f"gru-{short}-gate-no-bias", name, "bias",
                f"no bias is added in the {title}'s pre-activation.",
                f"the pre-activation is the input's term, the previous state's term and block {k} of the bias: of b "
                "with reset_after=False, of both rows of b with reset_after=True.",
                {name: _gate(name, bias="none")}, BOTH),
        Mistake(f"gru-{short}-gate-recurrent-bias-ignored", name, "bias",
                f"with reset_after=True only the input-side row b[0] is added in the {title}; the recurrent-side "
                "row b[1] is left out.",
                "with reset_after=True b has two rows and a gate adds its block of each; only the candidate treats "
                "the recurrent row differently (the reset gate scales it).",
                {name: _gate(name, bias="input-only")}, BOTH),
        Mistake(f"gru-{short}-gate-x-h-swapped", name, "pre-activation",
                f"x_t is multiplied by U's block and h_prev by W's block in the {title}: the weight matrices are "
                "swapped.",
                "W (D, 3H) maps the input x_t and U (H, 3H) maps the previous state h_prev; with D != H the swap "
                "would be a shape error.",
                {name: _gate(name, swap=True)}, BOTH),
        Mistake(f"gru-{short}-gate-reads-{LETTER[other]}-block", name, "gate order",
                f"the {title} reads block {other} (the {TITLE[GATES[other]]}'s columns of W and U and entries of b) "
                f"instead of block {k}.",
                f"Keras stores the blocks in the order z, r, h (PyTorch orders its gates r, z, n, which swaps the "
                f"first two); the {title} is block {k}: the same H columns of W and U and the same H entries of "
                "each bias row.",
                {name: _gate(name, block=other)}, BOTH),
    ]


MISTAKES = [
    *(m for name in GATES for m in _gate_mistakes(name)),
    Mistake("gru-reset-before-product", "candidate_reset_after", "reset",
            "with reset_after=True the reset gate is applied to h_prev before the product with U_h, which is the "
            "reset_after=False model.",
            "with reset_after=True the reset gate scales the whole recurrent term after the product: r times (h_prev "
            "U_h plus the candidate block of b[1]); chapter 6, 'Two reset conventions, two models'.",
            {"candidate": _candidate("reset-before")}, BOTH),
    Mistake("gru-recurrent-bias-outside-reset", "candidate_reset_after", "reset",
            "the candidate block of the recurrent bias b[1] is added after the reset instead of inside the term "
            "the reset gate scales.",
            "with reset_after=True the reset gate multiplies h_prev U_h + b'_h as a whole, bias included: a reset "
            "gate near 0 switches the recurrent bias off too.",
            {"candidate": _candidate("bias-outside")}, BOTH),
    Mistake("gru-candidate-recurrent-bias-ignored", "candidate_reset_after", "bias",
            "with reset_after=True the candidate block of the recurrent-side bias b[1] is left out.",
            "with reset_after=True the candidate has two bias blocks: the input row's outside the reset, the "
            "recurrent row's inside the term the reset gate scales.",
            {"candidate": _candidate("rec-bias-ignored")}, BOTH),
    Mistake("gru-reset-after-product", "candidate_reset_before", "reset",
            "with reset_after=False the reset gate is applied after the product h_prev U_h, which is the "
            "reset_after=True model.",
            "in Cho et al.'s convention (reset_after=False) the reset gate scales h_prev before it meets U_h, so "
            "each incoming unit is scaled by its own gate; chapter 6, 'Two reset conventions, two models'.",
            {"candidate": _candidate("reset-after")}, BOTH),
    Mistake("gru-z-swapped", "gru_step_forward", "state update",
            "h_t = (1 - z) h_prev + z h~: z and 1 - z are swapped.",
            "in Keras, PyTorch, cuDNN and Cho et al. (2014) an update gate near 1 keeps the old state: z scales "
            "h_prev and 1 - z the candidate. Some posts write the opposite, a relabelled gate; chapter 6, 'z or "
            "1 - z?'.",
            {"gru_step_forward": _step_forward("z-swapped")}, BOTH),
    Mistake("gru-reset-in-update", "gru_step_forward", "state update",
            "the reset gate r mixes h_prev and the candidate in the state update, where the update gate z belongs.",
            "the reset gate acts only inside the candidate; the update gate decides how much of h_prev is kept.",
            {"gru_step_forward": _step_forward("reset-in-update")}, BOTH),
    Mistake("gru-h0-ignored", "gru_forward", "initial state",
            "the recurrence starts from zeros instead of h0.",
            "the first step's previous state is the h0 argument.",
            {"gru_forward": _loop_forward("h0-ignored")}, BOTH),
    Mistake("gru-h-not-carried", "gru_forward", "hidden state",
            "every step starts from h0: the new state h_t is not passed on to the next step.",
            "each step's h_t is the next step's h_prev.",
            {"gru_forward": _loop_forward("h-not-carried")}, BOTH),
    Mistake("gru-states-shifted", "gru_forward", "output",
            "h holds h_0 ... h_{T-1}: the states are shifted one step back and the last one is missing.",
            "position t of h holds the state after reading the input of step t: store the state each step "
            "returns.",
            {"gru_forward": _loop_forward("shifted")}, BOTH),
    Mistake("gru-dtanh-not-squared", "gru_step_backward", "tanh derivative (candidate)",
            "the derivative of the candidate's tanh is taken as 1 - h~; it is 1 - h~ squared.",
            "h~ = tanh(a_h), so its derivative is 1 - tanh(a_h)^2, written with the h~ you cached.",
            {"gru_step_backward": _step_backward("dtanh-not-squared")}, BOTH),
    Mistake("gru-direct-path-missing", "gru_step_backward", "gradient to h_prev",
            "dh_prev lacks the direct path: h_prev reaches h_t not only through the gates and the candidate but "
            "also through the term z h_prev.",
            "start dh_prev with dh_t scaled elementwise by z, then add what flows back through the matrix products; "
            "chapter 6, 'The backward pass'.",
            {"gru_step_backward": _step_backward("no-direct-path")}, BOTH),
    Mistake("gru-dz-sign-flipped", "gru_step_backward", "update gate gradient",
            "the update gate's gradient has the wrong sign: it uses h~ - h_prev.",
            "from h_t = z h_prev + (1 - z) h~, the derivative of h_t with respect to z is h_prev - h~.",
            {"gru_step_backward": _step_backward("dz-sign")}, BOTH),
    Mistake("gru-dr-without-recurrent-bias", "gru_step_backward", "reset gate gradient",
            "with reset_after=True the reset gate's gradient uses h_prev U_h without the recurrent bias b'_h.",
            "with reset_after=True the reset gate scales q = h_prev U_h + b'_h, so its gradient is the candidate "
            "pre-activation's gradient times q, bias included (q comes from the cached h_prev, U and b).",
            {"gru_step_backward": _step_backward("dr-no-rec-bias")}, BOTH),
    Mistake("gru-dUh-without-reset", "gru_step_backward", "U_h gradient",
            "with reset_after=False the candidate block of dU uses h_prev, but the product saw the reset state "
            "r * h_prev.",
            "a weight's gradient pairs the input that weight multiplied with the gradient of its output; with "
            "reset_after=False U_h multiplies r * h_prev, not h_prev.",
            {"gru_step_backward": _step_backward("dUh-no-reset")}, BOTH),
    Mistake("gru-grads-not-accumulated", "gru_backward", "parameter gradients",
            "dW, dU and db hold one step's gradient (the last one computed) instead of the sum over all steps.",
            "the same W, U, b are used at every step, so their gradient is the sum of every step's contribution.",
            {"gru_backward": _loop_backward("not-accumulated")}, BOTH),
    Mistake("gru-no-gradient-through-time", "gru_backward", "recurrent gradient",
            "each step receives only the gradient of its own output; the gradient from later steps (dh_prev) is "
            "dropped.",
            "h_t affects the loss directly and through h_{t+1}: add the dh_prev of step t+1 to the gradient step t "
            "receives from its output.",
            {"gru_backward": _loop_backward("not-carried")}, BOTH),
]

# Mistakes in a function that has one check per convention, so that each of its checks recognises them; their
# `function` is the function's name (the name their message gives): (mistake, the keys of the checks).
SHARED_MISTAKES = [
    (Mistake("gru-candidate-sigmoid", "candidate", "activation",
             "the candidate goes through a sigmoid; the candidate is tanh of its pre-activation.",
             "the candidate is a proposed new state and must be able to go negative, so it needs values in (-1, 1); "
             "only the two gates use the sigmoid.",
             {"candidate": _candidate("sigmoid")}, BOTH),
     ("candidate_reset_after", "candidate_reset_before")),
    (Mistake("gru-keras-kernels-swapped", "get_params", "kernels",
             "W and U are swapped: W got the recurrent kernel and U the kernel.",
             "Keras lists a GRU's weights as kernel (D, 3H), recurrent kernel (H, 3H), bias; the kernel maps the "
             "input, so it is W.",
             {"get_params": _get_params("swapped")}, BOTH),
     ("gru_keras_match_reset_after", "gru_keras_match_reset_before")),
]


class GruRegistry(Registry):
    """core's Registry, plus mistakes that several checks recognise (SHARED_MISTAKES), each listed once."""

    def add_shared_mistake(self, mistake, keys):
        for key in keys:
            if self.spec(key).name != mistake.function:
                raise ValueError(f"mistake {mistake.id}: the check {key} is not one of {mistake.function}")
        if mistake.id in {m.id for m in self.all_mistakes()}:
            raise ValueError(f"duplicate mistake id {mistake.id}")
        for key in keys:
            self.mistakes[key].append(mistake)

    def all_mistakes(self):
        return list({m.id: m for m in super().all_mistakes()}.values())

    def checks_of(self, mistake):
        """The keys of the checks that recognise the mistake (its `function` alone for the unshared ones)."""
        return [key for key, ms in self.mistakes.items() if any(m is mistake for m in ms)]


REGISTRY = GruRegistry("a3_gru")
for _spec in SPECS:
    REGISTRY.add_spec(_spec)
for _mistake in MISTAKES:
    REGISTRY.add_mistake(_mistake)
for _mistake, _keys in SHARED_MISTAKES:
    REGISTRY.add_shared_mistake(_mistake, _keys)
REGISTRY.cell_checks["gradient_check"] = check_gradient_reports
REGISTRY.gradient_cases = lambda: {("gru_step_forward", "gru_step_backward"): _small_examples("gru_step_backward")}
check = REGISTRY.check
