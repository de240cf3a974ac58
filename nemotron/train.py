"""Entry point: compose a run from config groups, validate it, then run (or print) it.

    python -m nemotron.train +recipe=nano3/pretrain                 # train the tiny default on this machine
    python -m nemotron.train +recipe=nano3/pretrain dry_run=true    # print config and command, run nothing
    python -m nemotron.train +recipe=gpt/pretrain -m optim.lr=1e-3,3e-3
    python -m nemotron.train +recipe=gpt/pretrain cluster=slurm      # submit one Slurm job, return

`train(cfg)` holds the logic and is what tests call with a composed config; `hydra_main` is the thin
`@hydra.main` wrapper; `main` adds one-line errors for bad input. Nothing here imports torch,
megatron or mlflow: training happens in the recipe's own process.
"""

from __future__ import annotations

import os
import sys
from dataclasses import astuple
from pathlib import Path
from typing import Optional, Tuple

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nemotron.cli.argv import flags_first, quiet_dry_run, recipe_as_append
from nemotron.cli.failures import TrainingFailed
from nemotron.cli.refused import forget_dir
from nemotron.cli.secret_files import scrub_hydra_outputs, scrubbed_stdout
from nemotron.common.environ import OWN_FULL_ERROR
from nemotron.common.paths import CONF_DIR, plugins_on_path
from nemotron.config import register_configs
from nemotron.config.hydra_compat import fast_yaml_loading, skip_mode_compose
from nemotron.config.parse_cache import cached_parsing
from nemotron.tracking.secrets import scrub_text

register_configs()

RUN_OUTPUTS = ("config.yaml", "train.log", "checkpoints/", "tracking/")
"""What a finished local run may leave in its directory; the outputs line names those that are there."""
SHOWS_CONFIG = {"--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i"}
"""Flags that print the composed config (their output is scrubbed of secrets)."""


def on_slurm(cfg: DictConfig) -> bool:
    """True when the cluster option submits to Slurm (else the run starts on this machine)."""
    return getattr(cfg.cluster.executor, "name", cfg.cluster.executor) == "slurm"


def train(cfg: DictConfig) -> int:
    """Validate `cfg`, write its resolved form to the run directory and run or submit the recipe (or print it).
    The validation, memory and launch layers load here, not at import: `--cfg`/`--help` never need them."""
    from nemotron.cli.errors import require_recipe
    from nemotron.config.batch_fit import fit_batch_to_ranks
    from nemotron.config.validate import validate
    from nemotron.launchers.local import plan_local, run_local
    from nemotron.memory import fit_notes, table

    require_recipe(cfg)
    fitted = fit_batch_to_ranks(cfg)
    validate(cfg)
    if fitted:  # after validation: a refused run prints its error alone
        print(fitted, file=sys.stderr)
    for note in fit_notes(cfg):
        print(note, file=sys.stderr)
    config_path = Path(cfg.run_dir) / "config.yaml"
    remote = on_slurm(cfg)
    from nemotron.config.dump import data_yaml, dump_yaml, resolved  # after Hydra's plugins (hydra_compat)

    data = resolved(cfg)
    resolved_text, secrets = data_yaml(data)  # secrets as ${oc.env:NAME}: the job gets them in its environment
    if remote:
        launcher = launcher_keys()
        from nemotron.launchers import slurm  # submitit and the Slurm path only load for Slurm runs

        slurm.preflight(cfg, launcher)
        plan = slurm.plan_slurm(cfg, launcher=launcher, resolved_yaml=resolved_text, secrets=secrets)
    else:
        plan = plan_local(cfg, config_path)
        plan.env.update({k: v for k, v in secrets.items() if k not in plan.env})
    if cfg.dry_run:
        from nemotron.tracking.secrets import redact

        redacted = redact(data)
        shown = resolved_text if not secrets and redacted == data else dump_yaml(redacted)  # dumped once if alike
        print(f"# resolved config ({config_path}; secrets redacted)\n{shown}")
        print(table(cfg))
        if remote:  # the exact sbatch script; secrets live in a separate file it sources
            print(plan.describe(), end="")
        else:
            print(f"# would run (log: {plan.log_path})\n{plan.describe(redact_secrets=True)}")
        return 0
    from nemotron.common.atomic_files import write_text_atomic

    config_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(config_path, resolved_text)
    if remote:
        code, reason = submit_slurm(cfg, plan)
    else:
        code, reason = astuple(run_local(plan))
    if code != 0:
        raise TrainingFailed(cfg.recipe.name, code, plan.log_path, reason=reason)
    if not remote:
        print(outputs_line(cfg), flush=True)
    return 0


