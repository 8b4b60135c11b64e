"""Checks and common mistakes for assignment a2_lstm: the LSTM's gates, its step and sequence functions forward and
backward, and its match with keras.layers.LSTM.

The notebook's test cells call check(key, globals()) (a self-check; the grader scores the same checks on hidden cases).
Keras is imported only by the case maker of the "lstm_keras_match" check, so importing this module stays fast.
"""

import numpy as np

from .. import lstm
from ..activations import sigmoid
from . import cases
from .core import CacheLayout, Mistake, Registry, Spec, kind_of

F64 = np.dtype(np.float64)
F32 = np.dtype(np.float32)
BOTH = (F64, F32)

GATES = ("input_gate", "forget_gate", "candidate", "output_gate")
# Keras' order of the four blocks in W, U and b; the letter is the book's name of the gate (Keras says c for g)
BLOCK = {"input_gate": 0, "forget_gate": 1, "candidate": 2, "output_gate": 3}
LETTER = {0: "i", 1: "f", 2: "g", 3: "o"}
WHO = {0: "the input gate's", 1: "the forget gate's", 2: "the candidate's", 3: "the output gate's"}
ORDINAL = {0: "first", 1: "second", 2: "third", 3: "fourth"}


# ---------------------------------------------------------------- inputs

def _step_case(rng, dtype, square=False):
    """One step: x_t (B, D), h_prev and c_prev (B, H), W, U, b, and upstream gradients dh_t, dc_t (B, H)."""
    B, _, D, H = cases.dims(rng, square)
    W, U, b = cases.params(rng, D, H, 4, dtype)
    inputs = {"x_t": cases.normal(rng, (B, D), dtype), "h_prev": cases.normal(rng, (B, H), dtype, 0.5),
              "c_prev": cases.normal(rng, (B, H), dtype), "W": W, "U": U, "b": b,
              "dh_t": cases.normal(rng, (B, H), dtype), "dc_t": cases.normal(rng, (B, H), dtype)}
    return cases.case(inputs, dtype, B=B, D=D, H=H)


def _seq_case(rng, dtype, square=False):
    B, T, D, H = cases.dims(rng, square)
    W, U, b = cases.params(rng, D, H, 4, dtype)
    inputs = {"x": cases.normal(rng, (B, T, D), dtype), "h0": cases.normal(rng, (B, H), dtype, 0.5),
              "c0": cases.normal(rng, (B, H), dtype), "W": W, "U": U, "b": b,
              "dh": cases.normal(rng, (B, T, H), dtype)}
    return cases.case(inputs, dtype, B=B, T=T, D=D, H=H)


def _keras_case(rng, dtype, square=False):
    """A keras.layers.LSTM (returning every h and the final h and c) of random sizes with random weights and a bias
    that is not zero, described by plain data (cases.KerasLayerSpec), and its inputs."""
    B, T, D, H = cases.dims(rng, square)
    layer = cases.keras_layer_case(rng, "LSTM", D, H, 4, dtype, return_sequences=True, return_state=True)
    inputs = {"layer": layer, "x": cases.normal(rng, (B, T, D), dtype), "h0": cases.normal(rng, (B, H), dtype, 0.5),
              "c0": cases.normal(rng, (B, H), dtype)}
    return cases.case(inputs, dtype, B=B, T=T, D=D, H=H)


# a seed whose examples have B = 3, T = 6, H = 4 (D = 4 square, D = 6 not): a batch and a sequence, still printable
VISIBLE_SEED = 20261145


def _fixed(make, square=False, dtype=F64):
    """The notebook's visible example: always the same numbers (the hidden cases are not these). Square (D == H)
    where swapping x_t and h_prev would otherwise be a shape error, so that the checker can name that mistake."""
    return lambda: make(np.random.default_rng(VISIBLE_SEED), dtype, square=square)


# ---------------------------------------------------------------- the cache the notebook prescribes
# A step's cache is a dict of x_t, h_prev, c_prev, W, U, the gates i, f, g, o and c_t; a sequence's is the list of
# its steps' caches. The forward checks compare the cache too, and the backward checks run on a cache the checker
# makes, so that a mistake in a forward function never costs a backward function's points, nor the other way round.

STEP_CACHE = CacheLayout("dict", ("x_t", "h_prev", "c_prev", "W", "U", "i", "f", "g", "o", "c_t"))


