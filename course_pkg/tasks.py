"""Synthetic sequence tasks from the literature, generated (nothing downloaded), seeded and reproducible."""

import numpy as np

#: The MSE of always predicting 1, the mean of the adding problem's target: Var(X1 + X2) = 2/12 for X ~ U[0, 1].
ADDING_BASELINE_MSE = 1 / 6

#: The course's one success criterion for the adding problem: a sequence is solved if |prediction - target| is below
#: this. It is Hochreiter & Schmidhuber's (1997) criterion, |error| < 0.04 on their target 0.5 + (X1 + X2) / 4 with
#: X ~ U[-1, 1], carried over to this form of the task: with u = (X + 1) / 2 their target is (u1 + u2) / 2, half of
#: ours, so their errors are half of ours and their 0.04 is 0.08 here.
ADDING_TOLERANCE = 0.08


def adding_solved(prediction, target):
    """Per sequence, True if it meets the course's criterion |prediction - target| < ADDING_TOLERANCE. (n,) bool."""
    return np.abs(np.asarray(prediction) - np.asarray(target)) < ADDING_TOLERANCE


def adding_problem(n, T, seed=None, dtype=np.float32):
    """The adding problem as in Le et al. (2015) and Arjovsky et al. (2016).

    Each of the n sequences has T steps of two channels: a value ~ U[0, 1] and a marker that is 1 at exactly two
    steps, one drawn in each half of the sequence, and 0 elsewhere. The target is the sum of the two marked values.
    Returns x (n, T, 2) and y (n,). A model that ignores the input does best by predicting 1: MSE 1/6.
    """
    if T < 2:
        raise ValueError(f"adding_problem: T must be at least 2 (one marker in each half); got {T}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    values = rng.uniform(0, 1, size=(n, T))
    half = T // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, T, size=n)
    markers = np.zeros((n, T))
    rows = np.arange(n)
    markers[rows, first] = 1
    markers[rows, second] = 1
    x = np.stack([values, markers], axis=-1).astype(dtype)
    y = (values[rows, first] + values[rows, second]).astype(dtype)
    return x, y


def copy_task(n, T, n_symbols=8, length=10, seed=None):
    """The copy (memory) task of Arjovsky et al. (2016).

    Tokens: 0 blank, 1..n_symbols data, n_symbols + 1 the delimiter. An input sequence has T + 2*length steps:
    `length` random data symbols, T - 1 blanks, the delimiter, then `length` blanks; the target is blank everywhere
    except the last `length` steps, which must reproduce the data symbols. Returns x, y, both (n, T + 2*length)
    integer arrays. A model that outputs blanks and then guesses uniformly scores the memoryless baseline
    copy_task_baseline(T).
    """
    if T < 1:
        raise ValueError(f"copy_task: T must be at least 1; got {T}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    L = T + 2 * length
    data = rng.integers(1, n_symbols + 1, size=(n, length))
    x = np.zeros((n, L), dtype=np.int64)
    y = np.zeros((n, L), dtype=np.int64)
    x[:, :length] = data
    x[:, length + T - 1] = n_symbols + 1
    y[:, -length:] = data
    return x, y


def copy_task_baseline(T, n_symbols=8, length=10):
    """Cross-entropy per step of the best memoryless strategy: length * log(n_symbols) / (T + 2 * length)."""
    return length * np.log(n_symbols) / (T + 2 * length)


REBER_SYMBOLS = "BTPSXVE"

# The Reber grammar as a finite automaton: state -> [(symbol, next state)], each choice equally likely.
_REBER = {
    0: [("B", 1)],
    1: [("T", 2), ("P", 3)],
    2: [("S", 2), ("X", 4)],
    3: [("T", 3), ("V", 5)],
    4: [("X", 3), ("S", 6)],
    5: [("P", 4), ("V", 6)],
    6: [("E", None)],
}


def _reber_string(rng):
    state, out = 0, []
    while state is not None:
        symbol, state = _REBER[state][rng.integers(len(_REBER[state]))]
        out.append(symbol)
    return "".join(out)


def embedded_reber(n, seed=None):
    """n strings of the embedded Reber grammar (Hochreiter & Schmidhuber 1997, experiment 1).

    Each is B, then T or P, then a Reber string, then the same T or P again, then E. Predicting the second-to-last
    symbol needs the second symbol, seen a whole Reber string earlier: the long-range dependency.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    strings = []
    for _ in range(n):
        branch = "TP"[rng.integers(2)]
        strings.append("B" + branch + _reber_string(rng) + branch + "E")
    return strings


def embedded_reber_successors(string):
    """For each position of an embedded Reber string, the set of symbols the grammar allows next (the last is empty).

    A model predicts a string perfectly if at every position the symbols it ranks highest are exactly this set.
    Raises ValueError for a string the grammar does not generate.
    """
    if len(string) < 9 or string[0] != "B" or string[1] not in "TP" or string[-2:] != string[1] + "E":
        raise ValueError(f"embedded_reber_successors: {string!r} is not an embedded Reber string")
    sets = [{"T", "P"}, {"B"}]
    state = 0
    for symbol in string[2:-2]:
        moves = dict(_REBER[state])
        if symbol not in moves:
            raise ValueError(f"embedded_reber_successors: {string!r} is not an embedded Reber string")
        state = moves[symbol]
        sets.append({s for s, _ in _REBER[state]} if state is not None else {string[1]})
    if state is not None:
        raise ValueError(f"embedded_reber_successors: {string!r} is not an embedded Reber string")
    return sets + [{"E"}, set()]
