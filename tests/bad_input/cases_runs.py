"""Bad secrets, sweeps and output places: refused before any member starts or anything is written."""

from __future__ import annotations

from case import Case

GPT = "+recipe=gpt/pretrain"

ROWS = [
    ((GPT, "+cluster.env.DB_PASSWORD=12345678"), "cluster.env.DB_PASSWORD: a secret must be a string, not int"),
    ((GPT, "+cluster.env.HF_TOKEN=[a,b]"), "cluster.env.HF_TOKEN: a secret must be a string"),
    ((GPT, "-m", "optim.lr=-1,1e-3"), "optim.lr=-1.0: out of range, must be > 0 (sweep member(s) 0 of 2; nothing started)"),
    ((GPT, "-m", "model.num_layrs=2,4"), "model.num_layrs: unknown key"),
    ((GPT, "-m", "model=gpt_tiny,nope"), "model=nope: no such option"),
    ((GPT, "-m", "train.steps=1,0,2"), "train.steps=0"),
    ((GPT, "-m", "run_dir=/tmp/same", "optim.lr=1e-3,2e-3"), "would share the run dir"),
    ((GPT, "tracker=mlflow", "-m", "optim.lr=-1,1e-3"), "optim.lr=-1.0: out of range"),
    ((GPT, "paths.output_root=/dev/null/outputs"), "cannot create the run directory /dev/null/outputs"),
    ((GPT, "recipe.launch=direct", "resources.procs_per_node=2"), "recipe.launch=direct starts one process but 2 ranks"),
    ((GPT, "recipe.launch=ray"), "recipe.launch=ray"),
]

CASES = [Case(f"runs: {' '.join(args[1:])}", args, expect) for args, expect in ROWS]
