"""The sweep behind the chapter on regularisation and initialisation (book/13_regularisation.ipynb).

Two tasks, every model trained with course_pkg (numpy), Adam, gradients clipped at global norm 1, seeded, one BLAS
thread (so a run is deterministic and tests/test_regularisation_sweep.py can re-run a prefix):

- "charlm": the character model of chapter 2 (the first 100,000 characters of Python's help text, the last tenth
  held out), an LSTM of H units trained with truncated BPTT on 32 streams; the held-out loss in bits per character,
  for no regularisation, variational dropout (input and recurrent masks drawn once per sequence, one per gate, as
  Keras' recurrent_dropout), zoneout (Krueger et al. 2017), weight dropout on U (Merity et al. 2018) and layer
  normalisation inside the cell (Ba et al. 2016).
- "adding": the adding problem at a long lag (T = 150) for the LSTM with Keras' forget bias 1 and with chrono
  initialisation (Tallec & Ollivier 2018), and at T = 100 for the tanh RNN with Keras' orthogonal U against the
  IRNN (ReLU, U = I, Le et al. 2015); the test MSE against the baseline 1/6.

The regularisers' rates are the values their papers recommend for models of this size, not tuned here (see the
chapter). Writes book/data/regularisation.json.

    python bench/regularisation_sweep.py                     # the committed data (about 10 CPU minutes)
    python bench/regularisation_sweep.py --seeds 1 --out /tmp/s1.json   # one seed; --merge joins such files:
    python bench/regularisation_sweep.py --merge /tmp/s0.json /tmp/s1.json /tmp/s2.json
    python bench/regularisation_sweep.py --seeds 0 --charlm-updates 20 --adding-updates 20 --out /tmp/r.json
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

from course_pkg.init import glorot_uniform, init_lstm, init_rnn
from course_pkg.layer_norm import init_ln_params, ln_lstm_backward, ln_lstm_forward
from course_pkg.layers import dense_backward, dense_forward, mse, softmax_cross_entropy
from course_pkg.lstm import lstm_backward, lstm_forward
from course_pkg.optim import Adam, clip_by_global_norm
from course_pkg.regularisation import (
    chrono_bias,
    dropout_mask,
    identity_recurrence,
    lstm_backward_dropout,
    lstm_backward_zoneout,
    lstm_forward_dropout,
    lstm_forward_zoneout,
    relu_rnn_backward,
    relu_rnn_forward,
    zoneout_masks,
)
from course_pkg.rnn import rnn_backward, rnn_forward
from course_pkg.tasks import ADDING_BASELINE_MSE, adding_problem
from course_pkg.text import CharVocab, python_docs_text

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "book" / "data" / "regularisation.json"

CONFIG = {
    "seeds": [0, 1, 2],
    "clip": 1.0,
    "charlm": {"chars": 100_000, "H": 64, "B": 32, "T": 32, "updates": 400, "lr": 0.005,
               "methods": {"none": {}, "variational dropout": {"p": 0.25}, "zoneout": {"z": 0.1},
                           "weight dropout": {"p": 0.25}, "layer norm": {}}},
    "adding": {"H": 32, "B": 32, "updates": 600, "n_test": 500,
               "models": {"LSTM, forget bias 1": {"T": 150, "lr": 0.01},
                          "LSTM, chrono": {"T": 150, "lr": 0.01},
                          "tanh RNN, orthogonal U": {"T": 100, "lr": 0.001},
                          "IRNN (ReLU, U = I)": {"T": 100, "lr": 0.0001}}},
}


def sig(v, digits=6):
    return float(f"{float(v):.{digits}g}")


# ----------------------------------------------------------------------------------------------------------------
# The character model


def char_data(cfg):
    text = python_docs_text(cfg["chars"])
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    n_train = int(0.9 * len(ids))
    return len(vocab), ids[:n_train], ids[n_train:]


def charlm_run(cfg, method, seed, K, train_ids, valid_ids, clip):
    """Train one LSTM character model; returns the held-out loss (bits per character) every 100 updates."""
    c = cfg["charlm"]
    H, B, T = c["H"], c["B"], c["T"]
    spec = c["methods"][method]
    rng = np.random.default_rng(seed)
    W, U, b = init_lstm(K, H, rng)
    p = {"W": W, "U": U, "b": b, "V": glorot_uniform((H, K), rng), "c": np.zeros(K, np.float32)}
    if method == "layer norm":
        p.update(init_ln_params(H))
    ln = ("g_x", "beta_x", "g_h", "beta_h", "g_c", "beta_c")
    opt = Adam(p, lr=c["lr"])
    noise = np.random.default_rng([seed, 7])
    onehot = np.eye(K, dtype=np.float32)
    stream = (len(train_ids) - 1) // B
    X = np.stack([train_ids[i * stream:(i + 1) * stream] for i in range(B)])
    Y = np.stack([train_ids[i * stream + 1:(i + 1) * stream + 1] for i in range(B)])
    chunks = stream // T

    def held_out():
        zeros = np.zeros((1, H), np.float32)
        x = onehot[valid_ids[None, :-1]]
        if method == "zoneout":  # at test time zoneout uses its expectation, keep = z
            h, _, _ = lstm_forward_zoneout(x, zeros, zeros, p["W"], p["U"], p["b"], spec["z"], spec["z"])
        elif method == "layer norm":
            h, _, _ = ln_lstm_forward(x, zeros, zeros, p["W"], p["U"], p["b"], *(p[k] for k in ln))
        else:  # dropout: inverted masks, so the test-time network is the plain one
            h, _, _ = lstm_forward(x, zeros, zeros, p["W"], p["U"], p["b"])
        logits, _ = dense_forward(h, p["V"], p["c"])
        return softmax_cross_entropy(logits, valid_ids[None, 1:])[0] / np.log(2)

    curve, h_carry, c_carry = [], None, None
    for update in range(c["updates"]):
        k = update % chunks
        if k == 0:
            h_carry = np.zeros((B, H), np.float32)
            c_carry = np.zeros((B, H), np.float32)
        xb, yb = onehot[X[:, k * T:(k + 1) * T]], Y[:, k * T:(k + 1) * T]
        U_used = p["U"]
        if method == "variational dropout":
            mx = dropout_mask((B, 4, K), spec["p"], noise)
            mh = dropout_mask((B, 4, H), spec["p"], noise)
            h, cs, cache = lstm_forward_dropout(xb, h_carry, c_carry, p["W"], p["U"], p["b"], mx, mh)
        elif method == "zoneout":
            kc, kh = (zoneout_masks((B, T, H), spec["z"], noise) for _ in range(2))
            h, cs, cache = lstm_forward_zoneout(xb, h_carry, c_carry, p["W"], p["U"], p["b"], kc, kh)
        elif method == "layer norm":
            h, cs, cache = ln_lstm_forward(xb, h_carry, c_carry, p["W"], p["U"], p["b"], *(p[k] for k in ln))
        else:
            if method == "weight dropout":
                M = dropout_mask(p["U"].shape, spec["p"], noise)
                U_used = p["U"] * M
            h, cs, cache = lstm_forward(xb, h_carry, c_carry, p["W"], U_used, p["b"])
        logits, dcache = dense_forward(h, p["V"], p["c"])
        _, dlogits = softmax_cross_entropy(logits, yb)
        dh, dV, dc = dense_backward(dlogits, dcache)
        extra = {}
        if method == "variational dropout":
            _, _, _, dW, dU, db = lstm_backward_dropout(dh, cache)
        elif method == "layer norm":
            g = ln_lstm_backward(dh, cache)
            dW, dU, db = g["W"], g["U"], g["b"]
            extra = {k: g[k] for k in ln}
        elif method == "zoneout":
            _, _, _, dW, dU, db = lstm_backward_zoneout(dh, cache)
        else:
            _, _, _, dW, dU, db = lstm_backward(dh, cache)
            if method == "weight dropout":
                dU = dU * M
        grads, _ = clip_by_global_norm({"W": dW, "U": dU, "b": db, "V": dV, "c": dc, **extra}, clip)
        opt.step(grads)
        h_carry, c_carry = h[:, -1], cs[:, -1]  # the state crosses into the next chunk, its gradient does not
        if (update + 1) % 100 == 0 or update + 1 == c["updates"]:
            curve.append([update + 1, sig(held_out())])
    return curve


# ----------------------------------------------------------------------------------------------------------------
# The adding problem


def adding_model(name, H, T, seed):
    """Parameters of one adding-problem model, from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    if name.startswith("LSTM"):
        W, U, b = init_lstm(2, H, rng)
        if "chrono" in name:
            b = chrono_bias(H, T, rng)  # forget-gate memories spread over 1 .. T steps
    elif name.startswith("IRNN"):  # Le et al. 2015: U = I, b = 0, input weights N(0, 0.001^2)
        W = rng.normal(0, 0.001, (2, H)).astype(np.float32)
        U, b = identity_recurrence(H), np.zeros(H, np.float32)
    else:
        W, U, b = init_rnn(2, H, rng)
    return {"W": W, "U": U, "b": b, "V": glorot_uniform((H, 1), rng), "c": np.zeros(1, np.float32)}


