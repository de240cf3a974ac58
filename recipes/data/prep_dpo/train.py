"""Prepare DPO data: preference-pair JSONL -> tokenized (chosen, rejected) samples, answer masks.

The launcher composes the config (`python -m nemotron.train +recipe=data/prep_dpo
data.sources=[pairs.jsonl] data.tokenizer_path=<tokenizer.json>`), writes it resolved and starts
this script, which reads the `data` section and `model.seq_length` (the row length); by hand:

    python recipes/data/prep_dpo/train.py --config resolved.yaml

Defaults: ./config/tiny.yaml (data=dpo_prepared: samples, report.json and dpo.json under
data.cache_dir). Align on the result with `python -m nemotron.train +recipe=gpt/dpo
data=dpo_prepared`. The work: nemotron.runtime.prep.preference.prepare_dpo (line formats in
nemotron.runtime.prep.pairs; templates in nemotron.runtime.prep.chat).
"""
# /// script
# requires-python = ">=3.11"
# dependencies = ["nemotron"]
#
# [tool.runspec]
# schema = "1"
# name = "data/prep_dpo"
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


def main() -> int:
    """Prepare what the resolved config names; the exit status says whether it worked."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved run config (YAML)")
    args = parser.parse_args()

    from omegaconf import OmegaConf

    from nemotron.common.refusals import refuse
    from nemotron.runtime.prep.preference import prepare_dpo
    from nemotron.runtime.prep.sft import SftPrepSpec

    try:
        prepare_dpo(SftPrepSpec.from_config(OmegaConf.load(args.config)))
    except (OSError, ValueError) as exc:  # bad input: the message names the file:line or key
        return refuse(str(exc))
    return 0


if __name__ == "__main__":  # prep workers may re-import __main__ where they are spawned
    sys.exit(main())
