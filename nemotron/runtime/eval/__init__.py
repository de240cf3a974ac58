"""The eval stage (`+recipe=<family>/eval`): a checkpoint benchmarked with lm-evaluation-harness.

`stage.py` (run(cfg): weights, tokenizer, tasks, results), `lm.py` (our model as an lm-eval LM),
`tasks.py` (the local tasks, generated on first use), `harness.py` (lm-eval's task index, the
evaluation, results JSON, table and tracker metrics), `lm_eval_compat.py` (lm-eval's internal names).
"""
