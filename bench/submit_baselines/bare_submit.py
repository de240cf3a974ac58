"""The bare baseline of bench/submit_overhead.py (a): `@hydra.main` + `submitit.AutoExecutor`, one job.

    SLURM_CONF=... python bench/submit_baselines/bare_submit.py partition=<P> hydra.run.dir=<dir>

Composes a tiny config, submits one function (run the gpt/pretrain recipe command) through submitit
and exits as soon as `executor.submit` returns, i.e. once sbatch has accepted the job.
"""

import sys

import hydra
import submitit


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    executor = submitit.AutoExecutor(folder=cfg.folder)
    executor.update_parameters(slurm_partition=cfg.partition, name=cfg.name, timeout_min=cfg.timeout_min,
                               nodes=1, tasks_per_node=1, cpus_per_task=1, gpus_per_node=1)
    job = executor.submit(submitit.helpers.CommandFunction([sys.executable, *cfg.command]))
    print(f"submitted {cfg.name} as Slurm job {job.job_id}")


if __name__ == "__main__":
    main()
