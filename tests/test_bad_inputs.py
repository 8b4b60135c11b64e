"""Wrong inputs give an exception that says what to fix; large inputs give no warning and no NaN.

Shape errors are ValueErrors, dtype errors TypeErrors; each message names the function, the argument, the expected
shape (or dtype) and what was received. Sizes are chosen all different (B=2, T=3, D=4, H=5) so that a message quoting
the wrong number cannot pass by accident.
"""

import re
import warnings

import numpy as np
import pytest

from course_pkg import gru, lstm, rnn

B, T, D, H = 2, 3, 4, 5
CELLS = ["rnn", "lstm", "gru_after", "gru_before"]
GATES = {"rnn": 1, "lstm": 4, "gru_after": 3, "gru_before": 3}
GATE_SYMBOL = {1: "H", 3: "3H", 4: "4H"}


def b_shape(cell, H=H):
    G = GATES[cell] * H
    return (2, G) if cell == "gru_after" else (G,)


def b_meaning(cell):
    G = GATES[cell]
    if cell == "gru_after":
        return "(2, 3H) with H=5 (reset_after=True)"
    if cell == "gru_before":
        return "(3H,) with H=5 (reset_after=False)"
    return f"({GATE_SYMBOL[G]},) with H=5"


def params(cell, rng, dtype=np.float64):
    G = GATES[cell] * H
    return {
        "W": rng.standard_normal((D, G)).astype(dtype),
        "U": rng.standard_normal((H, G)).astype(dtype),
        "b": rng.standard_normal(b_shape(cell)).astype(dtype),
    }


def seq_args(cell, rng, dtype=np.float64):
    args = {"x": rng.standard_normal((B, T, D)).astype(dtype), "h0": rng.uniform(-1, 1, (B, H)).astype(dtype)}
    if cell == "lstm":
        args["c0"] = rng.standard_normal((B, H)).astype(dtype)
    args.update(params(cell, rng, dtype))
    return args


def step_args(cell, rng, dtype=np.float64):
    args = {"x_t": rng.standard_normal((B, D)).astype(dtype), "h_prev": rng.uniform(-1, 1, (B, H)).astype(dtype)}
    if cell == "lstm":
        args["c_prev"] = rng.standard_normal((B, H)).astype(dtype)
    args.update(params(cell, rng, dtype))
    return args


def forward_fn(cell, kind):
    """(name as it appears in messages, callable taking the keyword arguments)"""
    base = {"rnn": "rnn", "lstm": "lstm"}.get(cell, "gru")
    name = f"{base}_step_forward" if kind == "step" else f"{base}_forward"
    fn = getattr({"rnn": rnn, "lstm": lstm, "gru": gru}[base], name)
    if base == "gru":
        ra = cell == "gru_after"
        return name, lambda **kw: fn(**kw, reset_after=ra)
    return name, fn


def args_for(cell, kind, rng, dtype=np.float64):
    return seq_args(cell, rng, dtype) if kind == "seq" else step_args(cell, rng, dtype)


def message_pattern(*fragments):
    """The fragments, escaped, in this order, anything between."""
    return ".*".join(re.escape(f) for f in fragments)


# --------------------------------------------------------------------------------------------------------------------
# Shape errors in the forward functions
# --------------------------------------------------------------------------------------------------------------------


