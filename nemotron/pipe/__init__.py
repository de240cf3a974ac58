"""Pipelines: data prep -> pretrain -> SFT -> RL as one command (`python -m nemotron.pipe pipeline=<name>`).

- spec.py: read `conf/pipeline/<name>.yaml` (schema: nemotron/config/schema_pipeline.py), check the graph;
- plan.py: compose and validate every stage, as `python -m nemotron.train` would, before anything starts;
- local.py: run the stages here in order (skip finished ones, --from/--only, resume);
- slurm.py: submit every stage at once, each depending on its producers;
- records.py: stage and pipeline records, registry entries with lineage;
- scores.py: the eval stages' scores side by side (printed at the end, `scores.md`);
- show.py: the dry run; cli.py: the command line.
Like the rest of the compose/launch layer, nothing here imports torch, megatron or mlflow.
"""
