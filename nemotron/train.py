"""Entry point: compose a run from config groups, validate it, then run (or print) it.

    python -m nemotron.train +recipe=nano3/pretrain                 # train the tiny default on this machine
    python -m nemotron.train +recipe=nano3/pretrain dry_run=true    # print config and command, run nothing
    python -m nemotron.train +recipe=gpt/pretrain -m optim.lr=1e-3,3e-3

`train(cfg)` holds the logic and is what tests call with a composed config; `hydra_main` is the thin
`@hydra.main` wrapper; `main` adds one-line errors for bad input. Nothing here imports torch,
megatron or mlflow: training happens in the recipe's own process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from nemotron.argv import flags_first
from nemotron.config import register_configs
from nemotron.config.validate import ConfigError, validate
from nemotron.errors import OWN_FULL_ERROR, explain, recipe_names
from nemotron.launch import plan_local, run_local
from nemotron.paths import CONF_DIR
from nemotron.tracking.secrets import redact

register_configs()


class TrainingFailed(RuntimeError):
    """The recipe process exited non-zero."""

    def __init__(self, recipe: str, code: int, log_path: Path) -> None:
        super().__init__(f"recipe {recipe} failed with exit code {code}; full log: {log_path}")
        self.code = code


def require_recipe(cfg: DictConfig) -> None:
    """A run needs a recipe; say which ones exist."""
    if not cfg.recipe.name:
        raise ConfigError(f"no recipe selected: add +recipe=<name>; available: {', '.join(recipe_names())}")


def require_local(cfg: DictConfig) -> None:
    """Only the local executor is wired to this entry point so far."""
    executor = getattr(cfg.cluster.executor, "name", cfg.cluster.executor)
    if executor != "local":
        raise ConfigError(f"cluster={cfg.cluster.name} uses executor={executor}, which has no launcher yet")


def train(cfg: DictConfig) -> int:
    """Validate `cfg`, write its resolved form to the run directory and run the recipe (or print it)."""
    require_recipe(cfg)
    validate(cfg)
    require_local(cfg)
    config_path = Path(cfg.run_dir) / "config.yaml"
    plan = plan_local(cfg, config_path)
    resolved = OmegaConf.to_yaml(cfg, resolve=True)
    if cfg.dry_run:
        shown = OmegaConf.to_yaml(OmegaConf.create(redact(OmegaConf.to_container(cfg, resolve=True))))
        print(f"# resolved config ({config_path}; secrets redacted)\n{shown}")
        print(f"# would run (log: {plan.log_path})\n{plan.describe(redact_secrets=True)}")
        return 0
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(resolved, encoding="utf-8")
    code = run_local(plan)
    if code != 0:
        raise TrainingFailed(cfg.recipe.name, code, plan.log_path)
    return 0


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> int:
    try:
        return train(cfg)
    except ConfigError as exc:  # bad input: one line, and not Hydra's "Error executing job" banner
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    """Console entry: run Hydra, turning bad-input errors into one line on stderr (exit 2)."""
    sys.argv[1:] = flags_first(sys.argv[1:])
    if os.environ.get("HYDRA_FULL_ERROR"):
        hydra_main()
        return
    os.environ.update({"HYDRA_FULL_ERROR": "1", OWN_FULL_ERROR: "1"})
    try:
        hydra_main()
    except TrainingFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.code)
    except Exception as exc:
        message = explain(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