def step_forward(x_t, h_prev, c_prev, W, U, b):
    """course_pkg.lstm.lstm_step_forward, returning the notebook's cache."""
    h_t, c_t, c = lstm.lstm_step_forward(x_t, h_prev, c_prev, W, U, b)
    return h_t, c_t, {k: np.array(c[k]) for k in STEP_CACHE.names}


def _course_step_cache(cache):
    x_t, h_prev, c_prev, W, U, i, f, g, o, c_t = STEP_CACHE.values(cache)
    return {"x_t": x_t, "h_prev": h_prev, "c_prev": c_prev, "W": W, "U": U, "c_t": c_t, "tanh_c": np.tanh(c_t),
            "gates": np.concatenate([i, f, g, o], axis=1)}


def step_backward(dh_t, dc_t, cache):
    """course_pkg.lstm.lstm_step_backward on the notebook's cache."""
    return lstm.lstm_step_backward(dh_t, dc_t, _course_step_cache(cache))


def forward(x, h0, c0, W, U, b):
    """course_pkg.lstm.lstm_forward, returning the list of the notebook's step caches."""
    h, c, cc = lstm.lstm_forward(x, h0, c0, W, U, b)
    hs, cs, A = cc["hs"], cc["cs"], cc["gates"]
    steps = []
    for t in range(h.shape[1]):
        i, f, g, o = (np.array(a) for a in np.split(A[t], 4, axis=1))
        steps.append({"x_t": np.array(cc["xs"][t]), "h_prev": np.array(hs[t]), "c_prev": np.array(cs[t]),
                      "W": cc["W"], "U": cc["U"], "i": i, "f": f, "g": g, "o": o, "c_t": np.array(cs[t + 1])})
    return h, c, steps


def backward(dh, caches):
    """course_pkg.lstm.lstm_backward on the list of the notebook's step caches."""
    steps = [_course_step_cache(c) for c in caches]
    hs = np.stack([s["h_prev"] for s in steps] + [np.zeros_like(steps[-1]["h_prev"])])  # the last is never read
    cs = np.stack([s["c_prev"] for s in steps] + [steps[-1]["c_t"]])
    cache = {"xs": np.stack([s["x_t"] for s in steps]), "hs": hs, "cs": cs, "W": steps[0]["W"],
             "U": steps[0]["U"], "gates": np.stack([s["gates"] for s in steps]),
             "tanh_cs": np.stack([s["tanh_c"] for s in steps])}
    return lstm.lstm_backward(dh, cache)


# ---------------------------------------------------------------- runs

def _gate_run(name):
    def run(get, i):
        return (get(name)(i["x_t"], i["h_prev"], i["W"], i["U"], i["b"]),)
    return run


def _run_step_forward(get, i):
    h_t, c_t, cache = get("lstm_step_forward")(i["x_t"], i["h_prev"], i["c_prev"], i["W"], i["U"], i["b"])
    return h_t, c_t, STEP_CACHE.entries(cache)


def _run_step_backward(get, i):
    _, _, cache = step_forward(i["x_t"], i["h_prev"], i["c_prev"], i["W"], i["U"], i["b"])
    return tuple(get("lstm_step_backward")(i["dh_t"], i["dc_t"], cache))


def _run_forward(get, i):
    h, c, cache = get("lstm_forward")(i["x"], i["h0"], i["c0"], i["W"], i["U"], i["b"])
    return h, c, STEP_CACHE.sequence_entries(cache, i["x"].shape[1])


def _run_backward(get, i):
    _, _, cache = forward(i["x"], i["h0"], i["c0"], i["W"], i["U"], i["b"])
    return tuple(get("lstm_backward")(i["dh"], cache))


def _run_keras(get, i):
    W, U, b = get("get_params")(i["layer"])
    h, c, _ = get("lstm_forward")(i["x"], i["h0"], i["c0"], W, U, b)
    return h, c


def reference_get_params(layer):
    """course_pkg.keras_interop.get_params; on a layer's description, the weights it describes (the same arrays:
    course_pkg's layout is Keras')."""
    if isinstance(layer, cases.KerasLayerSpec):
        return tuple(layer.get_weights())
    from ..keras_interop import get_params

    return get_params(layer)


