"""Typed artifacts and lineage: a small local registry, and the `${art:name}` resolver (stdlib + OmegaConf).

The registry is one JSON file (`tracker.registry`, default `<paths.output_root>/artifacts.json`)
holding a manifest per artifact version: name, kind (`checkpoint`, `data`), path, content hash,
the producing run (MLflow run id, run directory, its config.yaml) and what that run consumed.
Tracked runs register what they produce and record what they consume; configs refer to artifacts
by name:

    checkpoint:
      load_dir: ${art:checkpoint/gpt/pretrain}      # the latest version's path
      # load_dir: ${art:checkpoint/gpt/pretrain@2}  # a pinned version

`python -m nemotron.tracking lineage checkpoint/gpt/pretrain` prints the chain back to data and config.
Writers take an exclusive lock on `<registry>.lock`; the file is replaced atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from nemotron.common.atomic_files import write_json_atomic

SAMPLE_ABOVE_BYTES = 64 << 20
"""Files larger than this are hashed by size plus their first and last SAMPLE_BYTES (hash_mode 'sampled')."""
SAMPLE_BYTES = 8 << 20
DEFAULT_REGISTRY = "outputs/artifacts.json"
"""Used when a config has no `tracker.registry` (relative to the working directory)."""


class ArtifactNotFound(KeyError):
    """An `${art:...}` reference or a lineage query named an artifact or version that is not registered."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


def parse_ref(ref: str) -> Tuple[str, Optional[int]]:
    """'name' -> (name, None); 'name@3' -> (name, 3); 'name@latest' -> (name, None)."""
    name, _, version = str(ref).strip().partition("@")
    if not version or version == "latest":
        return name, None
    if not version.lstrip("v").isdigit():
        raise ArtifactNotFound(f"artifact reference {ref!r}: version {version!r} is not a number "
                               "(use name, name@latest or name@<n>)")
    return name, int(version.lstrip("v"))


# ---- content hashes ------------------------------------------------------------------------------


def _hash_file(digest: Any, path: Path) -> bool:
    """Feed `path` into `digest`; True when the whole file was read (False: sampled)."""
    size = path.stat().st_size
    digest.update(f"{size}\0".encode())
    with path.open("rb") as f:
        if size <= SAMPLE_ABOVE_BYTES:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
            return True
        digest.update(f.read(SAMPLE_BYTES))
        f.seek(size - SAMPLE_BYTES)
        digest.update(f.read(SAMPLE_BYTES))
    return False


def content_hash(paths: List[Path]) -> Tuple[str, str]:
    """('sha256:<hex>', 'full' | 'sampled') over the files under `paths` (directories walked, sorted)."""
    digest, full = hashlib.sha256(), True
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            name = path.relative_to(root) if root.is_dir() else Path(path.name)
            digest.update(f"{name}\0".encode())
            full = _hash_file(digest, path) and full
    return f"sha256:{digest.hexdigest()}", "full" if full else "sampled"


# ---- the registry file ---------------------------------------------------------------------------


