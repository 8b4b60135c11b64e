"""bench/seq2seq_sweep.py and the data it committed (book/data/seq2seq_sweep.json), which chapters 14-16 read.

1. The committed data were made with the script's FULL configuration and hold every run it plans, once: the
   learning-rate study (every model at every rate, with its validation score), the teacher-forced runs and the
   scheduled-sampling runs, each at the rate its model won in the study, with complete curves and final measurements.
   "provenance" names the invocation of the script that computed each run (the file reuses runs across changes of
   the grid of rates and of the seeds: bench/seq2seq_sweep.py's REUSABLE_ACROSS).
2. Re-running the first updates of committed runs (a teacher-forced and a scheduled-sampling one) reproduces their
   first training losses: the data come from this script with this configuration. Runs are seeded and use one BLAS
   thread; the tolerance absorbs float32 rounding (the first sweep's runs were made by the step-by-step decoder, which
   computes the same function as the parallel teacher-forced one in a different order) and the JSON's 8 significant
   digits; a run computed with today's code (it has "computed_at") is reproduced exactly.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from bench_scripts import load_bench_script

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "book" / "data" / "seq2seq_sweep.json"


@pytest.fixture(scope="module")
def data():
    assert DATA.is_file(), f"{DATA.relative_to(ROOT)} is missing: run `python bench/seq2seq_sweep.py --full`"
    return json.loads(DATA.read_text())


@pytest.fixture(scope="module")
def sweep():
    return load_bench_script("seq2seq_sweep")


def test_committed_config_is_the_scripts_full_config(data, sweep):
    assert data["config"] == json.loads(json.dumps(sweep.FULL)), (
        "book/data/seq2seq_sweep.json was made with another configuration than FULL in bench/seq2seq_sweep.py: "
        "re-run `python bench/seq2seq_sweep.py --full`")


def test_every_planned_run_is_there_once_and_complete(data, sweep):
    cfg = data["config"]
    study = {(r["cell"], r["attention"], r["lr"]) for r in data["study"]}
    assert len(study) == len(data["study"])
    assert study == {(c, a, lr) for c, a in cfg["models"] for lr in sweep.study_grid(cfg, c, a)}
    assert all(0 <= r["val_exact"] <= 1 and r["updates"] == cfg["study_updates"] for r in data["study"])
    plan = sweep.plan_runs(cfg)
    keys = [(r["cell"], r["attention"], r["training"], r["seed"]) for r in data["runs"]]
    assert sorted(keys, key=str) == sorted(plan, key=str)
    # the schedule's k: every candidate tried on validation data, at the rate the model won, for the full budget
    for c, a in cfg["scheduled"]["models"]:
        tried = [r for r in data["scheduled_study"] if (r["cell"], r["attention"]) == (c, a)]
        assert sorted(r["k"] for r in tried) == sorted(cfg["scheduled_study"]["ks"])
        lr = sweep.chosen_lr(data["study"], c, a)
        assert all(r["lr"] == lr and r["seed"] == cfg["study_seed"] and r["updates"] == cfg["updates"]
                   and 0 <= r["val_exact"] <= 1 for r in tried)
        k = sweep.chosen_k(tried, cfg)
        assert all(r.get("k", cfg["scheduled"]["k"]) == k for r in data["runs"]
                   if r["training"] == "scheduled" and (r["cell"], r["attention"]) == (c, a))
    n_digits = cfg["digits"][1] - cfg["digits"][0] + 1
    for r in data["runs"]:
        assert [c["update"] for c in r["curve"]] == list(range(0, cfg["updates"] + 1, cfg["eval_every"]))
        assert len(r["train_loss"]) == cfg["updates"] // cfg["eval_every"] and len(r["head"]) == cfg["head"]
        f = r["final"]
        assert len(f["exact_by_digits"]) == n_digits
        assert np.isclose(f["exact"], np.mean(f["exact_by_digits"]), atol=1e-6)  # 100 numbers of each length
        assert np.isclose(f["exact"], r["curve"][-1]["exact"], atol=1e-6)  # the last point of the curve
        widths = {(b["width"], b["length_penalty"]) for b in f["beams"]}
        assert widths == {(K, a) for K in cfg["beam_widths"] for a in cfg["length_penalty"]}
        greedy = [b for b in f["beams"] if b["width"] == 1 and b["length_penalty"] == 0.0][0]
        assert np.isclose(greedy["exact"], f["exact"], atol=1e-6)  # beam width 1 is greedy search
        assert all(np.isfinite(b["mean_logp"]) and b["mean_logp"] <= 0 for b in f["beams"])


def test_runs_use_the_learning_rate_chosen_on_validation_data(data, sweep):
    for r in data["runs"]:
        assert r["lr"] == sweep.chosen_lr(data["study"], r["cell"], r["attention"])


def test_every_chosen_rate_is_inside_the_grid(data, sweep):
    """The largest rate tried scored lower on validation than the chosen one: the grid reaches past the best rate."""
    for cell, attention in data["config"]["models"]:
        mine = {r["lr"]: r["val_exact"] for r in data["study"] if r["cell"] == cell and r["attention"] == attention}
        best = sweep.chosen_lr(data["study"], cell, attention)
        assert mine[max(mine)] < mine[best], (cell, attention, best, "widen the grid upwards")


def test_provenance_names_the_invocation_that_computed_every_run(data):
    computed_study = [tuple(k) for p in data["provenance"] for k in p["computed_study"]]
    computed_runs = [tuple(k[:5]) for p in data["provenance"] for k in p["computed_runs"]]
    computed_k = [tuple(k) for p in data["provenance"] for k in p.get("computed_scheduled_study", [])]
    assert sorted(computed_k, key=str) == sorted(((r["cell"], r["attention"], r["lr"], r["k"])
                                                  for r in data["scheduled_study"]), key=str)
    assert sorted(computed_study, key=str) == sorted(((r["cell"], r["attention"], r["lr"]) for r in data["study"]),
                                                     key=str)
    every_run = data["runs"] + data.get("superseded_runs", [])
    assert sorted(computed_runs, key=str) == sorted(((r["cell"], r["attention"], r["training"], r["seed"], r["lr"])
                                                     for r in every_run), key=str)
    assert np.isclose(data["total_seconds"], sum(p["seconds"] for p in data["provenance"]), atol=0.05)


def test_reuse_needs_the_same_config_apart_from_the_grid_and_the_seeds(sweep):
    cfg = json.loads(json.dumps(sweep.FULL))
    assert sweep.reusable({**cfg, "study_lrs": [0.001], "seeds": [0]}, cfg)
    assert not sweep.reusable({**cfg, "updates": cfg["updates"] + 1}, cfg)
    assert not sweep.reusable({**cfg, "scheduled": {**cfg["scheduled"], "k": 1}}, cfg)
    assert sweep.reusable({**cfg, "scheduled_study": {"ks": [1]}}, cfg)  # a scheduled run's key has its k


@pytest.mark.slow
@pytest.mark.parametrize("training", ["teacher", "scheduled"])
def test_rerunning_the_first_updates_reproduces_the_committed_losses(data, sweep, training):
    cfg = data["config"]
    committed = [r for r in data["runs"] if r["cell"] == "lstm" and r["attention"] is None
                 and r["training"] == training and r["seed"] == 0][0]
    rec, _ = sweep.train_run("lstm", None, 0, committed["lr"], cfg, training=training, updates=cfg["head"],
                             evaluate=False, log=lambda *a: None, k=committed.get("k"))
    np.testing.assert_allclose(rec["head"], committed["head"], rtol=1e-5)
    if "computed_at" in committed:  # computed with today's course_pkg: the same float32 operations, bit for bit
        assert rec["head"] == committed["head"]