def outputs_line(cfg: DictConfig) -> str:
    """Where a finished local run's files are, and how to look at its MLflow run."""
    run_dir = Path(cfg.run_dir)
    there = [name for name in RUN_OUTPUTS if (run_dir / name.rstrip("/")).exists()]
    line = f"outputs: {cfg.run_dir} ({', '.join(there)})"
    if cfg.tracker.kind != "mlflow":
        return line
    from nemotron.tracking.settings import is_local_store, tracking_uri

    uri = tracking_uri(cfg)
    return f"{line}\nMLflow: " + (f"mlflow ui --backend-store-uri {uri}" if is_local_store(uri) else scrub_text(uri))


def launcher_keys() -> dict:
    """The `hydra.launcher.*` keys set for this run (stock hydra-submitit-launcher names); {} outside Hydra."""
    if not HydraConfig.initialized():
        return {}
    from nemotron.launchers.launcher_conf import explicit

    return explicit(HydraConfig.get().launcher)


def submit_slurm(cfg: DictConfig, plan: "slurm.SlurmPlan") -> Tuple[int, Optional[str]]:  # noqa: F821
    """Submit the job and say how to follow it; with cluster.wait=true, stream its log (tracebacks aside);
    (exit code, the reason a failed job's log gives). `slurm` is imported for Slurm runs only."""
    from nemotron.launchers import slurm

    job_id = slurm.submit(plan)
    print(slurm.submitted_message(cfg, plan, job_id), flush=True)
    if not cfg.cluster.wait:
        return 0, None
    state, code, reason = slurm.wait(job_id, plan.log_path, float(cfg.cluster.wait_grace_s))
    print(f"Slurm job {job_id}: {state}", flush=True)
    return code, reason


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> int:
    scrub_hydra_outputs(cfg)  # Hydra wrote .hydra/ with the overrides as typed, before this runs
    try:
        code = train(cfg)
        if cfg.dry_run:  # the run directory Hydra made stays only if something else is in it
            forget_dir(HydraConfig.get().runtime.output_dir, str(cfg.paths.output_root))
        return code
    except TrainingFailed as exc:  # the reason and the log path; the traceback is in the log
        print(f"error: {scrub_text(str(exc))}", file=sys.stderr)
        sys.exit(exc.code)
    except Exception as exc:  # bad input: one line, and not Hydra's "Error executing job" banner
        from nemotron.cli.errors import explain
        from nemotron.config.validate import ConfigError

        message = explain(exc)
        if message is None:
            raise  # a bug keeps its traceback
        own = isinstance(exc, ConfigError)  # our rules never quote a secret's value (and name secret keys)
        print(f"error: {message if own else scrub_text(message)}", file=sys.stderr)
        forget_dir(HydraConfig.get().runtime.output_dir, str(cfg.paths.output_root))  # nothing left behind
        sys.exit(2)


def main() -> None:
    """Console entry: run Hydra, turning bad-input errors into one line on stderr (exit 2)."""
    sys.argv[1:] = quiet_dry_run(recipe_as_append(flags_first(sys.argv[1:])))
    keyless = [arg for arg in sys.argv[1:] if arg.startswith("=")]
    if keyless:
        print(f"error: override {keyless[0]!r} has no key: write key=value (e.g. train.steps=3)", file=sys.stderr)
        sys.exit(2)
    skip_mode_compose(sys.argv[1:])
    fast_yaml_loading()  # OmegaConf's YAML rules on libyaml's parser: config files parse ~5x sooner
    plugins_on_path()
    with cached_parsing():  # a compose reads ~80 interpolations, ~20 distinct strings: each parsed once
        if SHOWS_CONFIG.intersection(arg.split("=", 1)[0] for arg in sys.argv[1:]):
            with scrubbed_stdout():  # --cfg and --help print the composed config: hide its secrets
                run_main()
            return
        run_main()


def run_main() -> None:
    """Run Hydra with one-line errors (secrets hidden) unless the user set HYDRA_FULL_ERROR."""
    if os.environ.get("HYDRA_FULL_ERROR"):
        hydra_main()
        return
    os.environ.update({"HYDRA_FULL_ERROR": "1", OWN_FULL_ERROR: "1"})
    try:
        hydra_main()
    except TrainingFailed as exc:
        print(f"error: {scrub_text(str(exc))}", file=sys.stderr)
        sys.exit(exc.code)
    except Exception as exc:
        from nemotron.cli.errors import explain

        message = explain(exc)
        if message is None:
            raise
        print(f"error: {scrub_text(message)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