class Registry:
    """The JSON registry at `path`: {"artifacts": {name: [manifest, ...]}} (versions from 1)."""

    def __init__(self, path: Any) -> None:
        self.path = Path(path).expanduser()

    def load(self) -> Dict[str, List[Dict[str, Any]]]:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text(encoding="utf-8")).get("artifacts", {})

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Dict[str, List[Dict[str, Any]]]]:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            artifacts = self.load()
            yield artifacts
            write_json_atomic(self.path, {"artifacts": artifacts})

    def names(self) -> List[str]:
        return sorted(self.load())

    def get(self, ref: str) -> Dict[str, Any]:
        """The manifest `ref` names (latest or pinned); ArtifactNotFound lists what exists."""
        name, version = parse_ref(ref)
        versions = self.load().get(name)
        if not versions:
            known = ", ".join(self.names()) or "none yet (tracked runs register their checkpoints)"
            raise ArtifactNotFound(f"no artifact named {name!r} in {self.path}; known: {known}")
        if version is None:
            return versions[-1]
        for entry in versions:
            if entry["version"] == version:
                return entry
        have = ", ".join(f"@{e['version']}" for e in versions)
        raise ArtifactNotFound(f"artifact {name!r} has no version {version} in {self.path}; versions: {have}")

    def register(self, name: str, kind: str, path: Any, digest: Tuple[str, str],
                 producer: Dict[str, Any], **extra: Any) -> Dict[str, Any]:
        """Add a version of `name`, or return the latest when path and hash are unchanged."""
        with self._locked() as artifacts:
            versions = artifacts.setdefault(name, [])
            latest = versions[-1] if versions else None
            if latest and latest["path"] == str(path) and latest["hash"] == digest[0]:
                return latest
            entry = {"name": name, "version": len(versions) + 1, "kind": kind, "path": str(path),
                     "hash": digest[0], "hash_mode": digest[1], "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                     **producer, **extra}
            versions.append(entry)
            return entry

    def set_run_id(self, run_dir: str, run_id: str) -> None:
        """Fill in the MLflow run id of versions a run registered while the server was unreachable."""
        with self._locked() as artifacts:
            for entry in (e for versions in artifacts.values() for e in versions):
                if entry.get("run_dir") == run_dir and not entry.get("run_id"):
                    entry["run_id"] = run_id

    def find_path(self, value: str) -> Optional[Dict[str, Any]]:
        """The latest version whose path is `value` or a parent of it."""
        found = None
        for entry in (e for versions in self.load().values() for e in versions):
            if value == entry["path"] or value.startswith(entry["path"].rstrip("/") + "/"):
                found = entry if found is None or entry["created"] >= found["created"] else found
        return found


def ref_of(entry: Dict[str, Any]) -> str:
    """'name@version' of a manifest."""
    return f"{entry['name']}@{entry['version']}"


# ---- the ${art:...} resolver ---------------------------------------------------------------------


def registry_path(root: Any) -> str:
    """`tracker.registry` of a config root, else DEFAULT_REGISTRY."""
    try:
        return str(root.tracker.registry)
    except Exception:  # noqa: BLE001 - a config without the key, or a half-built one
        return DEFAULT_REGISTRY


def resolve_art(ref: str, _root_: Any = None) -> str:
    """`${art:name}` / `${art:name@3}`: the artifact's path from the registry the config names."""
    return Registry(registry_path(_root_)).get(ref)["path"]


def register_resolver() -> None:
    """Register `${art:...}` with OmegaConf (idempotent)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("art"):
        OmegaConf.register_new_resolver("art", resolve_art)


# ---- lineage -------------------------------------------------------------------------------------


def lineage(registry: Registry, ref: str) -> List[str]:
    """Lines showing `ref` (a name[@version] or a registered path), its producing run and inputs, recursively."""
    try:
        entry = registry.get(ref)
    except ArtifactNotFound:
        entry = registry.find_path(str(Path(ref).expanduser().resolve())) if os.path.exists(ref) else None
        if entry is None:
            raise
    lines: List[str] = []
    _lineage(registry, entry, 0, lines, set())
    return lines


def _lineage(registry: Registry, entry: Dict[str, Any], depth: int, lines: List[str], seen: set) -> None:
    pad = "  " * depth
    hash_short = entry["hash"][:19] + ("" if entry.get("hash_mode") == "full" else f" ({entry.get('hash_mode')})")
    lines.append(f"{pad}{ref_of(entry)}  [{entry['kind']}]  {entry['path']}  {hash_short}")
    if ref_of(entry) in seen:
        return
    seen.add(ref_of(entry))
    run = entry.get("run_id") or "(not in MLflow yet)"
    lines.append(f"{pad}  produced by run {run}  run_dir {entry.get('run_dir')}")
    if entry.get("config"):
        lines.append(f"{pad}  config {entry['config']}")
    if entry.get("note"):
        lines.append(f"{pad}  note: {entry['note']}")
    for input_ref in entry.get("inputs", []):
        try:
            _lineage(registry, registry.get(input_ref), depth + 2, lines, seen)
        except ArtifactNotFound:
            lines.append(f"{pad}    {input_ref}  (no longer in the registry)")