_STEP_INSIDE = ("lstm_step_forward", *GATES)

SPECS = [
    *(Spec(name, getattr(lstm, name), _step_case, _fixed(_step_case, square=True), _gate_run(name), (name,))
      for name in GATES),
    Spec("lstm_step_forward", lstm.lstm_step_forward, _step_case, _fixed(_step_case, square=True),
         _run_step_forward, ("h_t", "c_t", "cache"), isolate=GATES, prescribed=step_forward,
         note="the four gate functions inside it are course_pkg's during this check"),
    Spec("lstm_forward", lstm.lstm_forward, _seq_case, _fixed(_seq_case), _run_forward, ("h", "c", "cache"),
         isolate=_STEP_INSIDE, prescribed=forward,
         note="lstm_step_forward inside it is course_pkg's during this check"),
    Spec("lstm_step_backward", lstm.lstm_step_backward, _step_case, _fixed(_step_case), _run_step_backward,
         ("dx_t", "dh_prev", "dc_prev", "dW", "dU", "db"), prescribed=step_backward,
         note="checked on a cache made by course_pkg's lstm_step_forward, in the notebook's layout"),
    Spec("lstm_backward", lstm.lstm_backward, _seq_case, _fixed(_seq_case), _run_backward,
         ("dx", "dh0", "dc0", "dW", "dU", "db"), isolate=("lstm_step_backward",), prescribed=backward,
         note="checked on a cache made by course_pkg's lstm_forward, in the notebook's layout; lstm_step_backward "
              "inside it is course_pkg's"),
    # the Keras example is float32, Keras' default; square so that a W and U swapped in get_params can be named
    Spec("get_params", reference_get_params, _keras_case, _fixed(_keras_case, square=True, dtype=F32), _run_keras,
         ("h", "c"), key="lstm_keras_match",
         note="course_pkg's lstm_forward, on the weights your get_params reads from a keras.layers.LSTM, compared "
              "with the layer's own output (which course_pkg's matches)"),
]


# ---------------------------------------------------------------- mistakes (wrong versions, same signatures)
# Each keeps the notebook's cache layout: a forward mistake is recognised by its outputs and its cache, a backward
# mistake on the checker's cache.

def _gate(name, act=None, block=None, bias=True, swap=False):
    """A gate function of the given name with one thing wrong."""
    k = BLOCK[name] if block is None else block
    act = act or (np.tanh if name == "candidate" else sigmoid)

    def gate(x_t, h_prev, W, U, b):
        H = h_prev.shape[1]
        cols = slice(k * H, (k + 1) * H)
        a = (x_t @ U[:, cols] + h_prev @ W[:, cols]) if swap else (x_t @ W[:, cols] + h_prev @ U[:, cols])
        return act(a + b[cols] if bias else a)

    gate.__name__ = name
    return gate


def _step_forward(kind):
    """A wrong lstm_step_forward, with the notebook's cache."""
    kind_of(kind, ("i-f-swapped", "no-tanh", "h-from-c-prev"), "_step_forward")

    def lstm_step_forward(x_t, h_prev, c_prev, W, U, b):
        i, f, g, o = (getattr(lstm, n)(x_t, h_prev, W, U, b) for n in GATES)
        c_t = i * c_prev + f * g if kind == "i-f-swapped" else f * c_prev + i * g
        if kind == "no-tanh":
            h_t = o * c_t
        elif kind == "h-from-c-prev":
            h_t = o * np.tanh(c_prev)
        else:
            h_t = o * np.tanh(c_t)
        cache = {"x_t": x_t, "h_prev": h_prev, "c_prev": c_prev, "W": W, "U": U, "i": i, "f": f, "g": g, "o": o,
                 "c_t": c_t}
        return h_t, c_t, cache
    return lstm_step_forward


