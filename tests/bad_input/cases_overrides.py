"""Bad command-line overrides: values out of range, wrong types, unknown keys and options, grammar."""

from __future__ import annotations

from case import Case

OUT_OF_RANGE = [
    # (key=value, what the one line must contain)
    ("optim.lr=-1", "optim.lr=-1.0: out of range, must be > 0"),
    ("optim.lr=0", "optim.lr=0.0: out of range, must be > 0"),
    ("optim.lr=nan", "optim.lr=nan"),
    ("optim.lr=inf", "optim.lr=inf"),
    ("optim.min_lr=-1e-5", "optim.min_lr="),
    ("optim.weight_decay=-0.1", "optim.weight_decay=-0.1"),
    ("optim.adam_eps=0", "optim.adam_eps=0"),
    ("optim.clip_grad=-1", "optim.clip_grad=-1"),
    ("optim.warmup_steps=-1", "optim.warmup_steps=-1"),
    ("optim.wsd_decay_steps=0", "optim.wsd_decay_steps=0"),
    ("model.num_layers=0", "model.num_layers=0"),
    ("model.hidden_size=0", "model.hidden_size=0"),
    ("model.num_attention_heads=0", "model.num_attention_heads=0"),
    ("model.seq_length=0", "model.seq_length=0"),
    ("model.hidden_dropout=1.5", "model.hidden_dropout=1.5"),
    ("model.attention_dropout=-0.1", "model.attention_dropout=-0.1"),
    ("model.init_method_std=0", "model.init_method_std=0"),
    ("model.rotary_base=0", "model.rotary_base=0"),
    ("model.moe_router_topk=0", "model.moe_router_topk=0"),
    ("model.vocab_size=0", "model.vocab_size=0"),
    ("train.steps=0", "train.steps=0"),
    ("train.steps=-3", "train.steps=-3"),
    ("train.micro_batch_size=0", "train.micro_batch_size=0"),
    ("train.global_batch_size=0", "train.global_batch_size=0"),
    ("train.log_interval=0", "train.log_interval=0"),
    ("train.eval_iters=0", "train.eval_iters=0"),
    ("train.num_threads=-1", "train.num_threads=-1"),
    ("train.seed=-1", "train.seed=-1"),
    ("checkpoint.keep_last=-1", "checkpoint.keep_last=-1"),
    ("checkpoint.save_interval=-5", "checkpoint.save_interval=-5"),
    ("checkpoint.timeout_s=0", "checkpoint.timeout_s=0"),
    ("resources.nodes=0", "resources.nodes=0"),
    ("resources.procs_per_node=0", "resources.procs_per_node=0"),
    ("resources.gpus_per_node=-1", "resources.gpus_per_node=-1"),
    ("parallel.tensor_model_parallel_size=0", "parallel.tensor_model_parallel_size=0"),
    ("parallel.pipeline_model_parallel_size=0", "parallel.pipeline_model_parallel_size=0"),
    ("parallel.context_parallel_size=0", "parallel.context_parallel_size=0"),
    ("data.num_workers=-1", "data.num_workers=-1"),
    ("data.docs_per_shard=0", "data.docs_per_shard=0"),
    ("data.num_documents=0", "data.num_documents=0"),
    ("cluster.time_limit=0", "cluster.time_limit=0"),
    ("cluster.max_requeues=-1", "cluster.max_requeues=-1"),
]

WRONG_TYPE = [
    ("train.steps=1.5", "train.steps: Value '1.5' of type 'float' could not be converted to Integer"),
    ("train.steps=abc", "train.steps: Value 'abc'"),
    ("optim.lr=fast", "optim.lr: Value 'fast'"),
    ("model.arch=transformer", "model.arch: Invalid value 'transformer', expected one of [gpt, hybrid]"),
    ("model.normalization=BatchNorm", "model.normalization: Invalid value 'BatchNorm'"),
    ("model.activation=tanh", "model.activation: Invalid value 'tanh'"),
    ("optim.decay_style=step", "optim.decay_style: Invalid value 'step'"),
    ("train.recompute=some", "train.recompute: Invalid value 'some'"),
    ("checkpoint.resume=maybe", "checkpoint.resume: Value 'maybe'"),
    ("model.num_layers=[2]", "model.num_layers"),
]

UNKNOWN = [
    ("model.num_layrs=2", "model.num_layrs: unknown key (did you mean num_layers?)"),
    ("+model.num_layrs=2", "model.num_layrs: unknown key (did you mean num_layers?)"),
    ("optim.lrr=1e-3", "optim.lrr: unknown key (did you mean lr?)"),
    ("+trainer.steps=1", "trainer"),
    ("model=nope", "model=nope: no such option"),
    ("model=gpt_tiyn", "model=gpt_tiyn: no such option (did you mean gpt_tiny?)"),
    ("data=nope", "data=nope: no such option"),
    ("cluster=dgxx", "cluster=dgxx: no such option (did you mean dgx?)"),
    ("tracker=wandb", "tracker=wandb: no such option"),
]

GRAMMAR = [
    ("train.steps=[1", "override 'train.steps=[1'"),
    ("optim.lr=1e-3)", "override 'optim.lr=1e-3)'"),
    ("=3", "override '=3'"),
    ("~model.nope", "model.nope"),
    ("train.steps=${nope.key}", "nope.key"),
]


def _cases():
    for group, rows in (("range", OUT_OF_RANGE), ("type", WRONG_TYPE), ("unknown", UNKNOWN), ("grammar", GRAMMAR)):
        for override, expect in rows:
            yield Case(f"override {group}: {override}", ("+recipe=gpt/pretrain", override), expect)
    yield Case("no recipe selected", (), "no recipe selected: add +recipe=<name>; available:")
    yield Case("recipe typo", ("+recipe=nano3/pretrian",), "+recipe=nano3/pretrian: no such recipe (did you mean")
    yield Case("recipe that does not exist", ("+recipe=llama/pretrain",), "+recipe=llama/pretrain: no such recipe")


CASES = list(_cases())
