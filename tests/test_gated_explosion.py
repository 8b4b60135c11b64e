"""bench/gated_explosion.py and the data it committed (book/data/gated_explosion.json), which chapter 4 plots.

1. The committed data have the structure the chapter reads, and the spike each run names is the one its unclipped
   norms define.
2. Re-running the script with fewer updates reproduces the start of the committed curves (same seed, one BLAS thread:
   deterministic; the tolerance absorbs the JSON's 6 significant digits), and a branch replayed from the spike starts
   from the same state as the unclipped run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bench_scripts import load_bench_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gated_explosion.py"
DATA = ROOT / "book" / "data" / "gated_explosion.json"


@pytest.fixture(scope="module")
def data():
    assert DATA.is_file(), f"{DATA.relative_to(ROOT)} is missing: run `python bench/gated_explosion.py`"
    return json.loads(DATA.read_text())


@pytest.fixture(scope="module")
def script():
    return load_bench_script("gated_explosion")


def test_committed_config_is_the_scripts(data, script):
    assert data["config"] == script.CONFIG


def test_runs_have_the_structure_the_chapter_reads(data, script):
    cfg = data["config"]
    assert [r["seed"] for r in data["runs"]] == cfg["seeds"]
    for r in data["runs"]:
        for arm in ("none", "clip"):
            assert len(r[arm]["norm"]) == len(r[arm]["loss"]) == cfg["updates"]
            assert np.isfinite(r[arm]["test_mse"])
        k, ratio = script.spike_index(r["none"]["norm"], cfg["warmup"])
        assert r["spike"]["update"] == k and r["spike"]["ratio_to_median"] == pytest.approx(ratio, rel=1e-4)
        for arm in ("none", "clip"):
            assert len(r["spike"][arm]["loss"]) == min(cfg["branch"], cfg["updates"] - k)
        # the branches start from the unclipped run's state: the same gradient at the spike, and the unclipped
        # branch is the unclipped run
        assert r["spike"]["none"]["norm"][0] == r["spike"]["clip"]["norm"][0] == r["none"]["norm"][k]
        n = len(r["spike"]["none"]["loss"])
        np.testing.assert_allclose(r["spike"]["none"]["loss"], r["none"]["loss"][k:k + n], rtol=1e-5)


def test_spike_index_finds_the_largest_jump_relative_to_the_past(script):
    norms = [1.0] * 10 + [5.0] + [1.0] * 5 + [3.0]
    assert script.spike_index(norms, warmup=3) == (10, 5.0)


@pytest.mark.slow
def test_rerun_reproduces_the_committed_curves(data, tmp_path):
    cfg = data["config"]
    out = tmp_path / "rerun.json"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    updates = 150
    subprocess.run([sys.executable, str(SCRIPT), "--seeds", str(cfg["seeds"][0]), "--updates", str(updates),
                    "--branch", "10", "--out", str(out)], check=True, cwd=ROOT, env=env, capture_output=True,
                   text=True, timeout=600)
    rerun = json.loads(out.read_text())["runs"][0]
    committed = data["runs"][0]
    for arm in ("none", "clip"):
        np.testing.assert_allclose(rerun[arm]["norm"], committed[arm]["norm"][:updates], rtol=1e-5, err_msg=arm)
        np.testing.assert_allclose(rerun[arm]["loss"], committed[arm]["loss"][:updates], rtol=1e-5, err_msg=arm)