def _step_backward(kind=None):
    """lstm_step_backward with one thing wrong (kind None: the correct one), reading the step cache's gates i, f, g,
    o and c_prev, c_t, x_t, h_prev, W, U (the notebook's cache)."""
    kind_of(kind, (None, "dtanh-cell", "no-h-path", "df-c-t", "dtanh-candidate", "no-f-in-dc-prev"), "_step_backward")

    def lstm_step_backward(dh_t, dc_t, cache):
        i, f, g, o, c_prev, c_t = (cache[k] for k in ("i", "f", "g", "o", "c_prev", "c_t"))
        tanh_c = np.tanh(c_t)
        dtanh_c = 1 - tanh_c if kind == "dtanh-cell" else 1 - tanh_c ** 2
        dc = dc_t if kind == "no-h-path" else dc_t + dh_t * o * dtanh_c
        df = dc * (c_t if kind == "df-c-t" else c_prev)
        dtanh_g = 1 - g if kind == "dtanh-candidate" else 1 - g ** 2
        da = np.concatenate([dc * g * i * (1 - i), df * f * (1 - f), dc * i * dtanh_g,
                             dh_t * tanh_c * o * (1 - o)], axis=1)
        dc_prev = dc if kind == "no-f-in-dc-prev" else dc * f
        return (da @ cache["W"].T, da @ cache["U"].T, dc_prev, cache["x_t"].T @ da, cache["h_prev"].T @ da,
                da.sum(axis=0))
    return lstm_step_backward


def _loop_forward(kind=None):
    """lstm_forward as a loop over course_pkg's step, with the notebook's list of step caches."""
    kind_of(kind, (None, "c0-ignored", "h-not-carried", "c-not-carried"), "_loop_forward")

    def lstm_forward(x, h0, c0, W, U, b):
        h_t, c_t = h0, (np.zeros_like(c0) if kind == "c0-ignored" else c0)
        hs, cs, caches = [], [], []
        for t in range(x.shape[1]):
            h_in = h0 if kind == "h-not-carried" else h_t
            c_in = c0 if kind == "c-not-carried" else c_t
            h_t, c_t, cache = step_forward(x[:, t], h_in, c_in, W, U, b)
            hs.append(h_t)
            cs.append(c_t)
            caches.append(cache)
        return np.stack(hs, axis=1), np.stack(cs, axis=1), caches
    return lstm_forward


def _loop_backward(kind=None):
    kind_of(kind, (None, "dh-not-carried", "dc-not-carried", "not-accumulated"), "_loop_backward")

    def lstm_backward(dh, caches):
        B, T, H = dh.shape
        dh_next = np.zeros((B, H), dtype=dh.dtype)
        dc_next = np.zeros((B, H), dtype=dh.dtype)
        dxs, dW, dU, db = [], 0, 0, 0
        for t in reversed(range(T)):
            dx_t, dh_prev, dc_prev, dW_t, dU_t, db_t = step_backward(dh[:, t] + dh_next, dc_next, caches[t])
            dxs.append(dx_t)
            dh_next = np.zeros_like(dh_prev) if kind == "dh-not-carried" else dh_prev
            dc_next = np.zeros_like(dc_prev) if kind == "dc-not-carried" else dc_prev
            if kind == "not-accumulated":
                dW, dU, db = dW_t, dU_t, db_t
            else:
                dW, dU, db = dW + dW_t, dU + dU_t, db + db_t
        return np.stack(dxs[::-1], axis=1), dh_prev, dc_prev, dW, dU, db
    return lstm_backward


def _get_params(kind):
    kind_of(kind, ("swapped", "no-bias", "reorder"), "_get_params")

    def get_params(layer):
        W, U, b = layer.get_weights()
        if kind == "swapped":
            return U, W, b
        if kind == "no-bias":
            return W, U, np.zeros_like(b)
        H = U.shape[0]
        g_o_swapped = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]
        return W[:, g_o_swapped], U[:, g_o_swapped], b[g_o_swapped]
    return get_params


def _gate_title(name):
    return "candidate" if name == "candidate" else name.replace("_", " ")


