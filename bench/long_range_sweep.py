"""Chapter 8's head-to-head sweep: tanh RNN, LSTM (forget bias 1 and 0) and GRU on three long-range tasks.

Every model is trained with course_pkg (numpy) on the tasks of the papers it comes from, at laptop scale:

- the adding problem (Le et al. 2015, Arjovsky et al. 2016 form) for several lengths T: test MSE against 1/6;
- the copy task (Arjovsky et al. 2016) for a few T: test cross-entropy against 10 log 8 / (T + 20);
- the embedded Reber grammar (Hochreiter & Schmidhuber 1997): fraction of test strings predicted perfectly.

Same hidden size H for every cell, Adam (each cell at the learning rate that suited it best in a small study on each
task, which the sweep runs first: the rate with the lowest final loss on a validation set drawn apart from the test
set, so the test numbers the book reports played no part in choosing it), gradient clipping by global norm, the same number of updates and the same batches
for every cell (the data stream depends on the task, T and the seed only). Everything is seeded, and one
BLAS thread is used, so a run is deterministic: re-running a prefix of the committed configuration (fewer updates)
reproduces the start of its learning curves, which is what tests/test_long_range_sweep.py checks.

    python bench/long_range_sweep.py --full            # the committed data, book/data/long_range.json (~30 min)
    python bench/long_range_sweep.py                   # a quick reduced run, printed only
    python bench/long_range_sweep.py --task adding --T 25 --cells rnn lstm --seeds 0 --updates 100 \
        --out /tmp/small.json                           # one experiment; options override the shared settings

The JSON holds "config" (everything needed to re-run it: the shared settings and the list of experiments),
"environment", "reber_data" and "runs", one record per (task, T, cell, seed, learning rate) with the learning curve
evaluated every eval_every updates (update 0 included) on the test set ("test") and, for the learning-rate
studies' runs, on the validation set ("val"), the mean training loss over each of those windows, the
training loss of each of the first `head` updates, and the final metrics.
"""

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy: small products, a shared 2-core machine, determinism

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from course_pkg.gru import gru_backward, gru_forward
from course_pkg.init import glorot_uniform, init_gru, init_lstm, init_rnn
from course_pkg.layers import dense_backward, dense_forward, mse, softmax_cross_entropy
from course_pkg.lstm import lstm_backward, lstm_forward
from course_pkg.optim import Adam, clip_by_global_norm
from course_pkg.rnn import rnn_backward, rnn_forward
from course_pkg.tasks import (
    ADDING_BASELINE_MSE,
    ADDING_TOLERANCE,
    REBER_SYMBOLS,
    adding_problem,
    adding_solved,
    copy_task,
    copy_task_baseline,
    embedded_reber,
    embedded_reber_successors,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "book" / "data" / "long_range.json"

#: The recurrent cells compared. "rnn_elman" is the tanh RNN trained the way Elman (1990) trained it: the gradient
#: stops at the copied context, i.e. BPTT truncated to one step. "rnn_wide" has twice the units, which gives it about
#: as many parameters as the LSTM with H units.
CELLS = {
    "rnn": {"kind": "rnn", "label": "tanh RNN"},
    "rnn_wide": {"kind": "rnn", "width": 2, "parent": "rnn", "label": "tanh RNN, 2H units"},
    "rnn_elman": {"kind": "rnn", "truncate": 1, "parent": "rnn", "label": "tanh RNN trained as Elman's (1-step BPTT)"},
    "lstm": {"kind": "lstm", "forget_bias": 1.0, "label": "LSTM, forget bias 1"},
    "lstm_fb0": {"kind": "lstm", "forget_bias": 0.0, "parent": "lstm", "label": "LSTM, forget bias 0"},
    "gru": {"kind": "gru", "label": "GRU (reset_after=True)"},
}

TASK_CODES = {"adding": 1, "copy": 2, "reber": 3}

#: Settings every run shares, and the data of each task (T is the length; the Reber strings have their own).
COMMON = {
    "H": 32,
    # Adam's learning rate for each task and cell: for each task, the rate of its study (the experiments below with
    # an "lr" list) with the lowest final *validation* loss, averaged over the seeds. A variant takes its parent's
    # rate (CELLS[...]["parent"]).
    "lr": {
        "adding": {"rnn": 0.001, "lstm": 0.01, "gru": 0.01},
        "copy": {"rnn": 0.003, "lstm": 0.03, "gru": 0.03},
        "reber": {"rnn": 0.001, "lstm": 0.001, "gru": 0.001},
    },
    "clip": 1.0,
    "batch": 32,
    "updates": 2000,
    "eval_every": 100,
    "head": 50,
    "tasks": {"adding": {"n_test": 500}, "copy": {"n_test": 500}, "reber": {"n_train": 256, "n_test": 256}},
    # The validation sets the learning rates are chosen on: drawn with their own seeds, apart from the test sets.
    "validation": {"adding": {"n_val": 500}, "copy": {"n_val": 500}, "reber": {"n_val": 256}},
}

#: The committed sweep: a list of experiments, each a task, its lengths, the cells and the seeds, and optionally a
#: list of learning rates that replaces the per-cell ones (the learning-rate studies, one per task, which come first;
#: their runs are also scored on the validation set). A run that two experiments share is run and stored once.
#: Each task's grid reaches at least one step (a factor of about 3) beyond every cell's choice on either side, so no
#: choice sits at an edge of its grid: an earlier grid (0.001 to 0.01, chosen on the test set) gave the tanh RNN its
#: smallest rate on two tasks. The copy task's grid reaches 0.1 because the gated cells' best rate there was 0.03.
STUDY_LR = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03]
STUDIES = [
    {"task": "adding", "T": [50], "cells": ["rnn", "lstm", "gru"], "seeds": [0, 1], "lr": STUDY_LR},
    {"task": "copy", "T": [10], "cells": ["rnn", "lstm", "gru"], "seeds": [0, 1], "lr": STUDY_LR + [0.1]},
    {"task": "reber", "T": [0], "cells": ["rnn", "lstm", "gru"], "seeds": [0, 1], "lr": STUDY_LR},
]
FULL = {
    **COMMON,
    "experiments": [
        *STUDIES,
        {"task": "adding", "T": [25, 50, 100], "cells": ["rnn", "lstm", "gru"], "seeds": [0, 1, 2]},
        {"task": "adding", "T": [200], "cells": ["rnn", "lstm", "gru"], "seeds": [0, 1]},
        {"task": "adding", "T": [50, 100], "cells": ["lstm_fb0"], "seeds": [0, 1, 2]},
        {"task": "adding", "T": [50, 100], "cells": ["rnn_wide"], "seeds": [0, 1]},
        {"task": "copy", "T": [10, 50], "cells": ["rnn", "lstm", "gru"], "seeds": [0, 1]},
        {"task": "reber", "T": [0], "cells": ["rnn", "rnn_elman", "lstm", "lstm_fb0", "gru"], "seeds": [0, 1, 2, 3, 4]},
    ],
}

