"""The sweep behind section 6 of book/11_myths.ipynb: is a GRU faster than an LSTM, and by how much, on this CPU?

For each hidden size H it times, in float32 on the same data (B = 64 sequences of T = 100 steps, D = 32 inputs), on
one thread (numpy's BLAS and TensorFlow alike):

    - course_pkg's numpy LSTM and GRU (lstm_forward / gru_forward, then lstm_backward / gru_backward: the gradients
      of x, the initial states and every parameter);
    - keras.layers.LSTM and keras.layers.GRU (defaults: reset_after=True), inside tf.function, the forward pass and
      the forward plus backward pass through tf.GradientTape (the gradients of x and every weight), as fit runs them;

each as the forward pass alone and as the forward plus backward pass. All the functions of one H take turns within
every repetition (interleaved), so that they see the same machine load; the result is the median of `repeats`
timings after one warm-up call each (wall time, and the process's CPU time, which a busy machine disturbs less).
What to compare is the ratio GRU / LSTM at each H; absolute times depend on
the machine and on what else it is doing.

The results go to book/data/lstm_gru_speed.json, which the chapter plots. Regenerate them with

    .venv/bin/python bench/lstm_gru_speed.py

(about five minutes on the book's 2-core build machine). A reduced run writes elsewhere, e.g.

    .venv/bin/python bench/lstm_gru_speed.py --hidden 32 128 --repeats 3 --out /tmp/speed.json

tests/test_lstm_gru_speed.py checks the committed file against this script's configuration and re-measures the
smallest size.
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

# One thread for everything: numpy's BLAS (set before numpy is imported; no effect when it already is, e.g. under
# pytest) and TensorFlow's pools (configure_tensorflow). On a shared machine a pool of two threads waits for the
# scheduler in ways that swamp the difference between the cells; one thread measures one core's work. Quiet
# TensorFlow's start-up messages.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

from course_pkg.gru import gru_backward, gru_forward  # noqa: E402
from course_pkg.init import init_gru, init_lstm  # noqa: E402
from course_pkg.lstm import lstm_backward, lstm_forward  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "data" / "lstm_gru_speed.json"

CONFIG = {"batch": 64, "steps": 100, "input": 32, "hidden": [32, 64, 128, 256, 512], "repeats": 11, "seed": 0}
BACKENDS = ["course_pkg", "keras"]
PASSES = ["forward", "forward+backward"]
CELLS = ["LSTM", "GRU"]


def interleaved_times_ms(fns, repeats):
    """After one warm-up call each, the functions take turns `repeats` times; returns, for each function, its wall
    times and its CPU times (time.process_time: the whole process, all threads) in ms."""
    for fn in fns:
        fn()
    wall, cpu = [[] for _ in fns], [[] for _ in fns]
    for _ in range(repeats):
        for fn, ws, cs in zip(fns, wall, cpu):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            ws.append(1e3 * (time.perf_counter() - w0))
            cs.append(1e3 * (time.process_time() - c0))
    return wall, cpu


def numpy_functions(x, H, rng):
    """{(cell, pass): function} for course_pkg's numpy code."""
    B, T, D = x.shape
    h0 = np.zeros((B, H), np.float32)
    dh = rng.standard_normal((B, T, H)).astype(np.float32)
    Wl, Ul, bl = init_lstm(D, H, rng)
    Wg, Ug, bg = init_gru(D, H, rng)
    return {
        ("LSTM", "forward"): lambda: lstm_forward(x, h0, h0, Wl, Ul, bl),
        ("LSTM", "forward+backward"): lambda: lstm_backward(dh, lstm_forward(x, h0, h0, Wl, Ul, bl)[2]),
        ("GRU", "forward"): lambda: gru_forward(x, h0, Wg, Ug, bg),
        ("GRU", "forward+backward"): lambda: gru_backward(dh, gru_forward(x, h0, Wg, Ug, bg)[1]),
    }