def shape_cases():
    """(cell, kind, argument, bad shape, message fragments after "argument '<name>' must")"""
    cases = []
    for cell in CELLS:
        G = GATES[cell]
        g = GATE_SYMBOL[G]
        for kind in ("seq", "step"):
            xn, hn, cn = ("x", "h0", "c0") if kind == "seq" else ("x_t", "h_prev", "c_prev")
            src = "x" if kind == "seq" else "x_t"
            x_mean = "(B, T, D)" if kind == "seq" else "(B, D)"
            x_rank = 3 if kind == "seq" else 2
            state_names = [hn, cn] if cell == "lstm" else [hn]
            # wrong rank of the input
            for bad in ((B, T) if kind == "seq" else (D,), (B, T, D, 1) if kind == "seq" else (B, 1, D)):
                cases.append((cell, kind, xn, bad, [f"{x_rank}-dimensional", x_mean, f"got {len(bad)}", str(bad)]))
            for s in state_names:
                # wrong rank of a state
                for bad in ((H,), (B, 1, H)):
                    cases.append((cell, kind, s, bad, ["2-dimensional", "(B, H)", f"got {len(bad)}", str(bad)]))
                # batch size that does not match x
                cases.append(
                    (cell, kind, s, (B + 1, H), [f"(B, H) with B={B} from {src}", f"({B}, {H})", f"got ({B + 1}, {H})"])
                )
            if cell == "lstm":  # c with another H than h
                cases.append((cell, kind, cn, (B, H + 1), [f"({B}, {H})", f"got ({B}, {H + 1})"]))
            # parameters: wrong D, wrong rank, wrong number of gates
            W_exp = [f"(D, {g}) with D={D}, H={H}", str((D, G * H))]
            U_exp = [f"(H, {g}) with H={H}", str((H, G * H))]
            b_exp = [b_meaning(cell), str(b_shape(cell))]
            cases.append((cell, kind, "W", (D + 1, G * H), W_exp + [f"got {(D + 1, G * H)}"]))
            cases.append((cell, kind, "W", (D * G * H,), W_exp + [f"got {(D * G * H,)}"]))
            cases.append((cell, kind, "U", (H + 1, G * H), U_exp + [f"got {(H + 1, G * H)}"]))
            cases.append((cell, kind, "U", (H, G * H, 1), U_exp + [f"got {(H, G * H, 1)}"]))
            cases.append((cell, kind, "U", (H, G * H + 1), U_exp + [f"got {(H, G * H + 1)}"]))
            for other in sorted({1, 3, 4} - {G}):  # parameters shaped for another cell
                cases.append((cell, kind, "W", (D, other * H), W_exp + [f"got {(D, other * H)}"]))
                cases.append((cell, kind, "U", (H, other * H), U_exp + [f"got {(H, other * H)}"]))
                cases.append((cell, kind, "b", (other * H,), b_exp + [f"got {(other * H,)}"]))
            if cell == "gru_after":
                cases.append((cell, kind, "b", (3 * H,), b_exp + [f"got {(3 * H,)}"]))
                cases.append((cell, kind, "b", (3 * H, 2), b_exp + [f"got {(3 * H, 2)}"]))
            elif cell == "gru_before":
                cases.append((cell, kind, "b", (2, 3 * H), b_exp + [f"got {(2, 3 * H)}"]))
            else:
                cases.append((cell, kind, "b", (1, G * H), b_exp + [f"got {(1, G * H)}"]))
    return cases


SHAPE_CASES = shape_cases()


@pytest.mark.parametrize(
    "cell,kind,name,bad_shape,fragments",
    SHAPE_CASES,
    ids=[f"{c}-{k}-{n}-{'x'.join(map(str, s))}" for c, k, n, s, _ in SHAPE_CASES],
)
def test_forward_shape_error_names_argument_expected_and_received(cell, kind, name, bad_shape, fragments):
    rng = np.random.default_rng(0)
    args = args_for(cell, kind, rng)
    fn_name, fn = forward_fn(cell, kind)
    fn(**args)  # the valid call works
    args[name] = rng.standard_normal(bad_shape)
    with pytest.raises(ValueError, match=message_pattern(f"{fn_name}: argument '{name}' must", *fragments)):
        fn(**args)


@pytest.mark.parametrize("kind", ["seq", "step"])
def test_lstm_given_gru_parameters(kind):
    """All three GRU-shaped parameters at once: the first one checked is reported, with both shapes."""
    rng = np.random.default_rng(1)
    args = args_for("lstm", kind, rng)
    args.update(params("gru_before", rng))
    fn_name, fn = forward_fn("lstm", kind)
    pattern = message_pattern(f"{fn_name}: argument 'W'", "(D, 4H)", "(4, 20)", "got (4, 15)")
    with pytest.raises(ValueError, match=pattern):
        fn(**args)


@pytest.mark.parametrize("cell", CELLS)
def test_empty_sequence_is_rejected(cell):
    rng = np.random.default_rng(2)
    args = seq_args(cell, rng)
    args["x"] = np.zeros((B, 0, D))
    fn_name, fn = forward_fn(cell, "seq")
    pattern = message_pattern(f"{fn_name}: argument 'x'", "at least one time step", "(2, 0, 4)")
    with pytest.raises(ValueError, match=pattern):
        fn(**args)