#: What the script runs without --full: a few seconds' worth, printed.
REDUCED = {
    **COMMON,
    "updates": 200,
    "experiments": [
        {"task": "adding", "T": [25], "cells": ["rnn", "lstm", "gru"], "seeds": [0]},
        {"task": "reber", "T": [0], "cells": ["rnn_elman", "rnn", "lstm"], "seeds": [0]},
    ],
}


# ----------------------------------------------------------------------------------------------------------------
# Models: a recurrent cell from course_pkg and a dense read-out, parameters in one dict.


def init_model(cell, D, H, K, seed):
    """Parameters {W, U, b, V, c} with Keras' initialisation, drawn from default_rng(seed).

    lstm and lstm_fb0 with the same seed get the same W, U, V: only the forget-gate slice of b differs.
    """
    spec = CELLS[cell]
    H = H * spec.get("width", 1)
    rng = np.random.default_rng(seed)
    if spec["kind"] == "rnn":
        W, U, b = init_rnn(D, H, rng)
    elif spec["kind"] == "lstm":
        W, U, b = init_lstm(D, H, rng)
        b[H : 2 * H] = spec["forget_bias"]
    else:
        W, U, b = init_gru(D, H, rng, reset_after=True)
    return {"W": W, "U": U, "b": b, "V": glorot_uniform((H, K), rng), "c": np.zeros(K, np.float32)}


def learning_rate(cfg, task, cell):
    """The configured Adam learning rate of a cell on a task (a variant's is its parent's)."""
    return cfg["lr"][task][CELLS[cell].get("parent", cell)]


