"""Shared helpers for the Keras comparison tests (test_keras_*.py).

Keras is imported only inside the helpers, so collecting the other test files stays fast.
"""

import os
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (B, T, D, H): a single example and step, D < H, D > H, D == H
SHAPES = [(1, 1, 3, 5), (4, 7, 3, 8), (2, 12, 16, 6), (3, 5, 8, 8)]


@dataclass(frozen=True)
class Model:
    """One of the four models, seen from course_pkg and from Keras."""

    name: str
    gates: int
    n_states: int  # 2 for the LSTM (h, c), 1 otherwise
    reset_after: bool = True  # GRU only

    def keras_layer(self, H, **kwargs):
        """The Keras layer, returning every hidden state and the final state(s)."""
        import keras

        kwargs = {"return_sequences": True, "return_state": True, **kwargs}
        if self.name == "rnn":
            return keras.layers.SimpleRNN(H, **kwargs)
        if self.name == "lstm":
            return keras.layers.LSTM(H, **kwargs)
        return keras.layers.GRU(H, reset_after=self.reset_after, **kwargs)

    def our_cell(self, H):
        from course_pkg import keras_interop as ki

        if self.name == "rnn":
            return ki.RNNCell(H)
        if self.name == "lstm":
            return ki.LSTMCell(H)
        return ki.GRUCell(H, reset_after=self.reset_after)

    def bias_shape(self, H):
        return (2, 3 * H) if self.name.startswith("gru") and self.reset_after else (self.gates * H,)

    def random_params(self, D, H, rng):
        """Weights of Keras' scale (glorot-like W, orthogonal-like U) and a non-zero bias."""
        G = self.gates * H
        W = rng.uniform(-1, 1, (D, G)) * np.sqrt(6 / (D + G))
        U = np.linalg.qr(rng.standard_normal((G, H)))[0].T  # orthonormal rows, as Keras' orthogonal init
        b = 0.5 * rng.standard_normal(self.bias_shape(H))
        return W.astype(np.float32), U.astype(np.float32), b.astype(np.float32)

    def random_inputs(self, B, T, D, H, rng):
        """x (B, T, D) and non-zero initial states: h in (-0.9, 0.9) like a tanh output, c of order 1."""
        x = rng.standard_normal((B, T, D)).astype(np.float32)
        states = [rng.uniform(-0.9, 0.9, (B, H)).astype(np.float32)]
        if self.n_states == 2:
            states.append(rng.standard_normal((B, H)).astype(np.float32))
        return x, states

    def forward(self, x, states, W, U, b):
        """course_pkg's forward pass: (h (B, T, H), final states [h_T(, c_T)], cache)."""
        from course_pkg import gru, lstm, rnn

        if self.name == "rnn":
            h, cache = rnn.rnn_forward(x, states[0], W, U, b)
            return h, [h[:, -1]], cache
        if self.name == "lstm":
            h, c, cache = lstm.lstm_forward(x, states[0], states[1], W, U, b)
            return h, [h[:, -1], c[:, -1]], cache
        h, cache = gru.gru_forward(x, states[0], W, U, b, reset_after=self.reset_after)
        return h, [h[:, -1]], cache

    def backward(self, dh, cache):
        """course_pkg's BPTT: (dx, [dh0(, dc0)], dW, dU, db)."""
        from course_pkg import gru, lstm, rnn

        if self.name == "rnn":
            dx, dh0, dW, dU, db = rnn.rnn_backward(dh, cache)
            return dx, [dh0], dW, dU, db
        if self.name == "lstm":
            dx, dh0, dc0, dW, dU, db = lstm.lstm_backward(dh, cache)
            return dx, [dh0, dc0], dW, dU, db
        dx, dh0, dW, dU, db = gru.gru_backward(dh, cache)
        return dx, [dh0], dW, dU, db

    def step(self, x_t, states, W, U, b):
        """course_pkg's step function: (h_t, new states [h_t(, c_t)], cache)."""
        from course_pkg import gru, lstm, rnn

        if self.name == "rnn":
            h_t, cache = rnn.rnn_step_forward(x_t, states[0], W, U, b)
            return h_t, [h_t], cache
        if self.name == "lstm":
            h_t, c_t, cache = lstm.lstm_step_forward(x_t, states[0], states[1], W, U, b)
            return h_t, [h_t, c_t], cache
        h_t, cache = gru.gru_step_forward(x_t, states[0], W, U, b, reset_after=self.reset_after)
        return h_t, [h_t], cache

    def step_backward(self, dh_t, cache, dc_t=None):
        """course_pkg's step backward: (dx_t, [dh_prev(, dc_prev)], dW, dU, db); dc_t (LSTM only) defaults to 0."""
        from course_pkg import gru, lstm, rnn

        if self.name == "rnn":
            dx, dh_prev, dW, dU, db = rnn.rnn_step_backward(dh_t, cache)
            return dx, [dh_prev], dW, dU, db
        if self.name == "lstm":
            dx, dh_prev, dc_prev, dW, dU, db = lstm.lstm_step_backward(
                dh_t, np.zeros_like(dh_t) if dc_t is None else dc_t, cache
            )
            return dx, [dh_prev, dc_prev], dW, dU, db
        dx, dh_prev, dW, dU, db = gru.gru_step_backward(dh_t, cache)
        return dx, [dh_prev], dW, dU, db