def _gate_mistakes(name):
    """The mistakes one gate function can make: wrong squashing function, missing bias, x_t and h_prev swapped, and
    the blocks a wrong gate order would make it read."""
    k = BLOCK[name]
    title = _gate_title(name)
    short = name.split("_")[0]
    found = []
    if name == "candidate":
        found.append(Mistake(
            "lstm-candidate-sigmoid", name, "activation",
            "the candidate goes through a sigmoid; the candidate is tanh of its pre-activation.",
            "the candidate is the content written into the cell and must be able to push it down as well as up, so "
            "it needs values in (-1, 1); only the three gates use the sigmoid (chapter 5, 'The gates, one at a "
            "time').",
            {name: _gate(name, act=sigmoid)}, BOTH))
    else:
        found.append(Mistake(
            f"lstm-{short}-gate-tanh", name, "activation",
            f"the {title} goes through tanh; a gate is a sigmoid of its pre-activation.",
            "a gate is a fraction between 0 and 1 of what it multiplies; tanh would let it go negative and flip "
            "signs (chapter 5, 'The gates, one at a time').",
            {name: _gate(name, act=np.tanh)}, BOTH))
    found.append(Mistake(
        f"lstm-{short}-no-bias", name, "pre-activation",
        f"the bias is not added in the {title}'s pre-activation.",
        f"the pre-activation has three terms: the input's, the previous state's, and this block's part of b "
        f"(the {ORDINAL[k]} block of b, like those of W and U).",
        {name: _gate(name, bias=False)}, BOTH))
    found.append(Mistake(
        f"lstm-{short}-x-h-swapped", name, "pre-activation",
        f"x_t is multiplied by U's block and h_prev by W's block in the {title}: the weight matrices are swapped.",
        "W (D, 4H) maps the input x_t and U (H, 4H) maps the previous state h_prev; with D != H the swap would be a "
        "shape error.",
        {name: _gate(name, swap=True)}, BOTH))
    # the orders people confuse with Keras' i, f, g, o: f, i, g, o and i, f, o, g; and every gate reading block 0
    wrong_blocks = {0: [1], 1: [0], 2: [3, 0], 3: [2, 0]}[k]
    for j in wrong_blocks:
        found.append(Mistake(
            f"lstm-{short}-reads-{LETTER[j]}-block", name, "gate order",
            f"the {title} reads block {j} ({WHO[j]} columns of W and U and entries of b) instead of block {k}.",
            f"Keras stores the four blocks side by side in the order i, f, g, o (it calls g 'c'); the {title}'s is "
            f"the {ORDINAL[k]}, block {k}, H columns wide: take the same block from W, U and b.",
            {name: _gate(name, block=j)}, BOTH))
    return found