def n_params(params):
    return int(sum(p.size for p in params.values()))


def run_cell(cell, p, x):
    """Hidden states h (B, T, H) and the cache for backward_cell."""
    kind = CELLS[cell]["kind"]
    B, H = x.shape[0], p["U"].shape[0]
    h0 = np.zeros((B, H), np.float32)
    if kind == "rnn":
        return rnn_forward(x, h0, p["W"], p["U"], p["b"])
    if kind == "lstm":
        h, _, cache = lstm_forward(x, h0, h0, p["W"], p["U"], p["b"])
        return h, cache
    return gru_forward(x, h0, p["W"], p["U"], p["b"], reset_after=True)


def backward_cell(cell, dh, cache):
    """dW, dU, db from dL/dh (B, T, H)."""
    spec = CELLS[cell]
    if spec["kind"] == "rnn":
        _, _, dW, dU, db = rnn_backward(dh, cache, truncate=spec.get("truncate"))
    elif spec["kind"] == "lstm":
        _, _, _, dW, dU, db = lstm_backward(dh, cache)
    else:
        _, _, dW, dU, db = gru_backward(dh, cache)
    return dW, dU, db


def loss_and_grads(cell, p, batch, readout):
    """Forward and backward through cell and read-out. readout "last": MSE of h_T V + c against y (B,);
    "every": softmax cross-entropy of h_t V + c against integer targets y (B, T), with an optional mask (B, T)."""
    x, y, mask = batch
    h, cache = run_cell(cell, p, x)
    dh = np.zeros_like(h)
    if readout == "last":
        out, dcache = dense_forward(h[:, -1], p["V"], p["c"])
        loss, dout = mse(out[:, 0], y)
        dh[:, -1], dV, dc = dense_backward(dout[:, None], dcache)
    else:
        logits, dcache = dense_forward(h, p["V"], p["c"])
        loss, dlogits = softmax_cross_entropy(logits, y, mask)
        dh, dV, dc = dense_backward(dlogits, dcache)
    dW, dU, db = backward_cell(cell, dh, cache)
    return loss, {"W": dW, "U": dU, "b": db, "V": dV, "c": dc}


def predict(cell, p, x, readout, chunk=250):
    """The read-out's output for every sequence of x, in chunks of `chunk` sequences."""
    outs = []
    for start in range(0, x.shape[0], chunk):
        h, _ = run_cell(cell, p, x[start : start + chunk])
        out, _ = dense_forward(h[:, -1] if readout == "last" else h, p["V"], p["c"])
        outs.append(out[:, 0] if readout == "last" else out)
    return np.concatenate(outs)


# ----------------------------------------------------------------------------------------------------------------
# Tasks: a stream of training batches, a fixed test set, and the metrics.


def one_hot(tokens, K):
    return np.eye(K, dtype=np.float32)[tokens]


def reber_arrays(strings):
    """One-hot inputs (n, L, 7) (zeros after a string's end), targets (n, L), mask (n, L), legal (n, L, 7).

    Position t holds symbol t of the string as input and symbol t + 1 as target; legal[:, t] is the set of symbols
    the grammar allows after symbol t. L is the longest string's length minus one.
    """
    index = {s: k for k, s in enumerate(REBER_SYMBOLS)}
    n, L = len(strings), max(len(s) for s in strings) - 1
    x = np.zeros((n, L, len(REBER_SYMBOLS)), np.float32)
    y = np.zeros((n, L), np.int64)
    mask = np.zeros((n, L), np.float32)
    legal = np.zeros((n, L, len(REBER_SYMBOLS)), bool)
    for i, s in enumerate(strings):
        codes = [index[c] for c in s]
        m = len(s) - 1
        x[i, np.arange(m), codes[:-1]] = 1
        y[i, :m] = codes[1:]
        mask[i, :m] = 1
        for t, allowed in enumerate(embedded_reber_successors(s)[:-1]):
            legal[i, t, [index[c] for c in allowed]] = True
    return x, y, mask, legal


def reber_success(logits, mask, legal):
    """Per string: True if at every position the |legal| highest-scoring symbols are exactly the legal ones."""
    lowest_legal = np.where(legal, logits, np.inf).min(axis=-1)
    highest_other = np.where(legal, -np.inf, logits).max(axis=-1)
    ok = (lowest_legal > highest_other) | (mask == 0)
    return ok.all(axis=1)


