"""Prepare SFT data: chat JSONL -> tokenized samples with assistant-only loss masks, packed bins.

The launcher composes the config (`python -m nemotron.train +recipe=data/prep_sft
data.sources=[chats.jsonl] data.tokenizer_path=<tokenizer.json>`), writes it resolved and starts
this script, which reads the `data` section and `model.seq_length` (the bin size); by hand:

    python recipes/data/prep_sft/train.py --config resolved.yaml

Defaults: ./config/tiny.yaml (data=sft_prepared: samples, report.json and sft.json under
data.cache_dir). Fine-tune on the result with `python -m nemotron.train +recipe=gpt/sft
data=sft_prepared`. The work: nemotron.runtime.prep.sft.prepare_sft (formats and resume rules in
its docstring; templates in nemotron.runtime.prep.chat).
With `data.generate_tiny=true` and no `data.sources` the embedded chats is written beside the output
and prepared (a pipeline's data stage, conf/pipeline/).
"""
# /// script
# requires-python = ">=3.11"
# dependencies = ["nemotron"]
#
# [tool.runspec]
# schema = "1"
# name = "data/prep_sft"
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
    """Prepare what the resolved config names; the exit status says whether it worked."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved run config (YAML)")
    args = parser.parse_args()

    from omegaconf import OmegaConf

    from nemotron.common.refusals import refuse
    from nemotron.runtime.prep.sft import SftPrepSpec, prepare_sft

    cfg = OmegaConf.load(args.config)
    try:
        spec = SftPrepSpec.from_config(cfg)
        if not spec.sources and cfg.data.generate_tiny:  # the embedded chats, written beside the manifest
            from nemotron.runtime.data.sft import write_tiny_chats

            spec = replace(spec, sources=[str(write_tiny_chats(cfg.data, spec.out_dir))])
        prepare_sft(spec)
    except (OSError, ValueError) as exc:  # bad input: the message names the file:line or key
        return refuse(str(exc))
    return 0


if __name__ == "__main__":  # prep workers may re-import __main__ where they are spawned
    sys.exit(main())
