"""bench/long_range_sweep.py and the data it committed (book/data/long_range.json), which chapter 8 plots.

1. The committed data have the structure the chapter reads: every run the configuration lists, once, with curves of
   the right length, final metrics equal to the curves' last points, and the baselines of course_pkg.tasks.
2. Re-running the script on a prefix of the committed configuration (a few tasks, one seed, the first updates)
   reproduces the start of the committed learning curves: the data come from this script, with this configuration.
   Runs are seeded and use one BLAS thread, so on the same numpy/OpenBLAS build they agree bit for bit; the tolerance
   only absorbs the JSON's 8 significant digits. (On another CPU or BLAS build the float32 rounding can differ and
   training amplifies it; if this test fails there, compare `python bench/long_range_sweep.py --full` output.)
"""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bench_scripts import load_bench_script

from course_pkg.tasks import ADDING_BASELINE_MSE, copy_task_baseline

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "long_range_sweep.py"
DATA = ROOT / "book" / "data" / "long_range.json"

# What book/08_long_range.ipynb looks up in the data: (task, T, cell, seeds) at the cell's learning rate for the task.
CHAPTER_NEEDS = [
    ("adding", T, cell, [0, 1, 2]) for T in (25, 50, 100) for cell in ("rnn", "lstm", "gru")
] + [("adding", 200, cell, [0, 1]) for cell in ("rnn", "lstm", "gru")] + [
    ("adding", T, "lstm_fb0", [0, 1, 2]) for T in (50, 100)
] + [("adding", T, "rnn_wide", [0, 1]) for T in (50, 100)] + [
    ("copy", T, cell, [0, 1]) for T in (10, 50) for cell in ("rnn", "lstm", "gru")
] + [("reber", 0, cell, [0, 1, 2, 3, 4]) for cell in ("rnn", "rnn_elman", "lstm", "lstm_fb0", "gru")]

METRICS = {"adding": {"loss", "correct_0.08"}, "copy": {"loss", "recall_accuracy"},
           "reber": {"loss", "success", "success_unseen"}}


@pytest.fixture(scope="module")
def data():
    assert DATA.is_file(), f"{DATA.relative_to(ROOT)} is missing: run `python bench/long_range_sweep.py --full`"
    return json.loads(DATA.read_text())


@pytest.fixture(scope="module")
def sweep():
    """The script as a module (its functions)."""
    return load_bench_script("long_range_sweep")


def index(runs):
    return {(r["task"], r["T"], r["cell"], r["seed"], r["lr"]): r for r in runs}


def test_committed_config_is_the_scripts_full_config(data, sweep):
    assert data["config"] == json.loads(json.dumps(sweep.FULL)), (
        "book/data/long_range.json was made with another configuration than FULL in bench/long_range_sweep.py: "
        "run `python bench/long_range_sweep.py --full`"
    )


def test_every_configured_run_is_there_once(data, sweep):
    cfg = data["config"]
    expected = set()
    for exp in cfg["experiments"]:
        for T, cell, seed in itertools.product(exp["T"], exp["cells"], exp["seeds"]):
            for lr in exp.get("lr", [sweep.learning_rate(cfg, exp["task"], cell)]):
                expected.add((exp["task"], T, cell, seed, lr))
    keys = [(r["task"], r["T"], r["cell"], r["seed"], r["lr"]) for r in data["runs"]]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    assert set(keys) == expected


def test_runs_have_the_structure_the_chapter_reads(data):
    cfg = data["config"]
    evals = list(range(0, cfg["updates"] + 1, cfg["eval_every"]))
    for r in data["runs"]:
        name = f"{r['task']} T={r['T']} {r['cell']} seed {r['seed']} lr {r['lr']}"
        assert r["eval_updates"] == evals, name
        assert set(r["test"]) == METRICS[r["task"]], name
        for metric, curve in r["test"].items():
            assert len(curve) == len(evals) and all(np.isfinite(curve)), name
            assert r["final"][metric] == curve[-1], name
        assert len(r["train_mean"]) == len(evals) - 1 and len(r["train_head"]) == cfg["head"], name
        assert r["n_params"] > 0 and 0 <= r["clipped_fraction"] <= 1 and r["seconds"] > 0, name
        if "val" in r:  # the studies' runs: the validation curves, with the test curves' metrics and length
            assert set(r["val"]) == METRICS[r["task"]], name
            assert all(len(curve) == len(evals) and all(np.isfinite(curve)) for curve in r["val"].values()), name
        if r["task"] == "adding":
            assert r["baseline"] == pytest.approx(ADDING_BASELINE_MSE), name
        elif r["task"] == "copy":
            assert r["baseline"] == pytest.approx(copy_task_baseline(r["T"])), name
        else:
            assert r["baseline"] is None and 0 <= r["final"]["train_success"] <= 1, name
    assert set(data["reber_data"]) == {"train_length_mean", "train_length_max", "test_unseen_fraction"}


def studies(cfg):
    """The learning-rate studies: the experiments with a list of rates, one per task, first in the list."""
    found = {exp["task"]: exp for exp in cfg["experiments"] if "lr" in exp}
    assert list(found) == [exp["task"] for exp in cfg["experiments"][: len(found)]] == ["adding", "copy", "reber"]
    return found


