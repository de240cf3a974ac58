"""One-GPU check of the GPU stack, in one command: every training stage and the HF conversion on one
CUDA device, with throughput, MFU and the memory estimate against the measured peak.

    python bench/gpu_check.py [--json gpu_check.json] [--checks pretrain_gpt,sft_nano3,...] [--steps N]
    python bench/gpu_check.py --cpu-smoke          # the same checks on the CPU, tiny, 2 steps (tests)

Checks (bench/gpu_check_runs.py); about five minutes on one H100/H200 by construction (never run on one yet):
- pretrain_gpt, pretrain_nano3: pretraining of a ~120M GPT and a Mamba/attention/MoE hybrid (8 layers,
  hidden 1024, seq 1024, micro batch 8, 30 steps) in bf16 on the layer spec the runtime picks (the TE
  spec where Transformer Engine imports); tokens/s, TFLOP/s per GPU and MFU (nemotron/runtime/train/flops.py
  against the device's dense bf16 peak);
- sft_gpt, sft_nano3: the SFT stage on packed chats, then each sample's per-token losses in a packed
  micro-batch (the stage's `packed_forward`: thd PackedSeqParams on the TE spec) against the sample run
  alone; tolerance 0.1 nats in bf16, 1e-4 in fp32 (bench/gpu_check_runs.py says why; a control
  run without boundaries must exceed it);
- dpo_gpt; rl_gpt, rl_nano3 (GRPO: generation tokens/s with the KV cache and Mamba state);
- hf_llama, hf_nemotron_h: a tiny HF model made here -> `python -m nemotron.checkpoint import-hf` ->
  `export-hf --verify` (the CLI's main).
Each training check also records `nemotron.memory.estimate_config(cfg)` (the pre-flight estimate)
beside `torch.cuda.max_memory_allocated` (peak statistics reset before each check): the estimate's
`allowance` row holds 2 GiB for the CUDA context, which the allocator never sees, so the ratio is
taken without it. The JSON (`--json`) has one record per check: status, seconds, error line, device,
layer spec and Mamba mixer, tokens/s, MFU, memory, first and last loss; versions once at the top.
A short table goes to stdout; the exit status is 1 when any check failed.

Why a process per check (`--isolate process`, the default) and the stage's `run(cfg)` inside it:
the stage runs in-process exactly as the recipe scripts call it (compose with `compose_run`, validate,
`run(cfg)`), so the check measures the recipes' code path, not a CLI wrapper around it; the process
around it isolates what in-process runs share: a CUDA error poisons the context for the rest of the
process, a hang needs a timeout that can kill, NCCL/process-group and allocator state would carry
from one check to the next, and a crash must leave the other checks' records. `--isolate none` runs
every check in this process (each still in its own try; about 5 s of imports saved per check), which
the CPU smoke test uses. Without CUDA the script refuses in one line (exit 2) unless `--cpu-smoke`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
PACKAGES = {
    "torch": ["torch"],
    "megatron-core": ["megatron-core", "megatron_core"],
    "transformer-engine": ["transformer-engine", "transformer_engine", "transformer-engine-torch"],
    "mamba-ssm": ["mamba-ssm", "mamba_ssm"],
    "causal-conv1d": ["causal-conv1d", "causal_conv1d"],
    "transformers": ["transformers"],
}


def versions() -> Dict[str, Any]:
    """Installed versions of the stack's packages (None: not installed)."""
    out: Dict[str, Any] = {}
    for name, dists in PACKAGES.items():
        out[name] = None
        for dist in dists:
            try:
                out[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def run_here(name: str, args: argparse.Namespace, root: str) -> Dict[str, Any]:
    """Check `name` in this process; its record (status passed/failed, seconds, error line)."""
    import gpu_check_runs

    start = time.perf_counter()
    try:
        record = {"status": "passed", **gpu_check_runs.run_check(name, root, args.cpu_smoke, args.steps)}
    except BaseException as err:  # noqa: B036 - a check's failure of any kind is its record
        if isinstance(err, KeyboardInterrupt):
            raise
        traceback.print_exc()
        record = {"status": "failed", "error": error_line(err)}
    record["seconds"] = round(time.perf_counter() - start, 2)
    return record


def last_line(log: Path) -> str:
    lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()] if log.is_file() else []
    return lines[-1].strip() if lines else "no output"