@pytest.mark.parametrize("bad", [1, 0, "True", None, 1.0])
@pytest.mark.parametrize("kind", ["seq", "step"])
def test_gru_reset_after_must_be_a_bool(kind, bad):
    rng = np.random.default_rng(3)
    args = args_for("gru_after", kind, rng)
    fn = gru.gru_forward if kind == "seq" else gru.gru_step_forward
    pattern = message_pattern("argument 'reset_after' must be True or False", f"got {bad!r}")
    with pytest.raises(TypeError, match=pattern):
        fn(**args, reset_after=bad)
    fn(**args, reset_after=np.bool_(True))  # numpy's bool is a bool


# --------------------------------------------------------------------------------------------------------------------
# Dtype errors in the forward functions
# --------------------------------------------------------------------------------------------------------------------

BAD_DTYPES = {
    "int64": lambda a: np.round(a).astype(np.int64),
    "int32": lambda a: np.round(a).astype(np.int32),
    "object": lambda a: a.astype(object),
    "bool": lambda a: a > 0,
    "complex128": lambda a: a.astype(np.complex128),
}


def dtype_cases():
    cases = []
    for cell in CELLS:
        for kind in ("seq", "step"):
            for name in args_for(cell, kind, np.random.default_rng(0)):
                for dt in BAD_DTYPES:
                    cases.append((cell, kind, name, dt))
    return cases


@pytest.mark.parametrize("cell,kind,name,dt", dtype_cases())
def test_forward_dtype_error_names_argument_and_dtype(cell, kind, name, dt):
    rng = np.random.default_rng(4)
    args = args_for(cell, kind, rng)
    args[name] = BAD_DTYPES[dt](args[name])
    fn_name, fn = forward_fn(cell, kind)
    pattern = message_pattern(f"{fn_name}: argument '{name}'", "floating-point", f"got dtype {dt}")
    with pytest.raises(TypeError, match=pattern):
        fn(**args)


@pytest.mark.parametrize("cell", CELLS)
def test_python_lists_of_floats_are_accepted(cell):
    """Only the dtype is checked: nested lists of floats are arrays of float64."""
    rng = np.random.default_rng(5)
    args = seq_args(cell, rng)
    fn_name, fn = forward_fn(cell, "seq")
    want = fn(**args)[0]
    got = fn(**{n: a.tolist() for n, a in args.items()})[0]
    np.testing.assert_array_equal(got, want)
    args["x"] = np.round(args["x"]).astype(int).tolist()  # but lists of ints are not
    with pytest.raises(TypeError, match=message_pattern(f"{fn_name}: argument 'x'", "got dtype int")):
        fn(**args)


# --------------------------------------------------------------------------------------------------------------------
# Upstream gradients
# --------------------------------------------------------------------------------------------------------------------


def run_forward(cell, kind, rng, dtype=np.float64):
    args = args_for(cell, kind, rng, dtype)
    _, fn = forward_fn(cell, kind)
    return fn(**args)


def call_backward(cell, kind, cache, upstream):
    """upstream: dict of the upstream gradients by argument name."""
    base = {"rnn": "rnn", "lstm": "lstm"}.get(cell, "gru")
    mod = {"rnn": rnn, "lstm": lstm, "gru": gru}[base]
    name = f"{base}_step_backward" if kind == "step" else f"{base}_backward"
    fn = getattr(mod, name)
    if kind == "step" and cell == "lstm":
        return name, fn(upstream["dh_t"], upstream["dc_t"], cache)
    (arg,) = upstream.values()
    return name, fn(arg, cache)


def upstream_names(cell, kind):
    if kind == "seq":
        return ["dh"]
    return ["dh_t", "dc_t"] if cell == "lstm" else ["dh_t"]


def upstream_cases():
    cases = []
    for cell in CELLS:
        for kind in ("seq", "step"):
            good = (B, T, H) if kind == "seq" else (B, H)
            meaning = "(B, T, H)" if kind == "seq" else "(B, H)"
            bads = [(B, T + 1, H), (B, T, H + 1), (B, H), (T, B, H), (B, T, H, 1)] if kind == "seq" else [
                (B, H + 1), (B + 1, H), (H,), (H, B), (B, 1, H)]
            for name in upstream_names(cell, kind):
                for bad in bads:
                    cases.append((cell, kind, name, good, meaning, bad))
    return cases


