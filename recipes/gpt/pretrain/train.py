"""Pretrain a GPT (dense or MoE transformer) with Megatron-Core.

The launcher composes the config (`python -m nemotron.train +recipe=gpt/pretrain`), writes it
resolved and starts this script; by hand, with a resolved config file:

    python recipes/gpt/pretrain/train.py --config resolved.yaml
    torchrun --nproc-per-node 2 recipes/gpt/pretrain/train.py --config resolved.yaml

Defaults: ./config/tiny.yaml (model=gpt_tiny). The loop: nemotron.runtime.pretrain.run.
"""
# /// script
# requires-python = ">=3.11"
# dependencies = ["nemotron"]
#
# [tool.runspec]
# schema = "1"
# name = "gpt/pretrain"
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
    sys.exit(main(__doc__))
