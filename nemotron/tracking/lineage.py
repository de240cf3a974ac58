"""What a training run consumed and produced, registered in the artifact registry (no mlflow import).

Inputs: the data (`data/<data.name>`: blend file, the .bin/.idx of every prefix, the tokenizer; for
SFT `sft_data/<data.name>`: the packed-chat manifest and its arrays, for DPO `dpo_data/<data.name>`,
for GRPO `prompts/<stem>` of `rl.prompt_file` (nothing for the generated task; never the pretraining
blend its `data` group would name), and the `checkpoint.pretrained` checkpoint the weights came from), plus
any registered artifact whose path a config value names (e.g. `checkpoint.load_dir` set through
`${art:checkpoint/gpt/pretrain}`). Output of a finished run: its checkpoint directory
(`checkpoint/<recipe name>`), when it holds files. An eval run (`*/eval`) consumes only the checkpoint
it evaluated and produces its results (`eval/<recipe name>`: the run directory's eval_results.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from nemotron.common.eval_tasks import RESULTS_FILE
from nemotron.common.stages import is_eval, is_rl
from nemotron.tracking.registry import Registry, content_hash, ref_of, registry_path

DPO_FORMAT = "nemotron-dpo-1"
"""The manifest format of DPO preference data (nemotron.runtime.prep.preference.FORMAT)."""


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str) and node.startswith("/"):
        yield node


def data_files(cfg: Any) -> Tuple[Optional[Path], List[str], Optional[str]]:
    """(blend file or None, indexed-dataset prefixes, tokenizer path) the run trained on.

    The same order as the runtime's `resolve_data`: data.prefixes, data.blend_file, generated tiny.
    """
    d = cfg.data
    if d.prefixes:
        return None, list(d.prefixes), d.tokenizer_path
    if d.get("blend_file"):
        path = Path(d.blend_file)
    elif d.generate_tiny:
        from nemotron.common.blend import tiny_blend_path  # stdlib only: no torch in the uploader

        path = tiny_blend_path(d)
    else:
        return None, [], None
    from nemotron.common.blend import read_blend

    blend = read_blend(path)
    return path, blend.prefixes, blend.tokenizer_path


def _producer(cfg: Any, run_id: Optional[str]) -> Dict[str, Any]:
    run_dir = str(cfg.run_dir)
    return {"run_id": run_id, "run_dir": run_dir, "config": str(Path(run_dir) / "config.yaml"),
            "recipe": cfg.recipe.name}


def register_blend(cfg: Any, registry: Registry, run_id: Optional[str], note: str = "") -> Optional[Dict[str, Any]]:
    """Register the data `cfg` names as `data/<data.name>` (a new version only when its content
    changed); None when its files are missing. A data-prep run can call this for what it wrote."""
    blend, prefixes, tokenizer = data_files(cfg)
    files = ([blend] if blend else []) + [Path(p + ext) for p in prefixes for ext in (".bin", ".idx")]
    files += [Path(tokenizer)] if tokenizer else []
    if not prefixes or not all(f.is_file() for f in files):
        return None
    where = blend.resolve() if blend else Path(*_common(prefixes))
    return registry.register(
        f"data/{cfg.data.name}", "data", where, content_hash(files), _producer(cfg, run_id),
        prefixes=prefixes, tokenizer=tokenizer, inputs=[], note=note)


def register_sft_data(cfg: Any, registry: Registry, run_id: Optional[str]) -> Optional[Dict[str, Any]]:
    """Register packed SFT data (`data.packed_file` and the files beside it) as `sft_data/<name>`,
    an artifact kind of its own (DPO preference pairs, the same layout: `dpo_data/<name>`); None
    when the manifest is missing."""
    import json

    manifest = Path(cfg.data.packed_file)
    if not manifest.is_file():
        return None
    content = json.loads(manifest.read_text(encoding="utf-8"))
    files = [manifest, manifest.parent / content.get("tokenizer", "tokenizer.json")]
    for split in content.get("splits", {}).values():
        files += [manifest.parent / f"{split['prefix']}.{part}.npy"
                  for part in ("tokens", "mask", "lengths", "bins")]
    if not all(f.is_file() for f in files):
        return None
    kind = "dpo_data" if content.get("format") == DPO_FORMAT else "sft_data"
    return registry.register(
        f"{kind}/{cfg.data.name}", kind, manifest.resolve(), content_hash(files),
        _producer(cfg, run_id), inputs=[], note="registered by the first tracked run that consumed it")


def _pretrained(cfg: Any, registry: Registry, run_id: Optional[str]) -> Optional[Dict[str, Any]]:
    """The registered checkpoint `checkpoint.pretrained` lies in (registered now if it is not)."""
    value = cfg.checkpoint.get("pretrained")
    if not value or not Path(value).is_dir():
        return None
    entry = registry.find_path(str(Path(value).resolve()))
    if entry is not None:
        return entry
    folder = Path(value).resolve()
    root = folder.parent if folder.name.startswith("iter_") else folder
    return registry.register("checkpoint/pretrained", "checkpoint", root, content_hash([root]),
                             {"run_dir": str(root.parent)}, inputs=[],
                             note="a pretrained checkpoint no tracked run had registered")


def _prompts(cfg: Any, registry: Registry, run_id: Optional[str]) -> Optional[Dict[str, Any]]:
    """`rl.prompt_file` as `prompts/<file stem>` (None for the generated task: its config says it all)."""
    value = cfg.rl.get("prompt_file")
    if not value or not Path(value).is_file():
        return None
    path = Path(value).resolve()
    return registry.register(f"prompts/{path.stem}", "prompts", path, content_hash([path]), _producer(cfg, run_id),
                             inputs=[], note="registered by the first tracked run that consumed it")


def _common(prefixes: List[str]) -> Tuple[str, ...]:
    parts = [Path(p).resolve().parent.parts for p in prefixes]
    common = []
    for items in zip(*parts):
        if len(set(items)) > 1:
            break
        common.append(items[0])
    return tuple(common) or ("/",)


def consumed(container: Dict[str, Any], registry: Registry) -> List[Dict[str, Any]]:
    """Registered artifacts whose paths appear in the resolved config's values (except its own outputs)."""
    found: Dict[str, Dict[str, Any]] = {}
    own = {container.get("run_dir")}
    for value in _strings(container):
        entry = registry.find_path(value)
        if entry is not None and entry.get("run_dir") not in own:
            found[ref_of(entry)] = entry
    return list(found.values())


