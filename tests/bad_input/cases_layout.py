"""Bad layouts and resources: what the model, the parallel sizes and the ranks asked for cannot do."""

from __future__ import annotations

from case import Case

GPT = "+recipe=gpt/pretrain"
NANO3 = "+recipe=nano3/pretrain"

ROWS = [
    ((GPT, "model.hidden_size=100", "model.num_attention_heads=3"), "model.num_attention_heads=3 must divide"),
    ((GPT, "model.num_query_groups=3"), "model.num_query_groups=3"),
    ((GPT, "parallel.tensor_model_parallel_size=2"), "does not divide the world size 1"),
    ((GPT, "parallel.pipeline_model_parallel_size=2"), "does not divide the world size 1"),
    ((GPT, "parallel.context_parallel_size=2"), "does not divide the world size 1"),
    ((GPT, "resources.gpus_per_node=16"), "resources.gpus_per_node=16 exceeds cluster.gpus_per_node="),
    ((GPT, "resources.nodes=2"), "resources.nodes=2"),
    (
        (GPT, "parallel.sequence_parallel=true"),
        "parallel.sequence_parallel=true needs parallel.tensor_model_parallel_size > 1",
    ),
    (
        (
            GPT,
            "parallel.pipeline_model_parallel_size=3",
            "resources.procs_per_node=3",
            "train.global_batch_size=9",
            "train.micro_batch_size=3",
        ),
        "parallel.pipeline_model_parallel_size=3 must divide the model's 2 layers",
    ),
    ((GPT, "train.global_batch_size=6"), "train.global_batch_size=6 must be a multiple of train.micro_batch_size=4"),
    ((GPT, "resources.procs_per_node=2", "train.global_batch_size=4"), "train.global_batch_size=4 must be a multiple"),
    (
        (GPT, "parallel.expert_model_parallel_size=2", "resources.procs_per_node=2"),
        "parallel.expert_model_parallel_size=2",
    ),
    ((NANO3, "model.moe_router_topk=8"), "model.moe_router_topk=8"),
    ((NANO3, "model.hybrid_layer_pattern=MXME"), "model.hybrid_layer_pattern"),
    ((GPT, "parallel.data_parallel_size=2"), "DP 2 = 2 does not match the world size 1"),
    ((GPT, "cluster.signal_delay_s=99999", "cluster=slurm"), "cluster.signal_delay_s=99999"),
    ((GPT, "model=gpt_8b", "cluster=dgx"), "error: memory: pipeline stage 0 needs"),
    # a layout the target stack cannot run: refused at compose, not inside a job that holds nodes
    (
        (
            GPT,
            "cluster=dgx",
            "cluster.transformer_engine=false",
            "resources.gpus_per_node=2",
            "parallel.tensor_model_parallel_size=2",
            "parallel.sequence_parallel=true",
        ),
        "parallel.sequence_parallel=true needs the Transformer Engine layer spec",
    ),
    (
        (
            "+recipe=gpt/sft",
            "checkpoint.pretrained=null",
            "peft=lora",
            "cluster=dgx",
            "resources.gpus_per_node=2",
            "parallel.tensor_model_parallel_size=2",
            "parallel.sequence_parallel=true",
        ),
        "peft=lora with parallel.sequence_parallel=true: adapters on sequence-parallel layers",
    ),
]

CASES = [Case(f"layout: {' '.join(args[1:])}", args, expect) for args, expect in ROWS]
