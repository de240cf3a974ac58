"""Bad data paths, tokenizers, checkpoints and trackers: what the run would read or write."""

from __future__ import annotations

from case import Case

GPT = "+recipe=gpt/pretrain"
NO_TINY = "data.generate_tiny=false"

ROWS = [
    ((GPT, "data=prepared", "data.blend_file=/nonexistent/blend.json"), "data.blend_file: /nonexistent/blend.json"),
    ((GPT, NO_TINY, "data.prefixes=[/nonexistent/web]"), "data.prefixes: /nonexistent/web.bin does not exist"),
    ((GPT, "data.tokenizer_path=/nonexistent/tok.json"), "data.tokenizer_path=/nonexistent/tok.json: no such file"),
    ((GPT, "data.split='98,a'"), "data.split='98,a' must be up to three non-negative numbers"),
    ((GPT, "data.split='1,2,3,4'"), "data.split='1,2,3,4'"),
    ((GPT, "data.split='-1,2'"), "data.split='-1,2'"),
    ((GPT, "model.vocab_size=100"), "is smaller than the tokenizer's 512 tokens"),
    ((GPT, NO_TINY), "no training data: set data.prefixes"),
    (("+recipe=gpt/sft", NO_TINY, "checkpoint.pretrained=null"), "no training data"),
    (("+recipe=data/prep", "data.sources=[/nonexistent/*.jsonl]"), "data.sources"),
    (("+recipe=data/prep_sft", "data.sources=[/nonexistent/chats.jsonl]"), "data.sources"),
    (("+recipe=data/prep_sft",), "data.tokenizer_path is null"),
    (("+recipe=data/prep_dpo", "data.packed_file=null"), "data.packed_file is null"),
    (("+recipe=data/prep_sft", "data.sources=[{path: a.jsonl, weight: -2}]"), "data.sources[0]: weight=-2 must be"),
    (
        ("+recipe=data/prep_dpo", "data.sources=[{path: a.jsonl, weight: 0},{path: b.jsonl, weight: 0}]"),
        "data.sources: every weight is 0",
    ),
    (("+recipe=data/prep_sft", "data.sources=[{path: a.jsonl, weight: lots}]"), "weight='lots' is not a number"),
    (("+recipe=data/prep", "data.sources=[{path: a.jsonl, weight: 1}, b.jsonl]"), "give every source a weight or none"),
    ((GPT, "checkpoint.load_dir=/nonexistent/run"), "checkpoint.load_dir=/nonexistent/run: no such directory"),
    ((GPT, "checkpoint.pretrained=/nonexistent/ckpt"), "checkpoint.pretrained=/nonexistent/ckpt"),
    (("+recipe=gpt/sft",), "checkpoint.pretrained=newest:gpt/pretrain: no complete checkpoint"),
    (("+recipe=nano3/sft",), "checkpoint.pretrained=newest:nano3/pretrain: no complete checkpoint"),
    ((GPT, "tracker=mlflow", "tracker.uri=ftp://example.invalid/x"), "MLflow has no store for scheme 'ftp'"),
    ((GPT, "tracker=mlflow", "tracker.uri=htp://127.0.0.1:5000"), "MLflow has no store for scheme 'htp'"),
    ((GPT, "tracker=mlflow", "tracker.uri=localhost:5000"), "looks like host:port without a scheme"),
    ((GPT, "tracker.kind=wandb"), "tracker.kind='wandb' is not a tracker we have"),
    ((GPT, "tracker=jsonl", "tracker.path=/etc/hostname/metrics.jsonl"), "tracker.path=/etc/hostname/metrics.jsonl"),
]

CASES = [Case(f"inputs: {' '.join(args)}", args, expect) for args, expect in ROWS]
CASES.append(
    Case(
        "inputs: a blend file naming a missing source",
        ("+recipe=data/prep_sft", "data.sources=[{root}/blend.json]", "data.tokenizer_path=null"),
        "blend.json: datasets[1]): ",
        files={
            "blend.json": '{"datasets": [{"path": "a.jsonl", "weight": 1}, {"path": "gone/*.jsonl", "weight": 1}]}',
            "a.jsonl": "{}\n",
        },
    )
)

EVAL = ("+recipe=gpt/eval", "checkpoint.pretrained=null")
MARKER = {"ck/checkpoints/iter_0000002/nemotron_checkpoint.json": '{"files": {}}'}
TWO_TOKENS = '{"model": {"vocab": {"a": 0, "b": 1}}, "added_tokens": []}'
CASES += [
    Case(f"eval: {' '.join(args[1:])}", args, expect)
    for args, expect in [
        ((*EVAL, "eval.limit=-1"), "eval.limit=-1"),
        ((*EVAL, "eval.num_fewshot=-2"), "eval.num_fewshot=-2"),
        ((*EVAL, "eval.num_fewshot=30"), "eval.num_fewshot=30: task nemotron_arithmetic has 26 documents"),
        ((*EVAL, "eval.tasks=[nemotron_arith]"), "eval.tasks: unknown task 'nemotron_arith'"),
        ((*EVAL, "rl.max_operand=0"), "eval.tasks: nemotron_arithmetic has no documents"),
    ]
]
CASES += [
    Case(
        "eval: a checkpoint of another shape",
        ("+recipe=gpt/eval", "checkpoint.pretrained={root}/ck/checkpoints"),
        "holds another model: model.hidden_size=48 there, 64 in this run",
        files={**MARKER, "ck/config.yaml": "model: {hidden_size: 48}\n"},
    ),
    Case(
        "eval: a tokenizer that does not match the checkpoint",
        ("+recipe=gpt/eval", "checkpoint.pretrained={root}/ck/checkpoints"),
        "was trained with tokenizer tok.json (2 tokens)",
        files={**MARKER, "ck/config.yaml": "data: {tokenizer_path: tok.json}\n", "tok.json": TWO_TOKENS},
    ),
]
