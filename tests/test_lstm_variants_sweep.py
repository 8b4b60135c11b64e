"""The committed sweep of chapter 7 (book/data/lstm_variants.json) is what bench/lstm_variants_sweep.py produces.

The full sweep takes about 45 minutes of CPU; here a reduced run (the same configuration and seeds, 200 updates) of a
few models must reproduce the first two points of their committed curves, and the file must be complete and consistent
with the script's configuration, whose success count is the course's criterion (course_pkg.tasks.adding_solved).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from bench_scripts import load_bench_script

from course_pkg.tasks import ADDING_TOLERANCE, adding_solved

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "book" / "data" / "lstm_variants.json"


sweep = load_bench_script("lstm_variants_sweep")


@pytest.fixture(scope="module")
def data():
    return json.loads(DATA.read_text())


def test_the_success_count_is_the_courses_criterion():
    # One criterion for the adding problem (chapter 6): the sweep reads it from course_pkg, and counts with it.
    assert sweep.CONFIG["tolerance"] == ADDING_TOLERANCE
    assert sweep.adding_solved is adding_solved


def test_data_matches_the_scripts_configuration(data):
    assert data["config"] == sweep.CONFIG, "the committed data were made with another configuration: regenerate them"
    assert data["models"] == sweep.MODELS
    cfg = data["config"]
    n_points = cfg["updates"] // cfg["eval_every"]
    assert data["eval_updates"] == [cfg["eval_every"] * (k + 1) for k in range(n_points)]
    runs = {(run["model"], run["seed"]): run for run in data["runs"]}
    assert set(runs) == {(model, seed) for model in sweep.MODELS for seed in cfg["seeds"]}
    for (model, _), run in runs.items():
        for key in ("test_mse", "test_acc", "mean_abs_c"):
            assert len(run[key]) == n_points, (model, key)
        assert all(np.isfinite(run["test_mse"])), model
        assert all(0 <= a <= 1 for a in run["test_acc"]), model
        assert all((c is None) == (model == "rnn") for c in run["mean_abs_c"]), model


# The tanh RNN, the base LSTM, one variant with an extra parameter (peepholes) and one without a gate, on two seeds.
@pytest.mark.parametrize("model,seed", [("rnn", 0), ("vanilla", 1), ("peephole", 0), ("NFG", 2)])
def test_reduced_run_reproduces_the_committed_curve(data, model, seed):
    committed = next(run for run in data["runs"] if run["model"] == model and run["seed"] == seed)
    record = sweep.train(model, seed, sweep.CONFIG, updates=200)
    # Same seeds, same data, same code: the same numbers. (The tolerance only allows for a BLAS that sums in another
    # order on another machine; the values are stored to 8 significant digits.)
    np.testing.assert_allclose(record["test_mse"], committed["test_mse"][:2], rtol=1e-4)
    np.testing.assert_allclose(record["test_acc"], committed["test_acc"][:2], atol=2 / sweep.CONFIG["n_test"])
    if model != "rnn":
        np.testing.assert_allclose(record["mean_abs_c"], committed["mean_abs_c"][:2], rtol=1e-4)


def test_script_writes_a_reduced_sweep(data, tmp_path):
    out = tmp_path / "sweep.json"
    sweep.main(["--updates", "100", "--seeds", "3", "--models", "CIFG", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["config"]["updates"] == 100 and result["config"]["seeds"] == [3]
    assert result["eval_updates"] == [100]
    (run,) = result["runs"]
    assert run["model"] == "CIFG" and run["seed"] == 3 and len(run["test_mse"]) == 1
    committed = next(r for r in data["runs"] if r["model"] == "CIFG" and r["seed"] == 3)
    np.testing.assert_allclose(run["test_mse"], committed["test_mse"][:1], rtol=1e-4)


def test_merge_of_parts_run_side_by_side_is_a_single_runs_file(tmp_path):
    # The committed sweep may be made in two processes (--models split), then merged: the same runs, in the order of a
    # single run (seed by seed, models in MODELS' order).
    a, b, merged, single = (tmp_path / f"{n}.json" for n in ("a", "b", "merged", "single"))
    common = ["--updates", "100", "--seeds", "3", "4"]
    sweep.main(common + ["--models", "CIFG", "--out", str(a)])
    sweep.main(common + ["--models", "rnn", "--out", str(b)])
    sweep.main(["--merge", str(a), str(b), "--out", str(merged)])
    sweep.main(common + ["--models", "rnn", "CIFG", "--out", str(single)])
    got, want = json.loads(merged.read_text()), json.loads(single.read_text())
    assert got["models"] == want["models"] == ["rnn", "CIFG"]
    assert [(r["model"], r["seed"]) for r in got["runs"]] == [(r["model"], r["seed"]) for r in want["runs"]]
    for g, w in zip(got["runs"], want["runs"]):
        assert g["test_mse"] == w["test_mse"] and g["test_acc"] == w["test_acc"]
    assert got["config"] == want["config"] and got["environment"]["processes"] == 2
    with pytest.raises(ValueError, match="overlap"):
        sweep.merge([a, a], tmp_path / "bad.json")
