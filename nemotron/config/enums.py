"""The closed vocabularies of the config: a value outside one fails when Hydra composes."""

from __future__ import annotations

from enum import Enum


class Arch(Enum):
    """Model family a recipe builds."""

    gpt = "gpt"
    hybrid = "hybrid"


class Normalization(Enum):
    """Normalization layer (Megatron `normalization`)."""

    LayerNorm = "LayerNorm"
    RMSNorm = "RMSNorm"


class Activation(Enum):
    """MLP activation."""

    gelu = "gelu"
    swiglu = "swiglu"
    squared_relu = "squared_relu"


class PositionEmbedding(Enum):
    """Position embedding (Megatron `position_embedding_type`)."""

    rope = "rope"
    learned_absolute = "learned_absolute"
    none = "none"


class TransformerImpl(Enum):
    """Which layer implementation builds the model (Megatron-Bridge's `transformer_impl`)."""

    auto = "auto"
    transformer_engine = "transformer_engine"
    local = "local"


class Recompute(Enum):
    """Activation recomputation (Megatron `recompute_granularity`)."""

    none = "none"
    selective = "selective"
    full = "full"


class Launch(Enum):
    """How the recipe script is started (runspec `run.launch`)."""

    torchrun = "torchrun"
    ray = "ray"
    direct = "direct"


class Executor(Enum):
    """Where a cluster option runs jobs."""

    local = "local"
    slurm = "slurm"


class DecayStyle(Enum):
    """Learning-rate decay after warmup."""

    cosine = "cosine"
    linear = "linear"
    constant = "constant"
    WSD = "WSD"


class RouterScore(Enum):
    """MoE router score function (Megatron `moe_router_score_function`)."""

    softmax = "softmax"
    sigmoid = "sigmoid"


class LoadBalancing(Enum):
    """MoE load-balancing loss (Megatron `moe_router_load_balancing_type`)."""

    aux_loss = "aux_loss"
    seq_aux_loss = "seq_aux_loss"
    global_aux_loss = "global_aux_loss"
    none = "none"


class RouterDtype(Enum):
    """Precision of the MoE router's logits and scores (Megatron `moe_router_dtype`)."""

    fp32 = "fp32"
    fp64 = "fp64"


class Uncommitted(Enum):
    """What a Slurm submit does when the code has uncommitted changes."""

    ship = "ship"  # copy the working tree as it is into the job's code snapshot, and record the changes
    refuse = "refuse"  # submit nothing; commit or stash first


class MemoryCheck(Enum):
    """What the pre-flight memory check does when a run's estimate exceeds its GPUs' memory."""

    check = "check"
    warn = "warn"
    off = "off"


class Overlong(Enum):
    """What SFT prep does with a conversation longer than model.seq_length + 1 tokens."""

    truncate = "truncate"
    drop = "drop"
