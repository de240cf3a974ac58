"""Dataclass schemas for every config group, registered in Hydra's ConfigStore.

The primary config (`conf/config.yaml`) extends `RunConfig`, so every option file of every group is
checked against these types when Hydra composes: an unknown key (`model.num_layrs=2`) or a wrong type
(`train.steps=1.5`) fails before anything runs. Cross-field rules live in `nemotron.config.validate`.

Field names follow Megatron-Core where a Megatron concept exists (`num_layers`, `num_attention_heads`,
`tensor_model_parallel_size`), so a Megatron user can read a config without a dictionary.
Each field carries a docstring (the line below it); a test checks that none is missing. Every
numeric field states its range (`ranged(default, AT_LEAST_1)`, see `nemotron.config.ranges`),
checked at compose time; a test generated from the schema requires one on every numeric field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from nemotron.config.enums import (  # noqa: F401 - re-exported: the schema's vocabulary
    Activation,
    Arch,
    DecayStyle,
    Executor,
    Launch,
    LoadBalancing,
    MemoryCheck,
    Normalization,
    Overlong,
    PositionEmbedding,
    Recompute,
    TransformerImpl,
    RouterDtype,
    RouterScore,
    Uncommitted,
)
from nemotron.config.ranges import AT_LEAST_1, FRACTION, NON_NEGATIVE, POSITIVE, ranged
from nemotron.config.schema_cluster import ClusterConfig, ResourcesConfig
from nemotron.config.schema_dpo import DpoConfig
from nemotron.config.schema_peft import PeftConfig
from nemotron.config.schema_eval import EvalConfig
from nemotron.config.schema_rl import RLConfig


@dataclass
class ModelConfig:
    """Architecture of the model (group `model`)."""

    arch: Arch = Arch.gpt
    """Model family: `gpt` (dense/MoE transformer) or `hybrid` (Mamba/attention/MLP/MoE layers)."""
    num_layers: int = ranged(2, AT_LEAST_1)
    """Number of layers (for `hybrid`, must equal the length of `hybrid_layer_pattern`)."""
    hidden_size: int = ranged(64, AT_LEAST_1)
    """Width of the residual stream."""
    num_attention_heads: int = ranged(4, AT_LEAST_1)
    """Query heads per attention layer; must divide `hidden_size`."""
    num_query_groups: Optional[int] = ranged(None, AT_LEAST_1)
    """Key/value heads for grouped-query attention; null means one per query head (MHA)."""
    kv_channels: Optional[int] = ranged(None, AT_LEAST_1)
    """Per-head dimension; null means hidden_size / num_attention_heads."""
    ffn_hidden_size: Optional[int] = ranged(None, AT_LEAST_1)
    """Dense MLP width; null means 4 * hidden_size."""
    seq_length: int = ranged(128, AT_LEAST_1)
    """Tokens per training sample (also the maximum position)."""
    vocab_size: Optional[int] = ranged(None, AT_LEAST_1)
    """Vocabulary size; null takes it from the tokenizer (padded, see below)."""
    make_vocab_size_divisible_by: int = ranged(128, AT_LEAST_1)
    """Pad the tokenizer vocabulary up to a multiple of this (times tensor parallel size)."""
    normalization: Normalization = Normalization.RMSNorm
    """Normalization layer type."""
    layernorm_epsilon: float = ranged(1e-5, POSITIVE)
    """Epsilon of every LayerNorm/RMSNorm (Llama checkpoints: their config.json's rms_norm_eps)."""
    activation: Activation = Activation.swiglu
    """MLP activation function."""
    position_embedding_type: PositionEmbedding = PositionEmbedding.rope
    """Position embedding type."""
    rotary_base: int = ranged(10000, POSITIVE)
    """RoPE base frequency."""
    transformer_impl: TransformerImpl = TransformerImpl.auto
    """Layer implementation: `auto` builds Transformer Engine's fused layers wherever the job's stack
    has TE (and mamba_ssm, for Mamba layers), else Megatron-Core's local modules; `local` always the
    local modules (what LoRA wraps); `transformer_engine` demands TE, refused at compose where the
    stack (cluster.transformer_engine) lacks it. See nemotron/common/stack.py."""
    add_bias_linear: bool = False
    """Add biases to linear layers."""
    share_embeddings_and_output_weights: bool = True
    """Tie input embedding and output projection."""
    init_method_std: float = ranged(0.02, POSITIVE)
    """Standard deviation of the weight initialisation."""
    hidden_dropout: float = ranged(0.0, FRACTION)
    """Dropout on the residual stream."""
    attention_dropout: float = ranged(0.0, FRACTION)
    """Dropout on attention probabilities."""
    hybrid_layer_pattern: Optional[str] = None
    """Hybrid layer string, one symbol a layer: M=Mamba, *=attention, -=MLP, E=MoE (arch=hybrid)."""
    num_moe_experts: Optional[int] = ranged(None, AT_LEAST_1)
    """Routed experts per MoE layer; null means no MoE."""
    moe_router_topk: int = ranged(2, AT_LEAST_1)
    """Experts each token is routed to."""
    moe_ffn_hidden_size: Optional[int] = ranged(None, AT_LEAST_1)
    """Width of each expert's MLP; null means ffn_hidden_size."""
    moe_aux_loss_coeff: float = ranged(0.0, NON_NEGATIVE)
    """Load-balancing auxiliary loss weight."""
    mamba_num_heads: Optional[int] = ranged(None, AT_LEAST_1)
    """Mamba-2 heads per Mamba layer (arch=hybrid with M layers)."""
    mamba_head_dim: int = ranged(64, AT_LEAST_1)
    """Mamba-2 head dimension."""
    mamba_state_dim: int = ranged(128, AT_LEAST_1)
    """Mamba-2 SSM state size."""
    mamba_num_groups: int = ranged(8, AT_LEAST_1)
    """Mamba-2 B/C groups."""
    moe_router_score_function: RouterScore = RouterScore.softmax
    """Router score over experts: softmax, or sigmoid (DeepSeek-V3 / Nemotron 3 style)."""
    moe_router_enable_expert_bias: bool = False
    """Aux-loss-free balancing: a per-expert bias on routing scores, updated from token counts."""
    moe_router_topk_scaling_factor: Optional[float] = ranged(None, POSITIVE)
    """Multiply the selected experts' routing weights by this (Nemotron 3 Nano: 2.5); null: 1."""
    moe_router_load_balancing_type: Optional[LoadBalancing] = None
    """Load-balancing loss; null means aux_loss when moe_aux_loss_coeff > 0, else none."""
    moe_router_dtype: Optional[RouterDtype] = None
    """Router precision; null means the model's dtype (fp32 on CPU, bf16 on GPU)."""
    moe_shared_expert_intermediate_size: Optional[int] = ranged(None, AT_LEAST_1)
    """Width of the shared expert every token passes through in each MoE layer; null: none."""


@dataclass
class DataConfig:
    """Training data (group `data`)."""

    name: str = "tiny"
    """Display name of the data option."""
    generate_tiny: bool = True
    """With neither prefixes nor blend_file: generate the embedded tiny corpus and prepare it."""
    prefixes: List[str] = field(default_factory=list)
    """Megatron indexed-dataset path prefixes (without .bin/.idx); excludes blend_file."""
    weights: Optional[List[float]] = None
    """Blend weights, one per prefix; null means proportional to size."""
    blend_file: Optional[str] = None
    """Blend JSON written by `+recipe=data/prep` (shards beside it): prefixes, weights, tokenizer."""
    tokenizer_path: Optional[str] = None
    """A `tokenizers` JSON file; null in prep trains a BPE on the sources (blend files name theirs)."""
    eod_token: str = "<|endoftext|>"
    """The tokenizer's end-of-document token, appended to every document."""
    sources: List[Any] = field(default_factory=list)
    """Prep inputs: files, globs or folders (.jsonl, .jsonl.gz, .jsonl.zst, .parquet, .txt, a save_to_disk
    or parquet-shard folder), weighted sources {path, weight, epochs}, or a blend .json (docs/data.md)."""
    source_weights: Optional[List[float]] = None
    """Prep: blend weight of each `sources` entry; null weighs every source by its token count."""
    text_key: str = "text"
    """Prep: the JSONL field (parquet/arrow column) holding a document's text."""
    messages_key: str = "messages"
    """SFT prep: the JSONL field (parquet/arrow column) holding a conversation's messages."""
    num_workers: int = ranged(0, NON_NEGATIVE)
    """Prep: tokenizing worker processes, one CPU each, also on one small file (shards are split
    among them; the output is the same for any count); 0 uses every CPU this process may run on."""
    docs_per_shard: int = ranged(100000, AT_LEAST_1)
    """Prep: documents per .bin/.idx shard (the unit of output and of resume)."""
    split: str = "98,1,1"
    """Train/valid/test split of each prefix, in parts."""
    cache_dir: str = "${paths.cache_dir}/data/${data.name}"
    """Where generated data, tokenizer and Megatron index caches are written."""
    num_documents: int = ranged(2000, AT_LEAST_1)
    """Documents in the generated tiny corpus."""
    tokenizer_vocab_size: int = ranged(512, AT_LEAST_1)
    """Vocabulary of a BPE tokenizer trained here (the tiny corpus, or prep without tokenizer_path)."""
    seed: int = ranged(1234, NON_NEGATIVE)
    """Seed of the generated corpus and of Megatron's sample shuffling."""
    packed_file: Optional[str] = None
    """SFT/DPO: the manifest `+recipe=data/prep_sft` (or data/prep_dpo) writes, samples beside it."""
    chat_template: Optional[str] = None
    """SFT prep: a Jinja chat template (.jinja path or text) marking answers with {% generation %};
    null: the tokenizer_config.json beside the tokenizer, else the shipped default."""
    overlong: Overlong = Overlong.truncate
    """SFT prep: a conversation longer than model.seq_length + 1 tokens is `truncate`d or `drop`ped."""


@dataclass
class TrainConfig:
    """Training loop settings (top-level `train`)."""

    steps: int = ranged(30, AT_LEAST_1)
    """Optimizer steps to run (Megatron `train_iters`)."""
    micro_batch_size: int = ranged(4, AT_LEAST_1)
    """Samples per forward/backward on one data-parallel rank."""
    global_batch_size: int = ranged(8, AT_LEAST_1)
    """Samples per optimizer step over all data-parallel ranks (gradient accumulation fills the gap)."""
    seed: int = ranged(1234, NON_NEGATIVE)
    """Seed of parameter initialisation and dropout."""
    log_interval: int = ranged(5, AT_LEAST_1)
    """Steps between progress lines."""
    eval_interval: int = ranged(0, NON_NEGATIVE)
    """Steps between validation-loss evaluations; 0 disables."""
    eval_iters: int = ranged(2, AT_LEAST_1)
    """Validation batches per evaluation."""
    num_threads: int = ranged(0, NON_NEGATIVE)
    """CPU threads per rank for torch; 0 divides the machine's cores among local ranks."""
    recompute: Recompute = Recompute.none
    """Activation recomputation: none, selective (attention core) or full (whole layers)."""


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule (top-level `optim`)."""

    lr: float = ranged(3e-3, POSITIVE)
    """Peak learning rate."""
    min_lr: Optional[float] = ranged(None, NON_NEGATIVE)
    """Learning rate at the end of decay; null means lr / 10 (so sweeping lr alone stays consistent)."""
    weight_decay: float = ranged(0.01, NON_NEGATIVE)
    """AdamW weight decay."""
    adam_beta1: float = ranged(0.9, FRACTION)
    """Adam beta1."""
    adam_beta2: float = ranged(0.95, FRACTION)
    """Adam beta2."""
    adam_eps: float = ranged(1e-8, POSITIVE)
    """Adam epsilon."""
    clip_grad: float = ranged(1.0, NON_NEGATIVE)
    """Gradient-norm clipping threshold; 0 disables."""
    warmup_steps: int = ranged(5, NON_NEGATIVE)
    """Linear warmup steps."""
    decay_style: DecayStyle = DecayStyle.cosine
    """Decay after warmup."""
    wsd_decay_steps: Optional[int] = ranged(None, AT_LEAST_1)
    """Steps of the final decay phase for decay_style=WSD; null means a fifth of train.steps."""


@dataclass
class CheckpointConfig:
    """Saving and resuming (top-level `checkpoint`)."""

    dir: str = "${run_dir}/checkpoints"
    """Where this run saves checkpoints and looks for one to resume from."""
    save_interval: int = ranged(0, NON_NEGATIVE)
    """Steps between saves; 0 saves only at the end."""
    save_at_end: bool = True
    """Save after the last step."""
    keep_last: int = ranged(2, NON_NEGATIVE)
    """Complete checkpoints to keep (older ones are deleted); 0 keeps all."""
    resume: bool = True
    """Resume from the latest complete checkpoint in `dir` when one exists."""
    load_dir: Optional[str] = None
    """Initialise from the latest checkpoint of another run (weights and, unless finetuning, state)."""
    timeout_s: int = ranged(600, AT_LEAST_1)
    """Upper bound on one save or load; a hung writer fails the run instead of blocking it forever."""
    pretrained: Optional[str] = None
    """SFT/DPO: initial weights (fresh optimizer and schedule): `newest:<recipe>` (the newest complete
    checkpoint under paths.output_root/<recipe>; `newest:a|b` tries a, then b), a checkpoint dir or
    an iter_N folder; null: random."""


@dataclass
class ParallelConfig:
    """Model parallel layout (top-level `parallel`); data parallel fills the rest of the world."""

    tensor_model_parallel_size: int = ranged(1, AT_LEAST_1)
    """Tensor parallel ranks (TP)."""
    pipeline_model_parallel_size: int = ranged(1, AT_LEAST_1)
    """Pipeline stages (PP)."""
    context_parallel_size: int = ranged(1, AT_LEAST_1)
    """Context (sequence-split attention) parallel ranks (CP)."""
    expert_model_parallel_size: int = ranged(1, AT_LEAST_1)
    """Expert parallel ranks for MoE layers (EP); carved out of data x context parallel ranks."""
    data_parallel_size: Optional[int] = ranged(None, AT_LEAST_1)
    """Data parallel replicas (DP); null derives world_size / (TP x PP x CP)."""
    sequence_parallel: bool = False
    """Megatron sequence parallelism (needs TP > 1)."""
    use_distributed_optimizer: bool = False
    """Shard optimizer state over data parallel ranks."""


@dataclass
class TrackerConfig:
    """Experiment tracking (group `tracker`)."""

    kind: str = "none"
    """Backend: `mlflow`, `jsonl` (metrics appended to a JSON-lines file) or `none`."""
    path: Optional[str] = None
    """File the jsonl backend writes; null means <run_dir>/metrics.jsonl."""
    uri: Optional[str] = None
    """MLflow tracking URI; null means $MLFLOW_TRACKING_URI, else sqlite:///<paths.output_root>/mlflow.db."""
    experiment: Optional[str] = None
    """MLflow experiment; null means $MLFLOW_EXPERIMENT_NAME (or _ID), else the recipe name."""
    run_name: Optional[str] = None
    """MLflow run name; null means the run directory's name (a sweep member: its overrides)."""
    run_id: Optional[str] = None
    """MLflow run to continue; null continues the one in <run_dir>/tracking/mlflow_run_id, else a new run."""
    tags: Dict[str, str] = field(default_factory=dict)
    """Extra tags set on the MLflow run."""
    log_artifacts: bool = True
    """Upload the resolved config, runspec block, sbatch script, train.log and the run's loss.png."""
    flush_interval_s: float = ranged(2.0, POSITIVE)
    """Seconds between uploads of buffered metrics by the tracker's uploader process."""
    retry_max_s: float = ranged(60.0, POSITIVE)
    """Longest wait between reconnection attempts while the tracking server is unreachable."""
    close_timeout_s: float = ranged(10.0, NON_NEGATIVE)
    """After training, how long to keep trying to upload before leaving it to `python -m nemotron.tracking sync`."""
    registry: str = "${paths.output_root}/artifacts.json"
    """Artifact registry (checkpoint and data manifests, lineage) that `${art:name}` resolves against."""


@dataclass
class RecipeConfig:
    """The selected recipe, filled from its runspec block by `+recipe=<name>`."""

    name: str = ""
    """Runspec name, e.g. `nano3/pretrain`; empty means no recipe was selected."""
    script: str = ""
    """Absolute path of the recipe script."""
    launch: Launch = Launch.torchrun
    """How the script is started."""
    cmd: Optional[str] = None
    """Command template with {script} and {config}; null uses the launch mode's default."""
    workdir: Optional[str] = None
    """Working directory inside the container (remote runs)."""
    image: Optional[str] = None
    """Default container image for remote runs."""
    setup: str = ""
    """Note on what the image provides."""
    nodes: int = ranged(1, AT_LEAST_1)
    """Default node count from the runspec."""
    gpus_per_node: int = ranged(8, NON_NEGATIVE)
    """Default GPUs per node from the runspec."""
    env: Dict[str, str] = field(default_factory=dict)
    """Environment variables the runspec sets at run time."""
    dependencies: List[str] = field(default_factory=list)
    """PEP 723 dependencies declared by the script (recorded, not installed)."""


@dataclass
class PathsConfig:
    """Where outputs and caches go (top-level `paths`)."""

    output_root: str = "outputs"
    """Root of run directories."""
    cache_dir: str = ".cache/nemotron"
    """Root of generated data and other reusable artifacts."""


@dataclass
class PreflightConfig:
    """Checks before anything starts that go beyond the config's own rules (top-level `preflight`)."""

    memory: MemoryCheck = MemoryCheck.check
    """Memory per GPU estimated against cluster.gpu_memory_gb: `check` refuses a run that does not
    fit, `warn` prints one line and goes on, `off` skips it. CPU runs are never checked."""
    memory_headroom: float = ranged(0.05, FRACTION)
    """Share of a GPU's memory kept free on top of the estimate's own allowance (0 to 1)."""


@dataclass
class RunConfig:
    """The whole composed run."""

    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    """Selected recipe (see RecipeConfig)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Model architecture."""
    data: DataConfig = field(default_factory=DataConfig)
    """Training data."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training loop."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and schedule."""
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    """Parallel layout."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Checkpoint saving and resuming."""
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    """Requested resources."""
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    """Cluster option."""
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    """Tracking backend."""
    paths: PathsConfig = field(default_factory=PathsConfig)
    """Output and cache locations."""
    preflight: PreflightConfig = field(default_factory=PreflightConfig)
    """Pre-flight checks (memory fit)."""
    dpo: DpoConfig = field(default_factory=DpoConfig)
    """Preference optimization (the */dpo recipes; see nemotron/config/schema_dpo.py)."""
    peft: PeftConfig = field(default_factory=PeftConfig)
    """Parameter-efficient fine-tuning (group `peft`; nemotron/config/schema_peft.py)."""
    rl: RLConfig = field(default_factory=RLConfig)
    """GRPO settings (the rl recipes)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """lm-evaluation-harness settings (the eval recipes; see nemotron/config/schema_eval.py)."""
    run_dir: Optional[str] = None
    """This run's directory: Hydra's output dir (null when printed by --cfg, which runs nothing)."""
    dry_run: bool = False
    """Print the resolved config and the exact command lines, then exit without running."""
