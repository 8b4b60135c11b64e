"""Gated cells explode too: an LSTM trained on the adding problem, with and without gradient clipping.

Chapter 4 (book/04_vanishing_exploding.ipynb) plots the data this script writes to book/data/gated_explosion.json.
The LSTM starts at Keras' default initialisation (nothing scaled) and is trained as chapter 8 trains it on the adding
problem: H = 32, a dense read-out of the last state, Adam at chapter 8's rate for the LSTM (0.01), batches of 32
fresh sequences from a seeded stream. For every seed:

1. the whole run without clipping, then the same run (same initial weights, same batches) clipped at global norm 1:
   the gradient norm before clipping and the training loss of every update, and the final test MSE;
2. the spike: the update of the unclipped run whose gradient norm is largest relative to the median norm of the
   updates before it (after a warm-up). The unclipped run is replayed to just before the spike and continued from
   there twice, `branch` updates each, unclipped and clipped at 1 from the spike on: what clipping does to that one
   spike, everything before it being equal.

Runs are seeded and use one BLAS thread, so a run is deterministic; tests/test_gated_explosion.py re-runs a prefix.

    python bench/gated_explosion.py                     # book/data/gated_explosion.json (a few CPU minutes)
    python bench/gated_explosion.py --seeds 0 --updates 200 --out /tmp/small.json
"""

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy: small products, a shared 2-core machine, determinism

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from course_pkg.init import glorot_uniform, init_lstm
from course_pkg.layers import dense_backward, dense_forward, mse
from course_pkg.lstm import lstm_backward, lstm_forward
from course_pkg.optim import Adam, clip_by_global_norm, global_norm
from course_pkg.tasks import adding_problem

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "book" / "data" / "gated_explosion.json"

CONFIG = {"T": 100, "H": 32, "batch": 32, "lr": 0.01, "clip": 1.0, "updates": 1500, "warmup": 100,
          "branch": 200, "n_test": 500, "seeds": [0, 1]}


def sig(v, digits=6):
    return float(f"{float(v):.{digits}g}")


def init_model(H, seed):
    """LSTM parameters as Keras initialises them (forget bias 1) and a Glorot read-out, from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    W, U, b = init_lstm(2, H, rng)
    return {"W": W, "U": U, "b": b, "V": glorot_uniform((H, 1), rng), "c": np.zeros(1, np.float32)}


def loss_and_grads(p, x, y):
    """MSE of the read-out of the last state against y (B,), and the gradients of every parameter."""
    B, H = x.shape[0], p["U"].shape[0]
    zeros = np.zeros((B, H), np.float32)
    h, _, cache = lstm_forward(x, zeros, zeros, p["W"], p["U"], p["b"])
    out, dcache = dense_forward(h[:, -1], p["V"], p["c"])
    loss, dout = mse(out[:, 0], y)
    dh = np.zeros_like(h)
    dh[:, -1], dV, dc = dense_backward(dout[:, None], dcache)
    _, _, _, dW, dU, db = lstm_backward(dh, cache)
    return float(loss), {"W": dW, "U": dU, "b": db, "V": dV, "c": dc}


def test_mse(p, x, y):
    zeros = np.zeros((x.shape[0], p["U"].shape[0]), np.float32)
    h, _, _ = lstm_forward(x, zeros, zeros, p["W"], p["U"], p["b"])
    out, _ = dense_forward(h[:, -1], p["V"], p["c"])
    return float(np.mean((out[:, 0] - y) ** 2))


class Trainer:
    """One training run: parameters, Adam and the batch stream, stepped one update at a time."""

    def __init__(self, cfg, seed):
        self.cfg = cfg
        self.p = init_model(cfg["H"], seed)
        self.opt = Adam(self.p, lr=cfg["lr"])
        self.data = np.random.default_rng([seed, 4])

    def step(self, clip):
        """One update; returns (gradient norm before clipping, training loss)."""
        x, y = adding_problem(self.cfg["batch"], self.cfg["T"], seed=self.data)
        loss, grads = loss_and_grads(self.p, x, y)
        if not np.isfinite(loss):
            raise FloatingPointError(f"loss {loss}")
        norm = global_norm(grads)
        if clip is not None:
            grads, _ = clip_by_global_norm(grads, clip)
        self.opt.step(grads)
        return norm, loss

    def fork(self):
        """An independent copy (parameters, Adam's moments, the stream's position); the optimiser is re-bound."""
        twin = copy.deepcopy(self)
        twin.opt.params = twin.p
        return twin


def spike_index(norms, warmup):
    """The update (after warmup) whose norm is largest relative to the median of the norms before it."""
    norms = np.asarray(norms)
    ratios = [norms[k] / np.median(norms[:k]) for k in range(warmup, len(norms))]
    k = warmup + int(np.argmax(ratios))
    return k, float(ratios[k - warmup])


def run_seed(cfg, seed, x_test, y_test):
    record = {"seed": seed}
    start = time.perf_counter()
    for arm, clip in (("none", None), ("clip", cfg["clip"])):
        trainer = Trainer(cfg, seed)
        norms, losses = zip(*(trainer.step(clip) for _ in range(cfg["updates"])))
        record[arm] = {"norm": [sig(v) for v in norms], "loss": [sig(v) for v in losses],
                       "test_mse": sig(test_mse(trainer.p, x_test, y_test))}
    k, ratio = spike_index(record["none"]["norm"], cfg["warmup"])
    trainer = Trainer(cfg, seed)
    for _ in range(k):  # replay to just before the spike (deterministic: the same numbers as above)
        trainer.step(None)
    branches = {}
    for arm, clip in (("none", None), ("clip", cfg["clip"])):
        twin = trainer.fork()
        n = min(cfg["branch"], cfg["updates"] - k)
        norms, losses = zip(*(twin.step(clip) for _ in range(n)))
        branches[arm] = {"norm": [sig(v) for v in norms], "loss": [sig(v) for v in losses]}
    record["spike"] = {"update": k, "ratio_to_median": sig(ratio), **branches}
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def run(cfg, log=print):
    x_test, y_test = adding_problem(cfg["n_test"], cfg["T"], seed=[10_000, cfg["T"]])  # chapter 8's test set
    records = []
    for seed in cfg["seeds"]:
        records.append(run_seed(cfg, seed, x_test, y_test))
        r = records[-1]
        log(f"seed {seed}: test MSE no clipping {r['none']['test_mse']:.4f}, clipped {r['clip']['test_mse']:.4f}; "
            f"spike at update {r['spike']['update']} ({r['spike']['ratio_to_median']:.0f} x the median norm) "
            f"[{r['seconds']:.0f} s]")
    return {
        "about": __doc__.splitlines()[0],
        "config": cfg,
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "machine": platform.machine(), "OPENBLAS_NUM_THREADS": os.environ["OPENBLAS_NUM_THREADS"]},
        "runs": records,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--updates", type=int)
    parser.add_argument("--branch", type=int)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cfg = dict(CONFIG)
    for key in ("seeds", "updates", "branch"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    result = run(cfg)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, separators=(",", ":")) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
