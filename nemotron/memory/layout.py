"""The numbers a memory estimate needs, read once from a composed config into a plain dataclass.

Everything downstream works on `Layout` (no OmegaConf), so the fit search can try a changed layout
with `dataclasses.replace` in microseconds. Dimensions follow Megatron-Core's defaults where the
config leaves them null (kv_channels = hidden / heads, ffn = 4 x hidden, Mamba d_inner = 2 x hidden).
The post-training stages differ from pretraining and SFT in what a step holds: DPO (`*/dpo`) trains
on chosen + rejected rows of each pair beside a frozen reference model; GRPO (`*/rl`) trains on
`rl.group_size` samples of each prompt, beside a reference when `rl.kl`, after a rollout phase that
generates all of them (`nemotron.memory.rollout`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Tuple

from nemotron.common import stack as stacks
from nemotron.common.hybrid_pattern import hybrid_pattern
from nemotron.common.stages import is_dpo, is_eval, is_rl
from nemotron.common.tokenizer_files import tokenizer_tokens
from nemotron.common.topology import data_parallel_size

_MAMBA_EXPAND = 2
"""Megatron's MambaMixer `expand`: d_inner = expand x hidden_size when mamba_num_heads is null."""


def _name(value: Any) -> str:
    return str(getattr(value, "name", value))


@dataclass(frozen=True)
class Layout:
    """A model, its parallel layout, batch and precision: what memory per GPU depends on."""

    layers: Tuple[str, ...]
    """Each layer's parts, one symbol a part: `*` attention, `-` dense MLP, `E` MoE, `M` Mamba-2
    (a GPT layer is `*-` or `*E`; a hybrid layer is one symbol of its pattern)."""
    hidden: int
    heads: int
    groups: int
    kv_channels: int
    ffn: int
    gated: bool
    """SwiGLU (fc1 twice as wide)."""
    norm_params: int
    """Parameters of one norm layer (RMSNorm: hidden; LayerNorm: 2 x hidden)."""
    bias: bool
    vocab: int
    """Padded vocabulary."""
    tied: bool
    learned_positions: bool
    seq: int
    experts: int
    topk: int
    moe_ffn: int
    shared_ffn: int
    mamba_heads: int
    mamba_head_dim: int
    mamba_state: int
    mamba_groups: int
    tp: int
    pp: int
    cp: int
    ep: int
    dp: int
    sequence_parallel: bool
    distributed_optimizer: bool
    micro_batch: int
    """train.micro_batch_size: items a micro batch holds (sequences; DPO pairs; GRPO prompts)."""
    micro_batches: int
    """Micro batches per step on one data-parallel rank (gradient accumulation)."""
    recompute: str
    """none, selective or full."""
    gpu: bool
    """bf16 mixed precision on GPUs (fp32 master weights); fp32 everywhere on CPU."""
    flash_attention: bool
    """Fused (flash) attention: no s x s score matrix is kept. True exactly where the run builds the
    Transformer Engine spec (nemotron.common.stack.layer_spec): the local spec's attention keeps the
    full softmax, on a GPU too."""
    torch_mamba: bool
    """Mamba layers run the pure-PyTorch mixer instead of mamba_ssm's kernels (stack.mamba_mixer)."""
    rows_per_item: int = 1
    """Sequences each item of a micro batch trains on: 1 (pretrain, SFT), 2 (DPO: a pair's chosen
    and rejected rows), rl.group_size (GRPO: the samples of one prompt)."""
    reference: bool = False
    """A frozen reference model beside the policy (DPO; GRPO with rl.kl): a copy of this rank's
    weights (same TP/PP/EP shards, not sharded over DP) without gradients or optimizer state."""
    stage: str = "pretrain"
    """What the step trains: `pretrain` (pretraining and SFT), `dpo`, `rl` (GRPO), or `eval` (no
    training: weights, then scoring or generating `eval.batch_size` rows at a time)."""
    lora_rank: int = 0
    """peft=lora: the adapters' rank (0: every weight trains); the base is frozen (nemotron.memory.adapters)."""
    lora_targets: Tuple[str, ...] = ()
    """peft.target_modules: the layer names adapters wrap."""

    @property
    def rollout(self) -> bool:
        """Generation with a KV cache and Mamba state: GRPO generates all of this rank's samples
        (`rollout_rows`) before training on them; evaluation generates a batch of requests."""
        return self.stage in ("rl", "eval")

    @property
    def trains(self) -> bool:
        """False for evaluation: no gradients, optimizer state or fp32 master weights."""
        return self.stage != "eval"

    @property
    def grpo_logprobs(self) -> bool:
        """The loss is GRPO's (rl_step.token_logp): fp32 log-probabilities and entropy over this rank's
        vocabulary shard, three fp32 copies of it at the peak instead of the cross entropy's one."""
        return self.stage == "rl"

    @property
    def pipeline_allowed(self) -> bool:
        """False for DPO and GRPO: their runtimes refuse pipeline parallelism."""
        return self.stage == "pretrain"

    @property
    def mamba_inner(self) -> int:
        return self.mamba_heads * self.mamba_head_dim

    @property
    def dtype_bytes(self) -> int:
        """Bytes of an element of the weights, activations and KV cache: bf16 on GPU, fp32 on CPU."""
        return 2 if self.gpu else 4

    @property
    def rollout_rows(self) -> int:
        """GRPO: sequences one rank generates at once, its prompts of a step (global batch / DP) times
        rl.group_size; 0 for the other stages."""
        return self.micro_batches * self.micro_batch * self.rows_per_item if self.rollout else 0


