"""Reinforce a Nemotron 3 Nano-style hybrid with GRPO on verifiable rewards, on Megatron-Core.

The launcher composes the config (`python -m nemotron.train +recipe=nano3/rl`), writes it resolved
and starts this script; by hand, with a resolved config file:

    python recipes/nano3/rl/train.py --config resolved.yaml

Defaults: ./config/tiny.yaml (model=nano3_tiny, the embedded synthetic arithmetic task, rewards
numeric_answer + a format regex, weights from the newest local nano3/sft checkpoint, random weights
with a warning when there is none yet). The loop: nemotron.runtime.stages.rl.stage.run (the pretraining loop
with a rollout-and-update step: sampling with a KV cache, group-normalized advantages, clipped
policy loss and KL to the frozen reference). The reference cookbook runs this stage with NeMo-RL on
Ray; here it is torchrun like the other stages (docs/rl.md).
"""
# /// script
# requires-python = ">=3.11"
# dependencies = ["nemotron"]
#
# [tool.runspec]
# schema = "1"
# name = "nano3/rl"
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
    sys.exit(main(__doc__, stage="rl"))
