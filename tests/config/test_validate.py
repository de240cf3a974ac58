"""Each cross-field rule rejects the config that breaks it, and only that config.

The valid baseline passes every rule, so each parametrized case fails if its rule is removed.
"""

from __future__ import annotations

import pytest

from nemotron.config.validate import RULES, ConfigError, problems, validate

BASE = ["+recipe=gpt/pretrain"]


def _parquet_without_text() -> str:
    """A parquet file (in a temp dir of its own) whose only column is `body`."""
    import tempfile
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(tempfile.mkdtemp(prefix="nemotron-validate-")) / "no_text.parquet"
    pq.write_table(pa.Table.from_pylist([{"body": "x"}]), path)
    return str(path)


def _checkpoint_of(config_yaml: str) -> str:
    """A complete (empty) checkpoint folder whose run's config.yaml is `config_yaml` ({dir}: its folder)."""
    import json
    import tempfile
    from pathlib import Path

    run = Path(tempfile.mkdtemp(prefix="nemotron-validate-ckpt-"))
    (run / "checkpoints" / "iter_0000002").mkdir(parents=True)
    (run / "checkpoints" / "iter_0000002" / "nemotron_checkpoint.json").write_text(json.dumps({"files": {}}))
    (run / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"a": 0, "b": 1}}, "added_tokens": []}))
    (run / "config.yaml").write_text(config_yaml.replace("{dir}", str(run)))
    return str(run / "checkpoints")