class Task:
    """Data and metrics of one task at one length T. `batches(seed)` yields training batches forever."""

    def __init__(self, name, T, cfg):
        self.name, self.T, self.cfg = name, T, cfg
        task_cfg = cfg["tasks"][name]  # test-set sizes
        val_cfg = cfg["validation"][name]
        if name == "adding":
            self.D, self.K, self.readout = 2, 1, "last"
            self.baseline = ADDING_BASELINE_MSE
            self.x_test, self.y_test = adding_problem(task_cfg["n_test"], T, seed=[10_000, T])
            self.x_val, self.y_val = adding_problem(val_cfg["n_val"], T, seed=[40_000, T])
        elif name == "copy":
            self.D, self.K, self.readout = 10, 9, "every"
            self.baseline = float(copy_task_baseline(T))
            tokens, self.y_test = copy_task(task_cfg["n_test"], T, seed=[20_000, T])
            self.x_test = one_hot(tokens, self.D)
            tokens, self.y_val = copy_task(val_cfg["n_val"], T, seed=[50_000, T])
            self.x_val = one_hot(tokens, self.D)
        else:
            self.D, self.K, self.readout = 7, 7, "every"
            self.baseline = None
            train = embedded_reber(task_cfg["n_train"], seed=30_000)
            test = embedded_reber(task_cfg["n_test"], seed=30_001)
            self.train_arrays = reber_arrays(train)
            val = embedded_reber(val_cfg["n_val"], seed=30_002)
            self.test_arrays = reber_arrays(test)
            self.val_arrays = reber_arrays(val)
            seen = set(train)
            self.test_unseen = np.array([s not in seen for s in test])
            self.val_unseen = np.array([s not in seen for s in val])
            self.lengths = [len(s) for s in train]

    def batches(self, seed):
        rng = np.random.default_rng([seed, TASK_CODES[self.name], self.T])
        B = self.cfg["batch"]
        while True:
            if self.name == "adding":
                x, y = adding_problem(B, self.T, seed=rng)
                yield x, y, None
            elif self.name == "copy":
                tokens, y = copy_task(B, self.T, seed=rng)
                yield one_hot(tokens, self.D), y, None
            else:  # shuffled passes over the fixed training strings, each batch cut to its longest string
                x, y, mask, _ = self.train_arrays
                order = rng.permutation(len(x))
                for start in range(0, len(order) - B + 1, B):
                    idx = order[start : start + B]
                    L = int(mask[idx].sum(axis=1).max())
                    yield x[idx, :L], y[idx, :L], mask[idx, :L]

    def evaluate(self, cell, p, split="test"):
        """The metrics on the test set (split "test") or the validation set ("val"): a dict whose "loss" entry is
        the one the baseline refers to."""
        if self.name == "adding":
            x, y = (self.x_test, self.y_test) if split == "test" else (self.x_val, self.y_val)
            err = predict(cell, p, x, "last") - y
            # The course's criterion (Hochreiter & Schmidhuber's, carried over to this scaling): |error| < 0.08.
            assert ADDING_TOLERANCE == 0.08  # the metric's name says the tolerance
            return {"loss": float(np.mean(err * err)), "correct_0.08": float(np.mean(adding_solved(err, 0)))}
        if self.name == "copy":
            x, y = (self.x_test, self.y_test) if split == "test" else (self.x_val, self.y_val)
            logits = predict(cell, p, x, "every")
            loss, _ = softmax_cross_entropy(logits, y)
            recall = logits[:, -10:].argmax(axis=-1) == y[:, -10:]
            return {"loss": loss, "recall_accuracy": float(recall.mean())}
        x, y, mask, legal = self.test_arrays if split == "test" else self.val_arrays
        unseen = self.test_unseen if split == "test" else self.val_unseen
        logits = predict(cell, p, x, "every")
        loss, _ = softmax_cross_entropy(logits, y, mask)
        success = reber_success(logits, mask, legal)
        return {"loss": loss, "success": float(success.mean()), "success_unseen": float(success[unseen].mean())}

    def evaluate_train(self, cell, p):
        if self.name != "reber":
            return {}
        x, y, mask, legal = self.train_arrays
        return {"train_success": float(reber_success(predict(cell, p, x, "every"), mask, legal).mean())}