def adding_states(name, p, x):
    B, H = x.shape[0], p["U"].shape[0]
    zeros = np.zeros((B, H), np.float32)
    if name.startswith("LSTM"):
        h, _, cache = lstm_forward(x, zeros, zeros, p["W"], p["U"], p["b"])
    elif name.startswith("IRNN"):
        h, cache = relu_rnn_forward(x, zeros, p["W"], p["U"], p["b"])
    else:
        h, cache = rnn_forward(x, zeros, p["W"], p["U"], p["b"])
    return h, cache


def adding_run(cfg, name, seed, clip):
    a = cfg["adding"]
    spec = a["models"][name]
    T = spec["T"]
    p = adding_model(name, a["H"], T, seed)
    opt = Adam(p, lr=spec["lr"])
    data = np.random.default_rng([seed, 11])
    x_test, y_test = adding_problem(a["n_test"], T, seed=[10_000, T])  # chapter 8's test set for this T

    def test_mse():
        h, _ = adding_states(name, p, x_test)
        out, _ = dense_forward(h[:, -1], p["V"], p["c"])
        return float(np.mean((out[:, 0] - y_test) ** 2))

    curve = [[0, sig(test_mse())]]
    for update in range(a["updates"]):
        x, y = adding_problem(a["B"], T, seed=data)
        h, cache = adding_states(name, p, x)
        out, dcache = dense_forward(h[:, -1], p["V"], p["c"])
        loss, dout = mse(out[:, 0], y)
        dh = np.zeros_like(h)
        dh[:, -1], dV, dc = dense_backward(dout[:, None], dcache)
        if name.startswith("LSTM"):
            _, _, _, dW, dU, db = lstm_backward(dh, cache)
        elif name.startswith("IRNN"):
            _, _, dW, dU, db = relu_rnn_backward(dh, cache)
        else:
            _, _, dW, dU, db = rnn_backward(dh, cache)
        grads, _ = clip_by_global_norm({"W": dW, "U": dU, "b": db, "V": dV, "c": dc}, clip)
        opt.step(grads)
        if (update + 1) % 100 == 0 or update + 1 == a["updates"]:
            curve.append([update + 1, sig(test_mse())])
    return {"T": T, "curve": curve, "baseline": ADDING_BASELINE_MSE}


