"""Dask workers for the classroom's grading on a cluster: the configuration files beside this module and the
commands that use them.

    python -m grader.deploy slurm [--config grader/deploy/slurm.yaml] [--jobs N] [--print-job-script]

starts a Dask scheduler here (the login node) and submits N Slurm jobs of workers (dask-jobqueue's SLURMCluster, its
settings from slurm.yaml), prints the scheduler's address for `make autograde SCHEDULER=...`, and keeps the
scheduler until interrupted (the jobs end with it). `--print-job-script` prints the batch script and submits
nothing. kubernetes.yaml is a DaskCluster resource for the dask-kubernetes operator (`kubectl apply -f`); see its
comments.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
SLURM_CONFIG = HERE / "slurm.yaml"
KUBERNETES_CONFIG = HERE / "kubernetes.yaml"


def slurm_cluster(config=SLURM_CONFIG, **overrides):
    """A dask_jobqueue.SLURMCluster with the settings of `config` (a Dask configuration file, section
    jobqueue.slurm); keyword arguments override them. No job is submitted until it is scaled."""
    import yaml
    from dask_jobqueue import SLURMCluster

    with open(config) as fh:
        settings = yaml.safe_load(fh)["jobqueue"]["slurm"]
    # (as arguments, not dask.config: the cluster reads its configuration again whenever it makes a job)
    kwargs = {key.replace("-", "_"): value for key, value in settings.items()}
    return SLURMCluster(**{**kwargs, **overrides})


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m grader.deploy", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="where", required=True)
    slurm = sub.add_parser("slurm", help="a scheduler here and Slurm jobs of Dask workers")
    slurm.add_argument("--config", type=pathlib.Path, default=SLURM_CONFIG)
    slurm.add_argument("--jobs", type=int, default=1, help="Slurm jobs to submit (each runs `processes` workers)")
    slurm.add_argument("--print-job-script", action="store_true", help="print the job script, submit nothing")
    options = p.parse_args(argv)
    cluster = slurm_cluster(options.config)
    try:
        if options.print_job_script:
            print(cluster.job_script())
            return 0
        cluster.scale(jobs=options.jobs)
        print(f"Dask scheduler: {cluster.scheduler_address} ({options.jobs} Slurm job(s) submitted)\n"
              f"Grade with: make autograde SCHEDULER={cluster.scheduler_address}\nCtrl-C ends the scheduler and "
              "the jobs.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
