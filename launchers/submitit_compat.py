"""submitit's Slurm executor, with the few private parts we rely on in one place (checked: submitit 1.5.x,
`SUPPORTED`; pyproject.toml pins the same range, tests/test_dependencies.py holds them equal).

`Executor` is `submitit.SlurmExecutor` with three changes:
- sbatch goes through `nemotron.launchers.scheduler` (one timeout, one environment, Slurm's refusal
  as one line) instead of submitit's untimed subprocess call;
- a job array is submitted by this class too (submitit's own array path builds a plain
  SlurmExecutor, which would bypass the first change); `%N` follows `array_parallelism`;
- the `srun` check at construction is skipped, so a dry run works on a machine without Slurm.
`script_text` is submitit's own rendering of the batch script: what a dry run prints and what the
submit hands to sbatch (the same call, so they cannot differ).
"""

from __future__ import annotations

import typing as tp
import uuid
from pathlib import Path

import submitit
from submitit.core import core, utils
from submitit.slurm import slurm as submitit_slurm

from nemotron.common.versions import refusal
from nemotron.launchers import scheduler

SUPPORTED = {"submitit": ">=1.5,<1.6"}
"""The releases whose private parts used here (`core.core`, `core.utils.JobPaths`, `slurm._make_sbatch_string`,
`SlurmExecutor._submit_command` / `_internal_process_submissions`) were checked."""
_REFUSED = refusal(
    SUPPORTED,
    "nemotron.launchers (private parts of submitit, launchers/submitit_compat.py)",
    {"submitit": submitit.__version__},
)
if _REFUSED:
    raise ImportError(_REFUSED)


class Executor(submitit.SlurmExecutor):
    """submitit's SlurmExecutor; sbatch through our scheduler module; arrays submitted here."""

    def __init__(self, folder: Path, max_num_timeout: int, python: str, array: bool = False) -> None:
        super().__init__(folder, max_num_timeout=max_num_timeout, python=python)
        self.array = array
        """Submit even a single task as a job array (sweep members are always `<array>_<i>`)."""
        self.submitted_scripts: tp.List[str] = []
        """The exact texts handed to sbatch, in order."""

    @classmethod
    def affinity(cls) -> int:
        return 2  # no srun check: a dry run renders scripts anywhere; a submit without Slurm fails at sbatch

    @property
    def command(self) -> str:
        """What srun runs on every rank: submitit's job runner on this executor's folder."""
        return self._submitit_command_str

    def script_text(self, count: int) -> str:
        """The batch script for `count` tasks (a job array when more than one, or when `array`)."""
        params = dict(self.parameters)
        if count > 1 or self.array:
            params["map_count"] = count
        return submitit_slurm._make_sbatch_string(command=self.command, folder=self.folder, **params)

    def _submit_command(self, command: str) -> core.Job[tp.Any]:
        count = int(self.parameters.get("map_count") or 1)
        text = self.script_text(count)
        path = utils.JobPaths.get_first_id_independent_folder(self.folder) / f".submission_file_{uuid.uuid4().hex}.sh"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        job_id = scheduler.sbatch(path)
        self.submitted_scripts.append(text)
        job: core.Job[tp.Any] = self.job_class(folder=self.folder, job_id=job_id, tasks=list(range(self._num_tasks())))
        job.paths.move_temporary_file(path, "submission_file", keep_as_symlink=True)
        return job

    def _internal_process_submissions(self, delayed: tp.List[utils.DelayedSubmission]) -> tp.List[core.Job[tp.Any]]:
        if len(delayed) == 1 and not self.array:
            self.parameters.pop("map_count", None)
            return super()._internal_process_submissions(delayed)
        folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        pickles = []
        for d in delayed:
            pickle_path = folder / f"{uuid.uuid4().hex}.pkl"
            d.set_timeout(self.parameters.get("time", 5), self.max_num_timeout)
            d.dump(pickle_path)
            pickles.append(pickle_path)
        self.parameters["map_count"] = len(delayed)
        try:
            first = self._submit_command(self.command)
        finally:
            self.parameters.pop("map_count", None)
        jobs: tp.List[core.Job[tp.Any]] = [
            submitit_slurm.SlurmJob(
                folder=self.folder, job_id=f"{first.job_id}_{i}", tasks=list(range(first.num_tasks))
            )
            for i in range(len(delayed))
        ]
        for job, pickle_path in zip(jobs, pickles, strict=True):
            job.paths.move_temporary_file(pickle_path, "submitted_pickle")
        return jobs


def make_executor(
    folder: Path, params: tp.Dict[str, tp.Any], max_requeues: int, python: str, array: bool = False
) -> Executor:
    """An executor for one job shape; `params` are SlurmExecutor parameters (checked by submitit)."""
    executor = Executor(folder, max_num_timeout=max_requeues, python=python, array=array)
    executor.update_parameters(**params)
    return executor


def submitted_pickle(folder: Path, job_id: str) -> Path:
    """Where submitit keeps the task a job (or array task) runs: copied for a resubmission."""
    return utils.JobPaths(folder, job_id=job_id).submitted_pickle