def run(cfg, log=print):
    K, train_ids, valid_ids = char_data(cfg["charlm"])
    records = []
    for seed in cfg["seeds"]:
        for method in cfg["charlm"]["methods"]:
            start = time.perf_counter()
            curve = charlm_run(cfg, method, seed, K, train_ids, valid_ids, cfg["clip"])
            records.append({"task": "charlm", "model": method, "seed": seed, "curve": curve,
                            "seconds": round(time.perf_counter() - start, 1)})
            log(f"charlm {method:20} seed {seed}: held-out {curve[-1][1]:.3f} bits/char [{records[-1]['seconds']} s]")
        for name in cfg["adding"]["models"]:
            start = time.perf_counter()
            rec = adding_run(cfg, name, seed, cfg["clip"])
            records.append({"task": "adding", "model": name, "seed": seed, **rec,
                            "seconds": round(time.perf_counter() - start, 1)})
            log(f"adding {name:22} seed {seed}: test MSE {rec['curve'][-1][1]:.4f} [{records[-1]['seconds']} s]")
    return {"about": __doc__.splitlines()[0], "config": cfg,
            "environment": {"python": platform.python_version(), "numpy": np.__version__,
                            "OPENBLAS_NUM_THREADS": os.environ["OPENBLAS_NUM_THREADS"]},
            "runs": records}


def made_with_config(cfg):
    """True if cfg is CONFIG, except for its seeds and possibly a subset of the methods and models (--only)."""
    def strip(c):
        c = json.loads(json.dumps(c))
        c.pop("seeds")
        return c, c["charlm"].pop("methods"), c["adding"].pop("models")

    rest, methods, models = strip(cfg)
    rest0, methods0, models0 = strip(CONFIG)
    return (rest == rest0 and all(methods0.get(k) == v for k, v in methods.items())
            and all(models0.get(k) == v for k, v in models.items()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--charlm-updates", type=int)
    parser.add_argument("--adding-updates", type=int)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="+", help="run only these charlm methods and adding models")
    parser.add_argument("--merge", nargs="+", type=Path, help="join files of single seeds made with the committed "
                        "settings into --out (runs are deterministic, so this equals one run over all seeds)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.merge:
        parts = [json.loads(path.read_text()) for path in args.merge]
        for part in parts:
            if not made_with_config(part["config"]):
                sys.exit("--merge: a file was made with other settings than CONFIG")
        runs = sorted((r for part in parts for r in part["runs"]), key=lambda r: r["seed"])
        result = {**parts[0], "config": {**CONFIG, "seeds": sorted({r["seed"] for r in runs})}, "runs": runs}
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
        return
    cfg = json.loads(json.dumps(CONFIG))
    if args.seeds is not None:
        cfg["seeds"] = args.seeds
    if args.charlm_updates is not None:
        cfg["charlm"]["updates"] = args.charlm_updates
    if args.adding_updates is not None:
        cfg["adding"]["updates"] = args.adding_updates
    if args.only:
        cfg["charlm"]["methods"] = {k: v for k, v in cfg["charlm"]["methods"].items() if k in args.only}
        cfg["adding"]["models"] = {k: v for k, v in cfg["adding"]["models"].items() if k in args.only}
    result = run(cfg)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