def record(cfg: Any, container: Dict[str, Any], run_id: Optional[str],
           finished: bool) -> Dict[str, List[Dict[str, Any]]]:
    """Register this run's data input and (if finished) checkpoint output; return both lists."""
    registry = Registry(registry_path(cfg))
    if cfg.data.get("packed_file"):  # SFT: packed chat data, and the weights it started from
        data = register_sft_data(cfg, registry, run_id)
        found = [e for e in (data, _pretrained(cfg, registry, run_id)) if e]
    elif is_eval(cfg):  # the weights it judged; its `data` group only names the tokenizer
        found = [e for e in (_pretrained(cfg, registry, run_id),) if e]
    elif is_rl(cfg):  # GRPO: prompts and starting weights; its `data` group only names the tokenizer
        found = [e for e in (_prompts(cfg, registry, run_id), _pretrained(cfg, registry, run_id)) if e]
    else:
        data = register_blend(cfg, registry, run_id,
                              note="registered by the first tracked run that consumed it")
        found = [data] if data else []
    found += consumed(container, registry)
    inputs = list({ref_of(e): e for e in found}.values())
    outputs = []
    ckpt = Path(cfg.checkpoint.dir)
    results = Path(str(cfg.run_dir)) / RESULTS_FILE
    if finished and is_eval(cfg) and results.is_file():
        outputs.append(registry.register(
            f"eval/{cfg.recipe.name}", "eval", results.resolve(), content_hash([results]),
            _producer(cfg, run_id), inputs=[ref_of(e) for e in inputs]))
    elif finished and ckpt.is_dir() and any(p.is_file() for p in ckpt.rglob("*")):
        outputs.append(registry.register(
            f"checkpoint/{cfg.recipe.name or 'run'}", "checkpoint", ckpt.resolve(), content_hash([ckpt]),
            _producer(cfg, run_id), inputs=[ref_of(e) for e in inputs]))
    return {"inputs": inputs, "outputs": outputs}