BROKEN = {
    "eval_checkpoint_shape": (
        ["+recipe=gpt/eval", f"checkpoint.pretrained={_checkpoint_of('model: {hidden_size: 48}')}"],
        "holds another model: model.hidden_size=48 there, 64 in this run",
    ),
    "eval_tokenizer_matches": (
        ["+recipe=gpt/eval", f"checkpoint.pretrained={_checkpoint_of('data: {tokenizer_path: {dir}}')}"],
        "was trained with tokenizer",
    ),
    "eval_task_sizes": (
        ["+recipe=gpt/eval", "checkpoint.pretrained=null", "eval.num_examples=5", "eval.num_fewshot=5"],
        "eval.num_fewshot=5: task nemotron_arithmetic has 5 documents (eval.num_examples, or the held-out sums of rl.max_operand), so at most 4",
    ),
    "chat_prep_inputs": (["+recipe=data/prep_sft"], "data.tokenizer_path is null: name the tokenizer"),
    "eval_layout": (
        [
            "+recipe=gpt/eval",
            "checkpoint.pretrained=null",
            "resources.procs_per_node=2",
            "parallel.pipeline_model_parallel_size=2",
        ],
        "parallel.pipeline_model_parallel_size=2: evaluation runs with tensor and data parallelism only",
    ),
    "local_tasks_known": (
        ["+recipe=gpt/eval", "checkpoint.pretrained=null", "eval.tasks=[nemotron_arithmetc]"],
        "eval.tasks: unknown task 'nemotron_arithmetc'; closest: nemotron_arithmetic",
    ),
    "lora_on_fine_tuning_only": (["peft=lora"], "peft=lora with +recipe=gpt/pretrain: adapters train in SFT and DPO"),
    "lora_rank_fits": (
        ["+recipe=gpt/sft", "checkpoint.pretrained=null", "peft=lora", "peft.rank=100000"],
        "peft.rank=100000 is above the layers' width",
    ),
    "lora_targets_known": (
        ["+recipe=gpt/sft", "checkpoint.pretrained=null", "peft=lora", "peft.target_modules=[linear_qvk]"],
        "peft.target_modules: linear_qvk is no layer name LoRA can adapt",
    ),
    "peft_method_known": (
        ["+recipe=gpt/sft", "checkpoint.pretrained=null", "peft.method=dora"],
        "peft.method='dora' is not one we have",
    ),
    "secrets_are_strings": (
        ["+cluster.env.DB_PASSWORD=123"],
        "cluster.env.DB_PASSWORD: a secret must be a string, not int",
    ),
    "signal_before_time_limit": (
        ["cluster.time_limit=2", "cluster.signal_delay_s=120"],
        "cluster.signal_delay_s=120 must be between 0 and cluster.time_limit=2 minutes (120 s)",
    ),
    "keys_known": (["+model.num_layrs=3"], "model.num_layrs: unknown key (did you mean num_layers?)"),
    "dpo_without_pipeline": (
        [
            "+recipe=gpt/dpo",
            "checkpoint.pretrained=null",
            "resources.procs_per_node=2",
            "parallel.pipeline_model_parallel_size=2",
        ],
        "parallel.pipeline_model_parallel_size=2: DPO runs without pipeline parallelism",
    ),
    "heads_divide_hidden": (
        ["model.hidden_size=100", "model.num_attention_heads=3", "model.num_query_groups=null"],
        "model.num_attention_heads=3 must divide model.hidden_size=100",
    ),
    "query_groups_divide_heads": (["model.num_query_groups=3"], "model.num_query_groups=3 must divide"),
    "tensor_parallel_divides_heads": (
        ["parallel.tensor_model_parallel_size=4", "resources.procs_per_node=4", "model.num_query_groups=2"],
        "parallel.tensor_model_parallel_size=4 must divide",
    ),
    "layout_matches_world": (
        ["parallel.tensor_model_parallel_size=2"],
        "TP 2 x PP 1 x CP 1 = 2 does not divide the world size 1",
    ),
    "expert_parallel_fits": (
        ["parallel.expert_model_parallel_size=2", "resources.procs_per_node=2"],
        "parallel.expert_model_parallel_size=2 needs a MoE model",
    ),
    "router_topk_fits": (["model=nano3_tiny", "model.moe_router_topk=5"], "model.moe_router_topk=5 exceeds"),
    "hybrid_pattern_fits": (["model=nano3_tiny", "model.num_layers=6"], "has 4 layers but model.num_layers=6"),
    "gpus_fit_cluster": (["resources.gpus_per_node=64"], "resources.gpus_per_node=64 exceeds cluster.gpus_per_node"),
    "nodes_fit_cluster": (["resources.nodes=2"], "resources.nodes=2 must be between 1 and cluster.max_nodes=1"),
    "batch_divides": (["train.global_batch_size=7"], "train.global_batch_size=7 must be a multiple"),
    "sequence_parallel_needs_tp": (["parallel.sequence_parallel=true"], "parallel.sequence_parallel=true needs"),
    "transformer_engine_when_demanded": (
        ["model.transformer_impl=transformer_engine"],
        "model.transformer_impl=transformer_engine but a CPU run has no Transformer Engine",
    ),
    "sequence_parallel_needs_te": (
        ["parallel.tensor_model_parallel_size=2", "resources.procs_per_node=2", "parallel.sequence_parallel=true"],
        "parallel.sequence_parallel=true needs the Transformer Engine layer spec",
    ),
    "sequence_parallel_splits_the_sequence": (
        [
            "cluster=dgx",
            "resources.gpus_per_node=2",
            "model.seq_length=127",
            "parallel.tensor_model_parallel_size=2",
            "parallel.sequence_parallel=true",
        ],
        "model.seq_length=127: sequence parallelism splits every sequence",
    ),
    "context_parallel_needs_te": (
        ["parallel.context_parallel_size=2", "resources.procs_per_node=2"],
        "parallel.context_parallel_size=2 needs Transformer Engine's attention",
    ),
    "moe_tensor_parallel_needs_sp": (
        ["model=nano3_tiny", "parallel.tensor_model_parallel_size=2", "resources.procs_per_node=2"],
        "with parallel.tensor_model_parallel_size=2 needs parallel.sequence_parallel=true",
    ),
    "mamba_context_parallel": (
        ["model=nano3_tiny", "parallel.context_parallel_size=2", "resources.procs_per_node=2"],
        "with Mamba layers needs mamba_ssm's mixer",
    ),
    "packed_context_parallel": (
        [
            "+recipe=gpt/sft",
            "checkpoint.pretrained=null",
            "parallel.context_parallel_size=2",
            "resources.procs_per_node=2",
        ],
        "packed SFT/DPO samples are not split over context-parallel ranks",
    ),
    "packed_thd_pipeline_micro_batch": (
        [
            "+recipe=gpt/sft",
            "checkpoint.pretrained=null",
            "cluster=dgx",
            "resources.gpus_per_node=2",
            "parallel.pipeline_model_parallel_size=2",
            "train.micro_batch_size=2",
        ],
        "train.micro_batch_size=2: packed samples on the Transformer Engine spec",
    ),
    "lora_sequence_parallel": (
        [
            "+recipe=gpt/sft",
            "checkpoint.pretrained=null",
            "peft=lora",
            "cluster=dgx",
            "resources.gpus_per_node=2",
            "parallel.tensor_model_parallel_size=2",
            "parallel.sequence_parallel=true",
        ],
        "peft=lora with parallel.sequence_parallel=true: adapters on sequence-parallel layers",
    ),
    "values_in_range": (["train.steps=0"], "train.steps=0: out of range, must be >= 1"),
    "min_lr_below_lr": (["optim.lr=1e-4", "optim.min_lr=3e-4"], "optim.min_lr=0.0003 exceeds optim.lr=0.0001"),
    "tracker_uri_valid": (
        ["tracker=mlflow", "tracker.uri=localhost:5000"],
        "tracker.uri: 'localhost:5000' looks like host:port",
    ),
    "load_dir_has_checkpoint": (
        ["checkpoint.load_dir=/nonexistent/run"],
        "checkpoint.load_dir=/nonexistent/run: no such directory",
    ),
    "pretrained_checkpoint_exists": (
        ["checkpoint.pretrained=/nonexistent/run"],
        "checkpoint.pretrained=/nonexistent/run holds no complete checkpoint",
    ),
    "blend_file_ready": (
        ["data.blend_file=/nonexistent/blend.json"],
        "data.blend_file: /nonexistent/blend.json not found",
    ),
    "prefixes_exist": (["data.prefixes=[/nonexistent/web]"], "data.prefixes: /nonexistent/web.bin does not exist"),
    "has_training_data": (["data.generate_tiny=false"], "no training data: set data.prefixes"),
    "tracker_path_writable": (
        ["tracker=jsonl", "tracker.path=/etc/hostname/m.jsonl"],
        "tracker.path=/etc/hostname/m.jsonl",
    ),
    "tracker_kind_known": (["tracker.kind=wandb"], "tracker.kind='wandb' is not a tracker we have"),
    "prefixes_complete": (
        ["data.prefixes=[/x/web]", "data.generate_tiny=false", "data.blend_file=/x/b.json"],
        "data.prefixes and data.blend_file=/x/b.json are both set; use one of them",
    ),
    "tokenizer_exists": (
        ["data.tokenizer_path=/nonexistent/tok.json"],
        "data.tokenizer_path=/nonexistent/tok.json: no such file",
    ),
    "sources_match": (
        ["+recipe=data/prep", "data.sources=[/nonexistent/*.jsonl]"],
        "data.sources: /nonexistent/*.jsonl matches no file",
    ),
    "source_weights_valid": (
        ["+recipe=data/prep_sft", "data.sources=[{path: a.jsonl, weight: -1}]"],
        "data.sources[0]: weight=-1 must be a non-negative number",
    ),
    "source_columns_exist": (
        ["+recipe=data/prep", f"data.sources=[{_parquet_without_text()}]"],
        "no column 'text' (data.text_key); its columns: body",
    ),
    "split_valid": (["data.split='98,x'"], "data.split='98,x' must be up to three non-negative numbers"),
    "pipeline_divides_layers": (
        [
            "parallel.pipeline_model_parallel_size=3",
            "resources.procs_per_node=3",
            "train.global_batch_size=9",
            "train.micro_batch_size=3",
        ],
        "parallel.pipeline_model_parallel_size=3 must divide the model's 2 layers",
    ),
    "vocab_covers_tokenizer": (
        ["model.vocab_size=100"],
        "model.vocab_size=100 is smaller than the tokenizer's 512 tokens",
    ),
    "rl_layout": (
        ["+recipe=gpt/rl", "tracker=none", "resources.procs_per_node=2", "parallel.pipeline_model_parallel_size=2"],
        "parallel.pipeline_model_parallel_size=2: RL generation runs on tensor x data parallel",
    ),
    "rewards_usable": (
        ["+recipe=gpt/rl", "tracker=none", "rl.rewards=[{_target_: no_such.fn}]"],
        "rl.rewards[0]._target_=no_such.fn: does not import",
    ),
    "memory_fits": (
        ["model=gpt_8b", "cluster=dgx", "train.micro_batch_size=1"],
        "memory: pipeline stage 0 needs ~207.3 GiB per GPU",
    ),
}