MISTAKES = [
    *(m for name in GATES for m in _gate_mistakes(name)),
    Mistake("lstm-no-tanh-on-cell", "lstm_step_forward", "hidden state",
            "h_t is the output gate times the cell itself: the tanh on the cell is missing.",
            "the cell can grow beyond 1 in size; h_t shows the squashed cell, scaled by the output gate.",
            {"lstm_step_forward": _step_forward("no-tanh")}, BOTH),
    Mistake("lstm-h-from-c-prev", "lstm_step_forward", "hidden state",
            "h_t is computed from the previous cell c_{t-1} instead of the new cell c_t.",
            "update the cell first; the output gate then reads out the cell of this step.",
            {"lstm_step_forward": _step_forward("h-from-c-prev")}, BOTH),
    Mistake("lstm-i-f-swapped-in-cell", "lstm_step_forward", "cell update",
            "the input and forget gates play each other's roles in the cell update: the input gate scales the old "
            "cell and the forget gate the candidate.",
            "the forget gate decides how much of c_{t-1} is kept; the input gate how much of the candidate is "
            "written.",
            {"lstm_step_forward": _step_forward("i-f-swapped")}, BOTH),
    Mistake("lstm-c-not-carried", "lstm_forward", "cell state",
            "every step starts from the cell c0: the new cell c_t is not passed on to the next step.",
            "the cell is the LSTM's memory across steps: each step's c_t is the next step's c_prev, like h.",
            {"lstm_forward": _loop_forward("c-not-carried")}, BOTH),
    Mistake("lstm-h-not-carried", "lstm_forward", "hidden state",
            "every step starts from h0: the new state h_t is not passed on to the next step.",
            "each step's h_t is the next step's h_prev.",
            {"lstm_forward": _loop_forward("h-not-carried")}, BOTH),
    Mistake("lstm-c0-ignored", "lstm_forward", "initial cell",
            "the cell starts from zeros instead of c0.",
            "the first step's previous cell is the c0 argument.",
            {"lstm_forward": _loop_forward("c0-ignored")}, BOTH),
    Mistake("lstm-df-uses-c-t", "lstm_step_backward", "forget gate gradient",
            "the forget gate's gradient is computed with the new cell c_t; it needs the previous cell c_{t-1}.",
            "the forget gate multiplies c_{t-1} in the cell update, so dL/df_t is dL/dc_t times c_{t-1}: keep "
            "c_prev in the cache.",
            {"lstm_step_backward": _step_backward("df-c-t")}, BOTH),
    Mistake("lstm-dtanh-cell-not-squared", "lstm_step_backward", "tanh derivative (cell)",
            "the derivative of tanh(c_t) is taken as 1 - tanh(c_t); it is 1 - tanh(c_t) squared.",
            "d tanh(c)/dc = 1 - tanh(c)^2; compute tanh(c_t) once and square it.",
            {"lstm_step_backward": _step_backward("dtanh-cell")}, BOTH),
    Mistake("lstm-dtanh-candidate-not-squared", "lstm_step_backward", "tanh derivative (candidate)",
            "the derivative of the candidate's tanh is taken as 1 - g_t; it is 1 - g_t squared.",
            "g_t = tanh(a_g), so dg_t/da_g = 1 - g_t^2, written with the g_t you cached.",
            {"lstm_step_backward": _step_backward("dtanh-candidate")}, BOTH),
    Mistake("lstm-cell-gradient-missing", "lstm_step_backward", "cell gradient",
            "the cell's gradient is only dc_t: the part that reaches c_t through h_t is missing.",
            "c_t reaches the loss by two routes, directly (dc_t) and through h_t = o_t tanh(c_t); add the "
            "second route before using the cell's gradient.",
            {"lstm_step_backward": _step_backward("no-h-path")}, BOTH),
    Mistake("lstm-dc-prev-without-forget", "lstm_step_backward", "cell gradient",
            "dc_prev is the cell's gradient unchanged; on its way back it must be multiplied by the forget gate.",
            "c_t depends on c_{t-1} through the forget gate only, element by element.",
            {"lstm_step_backward": _step_backward("no-f-in-dc-prev")}, BOTH),
    Mistake("lstm-grads-not-accumulated", "lstm_backward", "parameter gradients",
            "dW, dU and db hold one step's gradient (the last one computed) instead of the sum over all steps.",
            "the same W, U, b are used at every step, so their gradient is the sum of every step's contribution.",
            {"lstm_backward": _loop_backward("not-accumulated")}, BOTH),
    Mistake("lstm-dc-not-carried", "lstm_backward", "cell gradient through time",
            "each step receives a zero gradient for its cell: the dc_prev of the later step is dropped.",
            "c_t affects the loss through c_{t+1}: pass each step's dc_prev as the dc_t of the step before.",
            {"lstm_backward": _loop_backward("dc-not-carried")}, BOTH),
    Mistake("lstm-dh-not-carried", "lstm_backward", "hidden-state gradient through time",
            "each step receives only the gradient of its own output; the gradient from later steps (dh_prev) is "
            "dropped.",
            "h_t affects the loss directly and through step t+1: add the later step's dh_prev to the output's "
            "gradient at step t.",
            {"lstm_backward": _loop_backward("dh-not-carried")}, BOTH),
    Mistake("keras-kernels-swapped", "lstm_keras_match", "get_params",
            "W and U are swapped: W got the recurrent kernel and U the kernel.",
            "Keras lists an LSTM's weights as kernel (D, 4H), recurrent kernel (H, 4H), bias (4H,); the kernel "
            "maps the input, so it is W.",
            {"get_params": _get_params("swapped")}, BOTH),
    Mistake("keras-bias-dropped", "lstm_keras_match", "get_params",
            "the bias is zero: the layer's own bias is not returned.",
            "the layer's third weight is its bias, and these layers have a non-zero one.",
            {"get_params": _get_params("no-bias")}, BOTH),
    Mistake("keras-blocks-reordered", "lstm_keras_match", "get_params",
            "the candidate and output blocks are exchanged: Keras' layout was reordered.",
            "Keras' kernel, recurrent kernel and bias already use the order i, f, c, o, with c the candidate g, "
            "which is the order of your functions: no reshuffling is needed.",
            {"get_params": _get_params("reorder")}, BOTH),
]

REGISTRY = Registry("a2_lstm")
for _spec in SPECS:
    REGISTRY.add_spec(_spec)
for _mistake in MISTAKES:
    REGISTRY.add_mistake(_mistake)
check = REGISTRY.check
