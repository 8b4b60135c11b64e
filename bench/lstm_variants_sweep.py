"""The sweep behind chapter 7 (book/07_lstm_variants.ipynb): which parts of the LSTM matter on a long-lag task?

Every variant of course_pkg.lstm_variants, and a tanh RNN for reference, is trained the same way on the adding
problem (course_pkg.tasks.adding_problem) at T = 100, once per seed:

    - a recurrent layer of H = 32 units and a dense read-out of its last state (course_pkg.layers), MSE loss;
    - for seed s, the initial weights are drawn from np.random.default_rng(s) (course_pkg.init: Keras' LSTM
      initialisation, forget-gate bias 1, so every LSTM variant starts from the same W, U, b; zero peepholes), and the
      training batches from np.random.default_rng(1000 + s), so every model sees the same batches;
    - Adam (learning rate 0.01), gradients clipped at global norm 1 (course_pkg.optim), a fixed number of updates of
      32 fresh sequences each;
    - every `eval_every` updates: the MSE on one fixed test set of 500 sequences, the fraction of test sequences that
      meet the course's one success criterion (course_pkg.tasks.adding_solved: within
      course_pkg.tasks.ADDING_TOLERANCE of the target, stated in chapter 6), and the mean |c_t|.

The results go to book/data/lstm_variants.json, which the chapter plots. Regenerate them with

    .venv/bin/python bench/lstm_variants_sweep.py

(about 45 minutes on one core of a shared 2-core machine: the numpy cells loop over the time steps in Python). On
two cores, split the models over two processes and merge their outputs (the runs are seeded, so the merged file holds
the runs a single process makes; its environment records the number of processes):

    .venv/bin/python bench/lstm_variants_sweep.py --models rnn vanilla peephole NIG NIAF --out /tmp/a.json &
    .venv/bin/python bench/lstm_variants_sweep.py --models NFG NOG NOAF CIFG --out /tmp/b.json; wait
    .venv/bin/python bench/lstm_variants_sweep.py --merge /tmp/a.json /tmp/b.json

A reduced run writes elsewhere, e.g.

    .venv/bin/python bench/lstm_variants_sweep.py --updates 200 --seeds 0 --models vanilla NFG --out /tmp/sweep.json

Because every run is seeded, a reduced run reproduces the first points of the committed curves; the test
tests/test_lstm_variants_sweep.py checks exactly that.
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

# Small matrix products: one BLAS thread is faster, and keeps the sweep to one core. Set before numpy is imported, and
# only when run as a script (imported, e.g. by the test, the module leaves the environment alone).
if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from course_pkg.init import glorot_uniform, init_lstm, init_rnn  # noqa: E402
from course_pkg.layers import dense_backward, dense_forward, mse  # noqa: E402
from course_pkg.lstm_variants import VARIANTS, lstm_variant_backward, lstm_variant_forward  # noqa: E402
from course_pkg.optim import Adam, clip_by_global_norm  # noqa: E402
from course_pkg.rnn import rnn_backward, rnn_forward  # noqa: E402
from course_pkg.tasks import ADDING_TOLERANCE, adding_problem, adding_solved  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "data" / "lstm_variants.json"

CONFIG = {
    "task": "adding_problem",
    "T": 100,
    "H": 32,
    "batch": 32,
    "lr": 0.01,
    "clip": 1.0,
    "updates": 3000,
    "eval_every": 100,
    "n_test": 500,
    "test_seed": 2017,
    "tolerance": ADDING_TOLERANCE,  # recorded with the data; the count itself is course_pkg.tasks.adding_solved
    "seeds": [0, 1, 2, 3, 4],
}

#: the tanh RNN first (the reference that fails), then the LSTM variants in course_pkg's order
MODELS = ["rnn"] + list(VARIANTS)


def init_params(model, seed, H):
    """The parameters of `model` for seed `seed`: recurrent layer (Keras' initialisation) and a Glorot read-out."""
    rng = np.random.default_rng(seed)
    if model == "rnn":
        W, U, b = init_rnn(2, H, rng)
        params = {"W": W, "U": U, "b": b}
    else:
        W, U, b = init_lstm(2, H, rng)  # the same W, U, b for every variant at a given seed
        params = {"W": W, "U": U, "b": b}
        if VARIANTS[model].get("peepholes"):
            params["P"] = np.zeros((3, H), np.float32)  # course_pkg.lstm_variants.init_peepholes
    params["V"] = glorot_uniform((H, 1), rng)
    params["c"] = np.zeros(1, np.float32)
    return params


def forward(params, x, model):
    """Predictions (B,) for x (B, T, 2), and what backward needs."""
    B, H = x.shape[0], params["U"].shape[0]
    zeros = np.zeros((B, H), np.float32)
    if model == "rnn":
        h, cache = rnn_forward(x, zeros, params["W"], params["U"], params["b"])
        c = None
    else:
        h, c, cache = lstm_variant_forward(
            x, zeros, zeros, params["W"], params["U"], params["b"], params.get("P"), variant=model
        )
    pred, dense_cache = dense_forward(h[:, -1], params["V"], params["c"])
    return pred[:, 0], (h, c, cache, dense_cache)


def loss_and_grads(params, x, y, model):
    """MSE of the prediction from the last state, and the gradients of every parameter."""
    pred, (h, _, cache, dense_cache) = forward(params, x, model)
    loss, dpred = mse(pred, y)
    dlast, dV, dc = dense_backward(dpred[:, None], dense_cache)
    dh = np.zeros_like(h)
    dh[:, -1] = dlast  # the loss sees only the last state
    if model == "rnn":
        _, _, dW, dU, db = rnn_backward(dh, cache)
        grads = {"W": dW, "U": dU, "b": db}
    else:
        _, _, _, dW, dU, db, dP = lstm_variant_backward(dh, cache)
        grads = {"W": dW, "U": dU, "b": db}
        if "P" in params:
            grads["P"] = dP
    grads.update(V=dV, c=dc)
    return loss, grads


def evaluate(params, model, x, y):
    """Test MSE, the fraction solved (course_pkg.tasks.adding_solved) and the mean |c_t| over all test steps (LSTMs)."""
    pred, (_, c, _, _) = forward(params, x, model)
    test_mse, _ = mse(pred, y)
    acc = float(np.mean(adding_solved(pred, y)))
    cell = None if c is None else float(np.mean(np.abs(c), dtype=np.float64))
    return test_mse, acc, cell


def _round(v):
    return float(f"{v:.8g}")


def train(model, seed, config=CONFIG, updates=None):
    """One run. Returns a record with the test curves (one point every config['eval_every'] updates)."""
    updates = config["updates"] if updates is None else updates
    params = init_params(model, seed, config["H"])
    opt = Adam(params, lr=config["lr"])
    data = np.random.default_rng(1000 + seed)
    x_test, y_test = adding_problem(config["n_test"], config["T"], seed=config["test_seed"])
    record = {"model": model, "seed": seed, "test_mse": [], "test_acc": [], "mean_abs_c": []}
    start = time.perf_counter()
    for step in range(1, updates + 1):
        x, y = adding_problem(config["batch"], config["T"], seed=data)
        _, grads = loss_and_grads(params, x, y, model)
        grads, _ = clip_by_global_norm(grads, config["clip"])
        opt.step(grads)
        if step % config["eval_every"] == 0:
            test_mse, acc, cell = evaluate(params, model, x_test, y_test)
            record["test_mse"].append(_round(test_mse))
            record["test_acc"].append(_round(acc))
            record["mean_abs_c"].append(None if cell is None else _round(cell))
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def write(result, out):
    """Write a sweep's result, one line per run, so that the file stays readable and a change shows up as a change of
    that run's line."""
    out.parent.mkdir(parents=True, exist_ok=True)
    head = json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1)
    lines = ",\n".join("  " + json.dumps(run) for run in result["runs"])
    out.write_text(head[:-2] + ',\n "runs": [\n' + lines + "\n ]\n}\n")
    print(f"wrote {out}")


