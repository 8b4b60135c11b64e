"""The committed speed sweep of appendix 11 (book/data/lstm_gru_speed.json) is what bench/lstm_gru_speed.py produces.

The file must be complete and consistent with the script's configuration. Timings cannot be reproduced exactly, so
a reduced run of the script (the smallest size, fewer repetitions) only checks that the script still produces every
record the appendix reads, with finite positive timings. Speed itself is not asserted: a shared machine's timings
drift too much for a test (the project measures speed in benchmarks, never in timed tests).
"""

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from bench_scripts import load_bench_script

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "book" / "data" / "lstm_gru_speed.json"


speed = load_bench_script("lstm_gru_speed")


@pytest.fixture(scope="module")
def data():
    return json.loads(DATA.read_text())


def test_data_matches_the_scripts_configuration(data):
    assert data["config"] == speed.CONFIG, "the committed data were made with another configuration: regenerate them"
    cfg = data["config"]
    keys = [(r["hidden"], r["backend"], r["cell"], r["pass"]) for r in data["records"]]
    expected = {(H, b, c, p) for H in cfg["hidden"] for b in speed.BACKENDS for c in speed.CELLS for p in speed.PASSES}
    assert len(keys) == len(set(keys)) and set(keys) == expected
    for r in data["records"]:
        for median_key, times_key in (("median_ms", "times_ms"), ("cpu_median_ms", "cpu_times_ms")):
            times = r[times_key]
            assert len(times) == cfg["repeats"], r
            assert all(math.isfinite(t) and t >= 0 for t in times), r
            assert r[median_key] == pytest.approx(statistics.median(times), abs=2e-3), r
        assert r["median_ms"] > 0, r
    # the forward pass alone is cheaper than forward plus backward, for every cell, backend and size
    med = {(r["hidden"], r["backend"], r["cell"], r["pass"]): r["median_ms"] for r in data["records"]}
    for H, b, c, _ in expected:
        assert med[H, b, c, "forward"] < med[H, b, c, "forward+backward"], (H, b, c)


def test_reduced_run_agrees_with_the_committed_data(data, tmp_path):
    # In a fresh process, as a user runs it: numpy's BLAS must start with one thread, which cannot be arranged once
    # numpy is imported (as it is here); with two, idle BLAS threads spin and inflate the CPU times erratically.
    H, out = speed.CONFIG["hidden"][0], tmp_path / "speed.json"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    subprocess.run([sys.executable, str(ROOT / "bench" / "lstm_gru_speed.py"), "--hidden", str(H), "--repeats", "5",
                    "--out", str(out)], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    rerun = json.loads(out.read_text())
    records = rerun["records"]
    assert rerun["environment"]["openblas_threads"] == "1"
    assert rerun["environment"]["tensorflow_threads"] == {"intra_op": 1, "inter_op": 1}
    assert {(r["backend"], r["cell"], r["pass"]) for r in records} == {
        (b, c, p) for b in speed.BACKENDS for c in speed.CELLS for p in speed.PASSES
    }
    assert all(math.isfinite(r["median_ms"]) and r["median_ms"] > 0 for r in records)
    assert all(len(r["times_ms"]) == 5 for r in records)
    for pass_ in speed.PASSES:  # the ratios the appendix plots can be formed from a fresh run
        assert math.isfinite(speed.ratios(records, "cpu_median_ms")[H, "course_pkg", pass_])
