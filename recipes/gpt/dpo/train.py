"""Align a GPT (dense or MoE transformer) to preference pairs with DPO on Megatron-Core.

The launcher composes the config (`python -m nemotron.train +recipe=gpt/dpo`), writes it resolved
and starts this script; by hand, with a resolved config file:

    python recipes/gpt/dpo/train.py --config resolved.yaml

Defaults: ./config/tiny.yaml (model=gpt_tiny, data=dpo_tiny, policy and frozen reference from the
newest local gpt/sft checkpoint, else gpt/pretrain; dpo.beta=0.5). The loop:
nemotron.runtime.stages.dpo.run (the pretraining loop with preference pairs, the sigmoid DPO loss and a
frozen reference model).
"""
# /// script
# requires-python = ">=3.11"
# dependencies = ["nemotron"]
#
# [tool.runspec]
# schema = "1"
# name = "gpt/dpo"
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
# gpus_per_node = 8
# ///

import sys

from nemotron.runtime.script import main

if __name__ == "__main__":  # dist_checkpointing workers re-import __main__
    sys.exit(main(__doc__, stage="dpo"))
