"""Prepare training data: text/JSONL files -> Megatron .bin/.idx shards and a blend file.

The launcher composes the config (`python -m nemotron.train +recipe=data/prep data.sources=[...]`),
writes it resolved and starts this script, which needs only the `data` section; by hand:

    python recipes/data/prep/train.py --config resolved.yaml

Defaults: ./config/tiny.yaml (data=prepared: shards and blend.json under data.cache_dir). Train on
the result with `python -m nemotron.train +recipe=gpt/pretrain data=prepared`. The work:
nemotron.runtime.prep.text.prepare (formats and resume rules in its docstring).
With `data.generate_tiny=true` and no `data.sources` the embedded corpus is written beside the output
and prepared (a pipeline's data stage, conf/pipeline/).
"""
# /// script
# requires-python = ">=3.11"
# dependencies = ["nemotron"]
#
# [tool.runspec]
# schema = "1"
# name = "data/prep"
# image = "nvcr.io/nvidia/pytorch:25.09-py3"
# setup = "CPU only; nemotron installed with `pip install -e .`"
#
# [tool.runspec.run]
# launch = "direct"
#
# [tool.runspec.config]
# dir = "./config"
# default = "tiny"
#
# [tool.runspec.resources]
# nodes = 1
# gpus_per_node = 0
# ///

import argparse
import sys
from dataclasses import replace


def main() -> int:
    """Prepare what the resolved config's `data` section names; the exit status says whether it worked."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved run config (YAML)")
    args = parser.parse_args()

    from omegaconf import OmegaConf

    from nemotron.common.refusals import refuse
    from nemotron.runtime.prep.text import PrepSpec, prepare

    d = OmegaConf.load(args.config).data
    try:
        spec = PrepSpec.from_data_config(d)
        if not spec.sources and d.generate_tiny:  # the embedded corpus, written beside the blend file
            from nemotron.runtime.data.gpt import write_tiny_corpus

            spec = replace(spec, sources=[str(write_tiny_corpus(d, spec.out_dir))])
        prepare(spec)
    except (OSError, ValueError) as exc:  # bad input: the message names the file, line or key
        return refuse(str(exc))
    return 0


if __name__ == "__main__":  # prep workers may re-import __main__ where they are spawned
    sys.exit(main())
