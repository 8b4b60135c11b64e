"""bench/regularisation_sweep.py and the data it committed (book/data/regularisation.json), which the chapter on
regularisation and initialisation plots: the structure the chapter reads, and a re-run of the first 100 updates of
seed 0 that reproduces the committed curves' first points (deterministic: seeded, one BLAS thread)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bench_scripts import load_bench_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "regularisation_sweep.py"
DATA = ROOT / "book" / "data" / "regularisation.json"


@pytest.fixture(scope="module")
def data():
    assert DATA.is_file(), f"{DATA.relative_to(ROOT)} is missing: run `python bench/regularisation_sweep.py`"
    return json.loads(DATA.read_text())


def test_committed_config_is_the_scripts(data):
    assert data["config"] == json.loads(json.dumps(load_bench_script("regularisation_sweep").CONFIG))


def test_every_run_is_there_once_with_its_curve(data):
    cfg = data["config"]
    expected = {("charlm", m, s) for m in cfg["charlm"]["methods"] for s in cfg["seeds"]}
    expected |= {("adding", m, s) for m in cfg["adding"]["models"] for s in cfg["seeds"]}
    keys = [(r["task"], r["model"], r["seed"]) for r in data["runs"]]
    assert len(keys) == len(set(keys)) and set(keys) == expected
    for r in data["runs"]:
        updates = cfg[r["task"]]["updates"]
        steps = [u for u, _ in r["curve"]]
        assert steps[-1] == updates and steps == sorted(steps), r["model"]
        assert all(np.isfinite(v) for _, v in r["curve"]), r["model"]


@pytest.mark.slow
def test_rerun_reproduces_the_start_of_the_committed_curves(data, tmp_path):
    out = tmp_path / "rerun.json"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    subprocess.run([sys.executable, str(SCRIPT), "--seeds", "0", "--charlm-updates", "100", "--adding-updates", "100",
                    "--out", str(out)], check=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    committed = {(r["task"], r["model"], r["seed"]): r for r in data["runs"]}
    for r in json.loads(out.read_text())["runs"]:
        c = committed[r["task"], r["model"], r["seed"]]
        n = len(r["curve"])
        np.testing.assert_allclose(r["curve"], c["curve"][:n], rtol=1e-5, err_msg=str((r["task"], r["model"])))