def merge(paths, out):
    """One file from sweeps of disjoint sets of models run side by side (one process per core), in the order of a
    single run: seed by seed, the models in MODELS' order. Every run is seeded, so the runs are those a single process
    would make; only the timing differs: total_seconds is the longest part's (the parts ran at the same time)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    config = parts[0]["config"]
    if any(part["config"] != config for part in parts):
        raise ValueError("merge: the parts were made with different configurations")
    runs = {(run["model"], run["seed"]): run for part in parts for run in part["runs"]}
    if len(runs) != sum(len(part["runs"]) for part in parts):
        raise ValueError("merge: the parts overlap")
    models = [m for m in MODELS if any(m in part["models"] for part in parts)]
    seconds = [part["environment"]["total_seconds"] for part in parts]
    result = {
        **{k: v for k, v in parts[0].items() if k != "runs"},
        "models": models,
        "runs": [runs[m, s] for s in config["seeds"] for m in models if (m, s) in runs],
        "environment": {**parts[0]["environment"], "total_seconds": max(seconds), "processes": len(parts),
                        "part_seconds": seconds},
    }
    write(result, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=CONFIG["updates"])
    parser.add_argument("--seeds", type=int, nargs="+", default=CONFIG["seeds"])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--merge", type=Path, nargs="+", metavar="PART",
                        help="write one file (--out) from the outputs of runs of disjoint --models, then stop")
    args = parser.parse_args(argv)
    if args.merge:
        merge(args.merge, args.out)
        return
    config = {**CONFIG, "updates": args.updates, "seeds": args.seeds}
    runs = []
    start = time.perf_counter()
    for seed in args.seeds:  # seed by seed, so that an interrupted sweep still has every model for the first seeds
        for model in args.models:
            record = train(model, seed, config)
            runs.append(record)
            print(
                f"{model:9} seed {seed}: final test MSE {record['test_mse'][-1]:.4f}, "
                f"solved (within {config['tolerance']}): {record['test_acc'][-1]:.3f} ({record['seconds']:.0f} s)",
                flush=True,
            )
    result = {
        "about": "bench/lstm_variants_sweep.py: the adding problem, one run per model and seed (chapter 7)",
        "config": config,
        "models": args.models,
        "eval_updates": list(range(config["eval_every"], config["updates"] + 1, config["eval_every"])),
        "runs": runs,
        "environment": {
            "python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "total_seconds": round(time.perf_counter() - start, 1),
        },
    }
    write(result, args.out)


if __name__ == "__main__":
    main()
