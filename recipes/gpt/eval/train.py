"""Evaluate a checkpoint of a GPT (dense or MoE transformer) with lm-evaluation-harness on Megatron-Core.

The launcher composes the config (`python -m nemotron.train +recipe=gpt/eval`), writes it resolved
and starts this script; by hand, with a resolved config file:

    python recipes/gpt/eval/train.py --config resolved.yaml

Defaults: ./config/tiny.yaml (model=gpt_tiny, weights from the newest local gpt/rl, gpt/sft or
gpt/pretrain checkpoint, the local tasks). The stage: nemotron.runtime.eval.stage.run (our model as
an lm-eval LM; results JSON in the run directory, a table, metrics `eval/<task>/<metric>`).
"""
# /// script
# requires-python = ">=3.11"
# dependencies = ["nemotron"]
#
# [tool.runspec]
# schema = "1"
# name = "gpt/eval"
# image = "nvcr.io/nvidia/pytorch:25.09-py3"
# setup = "PyTorch container; nemotron installed with `pip install -e .[gpu]`"
#
# [tool.runspec.run]
# launch = "torchrun"
#
# [tool.runspec.config]
# dir = "./config"
# default = "tiny"
#
# [tool.runspec.resources]
# nodes = 1
# gpus_per_node = 1
# ///

import sys

from nemotron.runtime.script import main

if __name__ == "__main__":  # dist_checkpointing workers re-import __main__
    sys.exit(main(__doc__, stage="eval"))
