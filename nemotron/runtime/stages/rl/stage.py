"""GRPO: the shared loop (`nemotron.runtime.train.loop`) with a rollout-and-update step, as one `Stage`.

A step: take `train.global_batch_size` prompts (this rank's share, `train.micro_batch_size` per
micro-batch; the data position is saved and resumed like pretraining's), sample `rl.group_size`
responses each with the policy (`generate`: KV cache, Mamba state), score them (`rl.rewards`),
normalize advantages per group, then `rl.updates_per_batch` optimizer steps of the clipped per-token
policy loss plus `rl.kl_beta` x KL to the frozen reference (`grpo`). The learning rate advances once
per rollout batch. Sampling is seeded by (train.seed, step, data-parallel rank), so a resumed run
draws the samples an uninterrupted one would.
Weights: `checkpoint.pretrained` on a fresh start (the newest local SFT checkpoint by default); the
reference is built like the policy and loaded from the same source on every start (resume too);
with no checkpoint yet and `rl.random_init_if_missing`, both start from the seed's random weights
(one warning line). Checkpoints, tracking, preemption and the summary line are the loop's own.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from nemotron.common.checkpoint_index import NEWEST, Found, PretrainedNotFound
from nemotron.common.stages import rl_layout_problem
from nemotron.runtime import cpu_compat, rewards
from nemotron.runtime.data import rl as rl_data
from nemotron.runtime.stages.pretrained import load_pretrained, pretrained_source, with_pretrained_path
from nemotron.runtime.stages.reference import build_frozen_reference
from nemotron.runtime.stages.rl import metrics as rl_metrics
from nemotron.runtime.stages.rl import step as rl_step
from nemotron.runtime.train import loop
from nemotron.runtime.train.contract import Stage, StepRecord, TrainResult
from nemotron.runtime.train.progress import say


def weights_source(cfg: Any, say_why: bool = False) -> Optional[Found]:
    """The checkpoint the policy starts from and the reference loads; None: random weights."""
    value = cfg.checkpoint.get("pretrained")
    try:
        return pretrained_source(cfg)
    except PretrainedNotFound:
        if not (cfg.rl.random_init_if_missing and str(value).startswith(NEWEST)):
            raise
    if say_why:
        say(
            f"warning: checkpoint.pretrained={value}: no checkpoint yet, so RL "
            f"starts from random weights (make one first with `python -m "
            f"nemotron.train +recipe={str(value)[len(NEWEST) :]}`)"
        )
    return None


class RLStage(Stage):
    """The GRPO stage of the shared loop: prompts, rewards and the frozen reference it keeps."""

    name = "rl"

    def __init__(self) -> None:
        self.prompts: Any = None
        """The prompt dataset (`rl_data.build_prompts`)."""
        self.tokenizer: Any = None
        self.rewards: List[Any] = []
        """The loaded `rl.rewards` functions."""
        self.reference: Any = None
        """The frozen reference model (with `rl.kl`), else None."""

    def resolve_inputs(self, cfg: Any) -> Any:
        return with_pretrained_path(cfg, weights_source)

    def datasets(self, cfg: Any, attention_mask: bool) -> Tuple[Any, Any, None]:
        """Rewards loaded (refused before any rollout), tokenizer, prompts; no validation set."""
        from omegaconf import OmegaConf

        problem = rl_layout_problem(cfg)  # refused at compose already; a hand-built config gets it here
        if problem:
            raise ValueError(problem)
        specs = cfg.rl.rewards
        self.rewards = rewards.load_rewards(OmegaConf.to_container(specs) if OmegaConf.is_config(specs) else specs)
        self.tokenizer = rl_data.rl_tokenizer(cfg)
        self.prompts = rl_data.build_prompts(cfg, self.tokenizer, say=say)
        return self.tokenizer, self.prompts, None

    def configure(self, cfg: Any, config: Any) -> None:
        config.calculate_per_token_loss = True  # the loss is a mean over all response tokens

    def init_weights(self, cfg: Any, model: Any) -> None:
        source = weights_source(cfg, say_why=True)
        if source is not None or cfg.checkpoint.get("pretrained") is None:
            load_pretrained(cfg, model, source, "RL")

    def prepare(self, cfg: Any, train_dataset: Any) -> None:
        if cfg.rl.kl:
            self.reference = build_frozen_reference(cfg, self.tokenizer.vocab_size, weights_source(cfg))

    def train_step(self, run: Any) -> StepRecord:
        return rl_step.train_step(run, self)

    def progress_lines(self, line: str, step_no: int, steps: int, record: StepRecord) -> List[str]:
        """GRPO's line (`rl step k/N | reward ...`) before the loop's loss line."""
        return [rl_metrics.progress_line(record.extra, step_no, steps), line]


def run(cfg: Any) -> TrainResult:
    """Train `cfg.train.steps` GRPO steps; see `nemotron.runtime.train.loop.run`."""
    cpu_compat.install()
    return loop.run(cfg, RLStage())
