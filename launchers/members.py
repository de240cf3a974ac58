"""Every member of a `-m` sweep, composed and checked before anything is submitted or run.

Composing each member from scratch costs Hydra ~85 ms (256 members: 22 s). Most sweeps only change
values (`optim.lr=1e-4,3e-4`), so members that share their *structural* overrides (config groups,
`+`/`~`/`++` edits, `hydra.*`, lists and dicts) share one composed base: the member's value overrides
are applied to it in place with Hydra's own override code, the member is rendered, and the old values
are put back. Anything else — or a value override that lands on a container — gets a full Hydra
composition. Hydra's `${hydra:...}` node follows each member (job.num, override_dirname, output dir),
so `hydra.sweep.subdir` and `run_dir` resolve exactly as Hydra's own launchers would.

Uses two Hydra internals, through nemotron/config/hydra_compat.py: `apply_overrides` and
`get_overrides_dirname`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import Container, DictConfig, OmegaConf

from nemotron.config.hydra_compat import apply_overrides, get_overrides_dirname
from nemotron.launchers.override_lines import OverrideLines

Render = Callable[[DictConfig, FrozenSet[str]], Any]
"""What the launcher makes of one member's composed config (it may raise ConfigError), given the keys
the member may differ in from the members composed on the same base before it (`_changed`; empty for
a base's first member or a full composition). The config
still holds Hydra's node under `hydra` (sweep dir interpolations need it); renderers skip it."""
FIT_KEYS = ("train.global_batch_size",)
"""Keys the renderer itself may change on a member (config/batch_fit.py): put back like overrides."""


@dataclass
class Member:
    """One sweep member, composed."""

    num: int
    """hydra.job.num: the member's index in the whole sweep."""
    overrides: List[str]
    """Its command-line overrides (swept values included)."""
    run_dir: Path
    """hydra.sweep.dir / hydra.sweep.subdir."""
    rendered: Any
    """What the render function returned for it."""


class MemberComposer:
    """Composes members of one sweep against the sweep's master config, sharing bases where it can."""

    def __init__(self, loader: Any, master: DictConfig) -> None:
        self.loader, self.master = loader, master
        self.lines = OverrideLines()
        self.bases: Dict[Tuple[str, ...], DictConfig] = {}
        self.active: Optional[DictConfig] = None
        self.structural: Dict[str, bool] = {}
        self.first: Dict[Tuple[str, ...], Dict[str, str]] = {}
        """Per base: key -> override line of the value overrides of the first member composed on it."""
        self.settings: Optional[Tuple[DictConfig, Tuple[str, Dict[str, Any], Path, bool]]] = None
        """The config `_sweep_settings` last resolved, and its settings."""
        self.task: Optional[Tuple[DictConfig, List[str]]] = None
        """The config `_set_task` last wrote, and the lines it wrote."""
        self.varied: Dict[Tuple[str, ...], Set[str]] = {}
        """Per base: the keys whose override differed from that first member's in any member so far."""

    def compose(self, num: int, overrides: Sequence[str], render: Render) -> Member:
        """Compose member `num`, hand it to `render` with `${hydra:...}` set for it, return the result."""
        parsed = self.lines.parse(overrides)
        structural = tuple(o.input_line for o in parsed if self._is_structural(o))
        values = [o for o in parsed if o.input_line not in structural]
        full = self._base(structural)
        saved = old_values(full, values)
        if saved is None:  # a value override that is not a plain value: compose this one from scratch
            return self._compose_fully(num, list(overrides), parsed, render)
        saved += fitted_values(full)
        changed = self._changed(structural, values)
        try:
            run_dir = self._enter(num, parsed)
            apply_overrides(full, values)
            return Member(num, list(overrides), run_dir, render(full, changed))
        finally:
            restore(full, saved)

    def _changed(self, structural: Tuple[str, ...], values: List[Override]) -> FrozenSet[str]:
        """The keys this member may differ in from any member composed on the same base before it (so
        from the one the renderer took as that base's reference, whichever it was): keys whose override
        differs from the first member's, in this member or an earlier one. An override repeated with the
        same value in every member (the command's common ones) is no difference."""
        lines = {o.key_or_group: o.input_line for o in values}  # the last override of a key wins, as in Hydra
        first = self.first.setdefault(structural, lines)
        varied = self.varied.setdefault(structural, set())
        varied.update(k for k in {*lines, *first} if lines.get(k) != first.get(k))
        return frozenset(varied)

    def _is_structural(self, override: Override) -> bool:
        line = override.input_line
        if line not in self.structural:
            self.structural[line] = is_structural(override, self.loader)
        return self.structural[line]

    # ------------------------------------------------------------ bases and Hydra's node

    def _base(self, structural: Tuple[str, ...]) -> DictConfig:
        if structural not in self.bases:
            self.bases[structural] = self.loader.load_sweep_config(self.master, list(structural))
        full = self.bases[structural]
        self._activate(full)
        return full

    def _activate(self, full: DictConfig) -> None:
        """`${hydra:...}` reads this config's hydra node (HydraConfig.get() returns `cfg.hydra`). The node
        is opened for writing once per config, not per member: every flag change walks its whole subtree
        (this config is the composer's own; nothing else sees it)."""
        HydraConfig.instance().cfg = full  # type: ignore[assignment]
        if self.active is not full:
            OmegaConf.set_readonly(full.hydra, False)
            OmegaConf.set_struct(full.hydra, False)
        self.active = full

    def _enter(self, num: int, parsed: List[Override]) -> Path:
        """Point `${hydra:...}` at member `num`; its output directory (absolute, as Hydra's run_job makes it)."""
        hc = self.active.hydra  # type: ignore[union-attr]
        task = [o for o in parsed if not o.is_hydra_override()]
        name, dirname_cfg, sweep_dir, subdir_is_num = self._sweep_settings(hc)
        hc.job.num = num  # writable: _activate
        hc.job.id = f"{name}_{num}"
        hc.job.override_dirname = get_overrides_dirname(overrides=task, **dirname_cfg)
        self._set_task([o.input_line for o in task])
        out = Path(os.path.abspath(sweep_dir / (str(num) if subdir_is_num else str(hc.sweep.subdir))))
        hc.runtime.output_dir = str(out)
        return out

    def _set_task(self, lines: List[str]) -> None:
        """`hydra.overrides.task` of the active config: only the entries that differ from the last
        member's on it are written (a new ListConfig costs more than the rest of the node's changes)."""
        hc = self.active.hydra  # type: ignore[union-attr]
        last = self.task[1] if self.task is not None and self.task[0] is self.active else None
        if last is None or len(last) != len(lines):
            hc.overrides.task = lines
        else:
            node = hc.overrides.task
            for i, (old, new) in enumerate(zip(last, lines, strict=True)):
                if old != new:
                    node[i] = new
        self.task = (self.active, lines)

    def _sweep_settings(self, hc: DictConfig) -> Tuple[str, Dict[str, Any], Path, bool]:
        """(job name, override_dirname settings, sweep dir, whether the sweep subdir is Hydra's default
        `${hydra.job.num}`) of the active config, resolved once per config (Hydra's launcher also
        resolves hydra.sweep.dir once for the whole sweep)."""
        if self.settings is None or self.settings[0] is not self.active:
            dirname = hc.job.config.override_dirname
            kwargs = {"kv_sep": dirname.kv_sep, "item_sep": dirname.item_sep, "exclude_keys": dirname.exclude_keys}
            by_num = OmegaConf.to_container(hc.sweep, resolve=False).get("subdir") == "${hydra.job.num}"
            self.settings = (self.active, (str(hc.job.name), kwargs, Path(str(hc.sweep.dir)), by_num))
        return self.settings[1]

    def _compose_fully(self, num: int, overrides: List[str], parsed: List[Override], render: Render) -> Member:
        full = self.loader.load_sweep_config(self.master, overrides)
        self._activate(full)
        run_dir = self._enter(num, parsed)
        return Member(num, overrides, run_dir, render(full, frozenset()))


# ---------------------------------------------------------------- helpers


def is_structural(override: Override, loader: Any) -> bool:
    """Overrides that change what is composed (groups, +/~/++, hydra.*, packages, lists/dicts)."""
    if override.type != OverrideType.CHANGE or override.package is not None or override.is_hydra_override():
        return True
    if isinstance(override.value(), (dict, list)):
        return True
    return loader.repository.group_exists(override.key_or_group)


def _parent_and_key(cfg: DictConfig, dotted: str) -> Tuple[Any, str]:
    parent_key, _, key = dotted.rpartition(".")
    parent: Any = cfg
    for part in parent_key.split(".") if parent_key else []:
        parent = parent._get_node(part) if isinstance(parent, DictConfig) else None
        if parent is None:
            break
    return parent, key


def old_values(cfg: DictConfig, values: List[Override]) -> Optional[List[Tuple[Any, str, Any]]]:
    """(parent, key, raw value) for each override's target, or None if one is not a plain value.

    A key that does not exist is left for Hydra's override code to report (saved as nothing).
    """
    saved = []
    for override in values:
        parent, key = _parent_and_key(cfg, override.key_or_group)
        if parent is None or not isinstance(parent, DictConfig) or parent._get_node(key) is None:
            if isinstance(parent, Container) and not isinstance(parent, DictConfig):
                return None  # an index into a list
            continue
        node = parent._get_node(key)
        if isinstance(node, Container):
            return None
        saved.append((parent, key, node._value()))
    return saved


def fitted_values(cfg: DictConfig) -> List[Tuple[Any, str, Any]]:
    """(parent, key, raw value) of the FIT_KEYS, so a batch raised for one member is not the next's."""
    saved = []
    for dotted in FIT_KEYS:
        parent, key = _parent_and_key(cfg, dotted)
        if isinstance(parent, DictConfig) and parent._get_node(key) is not None:
            saved.append((parent, key, parent._get_node(key)._value()))
    return saved


def restore(cfg: DictConfig, saved: List[Tuple[Any, str, Any]]) -> None:
    """Put the saved raw values (interpolations included) back."""
    for parent, key, value in reversed(saved):
        parent[key] = value