# ----------------------------------------------------------------------------------------------------------------
# Training and the sweep.


def sig(v, digits=8):
    """A float rounded to `digits` significant digits (float32 carries about 7): keeps the JSON small."""
    return float(f"{float(v):.{digits}g}")


def train_run(task, cell, seed, lr, cfg, validate=False):
    """Train one model with Adam at learning rate lr; return its record (curves and final metrics). validate: also
    score the validation set at every evaluation (the learning-rate studies do; it leaves training unchanged)."""
    start = time.perf_counter()
    p = init_model(cell, task.D, cfg["H"], task.K, seed)
    opt = Adam(p, lr=lr)
    stream = task.batches(seed)
    splits = ("test", "val") if validate else ("test",)
    curves = {split: {k: [sig(v)] for k, v in task.evaluate(cell, p, split).items()} for split in splits}
    eval_updates, head, window, train_mean, clipped = [0], [], [], [], 0
    for update in range(1, cfg["updates"] + 1):
        loss, grads = loss_and_grads(cell, p, next(stream), task.readout)
        if not np.isfinite(loss):
            raise FloatingPointError(f"{task.name} T={task.T} {cell} seed {seed}: loss {loss} at update {update}")
        grads, norm = clip_by_global_norm(grads, cfg["clip"])
        clipped += norm > cfg["clip"]
        opt.step(grads)
        window.append(loss)
        if update <= cfg["head"]:
            head.append(sig(loss))
        if update % cfg["eval_every"] == 0 or update == cfg["updates"]:
            eval_updates.append(update)
            train_mean.append(sig(np.mean(window)))
            window = []
            for split in splits:
                for k, v in task.evaluate(cell, p, split).items():
                    curves[split][k].append(sig(v))
    final = {k: v[-1] for k, v in curves["test"].items()}
    final.update({k: sig(v) for k, v in task.evaluate_train(cell, p).items()})
    return {
        "task": task.name, "T": task.T, "cell": cell, "seed": seed, "lr": lr,
        "n_params": n_params(p), "baseline": task.baseline,
        "eval_updates": eval_updates, **curves, "train_mean": train_mean, "train_head": head,
        "final": final, "clipped_fraction": sig(clipped / cfg["updates"], 4),
        "seconds": round(time.perf_counter() - start, 2),
    }


SHARED_KEYS = ("H", "clip", "batch", "updates", "eval_every", "head", "tasks")


def run_sweep(cfg, log=print, reuse=(), checkpoint=None):
    """Run every (task, T, seed, cell, lr) of cfg["experiments"], in that order; return the JSON-ready result.

    reuse: records of an earlier result made with the same shared settings (SHARED_KEYS); a run found there is
    taken as it is instead of being trained again (runs are deterministic, so this changes nothing but the time).
    checkpoint(result): called after every run with the result so far ("complete": false), to save partial work.
    """
    earlier = {(r["task"], r["T"], r["cell"], r["seed"], r["lr"]): r for r in reuse}
    # A study's run needs validation curves: an earlier record without them is trained again.
    runs, tasks, n_reused = {}, {}, 0
    start = time.perf_counter()
    for exp in cfg["experiments"]:
        for T in exp["T"]:
            task = tasks.setdefault((exp["task"], T), Task(exp["task"], T, cfg))
            for seed in exp["seeds"]:
                for cell in exp["cells"]:
                    study = "lr" in exp
                    for lr in exp.get("lr", [learning_rate(cfg, task.name, cell)]):
                        key = (task.name, T, cell, seed, lr)
                        if key in runs:
                            continue
                        reused = key in earlier and (not study or "val" in earlier[key])
                        n_reused += reused
                        run = runs[key] = earlier[key] if reused else train_run(task, cell, seed, lr, cfg, study)
                        log(
                            f"{task.name:6} T={T:<4} {cell:9} seed {seed} lr {lr:<6}: "
                            f"test loss {run['final']['loss']:.4f}"
                            + (f" (baseline {task.baseline:.4f})" if task.baseline is not None else "")
                            + "".join(f", {k} {v:.3f}" for k, v in run["final"].items() if k != "loss")
                            + ("  [reused]" if reused else
                               f"  [{run['seconds']:.0f} s, {time.perf_counter() - start:.0f} s total]")
                        )
                        if checkpoint is not None:
                            checkpoint(_result(cfg, runs, tasks, time.perf_counter() - start, n_reused, False))
    return _result(cfg, runs, tasks, time.perf_counter() - start, n_reused, True)


