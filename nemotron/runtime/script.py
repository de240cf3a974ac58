"""The command line every training recipe script shares: `<script> --config <resolved.yaml>`.

A recipe script is its runspec block, a docstring and `sys.exit(main(__doc__))`; the launcher starts
it with the config it resolved. Heavy imports happen inside `main`, so the dist_checkpointing
workers that re-import a script's `__main__` stay cheap.
"""

from __future__ import annotations

import argparse
import os
import signal
from typing import List, Optional

from nemotron.common.shutdown import skip_exit_collections


def main(doc: Optional[str], argv: Optional[List[str]] = None, stage: str = "pretrain") -> int:
    """Load the resolved config named by --config and run `stage` (pretrain, sft, dpo, rl or eval); the exit
    status says whether it worked: 0 done, `exit_codes.PREEMPTED` (75) stopped by SIGUSR2/SIGTERM
    after a checkpoint (requeue it)."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    parser.add_argument("--config", required=True, help="resolved run config (YAML)")
    args = parser.parse_args(argv)

    from omegaconf import OmegaConf

    from nemotron.tracking.mlflow_tracker import prestart

    cfg = OmegaConf.load(args.config)
    prestart(cfg)  # MLflow's imports and store overlap torch's and megatron's below

    from nemotron.common.checkpoint_index import CheckpointError, PretrainedNotFound
    from nemotron.common.refusals import refuse
    from nemotron.runtime.eval.harness import EvalTaskError
    from nemotron.runtime.prep.chat import ChatDataError
    from nemotron.runtime.rewards import RewardError
    from nemotron.runtime.stages.registry import stage_runner
    from nemotron.runtime.train.preemption import SIGNALS, Preempted
    from nemotron.tracking.context import code_line

    run = stage_runner(stage)

    line = code_line()
    if line and os.environ.get("RANK", "0") == "0":
        print(line, flush=True)
    try:
        run(cfg)
    except (PretrainedNotFound, RewardError, CheckpointError, ChatDataError, EvalTaskError) as err:  # a known mistake
        return refuse(str(err))  # the summary line said it too; this line is what the launcher ends with
    except Preempted as stopped:  # already reported by the run: no traceback
        for sig in SIGNALS:  # exit with 75 even while srun terminates the ranks still exiting
            signal.signal(sig, signal.SIG_IGN)
        return int(stopped.code)
    finally:
        skip_exit_collections()  # torch's and Megatron's objects live until exit (~1.4 s of collections)
    return 0