def _layers(m: Any, hybrid: bool) -> Tuple[str, ...]:
    if hybrid:
        return tuple(hybrid_pattern(m))
    return ("*E" if m.num_moe_experts else "*-",) * m.num_layers


def padded_vocab(cfg: Any) -> int:
    """model.vocab_size, else the tokenizer's size (its file when readable, else
    data.tokenizer_vocab_size) padded as Megatron pads it."""
    m, tp = cfg.model, cfg.parallel.tensor_model_parallel_size
    if m.vocab_size:
        return int(m.vocab_size)
    tokens = tokenizer_tokens(cfg) or int(cfg.data.tokenizer_vocab_size)
    multiple = m.make_vocab_size_divisible_by * tp
    return int(math.ceil(tokens / multiple) * multiple)


def _mamba_dims(m: Any) -> tuple:
    heads = m.mamba_num_heads or (_MAMBA_EXPAND * m.hidden_size) // m.mamba_head_dim
    return heads, m.mamba_head_dim, m.mamba_state_dim, m.mamba_num_groups


def _stage_fields(cfg: Any) -> Dict[str, Any]:
    """What a DPO or GRPO step holds beyond pretraining's (the Layout fields after torch_mamba)."""
    if is_rl(cfg):
        return {"stage": "rl", "rows_per_item": int(cfg.rl.group_size), "reference": bool(cfg.rl.kl)}
    if is_dpo(cfg):
        return {"stage": "dpo", "rows_per_item": 2, "reference": True}
    if is_eval(cfg):
        return {"stage": "eval"}
    return {}


def _peft_fields(cfg: Any) -> Dict[str, Any]:
    """peft=lora: the adapters' rank and target layer names (the Layout fields after `stage`)."""
    peft = cfg.get("peft") if hasattr(cfg, "get") else None
    if peft is None or peft.get("method") != "lora":
        return {}
    return {"lora_rank": int(peft.rank), "lora_targets": tuple(str(t) for t in peft.target_modules)}


def layout_from_config(cfg: Any) -> Layout:
    """The Layout of a composed (or resolved) run config."""
    m, p, t = cfg.model, cfg.parallel, cfg.train
    hybrid = _name(m.arch) == "hybrid"
    kv = m.kv_channels or m.hidden_size // m.num_attention_heads
    ffn = m.ffn_hidden_size or 4 * m.hidden_size
    dp = data_parallel_size(cfg)
    mheads, mdim, mstate, mgroups = _mamba_dims(m)
    gpu = int(cfg.resources.gpus_per_node) > 0
    return Layout(
        layers=_layers(m, hybrid),
        hidden=m.hidden_size,
        heads=m.num_attention_heads,
        groups=m.num_query_groups or m.num_attention_heads,
        kv_channels=kv,
        ffn=ffn,
        gated=_name(m.activation) == "swiglu",
        norm_params=(2 if _name(m.normalization) == "LayerNorm" else 1) * m.hidden_size,
        bias=bool(m.add_bias_linear),
        vocab=padded_vocab(cfg),
        tied=bool(m.share_embeddings_and_output_weights),
        learned_positions=_name(m.position_embedding_type) == "learned_absolute",
        seq=m.seq_length,
        experts=m.num_moe_experts or 0,
        topk=m.moe_router_topk,
        moe_ffn=m.moe_ffn_hidden_size or ffn,
        shared_ffn=m.moe_shared_expert_intermediate_size or 0,
        mamba_heads=mheads,
        mamba_head_dim=mdim,
        mamba_state=mstate,
        mamba_groups=mgroups,
        tp=p.tensor_model_parallel_size,
        pp=p.pipeline_model_parallel_size,
        cp=p.context_parallel_size,
        ep=p.expert_model_parallel_size,
        dp=dp,
        sequence_parallel=bool(p.sequence_parallel) and p.tensor_model_parallel_size > 1,
        distributed_optimizer=bool(p.use_distributed_optimizer),
        micro_batch=int(cfg.eval.batch_size) if is_eval(cfg) else t.micro_batch_size,
        micro_batches=1 if is_eval(cfg) else max(1, t.global_batch_size // max(1, t.micro_batch_size * dp)),
        recompute=_name(t.recompute),
        gpu=gpu,
        flash_attention=stacks.layer_spec(cfg) == stacks.TE,
        torch_mamba=stacks.mamba_mixer(cfg) == "torch",
        **_stage_fields(cfg),
        **_peft_fields(cfg),
    )
