"""Fine-tune a pretrained Nemotron 3 Nano-style hybrid on chat data (SFT) with Megatron-Core.

The launcher composes the config (`python -m nemotron.train +recipe=nano3/sft`), writes it resolved
and starts this script; by hand, with a resolved config file:

    python recipes/nano3/sft/train.py --config resolved.yaml

Defaults: ./config/tiny.yaml (model=nano3_tiny, data=sft_tiny, weights from the newest local
nano3/pretrain checkpoint). The loop: nemotron.runtime.stages.sft.run (the pretraining loop with packed
chat data, the assistant-token loss and pretrained weights).
"""
# /// script
# requires-python = ">=3.11"
# dependencies = ["nemotron"]
#
# [tool.runspec]
# schema = "1"
# name = "nano3/sft"
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
    sys.exit(main(__doc__, stage="sft"))