def _result(cfg, runs, tasks, seconds, n_reused, complete):
    extra = {}
    reber = [task for (name, _), task in tasks.items() if name == "reber"]
    if reber:
        extra["reber_data"] = {
            "train_length_mean": sig(np.mean(reber[0].lengths), 4),
            "train_length_max": int(max(reber[0].lengths)),
            "test_unseen_fraction": sig(reber[0].test_unseen.mean(), 4),
        }
    return {
        "config": cfg,
        "complete": complete,
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.machine(),
            "OPENBLAS_NUM_THREADS": os.environ["OPENBLAS_NUM_THREADS"],
            "seconds": round(seconds, 1),  # of this invocation; each run's own time is in its record
            "runs_reused": n_reused,  # taken from --reuse files instead of trained in this invocation
        },
        **extra,
        "runs": list(runs.values()),
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="With --task, one experiment replaces the default list: --task adding --T 25 50 --cells rnn lstm "
        "--seeds 0. Every other option overrides the shared setting of the same name.",
    )
    parser.add_argument("--full", action="store_true", help="the committed configuration (writes the book's data)")
    parser.add_argument("--task", choices=list(TASK_CODES), help="run one experiment on this task")
    parser.add_argument("--T", nargs="+", type=int, help="lengths (with --task; ignored by reber)")
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), help="cells (with --task)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (with --task)")
    parser.add_argument("--updates", type=int, help="updates per run (the same for every cell)")
    for name in ("H", "batch", "eval_every", "head"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int)
    parser.add_argument("--lr", nargs="+", type=float, help="learning rates (with --task; default: per cell)")
    parser.add_argument("--clip", type=float)
    parser.add_argument("--out", type=Path, help=f"JSON to write (default with --full: {DEFAULT_OUT}); it is "
                        "rewritten after every run, with \"complete\": false until the last")
    parser.add_argument("--reuse", nargs="+", type=Path, help="earlier JSON files whose matching runs are taken "
                        "instead of trained again (same shared settings required)")
    args = parser.parse_args(argv)
    if args.task is None and (args.T or args.cells or args.seeds or args.lr):
        parser.error("--T, --cells, --seeds and --lr describe one experiment: give --task too")
    return args


def build_config(args):
    cfg = json.loads(json.dumps(FULL if args.full else REDUCED))  # a deep copy
    if args.task:
        cfg["experiments"] = [{
            "task": args.task,
            "T": [0] if args.task == "reber" else (args.T or [25]),
            "cells": args.cells or ["rnn", "lstm", "gru"],
            "seeds": args.seeds or [0],
            **({"lr": args.lr} if args.lr else {}),
        }]
    for key in ("updates", "H", "batch", "eval_every", "head", "clip"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    return cfg


def dumps(result):
    """The result as JSON text: the settings indented, then one line per run (a diff shows which runs changed)."""
    head = json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1)
    lines = ",\n".join("  " + json.dumps(run, separators=(",", ":")) for run in result["runs"])
    return head[:-2] + ',\n "runs": [\n' + lines + "\n ]\n}\n"


def write(result, out):
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(dumps(result))
    tmp.replace(out)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = build_config(args)
    out = args.out or (DEFAULT_OUT if args.full else None)
    reuse = []
    for path in args.reuse or []:
        earlier = json.loads(path.read_text())
        if any(earlier["config"][k] != cfg[k] for k in SHARED_KEYS):
            sys.exit(f"--reuse {path}: made with other settings than {', '.join(SHARED_KEYS)}; cannot reuse its runs")
        same_val = earlier["config"].get("validation") == cfg["validation"]
        reuse += [r for r in earlier["runs"] if same_val or "val" not in r]
    result = run_sweep(cfg, reuse=reuse, checkpoint=None if out is None else lambda partial: write(partial, out))
    print(f"done in {result['environment']['seconds']:.0f} s")
    if out is not None:
        write(result, out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