MODELS = {
    "rnn": Model("rnn", 1, 1),
    "lstm": Model("lstm", 4, 2),
    "gru_ra": Model("gru_ra", 3, 1, reset_after=True),
    "gru_nra": Model("gru_nra", 3, 1, reset_after=False),
}


@pytest.fixture(params=list(MODELS.values()), ids=list(MODELS))
def model(request):
    """Each of the simple RNN, the LSTM, and the GRU with reset_after=True and False."""
    return request.param


@pytest.fixture(params=SHAPES, ids=["B{}-T{}-D{}-H{}".format(*s) for s in SHAPES])
def shape(request):
    """(B, T, D, H)."""
    return request.param


@pytest.fixture
def models():
    return MODELS


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


def run_keras(layer, x, states):
    """Call a Keras recurrent layer built with return_state=True: (h (B, T, H), final states), as tensors."""
    out = layer(x, initial_state=list(states))
    return out[0], list(out[1:])


def max_error(actual, expected):
    """Largest absolute difference, divided by the largest |expected| when that exceeds 1 (large gradients)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.max(np.abs(actual - expected)) / max(1.0, np.max(np.abs(expected))))


@pytest.fixture
def helpers():
    """run_keras and max_error, as a fixture so that the test files need not import conftest."""
    return SimpleNamespace(run_keras=run_keras, max_error=max_error)


@pytest.fixture(scope="session")
def built_book():
    """The book built once per test session, strictly, into the repository's own _build/ (where `make book` writes).

    Shared by every test of the built site (test_book.py, test_site_browser.py), so the book is built once; building
    into _build/ shares jupyter-book's execution cache with `make book`, so an unchanged book rebuilds in seconds.
    Returns root (the repository), html (_build/html), pages (the docnames of _toc.yml, in order), log and seconds.
    """
    import re
    import subprocess
    import sys
    import time
    from pathlib import Path

    from course_pkg.toc import toc_docnames

    root = Path(__file__).resolve().parents[1]
    pages = toc_docnames(root / "_toc.yml")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    # --all: every page is read again (cheap: the notebooks' outputs come from the execution cache unless they changed).
    # Without it, Sphinx skips the pages unchanged since the last build, and with them their warnings: a build that
    # failed on a warning would pass the second time, unchanged.
    command = [str(jupyter_book), "build", ".", "--all", "-W", "-n", "--keep-going"]
    # sphinx-external-toc writes the index.html redirect to the root page only when there is none, so a _build/ from
    # before the root page changed keeps redirecting to the old one: remove it, every build writes it again.
    (root / "_build" / "html" / "index.html").unlink(missing_ok=True)
    start = time.perf_counter()
    # The virtual environment's bin/ first on PATH (as `make` does), so the kernels and tools are the venv's.
    env = dict(os.environ, NO_COLOR="1", PATH=os.pathsep.join([str(jupyter_book.parent), os.environ.get("PATH", "")]))
    proc = subprocess.run(
        command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600
    )
    seconds = time.perf_counter() - start
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)  # jupyter-book colours its output even into a pipe
    (root / "_build").mkdir(exist_ok=True)
    (root / "_build" / "test-build.log").write_text(log)
    if proc.returncode != 0:
        lines = log.splitlines()
        problems = []
        for index, line in enumerate(lines):
            if line.startswith("[IPKernelApp]") or not re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line):
                continue  # (the kernel's own log line about TCP is not a problem of the book)
            problems.append(line)
            if "Executing notebook failed" in line:  # the failing cell and its error follow, up to "[mystnb.exec]"
                block = []
                for follow in lines[index + 1: index + 300]:
                    if follow.strip() == "[mystnb.exec]":
                        break
                    block.append(follow)
                first = next((i for i, text in enumerate(block) if "An error occurred while executing" in text), 0)
                problems.extend(block[first:])
        pytest.fail(
            f"the book build failed (exit {proc.returncode}) after {seconds:.0f} s: `{' '.join(command[1:])}` "
            "(full log: _build/test-build.log).\nWarnings and errors:\n" + "\n".join(problems[:100])
            + "\nLast lines of the log:\n" + "\n".join(lines[-25:]),
            pytrace=False,
        )
    return SimpleNamespace(root=root, html=root / "_build" / "html", pages=pages, log=log, seconds=seconds)