def test_every_rule_has_a_case():
    assert sorted(BROKEN) == sorted(rule.__name__ for rule in RULES)


def test_baseline_passes_every_rule(compose):
    assert problems(compose(BASE)) == []


@pytest.mark.parametrize("rule", sorted(BROKEN))
def test_rule_rejects_its_broken_config(compose, rule):
    overrides, expected = BROKEN[rule]
    base = [] if any(o.startswith("+recipe=") for o in overrides) else BASE  # a case may pick its recipe
    with pytest.raises(ConfigError) as err:
        validate(compose(base + overrides))
    assert expected in str(err.value)
    assert all(len(line) < 400 for line in str(err.value).splitlines())


def test_lora_on_the_transformer_engine_spec_composes(compose):
    """LoRA wraps TE's layers too: a GPU cluster's TE stack takes peft=lora (issue 27)."""
    from nemotron.common import stack as stacks

    for overrides in (["+recipe=gpt/sft"], ["+recipe=nano3/sft", "model=nano3_tiny"]):
        cfg = compose([*overrides, "checkpoint.pretrained=null", "peft=lora", "cluster=dgx", "resources.gpus_per_node=1"])
        assert stacks.layer_spec(cfg) == stacks.TE
        assert problems(cfg) == []


def test_expert_parallel_must_divide_experts(compose):
    cfg = compose(
        BASE
        + [
            "model=nano3_tiny",
            "parallel.expert_model_parallel_size=3",
            "resources.procs_per_node=3",
            "train.global_batch_size=12",
        ]
    )
    assert any("must divide model.num_moe_experts=4" in p for p in problems(cfg))


def test_data_parallel_given_explicitly_must_match_world(compose):
    cfg = compose(BASE + ["parallel.data_parallel_size=2"])
    assert any("x DP 2 = 2 does not match the world size 1" in p for p in problems(cfg))


def test_two_ranks_with_tp2_is_valid(compose):
    cfg = compose(BASE + ["parallel.tensor_model_parallel_size=2", "resources.procs_per_node=2"])
    assert problems(cfg) == []


def test_hybrid_pattern_tiles_to_a_multiple_of_its_length(compose):
    from nemotron.common.hybrid_pattern import hybrid_pattern

    cfg = compose(BASE + ["model=nano3_tiny", "model.num_layers=8"])
    assert problems(cfg) == []
    assert hybrid_pattern(cfg.model) == cfg.model.hybrid_layer_pattern * 2
