"""The stage contract: what a training stage changes in the shared loop, and what each step reports.

A stage (pretrain, SFT, DPO, GRPO) is one subclass of `Stage`, one level deep; its state (a frozen
reference, metric sums, prompts) lives on its own instance, typed in the subclass. The loop
(`nemotron.runtime.train.loop`) calls its methods in this order:

    resolve_inputs(cfg) -> cfg                  before anything starts (paths recorded as lineage)
    datasets(cfg, attention_mask)               tokenizer, train and validation datasets
    configure(cfg, transformer_config)          after the model is built, before DDP wraps it
    init_weights(cfg, model)                    fresh start only (a resumed run loads its checkpoint)
    prepare(cfg, train_dataset)                 fresh start and resume, before a checkpoint is loaded
    train_step(run) -> StepRecord               every step
    progress_lines(line, step, steps, record)   on log steps: what rank 0 prints

`forward_step(data_iterator, model)` is the micro-batch forward Megatron's schedule runs (for
training and validation). Every step's figures travel in one `StepRecord`: the loop logs it to the
tracker, keeps it in `TrainResult` and hands it to `progress_lines`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Optional, Tuple

from nemotron.runtime.data import gpt as gpt_data
from nemotron.runtime.train import step
from nemotron.runtime.train.records import StepRecord, TrainResult

__all__ = ["Stage", "StepRecord", "TrainResult", "pretrain_datasets"]


def pretrain_datasets(cfg: Any, attention_mask: bool) -> Tuple[Any, Any, Optional[Any]]:
    """(tokenizer, train, valid or None): the GPT datasets `cfg.data` names."""
    tokenizer, prefixes, weights = gpt_data.resolve_data(cfg.data)
    train_ds, valid_ds = gpt_data.build_datasets(
        cfg, tokenizer, prefixes, weights, create_attention_mask=attention_mask
    )
    return tokenizer, train_ds, valid_ds


class Stage:
    """A training stage of the shared loop; every method's default is pretraining's."""

    name: str = "pretrain"
    """Shown in logs: `pretrain`, `sft`, `dpo`, `rl`."""
    shown: Tuple[str, ...] = ()
    """Keys of `StepRecord.extra` the progress line shows after the loss."""

    def resolve_inputs(self, cfg: Any) -> Any:
        """`cfg` with the inputs this run reads resolved to paths (the tracker records them)."""
        return cfg

    def datasets(self, cfg: Any, attention_mask: bool) -> Tuple[Any, Any, Optional[Any]]:
        """(tokenizer, train dataset, validation dataset or None)."""
        return pretrain_datasets(cfg, attention_mask)

    def configure(self, cfg: Any, config: Any) -> None:
        """Adjust Megatron's TransformerConfig (or refuse the run) before DDP wraps the model."""

    def init_weights(self, cfg: Any, model: Any) -> None:
        """Weights on a fresh start (pretraining: the seed's random initialisation)."""

    def prepare(self, cfg: Any, train_dataset: Any) -> None:
        """Build what the stage keeps for the run (fresh start or resume)."""

    def forward_step(self, data_iterator: Iterator, model: Any) -> Tuple[Any, Callable]:
        """One micro-batch forward; Megatron's schedule calls the returned loss function."""
        return step.forward_step(data_iterator, model)

    def train_step(self, run: Any) -> StepRecord:
        """One optimizer step."""
        return step.train_step(run)

    def progress_lines(self, line: str, step_no: int, steps: int, record: StepRecord) -> List[str]:
        """What rank 0 prints on a log step: the loop's `line`, with the `shown` figures."""
        return [line + "".join(f" | {k} {record.extra[k]:.3f}" for k in self.shown if k in record.extra)]
