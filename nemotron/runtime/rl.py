"""GRPO: the pretraining loop (`pretrain.run`) with a rollout-and-update step, as one `pretrain.Stage`.

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

import copy
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from nemotron.common.checkpoint_index import NEWEST, Found, PretrainedNotFound, pretrained_checkpoint
from nemotron.common.stages import rl_layout_problem
from nemotron.runtime import checkpoint, cpu_compat, pretrain, rewards, rl_data, rl_step


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_initialized() else 0


def weights_source(cfg: Any, say: bool = False) -> Optional[Found]:
    """The checkpoint the policy starts from and the reference loads; None: random weights."""
    value = cfg.checkpoint.get("pretrained")
    if value is None:
        if say:
            pretrain._say(_rank(), "checkpoint.pretrained=null: RL starts from random weights")
        return None
    try:
        return pretrained_checkpoint(str(value), str(cfg.paths.output_root))
    except PretrainedNotFound:
        if not (cfg.rl.random_init_if_missing and str(value).startswith(NEWEST)):
            raise
    if say:
        pretrain._say(
            _rank(),
            f"warning: checkpoint.pretrained={value}: no checkpoint yet, so RL "
            f"starts from random weights (make one first with `python -m "
            f"nemotron.train +recipe={str(value)[len(NEWEST) :]}`)",
        )
    return None


def _check_layout(cfg: Any) -> None:
    problem = rl_layout_problem(cfg)  # refused at compose already; a hand-built config gets it here
    if problem:
        raise ValueError(problem)


def _datasets(cfg: Any, attention_mask: bool) -> Tuple[Any, Any, None]:
    """Rewards loaded (refused before any rollout), tokenizer, prompts; no validation set."""
    from omegaconf import OmegaConf

    _check_layout(cfg)
    specs = cfg.rl.rewards
    loaded = rewards.load_rewards(OmegaConf.to_container(specs) if OmegaConf.is_config(specs) else specs)
    tokenizer = rl_data.rl_tokenizer(cfg)
    prompts = rl_data.build_prompts(cfg, tokenizer, say=lambda line: pretrain._say(_rank(), line))
    prompts.rewards = loaded
    return tokenizer, prompts, None


def _configure(cfg: Any, config: Any) -> None:
    config.calculate_per_token_loss = True  # the loss is a mean over all response tokens


def _init_weights(cfg: Any, model: Any) -> None:
    source = weights_source(cfg, say=True)
    if source is not None:
        checkpoint.load_weights(source, cfg, model)


def _reference(cfg: Any, vocab_size: int) -> Any:
    """The frozen reference: built like the policy (same seed), loaded from the same source."""
    from nemotron.runtime.model import build_model

    pretrain._set_seed(cfg.train.seed)  # random weights: the policy's initial ones
    model, _ = build_model(cfg, vocab_size)
    source = weights_source(cfg)
    if source is not None:
        checkpoint.load_weights(source, cfg, model, say=False)
        pretrain._say(_rank(), f"reference model: {source.path} (step {source.step}), frozen")
    else:
        pretrain._say(_rank(), "reference model: the policy's initial weights (train.seed), frozen")
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def _prepare(cfg: Any, prompts: Any) -> Dict[str, Any]:
    reference = _reference(cfg, prompts.tokenizer.vocab_size) if cfg.rl.kl else None
    return {"reference": reference, "prompts": prompts, "tokenizer": prompts.tokenizer, "rewards": prompts.rewards}


RL = pretrain.Stage(
    "rl",
    datasets=_datasets,
    configure=_configure,
    init_weights=_init_weights,
    prepare=_prepare,
    train_step=rl_step.train_step,
)
"""The GRPO stage of the shared loop."""


def with_source_resolved(cfg: Any) -> Any:
    """`cfg` with `checkpoint.pretrained` set to the path this run reads (the run's lineage)."""
    from omegaconf import DictConfig, open_dict

    if not isinstance(cfg, DictConfig) or not cfg.checkpoint.get("pretrained"):
        return cfg
    cfg = copy.deepcopy(cfg)
    try:
        found = weights_source(cfg)
    except PretrainedNotFound:  # said in one line when the weights are needed (fresh start)
        return cfg
    if found is not None:
        with open_dict(cfg):
            cfg.checkpoint.pretrained = str(Path(found.path).resolve())
    return cfg


def run(cfg: Any) -> pretrain.TrainResult:
    """Train `cfg.train.steps` GRPO steps; see `pretrain.run` for resume, summary and tracking."""
    cpu_compat.install()
    return pretrain.run(with_source_resolved(cfg), RL)
