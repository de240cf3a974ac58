"""Which interpolated leaves of a sweep member's config can resolve differently from its base's.

A member composed on a shared base (launchers/members.py) differs from the base's first member in the
leaf values it sets (`changed`) and in Hydra's node (its number, overrides, output directory). An
interpolated leaf resolves the same for every member unless it reads one of those. So the reads of
each leaf's resolution are recorded once per base (through OmegaConf's node reads, transitively:
`${run_dir}/checkpoints` records what `run_dir` itself reads), and a leaf is resolved again only when

- it is *volatile*: its interpolation calls a resolver (`${hydra:...}`, `${now:...}`, `${oc.env:...}`,
  ours), or it reads Hydra's node or a volatile leaf; or
- one of its reads meets a changed key (the same key, a container holding it, or a key inside it).

tests/cli/test_sweep_members.py compares every member's config.yaml of a mixed sweep byte for byte with
Hydra's own full composition, so a leaf wrongly skipped fails there.
"""

from __future__ import annotations

import re
from typing import Any, Dict, FrozenSet, Iterator, List, Tuple

from omegaconf import Container, OmegaConf

from nemotron.config.hydra_compat import recording_reads

RESOLVER_CALL = re.compile(r"\$\{\s*[\w.\-]+\s*:")
"""An interpolation that calls a resolver (its value may change with anything, or with time)."""


def dotted(key: str, path: str) -> str:
    """The full key of the leaf at `path` (relative, "" for the section itself) of section `key`."""
    return f"{key}.{path}" if path else key


def final_reads(reads: set) -> FrozenSet[str]:
    """The keys read as values, without the containers passed through on the way to them."""
    return frozenset(r for r in reads if not any(o.startswith(r + ".") for o in reads))


def meets(read: str, key: str) -> bool:
    """Whether reading `read` sees a change of `key` (the same key, or one holds the other)."""
    return read == key or key.startswith(read + ".") or read.startswith(key + ".")


class LeafDeps:
    """The recorded reads of one base's interpolated leaves and, per set of changed keys, the leaves
    (section -> relative paths) a member must resolve again."""

    def __init__(self, cfg: Any) -> None:
        self.reads: Dict[Tuple[str, str], FrozenSet[str]] = {}
        raw_volatile = set()
        for key, path, raw in interpolations(cfg):
            with recording_reads() as reads:
                OmegaConf.select(cfg, dotted(key, path), throw_on_missing=False)
            self.reads[(key, path)] = final_reads(reads)
            if RESOLVER_CALL.search(raw):
                raw_volatile.add(dotted(key, path))
        self.volatile = {
            leaf
            for leaf, reads in self.reads.items()
            if dotted(*leaf) in raw_volatile
            or any(r == "hydra" or r.startswith("hydra.") or any(meets(r, v) for v in raw_volatile) for r in reads)
        }
        self.memo: Dict[FrozenSet[str], Dict[str, List[str]]] = {}

    def to_resolve(self, changed: FrozenSet[str]) -> Dict[str, List[str]]:
        """Section -> relative paths of the interpolated leaves that may differ with `changed`."""
        if changed not in self.memo:
            found: Dict[str, List[str]] = {}
            for leaf, reads in self.reads.items():
                if leaf in self.volatile or any(meets(r, c) for r in reads for c in changed):
                    found.setdefault(leaf[0], []).append(leaf[1])
            self.memo[changed] = found
        return {key: list(paths) for key, paths in self.memo[changed].items()}


def interpolations(cfg: Any) -> Iterator[Tuple[str, str, str]]:
    """(top-level key besides `hydra`, path relative to it ("" for the key itself), the interpolation
    string) of every leaf that holds one."""
    for key in cfg:
        if key == "hydra":
            continue
        node = cfg._get_node(key)
        raw = OmegaConf.to_container(node, resolve=False) if isinstance(node, Container) else node._value()
        for path, value in _strings_at(raw, ""):
            if "${" in value:
                yield key, path, value


def _strings_at(raw: Any, prefix: str) -> Iterator[Tuple[str, str]]:
    if isinstance(raw, dict):
        for k, v in raw.items():
            yield from _strings_at(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            yield from _strings_at(v, f"{prefix}.{i}" if prefix else str(i))
    elif isinstance(raw, str):
        yield prefix, raw