@pytest.mark.parametrize("cell,kind,name,good,meaning,bad", upstream_cases())
def test_backward_upstream_shape_error(cell, kind, name, good, meaning, bad):
    rng = np.random.default_rng(6)
    cache = run_forward(cell, kind, rng)[-1]
    upstream = {n: np.ones(good) for n in upstream_names(cell, kind)}
    call_backward(cell, kind, cache, upstream)  # the right shape works
    upstream[name] = np.ones(bad)
    base = {"rnn": "rnn", "lstm": "lstm"}.get(cell, "gru")
    fn_name = f"{base}_step_backward" if kind == "step" else f"{base}_backward"
    pattern = message_pattern(f"{fn_name}: argument '{name}'", meaning, str(good), f"got {bad}")
    with pytest.raises(ValueError, match=pattern):
        call_backward(cell, kind, cache, upstream)


@pytest.mark.parametrize("dt", ["int64", "object", "bool"])
@pytest.mark.parametrize("kind", ["seq", "step"])
@pytest.mark.parametrize("cell", CELLS)
def test_backward_upstream_dtype_error(cell, kind, dt):
    rng = np.random.default_rng(7)
    cache = run_forward(cell, kind, rng)[-1]
    good = (B, T, H) if kind == "seq" else (B, H)
    base = {"rnn": "rnn", "lstm": "lstm"}.get(cell, "gru")
    fn_name = f"{base}_step_backward" if kind == "step" else f"{base}_backward"
    for name in upstream_names(cell, kind):
        upstream = {n: np.ones(good) for n in upstream_names(cell, kind)}
        upstream[name] = BAD_DTYPES[dt](np.ones(good))
        with pytest.raises(TypeError, match=message_pattern(f"{fn_name}: argument '{name}'", f"got dtype {dt}")):
            call_backward(cell, kind, cache, upstream)


# --------------------------------------------------------------------------------------------------------------------
# Large inputs: no warning, no NaN
# --------------------------------------------------------------------------------------------------------------------


def large_args(cell, kind, regime, dtype, rng):
    args = args_for(cell, kind, rng, dtype)
    xn = "x" if kind == "seq" else "x_t"
    # x with entries up to 1e4 in absolute value, of both signs
    args[xn] = (rng.uniform(-1e4, 1e4, args[xn].shape)).astype(dtype)
    if regime == "huge_preactivation":
        # pre-activations around 1e30 (float32) or 1e200 (float64): far past saturation, still finite
        target = 1e30 if dtype == np.float32 else 1e200
        args["W"] = (args["W"] * (target / (1e4 * D))).astype(dtype)
        args["U"] = (args["U"] * (target / H)).astype(dtype)
        args["b"] = (args["b"] * target).astype(dtype)
    if cell == "lstm":
        cn = "c0" if kind == "seq" else "c_prev"
        args[cn] = (args[cn] * 100).astype(dtype)
    return args


@pytest.mark.parametrize("regime", ["large_x", "huge_preactivation"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["seq", "step"])
@pytest.mark.parametrize("cell", CELLS)
def test_large_inputs_no_warning_no_nan(cell, kind, dtype, regime):
    rng = np.random.default_rng(8)
    args = large_args(cell, kind, regime, dtype, rng)
    _, fn = forward_fn(cell, kind)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        *outs, cache = fn(**args)
        upstream = {n: rng.standard_normal(outs[0].shape).astype(dtype) for n in upstream_names(cell, kind)}
        _, grads = call_backward(cell, kind, cache, upstream)
        grads_k = ()
        if kind == "seq":  # truncated BPTT too
            backward = {"rnn": rnn.rnn_backward, "lstm": lstm.lstm_backward}.get(cell, gru.gru_backward)
            grads_k = backward(upstream["dh"], cache, truncate=2)
    for a in (*outs, *grads, *grads_k):
        assert a.dtype == dtype
        assert np.all(np.isfinite(a))
    for o in outs[:1]:  # h is a tanh or a gate times a tanh
        assert np.all(np.abs(o) <= 1)
