"""How fast is course_pkg's numpy reference next to Keras, on this machine, in this run?

    python bench/reference_speed.py [--batch 64 --steps 100 --input 32 --hidden 128 --repeats 15]

For each cell (SimpleRNN, LSTM, GRU) it times, in float32 on the same data:
  - course_pkg's forward pass, and its forward plus backward pass (gradients for x, the initial states and every
    parameter);
  - the Keras layer's forward pass, and forward plus backward through tf.GradientTape, both inside tf.function, as
    model.fit and model.predict run them.
It prints the median of each and the ratio course_pkg / Keras. Absolute times vary from machine to machine and run
to run; the ratios are what to compare. The matrix-multiply floor (the FLOPs of the forward pass at the speed of a
large float32 product on this machine) is printed too.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from course_pkg import gru, lstm, rnn  # noqa: E402
from course_pkg.init import init_gru, init_lstm, init_rnn  # noqa: E402


def median_ms(fn, repeats, warmup=2):
    return interleaved_medians_ms([fn], repeats, warmup)[0]


def interleaved_medians_ms(fns, repeats, warmup=2):
    """Median time of each function, the functions taking turns so that all see the same machine load."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [1e3 * statistics.median(ts) for ts in times]


def numpy_cases(x, H, rng):
    B, T, D = x.shape
    h0 = np.zeros((B, H), np.float32)
    dh = rng.standard_normal((B, T, H)).astype(np.float32)
    W, U, b = init_rnn(D, H, rng)
    Wl, Ul, bl = init_lstm(D, H, rng)
    Wg, Ug, bg = init_gru(D, H, rng)
    return {
        "SimpleRNN": (
            lambda: rnn.rnn_forward(x, h0, W, U, b),
            lambda: rnn.rnn_backward(dh, rnn.rnn_forward(x, h0, W, U, b)[1]),
        ),
        "LSTM": (
            lambda: lstm.lstm_forward(x, h0, h0, Wl, Ul, bl),
            lambda: lstm.lstm_backward(dh, lstm.lstm_forward(x, h0, h0, Wl, Ul, bl)[2]),
        ),
        "GRU": (
            lambda: gru.gru_forward(x, h0, Wg, Ug, bg),
            lambda: gru.gru_backward(dh, gru.gru_forward(x, h0, Wg, Ug, bg)[1]),
        ),
    }


def keras_cases(x, H, rng):
    import keras
    import tensorflow as tf

    xt = tf.constant(x)
    dh = tf.constant(rng.standard_normal((x.shape[0], x.shape[1], H)).astype(np.float32))
    cases = {}
    for name, layer in [
        ("SimpleRNN", keras.layers.SimpleRNN(H, return_sequences=True)),
        ("LSTM", keras.layers.LSTM(H, return_sequences=True)),
        ("GRU", keras.layers.GRU(H, return_sequences=True)),
    ]:
        layer.build(x.shape)

        @tf.function
        def forward(layer=layer):
            return layer(xt)

        @tf.function
        def forward_backward(layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(xt)
                h = layer(xt)
                loss = tf.reduce_sum(h * dh)
            return tape.gradient(loss, [xt, *layer.trainable_variables])

        def run(fn):
            return lambda: [t.numpy() for t in tf.nest.flatten(fn())]  # wait for the result

        cases[name] = (run(forward), run(forward_backward))
    return cases


def matmul_gflops(repeats):
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    ms = median_ms(lambda: a @ a, repeats)
    return 2 * 1024**3 / (ms * 1e-3) / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--input", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--repeats", type=int, default=21)
    args = p.parse_args()
    B, T, D, H = args.batch, args.steps, args.input, args.hidden
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, D)).astype(np.float32)

    ours = numpy_cases(x, H, rng)
    theirs = keras_cases(x, H, rng)
    gflops = matmul_gflops(args.repeats)
    print(f"B={B} T={T} D={D} H={H} float32, median of {args.repeats} runs, taking turns; ratio = course_pkg / keras")
    print(f"float32 1024x1024 matmul: {gflops:.0f} GFLOP/s")
    header = f"{'cell':<10} {'pass':<17} {'course_pkg ms':>13} {'keras ms':>9} {'ratio':>6} {'floor ms':>9}"
    print(header)
    print("-" * len(header))
    gates = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
    for name in ("LSTM", "GRU", "SimpleRNN"):
        floor = 2 * B * T * (D + H) * gates[name] * H / (gflops * 1e9) * 1e3
        for k, label in enumerate(("forward", "forward+backward")):
            a, b = interleaved_medians_ms([ours[name][k], theirs[name][k]], args.repeats)
            f = floor * (1 if k == 0 else 3)  # a backward pass costs two more products of the same size
            print(f"{name:<10} {label:<17} {a:13.1f} {b:9.1f} {a / b:6.2f} {f:9.1f}")


if __name__ == "__main__":
    main()