def test_the_chapters_lookups_exist(data, sweep):
    cfg = data["config"]
    runs = index(data["runs"])
    for task, T, cell, seeds in CHAPTER_NEEDS:
        for seed in seeds:
            assert (task, T, cell, seed, sweep.learning_rate(cfg, task, cell)) in runs, (task, T, cell, seed)
    for task, study in studies(cfg).items():
        for cell, seed, rate in itertools.product(study["cells"], study["seeds"], study["lr"]):
            assert (task, study["T"][0], cell, seed, rate) in runs


def validation_means(data, task, cell):
    """{lr: final validation loss averaged over the study's seeds} for one cell of a task's study."""
    study = studies(data["config"])[task]
    runs = index(data["runs"])
    return {lr: float(np.mean([runs[task, study["T"][0], cell, s, lr]["val"]["loss"][-1] for s in study["seeds"]]))
            for lr in study["lr"]}


def test_learning_rates_are_the_studys_choice_on_validation_data(data):
    """Each cell's learning rate on a task is the one of the task's study with the lowest final *validation* loss,
    averaged over the seeds, as the chapter says; the test set plays no part. The study's runs carry validation
    curves, scored on sets drawn apart from the test sets."""
    cfg = data["config"]
    for task, study in studies(cfg).items():
        assert set(cfg["lr"][task]) == set(study["cells"])
        for cell in study["cells"]:
            mean = validation_means(data, task, cell)
            assert cfg["lr"][task][cell] == min(mean, key=mean.get), (task, cell, mean)


def test_no_chosen_rate_is_at_an_edge_of_its_grid(data):
    """A choice at the smallest or largest rate tried says the best rate may lie outside the grid."""
    cfg = data["config"]
    for task, study in studies(cfg).items():
        for cell in study["cells"]:
            assert min(study["lr"]) < cfg["lr"][task][cell] < max(study["lr"]), (task, cell, study["lr"])


def test_validation_sets_are_not_the_test_sets(sweep):
    """Drawn with their own seeds: no validation sequence (or string) equals a test one, beyond chance for Reber."""
    cfg = json.loads(json.dumps(sweep.COMMON))
    for name, T in (("adding", 25), ("copy", 10)):
        task = sweep.Task(name, T, cfg)
        test = {row.tobytes() for row in task.x_test}
        assert not any(row.tobytes() in test for row in task.x_val), name
    reber = sweep.Task("reber", 0, cfg)
    assert reber.val_arrays[0].shape[0] == cfg["validation"]["reber"]["n_val"]
    assert not np.array_equal(reber.val_arrays[0][:10], reber.test_arrays[0][:10])


def test_reber_success_criterion(sweep):
    """Top-k equal to the legal set: a model that spreads its probability over exactly the legal symbols succeeds."""
    strings = ["BTBTXSETE", "BPBPVVEPE"]
    x, y, mask, legal = sweep.reber_arrays(strings)
    perfect = np.where(legal, 0.0, -5.0)
    assert sweep.reber_success(perfect, mask, legal).all()
    one_wrong = perfect.copy()
    one_wrong[0, -1, :] = 0.0  # at the last position of the first string (before its E), every symbol ties
    assert list(sweep.reber_success(one_wrong, mask, legal)) == [False, True]
    assert mask.sum(axis=1).tolist() == [len(s) - 1 for s in strings]


@pytest.mark.slow
def test_rerun_reproduces_the_committed_curves(data, tmp_path):
    """A prefix of the committed sweep, re-run: same losses at every one of the first `head` updates, same test
    metrics at the evaluations it reaches. About 15 s."""
    cfg = data["config"]
    committed = index(data["runs"])
    updates = 2 * cfg["eval_every"]
    commands = [
        ["--task", "adding", "--T", "25", "--cells", "rnn", "lstm", "gru", "--seeds", "0"],
        ["--task", "adding", "--T", "50", "--cells", "lstm", "--seeds", "1", "--lr", "0.003"],
        ["--task", "copy", "--T", "10", "--cells", "rnn", "gru", "--seeds", "1"],
        ["--task", "reber", "--cells", "rnn_elman", "lstm_fb0", "--seeds", "2"],
    ]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    checked = 0
    for number, args in enumerate(commands):
        out = tmp_path / f"rerun{number}.json"
        subprocess.run(
            [sys.executable, str(SCRIPT), *args, "--updates", str(updates), "--out", str(out)],
            check=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
        rerun = json.loads(out.read_text())
        assert {k: v for k, v in rerun["config"].items() if k not in ("experiments", "updates")} == {
            k: v for k, v in cfg.items() if k not in ("experiments", "updates")
        }
        for r in rerun["runs"]:
            key = (r["task"], r["T"], r["cell"], r["seed"], r["lr"])
            c = committed[key]
            np.testing.assert_allclose(r["train_head"], c["train_head"], rtol=1e-6, err_msg=str(key))
            n = len(r["eval_updates"])
            assert r["eval_updates"] == c["eval_updates"][:n]
            np.testing.assert_allclose(r["train_mean"], c["train_mean"][: n - 1], rtol=1e-6, err_msg=str(key))
            for metric, curve in r["test"].items():
                np.testing.assert_allclose(curve, c["test"][metric][:n], rtol=1e-6, atol=1e-9, err_msg=str(key))
            checked += 1
    assert checked == 8