def run_child(name: str, args: argparse.Namespace, root: str) -> Dict[str, Any]:
    """Check `name` in a fresh process of this script, its output in `<root>/logs/<name>.log`."""
    logs = Path(root) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log, out = logs / f"{name}.log", logs / f"{name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--record", str(out), "--work-dir", root]
    cmd += ["--cpu-smoke"] * args.cpu_smoke + ([f"--steps={args.steps}"] if args.steps else [])
    env = dict(os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if args.cpu_smoke else {}))
    start = time.perf_counter()
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the child's own session: it and what it started
            proc.wait()
            tail = log.read_text(errors="replace").splitlines()[-30:]
            return {"status": "failed", "error": f"timed out after {args.timeout} s", "log_tail": tail,
                    "seconds": round(time.perf_counter() - start, 2)}  # fmt: skip
    if out.is_file():
        record = json.loads(out.read_text())
    else:
        record = {"status": "failed", "error": f"exit {proc.returncode}: {last_line(log)}"}
    record["seconds"] = round(time.perf_counter() - start, 2)
    if record["status"] != "passed":
        record["log_tail"] = log.read_text(errors="replace").splitlines()[-30:]
    if args.work_dir:
        record["log"] = str(log)
    return record


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(records: Dict[str, Dict[str, Any]]) -> str:
    """One line per check: the figures a reader scans first."""
    head = (f"{'check':<15}{'status':<8}{'s':>7}{'tokens/s':>12}{'MFU':>7}{'est GiB':>9}{'peak GiB':>9}"
            f"{'ratio':>7}  {'loss':<15} spec/mixer, notes")  # fmt: skip
    lines = [head]
    for name, r in records.items():
        mem = r.get("memory", {})
        mfu = None if r.get("mfu") is None else 100 * r["mfu"]
        loss = f"{r['loss_first']:.3f}->{r['loss_last']:.3f}" if "loss_first" in r else "-"
        notes = [x for x in (r.get("layer_spec"), r.get("mamba_mixer")) if x]
        if "packed_vs_unpacked" in r:
            p = r["packed_vs_unpacked"]
            control = p["control_max_abs_diff"]
            notes.append(f"{p['layout']} diff {p['max_abs_diff']:.2g} (tol {p['tolerance']:g}, control {control:.2g})")
        if "verify" in r:
            notes.append(f"verify diff {r['verify']['max_abs_logit_diff']:.2g}")
        if r.get("generation_tokens_per_s"):
            notes.append(f"gen {r['generation_tokens_per_s']:,.0f} tok/s")
        if r["status"] != "passed":
            notes.append(r.get("error", "")[:160])
        lines.append(
            f"{name:<15}{r['status']:<8}{r.get('seconds', 0):>7.1f}{_cell(r.get('tokens_per_s'), ',.0f'):>12}"
            f"{_cell(mfu, '.1f'):>7}{_cell(mem.get('estimate_tensors_gib'), '.2f'):>9}"
            f"{_cell(mem.get('peak_allocated_gib'), '.2f'):>9}{_cell(mem.get('estimate_ratio'), '.2f'):>7}"
            f"  {loss:<15} {', '.join(notes)}"
        )
    return "\n".join(lines)


def parse(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", default="gpu_check.json", help="the results file (default gpu_check.json)")
    parser.add_argument("--checks", help="comma-separated subset of the checks (default: all)")
    parser.add_argument("--cpu-smoke", action="store_true", help="every check on the CPU, tiny models, 2 steps")
    parser.add_argument("--steps", type=int, help="steps of every training check (default 30/10/5, smoke 2)")
    parser.add_argument("--isolate", choices=("process", "none"), default="process",
                        help="a fresh process per check (default) or all in this one")  # fmt: skip
    parser.add_argument("--timeout", type=int, default=300, help="seconds one check may take (process mode)")
    parser.add_argument("--work-dir", help="data, runs and logs (default: a temporary folder, removed)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--record", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child(args: argparse.Namespace) -> int:
    record = run_here(args.child, args, args.work_dir)
    Path(args.record).write_text(json.dumps(record, indent=1, default=str) + "\n")
    return 0 if record["status"] == "passed" else 1


def main(argv: List[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.child:
        return child(args)
    import gpu_check_runs
    import torch

    names = args.checks.split(",") if args.checks else list(gpu_check_runs.CHECKS)
    unknown = [n for n in names if n not in gpu_check_runs.CHECKS]
    if unknown:
        print(f"error: --checks: unknown check {unknown[0]!r} (known: {', '.join(gpu_check_runs.CHECKS)})",
              file=sys.stderr)  # fmt: skip
        return 2
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        print("error: no CUDA device: this check needs a GPU (--cpu-smoke runs it on the CPU)", file=sys.stderr)
        return 2
    if cuda and args.cpu_smoke and args.isolate == "none":
        print("error: --cpu-smoke on a CUDA machine needs --isolate process (it hides the GPUs)", file=sys.stderr)
        return 2
    on_gpu = cuda and not args.cpu_smoke
    report: Dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "mode": "gpu" if on_gpu else "cpu-smoke",
        "device": torch.cuda.get_device_name() if on_gpu else "cpu",
        "cuda": torch.version.cuda,
        "versions": versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "checks": {},
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        root = args.work_dir or tmp
        for name in names:
            run = run_child if args.isolate == "process" else run_here
            record = run(name, args, root)
            report["checks"][name] = {"status": record.pop("status"), "device": report["device"], **record}
            status = report["checks"][name]["status"]
            print(f"{name}: {status} ({record['seconds']:.1f} s)", file=sys.stderr, flush=True)
    report["seconds"] = round(time.perf_counter() - start, 1)
    failed = [n for n, r in report["checks"].items() if r["status"] != "passed"]
    report["failed"] = failed
    Path(args.json).write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(table(report["checks"]))
    print(f"{len(names) - len(failed)}/{len(names)} passed in {report['seconds']:.0f} s on {report['device']}; "
          f"results in {args.json}")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