def configure_tensorflow():
    """One intra-op and one inter-op thread, if TensorFlow has not started yet; returns the settings in force."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised (e.g. by earlier tests in the same process): keep what it has
        pass
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def keras_functions(x, H, rng):
    """{(cell, pass): function} for keras.layers.LSTM and GRU inside tf.function."""
    configure_tensorflow()
    import keras
    import tensorflow as tf

    xt = tf.constant(x)
    dh = tf.constant(rng.standard_normal((x.shape[0], x.shape[1], H)).astype(np.float32))
    fns = {}
    for cell, layer in (("LSTM", keras.layers.LSTM(H, return_sequences=True)),
                        ("GRU", keras.layers.GRU(H, return_sequences=True))):
        layer.build(x.shape)

        @tf.function
        def forward(layer=layer):
            return layer(xt)

        @tf.function
        def forward_backward(layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(xt)
                loss = tf.reduce_sum(layer(xt) * dh)
            return tape.gradient(loss, [xt, *layer.trainable_variables])

        fns[cell, "forward"] = lambda f=forward: f().numpy()  # .numpy() waits for the result
        fns[cell, "forward+backward"] = lambda f=forward_backward: [g.numpy() for g in f()]
    return fns


def measure(H, config, repeats=None, backends=BACKENDS):
    """Time every (backend, cell, pass) at hidden size H; returns a list of records (dicts)."""
    repeats = config["repeats"] if repeats is None else repeats
    rng = np.random.default_rng(config["seed"] + H)
    x = rng.standard_normal((config["batch"], config["steps"], config["input"])).astype(np.float32)
    if "keras" in backends:
        import keras

        keras.utils.set_random_seed(config["seed"] + H)
    makers = {"course_pkg": numpy_functions, "keras": keras_functions}
    keys, fns = [], []
    for backend in backends:
        for (cell, pass_), fn in makers[backend](x, H, rng).items():
            keys.append((backend, cell, pass_))
            fns.append(fn)
    wall, cpu = interleaved_times_ms(fns, repeats)
    return [
        {"hidden": H, "backend": backend, "cell": cell, "pass": pass_,
         "median_ms": round(statistics.median(ws), 3), "cpu_median_ms": round(statistics.median(cs), 3),
         "times_ms": [round(t, 3) for t in ws], "cpu_times_ms": [round(t, 3) for t in cs]}
        for (backend, cell, pass_), ws, cs in zip(keys, wall, cpu)
    ]


def ratios(records, key="median_ms"):
    """{(hidden, backend, pass): GRU / LSTM of the medians `key` (wall time by default)}."""
    med = {(r["hidden"], r["backend"], r["pass"], r["cell"]): r[key] for r in records}
    return {k[:3]: med[k[:3] + ("GRU",)] / med[k[:3] + ("LSTM",)] for k in med if k[3] == "LSTM"}


def environment():
    import keras
    import tensorflow as tf

    return {
        "machine": platform.machine(), "processor": platform.processor() or "unknown", "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__, "tensorflow": tf.__version__,
        "keras": keras.__version__, "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "tensorflow_threads": configure_tensorflow(),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, nargs="+", default=CONFIG["hidden"])
    p.add_argument("--repeats", type=int, default=CONFIG["repeats"])
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    config = {**CONFIG, "hidden": args.hidden, "repeats": args.repeats}
    configure_tensorflow()
    start = time.perf_counter()
    records = []
    for H in config["hidden"]:
        records += measure(H, config)
        for (h, backend, pass_), r in sorted(ratios(records).items()):
            if h == H:
                r_cpu = ratios(records, "cpu_median_ms")[h, backend, pass_]
                print(f"H = {H:4}  {backend:10}  {pass_:17}  GRU / LSTM = {r:.2f} (CPU time {r_cpu:.2f})", flush=True)
    data = {"config": config, "environment": environment(), "seconds": round(time.perf_counter() - start, 1),
            "records": records}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {args.out} in {data['seconds']} s")


if __name__ == "__main__":
    main()
