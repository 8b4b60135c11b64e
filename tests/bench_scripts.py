"""Load a script of bench/ as a module, for the tests that check a committed sweep against its script."""

import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_bench_script(name):
    """bench/<name>.py as a module, without leaving the OPENBLAS_NUM_THREADS it sets in this process's environment."""
    saved = os.environ.get("OPENBLAS_NUM_THREADS")
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = saved
    return module
