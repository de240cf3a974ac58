"""nemotron/config/hydra_compat.py `libyaml_loader`: OmegaConf's YAML rules on libyaml's parser load the
same data, and refuse the same documents at the same place, as OmegaConf's own loader."""

from __future__ import annotations

import io
from pathlib import Path

import hydra
import pytest
import yaml

from nemotron.common.paths import REPO_ROOT
from nemotron.config.hydra_compat import OMEGACONF_LOADER, libyaml_loader

SHIPPED = sorted(
    [
        *REPO_ROOT.glob("conf/**/*.yaml"),
        *REPO_ROOT.glob("recipes/**/*.yaml"),
        *Path(hydra.__file__).parent.glob("conf/**/*.yaml"),
    ]
)
"""Every YAML file a compose can read: the project's config groups, the recipes' configs, Hydra's own."""

EDGE_CASES = {
    "floats": "a: 1e-4\nb: 1.5e3\nc: .5\nd: 1_000.0\ne: -.inf\nf: .nan\ng: 1e5\nh: 6.8523015e+5\n",
    "ints": "a: 1_000\nb: 0o17\nc: 010\nd: 0x1F\ne: -0\nf: +12\ng: 190:20:30\n",
    "bools and nulls": "a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: ~\ng: null\nh: Null\ni: y\n",
    "timestamps stay strings": "a: 2001-12-14\nb: 2001-12-14t21:59:43.10-05:00\n",
    "strings": "a: '1e-4'\nb: \"x: y\"\nc: ${oc.env:HOME}\nd: |\n  two\n  lines\ne: >\n  folded\n  text\n",
    "anchors": "base: &b {x: 1, y: [1, 2]}\nother: *b\nmerged:\n  <<: *b\n  y: 3\n",
    "path": "p: !!python/object/apply:pathlib.Path ['/a', 'b']\n",
    "unicode": 'name: modèle\nemoji: "\\u263A"\n',
    "empty": "",
    "nested lists": "a:\n- - 1\n  - 2\n- {k: v}\n",
}

REFUSED = {
    "duplicate key": "a: 1\nb: 2\na: 3\n",
    "nested duplicate": "m:\n  k: 1\n  k: 2\n",
    "unclosed flow": "arch: gpt\nnum_layers: [2\n",
    "bad indent": "a:\n  b: 1\n c: 2\n",
    "tab": "a:\n\tb: 1\n",
    "unknown tag": "a: !!python/object:os.system x\n",
}


def typed(data):
    """The data with every scalar tagged by its type (1, 1.0 and True are equal in Python)."""
    if isinstance(data, dict):
        return {typed(k): typed(v) for k, v in data.items()}
    if isinstance(data, list):
        return [typed(v) for v in data]
    if isinstance(data, float) and data != data:
        return ("float", "nan")
    return (type(data).__name__, data)


def both(text: str, name: str = "<doc>"):
    def load(loader):
        stream = io.StringIO(text)
        stream.name = name  # as Hydra's open file gives the parser its path
        return yaml.load(stream, Loader=loader)

    return load(OMEGACONF_LOADER()), load(libyaml_loader())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p).split("site-packages/")[-1].replace(str(REPO_ROOT), ""))
def test_each_shipped_yaml_file_loads_the_same(path: Path) -> None:
    ours, omegaconfs = both(path.read_text(encoding="utf-8"), str(path))
    assert typed(ours) == typed(omegaconfs)


@pytest.mark.parametrize("case", EDGE_CASES)
def test_each_edge_case_loads_the_same(case: str) -> None:
    expected, got = both(EDGE_CASES[case])
    assert typed(got) == typed(expected)


@pytest.mark.parametrize("case", REFUSED)
def test_each_bad_document_is_refused_alike(case: str) -> None:
    """The same error class, at the same line and column of the same file (what our one-line error shows)."""
    errors = []
    for loader in (OMEGACONF_LOADER(), libyaml_loader()):
        stream = io.StringIO(REFUSED[case])
        stream.name = "conf/model/broken.yaml"
        with pytest.raises(yaml.YAMLError) as info:
            yaml.load(stream, Loader=loader)
        mark = info.value.problem_mark
        errors.append((type(info.value), mark.name, mark.line, mark.column))
    assert errors[0] == errors[1]
    if "duplicate" in case:
        assert "found duplicate key" in str(info.value)


def test_the_shipped_files_are_enough_to_matter() -> None:
    assert len(SHIPPED) >= 30 and libyaml_loader() is not None  # libyaml ships in PyYAML's wheels
