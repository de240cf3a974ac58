"""Exit statuses a recipe script returns besides 0 (done) and 1 (failed), shared by runtime and launchers.

Standard library only (no torch): the launch layer imports it to decide what a rank's exit status means.
"""

from __future__ import annotations

PREEMPTED = 75
"""EX_TEMPFAIL: the run stopped on a signal after saving a checkpoint; rerunning it (requeue) resumes."""

PREEMPTED_MARKER = "preempted.json"
"""Written into the run directory by rank 0 once that checkpoint is complete (signal, step): the Slurm
batch script requeues on it even when srun reports another status (srun kills the slower ranks once
the first exits 75, which can change the status it returns). Removed when a run starts."""

REFUSED = 65
"""EX_DATAERR: the recipe refused its input before or while reading it (a missing checkpoint, a malformed
file); its stderr's `error: <reason>` line says why (`nemotron.common.refusals`). Rerunning does not help."""
