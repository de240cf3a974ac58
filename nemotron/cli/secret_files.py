"""Hydra's own records of a run, and what the entry point prints, without secret values.

Hydra writes `<run_dir>/.hydra/{config,hydra,overrides}.yaml` (and `multirun.yaml` in a sweep
directory) before our code runs; they hold the overrides as typed, so a literal
`+cluster.env.DB_PASSWORD=...` would sit there in the clear. `scrub_hydra_outputs` rewrites them at
the start of the task function with every secret assignment and value replaced by `<redacted>` (the
rule: nemotron.tracking.secrets). `scrubbed_stdout` does the same to what `--cfg` and `--help` print.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from pathlib import Path
from typing import Any, Iterator, List

from omegaconf import OmegaConf

from nemotron.tracking.secrets import extra_names, run_secrets, scrub_text, secret_config_values

HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")
"""What Hydra writes into `<output_dir>/<hydra.output_subdir>` for each job."""


def secret_values(cfg: Any) -> List[str]:
    """Every secret value of a composed config (empty when it does not resolve)."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation that fails is reported by validation; nothing to collect here
        container = OmegaConf.to_container(cfg, resolve=False)
    return [*run_secrets(container).values(), *secret_config_values(container)]


def scrub_file(path: Path, values: List[str], names: List[str]) -> None:
    """Rewrite `path` (if it exists) with secrets hidden; unchanged files are not touched."""
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    clean = scrub_text(text, extra_values=values, names=names)
    if clean != text:
        path.write_text(clean, encoding="utf-8")


def scrub_hydra_outputs(cfg: Any) -> None:
    """Hide secrets in this job's `.hydra/` files (no-op outside Hydra or with hydra.output_subdir=null)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    if not hc.output_subdir or not hc.runtime.output_dir:
        return
    folder = Path(hc.runtime.output_dir) / str(hc.output_subdir)
    names = [str(n) for n in cfg.cluster.secret_names] if "cluster" in cfg else []
    values = secret_values(cfg)
    for name in HYDRA_FILES:
        scrub_file(folder / name, values, names)


def scrub_multirun_yaml(sweep_dir: Path, cfg: Any) -> None:
    """Hide secrets in the `multirun.yaml` Hydra's sweeper wrote into the sweep directory."""
    container = OmegaConf.to_container(cfg, resolve=False)
    values = [v for v in secret_config_values(container) if "${" not in v]
    scrub_file(Path(sweep_dir) / "multirun.yaml", values, extra_names(container))


class ScrubbingFilter(logging.Filter):
    """Hides secret assignments and values in a logger's records (Hydra's launchers log each
    member's overrides, a literal `+cluster.env.DB_PASSWORD=...` among them)."""

    def __init__(self, values: List[str], names: List[str]) -> None:
        super().__init__()
        self.values, self.names = values, names

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub_text(record.getMessage(), self.values, names=self.names), ()
        return True


@contextlib.contextmanager
def scrubbed_log(logger_name: str, cfg: Any) -> Iterator[None]:
    """Records of `logger_name` logged inside show no secret of the (unresolved) config `cfg`."""
    container = OmegaConf.to_container(cfg, resolve=False)
    values = [v for v in secret_config_values(container) if "${" not in v]
    scrubber = ScrubbingFilter(values, extra_names(container))
    logger = logging.getLogger(logger_name)
    logger.addFilter(scrubber)
    try:
        yield
    finally:
        logger.removeFilter(scrubber)


@contextlib.contextmanager
def scrubbed_stdout() -> Iterator[None]:
    """Collect what is printed inside, then print it with secret assignments and values hidden."""
    buffer, real = io.StringIO(), sys.stdout
    sys.stdout = buffer
    try:
        yield
    finally:
        sys.stdout = real
        real.write(scrub_text(buffer.getvalue()))
        real.flush()
