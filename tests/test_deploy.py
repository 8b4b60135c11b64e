"""The cluster configurations of grader/deploy/: the Slurm job script that dask-jobqueue makes from slurm.yaml (one
thread per Dask worker, the course's Python, the prologue that puts its bin/ on PATH, a valid bash script) and the
structure of the Kubernetes DaskCluster resource (one-thread workers of the course's image, the same image for the
scheduler, the course volume, the profiles bubblewrap needs, the scheduler's service). The grading itself on a real
multi-process Dask cluster is tests/test_cluster.py."""

import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import yaml

from grader import deploy


def test_the_slurm_job_script_runs_one_thread_workers_of_the_courses_python(tmp_path):
    settings = yaml.safe_load(deploy.SLURM_CONFIG.read_text())["jobqueue"]["slurm"]
    cluster = deploy.slurm_cluster(scheduler_options={"port": 0, "dashboard_address": None})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    for directive in ("#SBATCH -J rnn-grader", "#SBATCH -n 1", f"#SBATCH --cpus-per-task={settings['cores']}",
                      f"#SBATCH -t {settings['walltime']}"):
        assert directive in lines, (directive, script)
    assert any(line.startswith("#SBATCH --mem=") for line in lines), script
    for line in settings["job-script-prologue"]:
        assert line in lines, (line, script)
    worker = next(line for line in lines if "distributed.cli.dask_worker" in line)
    assert worker.startswith(f"{settings['python']} -m distributed.cli.dask_worker tcp://"), worker
    assert settings["processes"] == settings["cores"]  # a core per worker, a sandbox slot per worker
    for words in ("--nthreads 1", f"--nworkers {settings['processes']}", "--nanny", "--death-timeout 120",
                  "--lifetime 3h50m"):
        assert words in worker, (words, worker)
    (tmp_path / "job.sh").write_text(script)
    check = subprocess.run(["bash", "-n", str(tmp_path / "job.sh")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_the_kubernetes_resource_runs_one_thread_workers_of_the_course_image():
    resource = yaml.safe_load(deploy.KUBERNETES_CONFIG.read_text())
    assert (resource["apiVersion"], resource["kind"]) == ("kubernetes.dask.org/v1", "DaskCluster")
    name = resource["metadata"]["name"]
    worker_pod, scheduler = resource["spec"]["worker"]["spec"], resource["spec"]["scheduler"]
    (worker,), (sched,) = worker_pod["containers"], scheduler["spec"]["containers"]
    assert worker["image"] == sched["image"]
    assert worker["args"][:2] == ["/course/.venv/bin/dask", "worker"] and sched["args"] == [
        "/course/.venv/bin/dask", "scheduler"]
    args = worker["args"]
    assert args[args.index("--nthreads") + 1] == "1" and "$(DASK_WORKER_NAME)" in args
    env = {e["name"]: e for e in worker["env"]}
    assert env["PATH"]["value"].startswith("/course/.venv/bin:")
    assert env["GRADEBOOK_URL"]["valueFrom"]["secretKeyRef"]["key"] == "url"
    assert worker["resources"]["limits"]["cpu"] == "1"
    assert worker["securityContext"]["seccompProfile"]["type"] == "Unconfined"
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    volumes = {v["name"]: v for v in worker_pod["volumes"]}
    assert mounts == {"course": "/course/assignments"} and "persistentVolumeClaim" in volumes["course"]
    service = scheduler["service"]
    assert service["selector"] == {"dask.org/cluster-name": name, "dask.org/component": "scheduler"}
    ports = {p["name"]: p["port"] for p in service["ports"]}
    assert ports == {"tcp-comm": 8786, "http-dashboard": 8787}
    assert {p["name"] for p in sched["ports"]} == {"tcp-comm", "http-dashboard"}


REPO = pathlib.Path(__file__).resolve().parents[1]


def test_an_installed_grader_has_its_packages_and_their_files(tmp_path):
    """A wheel built from pyproject.toml (offline: no index, no build isolation) holds every package of grader/ and
    course_pkg/ (a folder with __init__.py) and every other file in them that is not Python: the deploy
    configurations that `python -m grader.deploy` reads."""
    source = tmp_path / "src"  # (a copy: the build's build/ and egg-info folders stay out of the repository)
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("grader", "course_pkg"):
        shutil.copytree(REPO / package, source / package, ignore=ignore)
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-w", str(tmp_path / "dist"), str(source)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = set()
    for package in ("grader", "course_pkg"):
        for path in (source / package).rglob("*"):
            relative = path.relative_to(source).as_posix()
            if path.is_file() and (path.parent / "__init__.py").exists():
                wanted.add(relative)
    assert {"grader/deploy/slurm.yaml", "grader/deploy/kubernetes.yaml", "grader/deploy/__main__.py"} <= wanted
    assert sorted(wanted - names) == []
