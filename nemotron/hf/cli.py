"""`python -m nemotron.checkpoint import-hf <hf dir> [model=<option>] [model.k=v ...] [--out DIR]` and
`export-hf <checkpoint> <out dir> [model=<option>] [--verify] [--overwrite]`,
`export-hf --adapter <adapters> <out dir> [--base-model NAME]` (LoRA adapters in PEFT format,
nemotron/hf/peft_export.py),
`merge-lora <adapters> <out dir>` (nemotron/hf/merge_lora.py) and
`average <ckpt> <ckpt>... <out dir> [--weights w ...]` (nemotron/hf/average.py).

A known mistake (missing file, unmapped architecture, mismatching config, wrong shape, truncated
shard, existing output) prints one line (or one line per mismatch) and exits 2 with nothing
written; a failed `--verify` exits 1 after writing the export and its record.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Tuple

BAD_INPUT = 2
VERIFY_FAILED = 1


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nemotron.checkpoint", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import-hf", help="Hugging Face directory -> Megatron-Core checkpoint")
    imp.add_argument("hf_dir")
    imp.add_argument("--out", help="checkpoint folder to write (default outputs/imported/<hf dir name>)")
    imp.add_argument("--tp", type=int, default=1, help="tensor parallel size (run under torchrun with TP ranks)")
    exp = sub.add_parser("export-hf", help="Megatron-Core checkpoint -> Hugging Face directory")
    exp.add_argument("checkpoint", help="a checkpoint folder (of iter_N folders) or one iter_N folder")
    exp.add_argument("out_dir")
    exp.add_argument("--verify", action="store_true", help="compare logits with transformers' and record it")
    exp.add_argument("--max-shard-mb", type=int, default=2048, help="largest safetensors shard (MB)")
    exp.add_argument(
        "--adapter", action="store_true", help="a LoRA adapter checkpoint -> Hugging Face PEFT format (gpt/Llama)"
    )
    exp.add_argument("--base-model", help="with --adapter: base_model_name_or_path (the exported base's dir)")
    merge = sub.add_parser("merge-lora", help="LoRA adapter checkpoint + its base -> full checkpoint")
    merge.add_argument("adapters", help="the adapters' checkpoint folder (of iter_N folders) or one iter_N")
    merge.add_argument("out_dir")
    avg = sub.add_parser("average", help="element-wise (weighted) mean of checkpoints of one model")
    avg.add_argument("checkpoints", nargs="+", help="two or more checkpoints, then the output folder")
    avg.add_argument("--weights", type=float, nargs="+", help="one weight per checkpoint (default: equal)")
    merge.add_argument("--registry", help="artifact registry file (default outputs/artifacts.json)")
    for p in (merge, avg):
        p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    for p in (imp, exp):
        p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
        p.add_argument("--registry", help="artifact registry file (default outputs/artifacts.json)")
    return parser


def split_overrides(extra: List[str]) -> Tuple[Optional[str], List[str], List[str]]:
    """(model option, model.* overrides, unrecognised arguments) of the Hydra-style arguments."""
    option, overrides, bad = None, [], []
    for arg in extra:
        if arg.startswith("model="):
            option = arg.split("=", 1)[1]
        elif arg.startswith("model.") and "=" in arg:
            overrides.append(arg)
        else:
            bad.append(arg)
    return option, overrides, bad


def _known_errors() -> tuple:
    from nemotron.common.checkpoint_index import PretrainedNotFound
    from nemotron.hf.configmap import ConfigMismatch
    from nemotron.hf.st_files import HFInputError
    from nemotron.runtime.checkpoint.store import CheckpointError

    return HFInputError, ConfigMismatch, PretrainedNotFound, CheckpointError


def _run(args: argparse.Namespace, option: Optional[str], overrides: List[str]) -> int:
    if args.command == "import-hf":
        from nemotron.hf.importer import import_hf

        path = import_hf(args.hf_dir, option, overrides, args.out, args.overwrite, args.registry, args.tp)
        if os.environ.get("RANK", "0") == "0":
            print(f"imported {args.hf_dir} -> {path}; train from it with checkpoint.pretrained={path.parent}")
        return 0
    if args.command in ("merge-lora", "average"):
        return _run_checkpoint_tool(args)
    if args.adapter:
        return _export_adapters(args, option, overrides)
    from nemotron.hf.exporter import export_hf

    record = export_hf(
        args.checkpoint,
        args.out_dir,
        option,
        overrides,
        args.overwrite,
        args.verify,
        args.registry,
        args.max_shard_mb << 20,
    )
    print(f"exported {record['source_checkpoint']} -> {args.out_dir}")
    if "verify" in record:
        v = record["verify"]
        print(
            f"verify: max |logit difference| {v['max_abs_logit_diff']:.3g} "
            f"({'passed' if v['passed'] else 'FAILED'}, tolerance {v['tolerance']:g})"
        )
        return 0 if v["passed"] else VERIFY_FAILED
    return 0


def _export_adapters(args: argparse.Namespace, option: Optional[str], overrides: List[str]) -> int:
    from nemotron.hf.peft_export import export_adapters
    from nemotron.hf.st_files import HFInputError

    if option or overrides or args.verify:
        raise HFInputError("export-hf --adapter takes no model=, model.* or --verify (the adapters name their model)")
    record = export_adapters(args.checkpoint, args.out_dir, args.base_model, args.overwrite, args.registry)
    print(f"exported the LoRA adapters of {record['source_checkpoint']} in PEFT format -> {args.out_dir}")
    return 0


def _run_checkpoint_tool(args: argparse.Namespace) -> int:
    if args.command == "merge-lora":
        from nemotron.hf.merge_lora import merge_lora

        path = merge_lora(args.adapters, args.out_dir, args.overwrite, args.registry)
        print(f"merged {args.adapters} into its base -> {path}")
        return 0
    from nemotron.hf.average import average

    *sources, out = args.checkpoints
    path = average(sources, out, args.weights, args.overwrite)
    print(f"averaged {len(sources)} checkpoints -> {path}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args, extra = parser().parse_known_args(argv)
    option, overrides, bad = split_overrides(extra)
    if bad:
        print(
            f"{args.command}: error: unrecognised argument {bad[0]!r} (expected model=<option>, "
            "model.<key>=<value> or the options in --help)",
            file=sys.stderr,
        )
        return BAD_INPUT
    errors = _known_errors()
    try:
        return _run(args, option, overrides)
    except errors as err:
        print(f"{args.command}: error: {err}", file=sys.stderr)
        return BAD_INPUT
    finally:
        _teardown()


def _teardown() -> None:
    from nemotron.runtime.train import distributed

    distributed.teardown()
