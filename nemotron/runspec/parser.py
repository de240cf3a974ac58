"""Parse and validate the `[tool.runspec]` block (schema "1") of recipe scripts.

A recipe script declares what it is and needs in PEP 723 inline metadata:

    # /// script
    # [tool.runspec]
    # name = "nano3/pretrain"
    # [tool.runspec.resources]
    # nodes = 2
    # ///

`parse_file` reads one script, `discover` walks folders of them. Unlike NVIDIA's reference
parser, every value is validated: an unknown key, a wrong type or a bad choice raises
`RunspecError`, whose message names the file, the line and the key, and says what would be
right. Stdlib only, so the compose/launch layer stays free of heavy imports.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

LAUNCHES = ("torchrun", "ray", "direct")
FORMATS = ("omegaconf", "yaml", "json")
LAUNCH_ALIASES = {"python": "direct"}  # Nemotron cookbook scripts write launch = "python"
PLACEHOLDERS = ("script", "config")
OPEN, CLOSE = "# /// script", "# ///"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER_RE = re.compile(r"(?<![$\{])\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
_SEGMENT = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEY_RE = re.compile(rf"^({_SEGMENT}(?:\s*\.\s*{_SEGMENT})*)\s*=")
_HEADER_RE = re.compile(rf"^\[\[?\s*({_SEGMENT}(?:\s*\.\s*{_SEGMENT})*)\s*\]")
_TOML_AT_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True, kw_only=True)
class Runspec:
    """One recipe script's validated `[tool.runspec]` metadata."""

    name: str  # recipe identity, e.g. "nano3/pretrain"
    script: Path  # absolute path of the script
    line: int  # 1-based line of the `# /// script` opening
    config_dir: Path  # absolute config directory
    schema: str = "1"
    docs: str = ""  # URL of the spec
    image: str | None = None  # container image for remote runs
    setup: str = ""  # what the image provides
    launch: str = "torchrun"  # one of LAUNCHES
    cmd: str | None = None  # command template with {script}/{config}; None: the backend's choice
    workdir: str | None = None  # working directory inside the container
    config_default: str = "default"  # default config name, no extension
    config_format: str = "omegaconf"  # one of FORMATS
    nodes: int = 1
    gpus_per_node: int | str = 8  # an int >= 0, or "gpu": one process per visible GPU
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    dependencies: tuple[str, ...] = ()  # PEP 723 `dependencies`
    requires_python: str | None = None  # PEP 723 `requires-python`

    def config_file(self) -> Path | None:
        """The default config file, or None if it does not exist."""
        exts = (".json",) if self.config_format == "json" else (".yaml", ".yml")
        found = [self.config_dir / (self.config_default + ext) for ext in exts]
        return next((path for path in found if path.is_file()), None)


class RunspecError(ValueError):
    """str(err) is ONE line: '<file>:<line>: <key>: <what is wrong>; <what would be right>'."""

    def __init__(self, path: Path, line: int, key: str, problem: str, fix: str) -> None:
        self.path, self.line, self.key = Path(path), line, key
        super().__init__(" ".join(f"{path}:{line}: {key}: {problem}; {fix}".split("\n")))


class _Invalid(Exception):
    """A check's complaint (args: problem, fix), turned into a RunspecError at the key's line."""


# ---- value checks: each returns the (normalised) value or raises _Invalid ----

def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {value!r}", f'quote it: <key> = "{value}"')
    return value


def _nonempty(value: Any) -> str:
    if not _string(value).strip():
        raise _Invalid("expected a non-empty string, got ''", "give a value or remove the key")
    return value


def _schema(value: Any) -> str:
    if value != "1":
        raise _Invalid(f"unsupported schema {value!r}", 'this parser reads schema = "1"')
    return value


def _name(value: Any) -> str:
    if _string(value) and not _NAME_RE.match(value):
        raise _Invalid(f"invalid name {value!r}",
                       'use "/"-separated parts of letters, digits, "_", ".", "-", e.g. "nano3/pretrain"')
    return value


def _choice(valid: tuple[str, ...], aliases: Mapping[str, str] | None = None) -> Callable[[Any], str]:
    aliases = aliases or {}

    def check(value: Any) -> str:
        if _string(value) not in valid and value not in aliases:
            raise _Invalid(f"unknown value {value!r}", "use one of " + ", ".join(map(repr, valid)))
        return aliases.get(value, value)
    return check


def _cmd(value: Any) -> str:
    unknown = sorted(set(_PLACEHOLDER_RE.findall(_string(value))) - set(PLACEHOLDERS))
    if unknown:
        raise _Invalid(f"unknown placeholder {{{unknown[0]}}} in {value!r}",
                       "the only placeholders are {script} and {config}")
    return value


def _int_at_least(low: int, allowed: tuple[str, ...] = ()) -> Callable[[Any], int | str]:
    def check(value: Any) -> int | str:
        if value in allowed:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            extra = "".join(f" or {a!r}" for a in allowed)
            raise _Invalid(f"expected an integer >= {low}{extra}, got {value!r}",
                           f"write a bare number, e.g. <key> = {max(low, 1)}")
        return value
    return check


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(f"expected a list of strings, got {value!r}",
                       'e.g. dependencies = ["numpy>=1.24"]')
    return tuple(value)


# key -> check, or -> nested _Spec for a sub-table; "*": any other key; "*names": pattern for those keys
_Spec = dict[str, Any]
RUNSPEC: _Spec = {
    "schema": _schema, "docs": _string, "name": _name, "setup": lambda v: _string(v).strip(),
    "image": lambda v: _string(v) or None,  # "" means no image
    "run": {"launch": _choice(LAUNCHES, LAUNCH_ALIASES), "cmd": _cmd, "workdir": _string},
    "config": {"dir": _nonempty, "default": _nonempty, "format": _choice(FORMATS)},
    "resources": {"nodes": _int_at_least(1), "gpus_per_node": _int_at_least(0, ("gpu",))},
    "env": {"*": _string, "*names": _ENV_NAME_RE},
}
PEP723: _Spec = {"dependencies": _str_list, "requires-python": _string, "tool": {"*": lambda v: v}}


# ---- locating keys in the file ----

def _dotted(key: str) -> str:
    """Normalise a TOML key ('a . "b"') to 'a.b'."""
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)', key)
    return ".".join(a or b or c for a, b, c in parts)


@dataclass(frozen=True)
class _Block:
    """The PEP 723 block of one file: where it is and the file line of each TOML key."""

    path: Path
    line: int  # file line of the opening
    toml: str
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """The file line of `key`, else of its nearest enclosing table, else the opening."""
        parts = key.split(".")
        for n in range(len(parts), 0, -1):
            if ".".join(parts[:n]) in self.key_lines:
                return self.key_lines[".".join(parts[:n])]
        return self.line

    def error(self, key: str, problem: str, fix: str) -> RunspecError:
        return RunspecError(self.path, self.line_of(key), key, problem, fix)


def _index_keys(lines: list[str], first_line: int) -> dict[str, int]:
    """Map each table header and key (dotted, full path) to its file line, first wins."""
    found: dict[str, int] = {}
    table, in_string = "", False
    for offset, raw in enumerate(lines):
        text = raw.strip()
        if text.count('"""') % 2 or text.count("'''") % 2:
            in_string = not in_string
            if not in_string:
                continue
        elif in_string:
            continue
        if header := _HEADER_RE.match(text):
            table = _dotted(header.group(1))
            found.setdefault(table, first_line + offset)
        elif key := _KEY_RE.match(text):
            found.setdefault(".".join(filter(None, (table, _dotted(key.group(1))))), first_line + offset)
    return found


def _find_block(text: str, path: Path) -> _Block | None:
    """Cut out the one `# /// script` block, or None if there is none."""
    lines = text.splitlines()
    opens = [i for i, line in enumerate(lines) if line.rstrip() == OPEN]
    if not opens:
        return None
    if len(opens) > 1:
        raise RunspecError(path, opens[1] + 1, OPEN, f"a second '{OPEN}' block (the first is on line "
                           f"{opens[0] + 1})", "keep one block per script (PEP 723)")
    content: list[str] = []
    for i in range(opens[0] + 1, len(lines)):
        line = lines[i]
        if line.rstrip() == CLOSE:
            return _Block(path, opens[0] + 1, "\n".join(content) + "\n",
                          _index_keys(content, opens[0] + 2))
        if line != "#" and not line.startswith("# "):
            raise RunspecError(path, i + 1, OPEN, f"line {line!r} inside the block is not a '# ' comment",
                               f"start every block line with '# ' and close the block with '{CLOSE}'")
        content.append(line[2:])
    raise RunspecError(path, opens[0] + 1, OPEN, f"unterminated '{OPEN}' block",
                       f"end it with a line '{CLOSE}'")


# ---- validation ----

def _check_table(table: Mapping[str, Any], spec: _Spec, prefix: str, block: _Block) -> dict[str, Any]:
    """Check every key of `table` against `spec`; return the checked (normalised) values."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        where = f"{prefix}.{key}" if prefix else key
        rule = spec.get(key, spec.get("*"))
        if rule is None:
            close = difflib.get_close_matches(key, list(spec), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "valid keys: " + ", ".join(sorted(spec))
            raise block.error(where, f"unknown key {key!r}", hint)
        if "*names" in spec and not spec["*names"].match(key):
            raise block.error(where, f"invalid variable name {key!r}", "use letters, digits and '_'")
        if isinstance(rule, dict):
            if not isinstance(value, dict):
                raise block.error(where, f"expected a table, got {value!r}", f"write it as [{where}]")
            out[key] = _check_table(value, rule, where, block)
            continue
        try:
            out[key] = rule(value)
        except _Invalid as bad:
            problem, fix = bad.args
            raise block.error(where, problem, fix.replace("<key>", key)) from None
    return out


def _load_toml(block: _Block) -> dict[str, Any]:
    try:
        return tomllib.loads(block.toml)
    except tomllib.TOMLDecodeError as err:
        match = _TOML_AT_RE.search(str(err))  # tomllib counts lines from the block's first line
        line = block.line + int(match.group(1)) if match else block.line
        where = f" at column {match.group(2)}" if match else ""
        key = next((k for k, n in block.key_lines.items() if n == line), "toml")
        problem = f"TOML syntax error{where}: {_TOML_AT_RE.sub('', str(err)).strip()}"
        raise RunspecError(block.path, line, key, problem,
                           "fix the TOML there: quote strings, close brackets") from None


def _derive_name(script: Path, root: Path | None) -> str:
    """recipes/nano3/pretrain/train.py -> "nano3/pretrain"; .../pretrain/eval.py -> "pretrain/eval"."""
    inside = root is not None and script.is_relative_to(root)
    parts = list(script.relative_to(root).with_suffix("").parts) if inside else [
        script.parent.name, script.stem]
    if len(parts) > 1 and parts[-1] == "train":
        parts.pop()
    return "/".join(parts)


def _build(script: Path, block: _Block, top: dict[str, Any], root: Path | None) -> Runspec:
    spec = top["tool"]["runspec"]
    run, config, res = spec.get("run", {}), spec.get("config", {}), spec.get("resources", {})
    name = spec.get("name") or _derive_name(script, root)
    if not _NAME_RE.match(name):
        raise block.error("tool.runspec.name", f"cannot derive a valid name from the path ({name!r})",
                          'set name = "group/recipe" in [tool.runspec]')
    config_dir = (script.parent / config.get("dir", "./config")).resolve()
    if "dir" in config and not config_dir.is_dir():
        raise block.error("tool.runspec.config.dir", f"{config['dir']!r} is not a directory ({config_dir})",
                          "point it at the recipe's config folder, or drop it")
    return Runspec(
        name=name, script=script, line=block.line,
        config_dir=config_dir,
        schema=spec.get("schema", "1"), docs=spec.get("docs", ""), image=spec.get("image"),
        setup=spec.get("setup", ""), launch=run.get("launch", "torchrun"), cmd=run.get("cmd"),
        workdir=run.get("workdir"), config_default=config.get("default", "default"),
        config_format=config.get("format", "omegaconf"), nodes=res.get("nodes", 1),
        gpus_per_node=res.get("gpus_per_node", 8), env=MappingProxyType(dict(spec.get("env", {}))),
        dependencies=top.get("dependencies", ()), requires_python=top.get("requires-python"),
    )


# ---- public API ----

def parse_text(text: str, path: Path, root: Path | None = None) -> Runspec | None:
    """Parse a script's text; None if it has no `# /// script` block or no [tool.runspec]."""
    script = Path(path).absolute()
    block = _find_block(text, script)
    if block is None:
        return None
    data = _load_toml(block)
    tool = data.get("tool")
    if not isinstance(tool, dict) or "runspec" not in tool:
        return None
    top = _check_table(data, PEP723, "", block)
    if not isinstance(tool["runspec"], dict):
        raise block.error("tool.runspec", "expected a table", "write it as [tool.runspec]")
    top["tool"]["runspec"] = _check_table(tool["runspec"], RUNSPEC, "tool.runspec", block)
    return _build(script, block, top, Path(root).absolute() if root else None)


def parse_file(path: Path, root: Path | None = None) -> Runspec | None:
    """Parse one script file; see parse_text."""
    text = Path(path).read_text(encoding="utf-8")
    return parse_text(text, path, root) if OPEN in text else None


def _scripts(root: Path) -> list[Path]:
    """All *.py under root, sorted, skipping __pycache__ and hidden folders."""
    return sorted(p for p in root.rglob("*.py") if p.is_file() and not any(
        part == "__pycache__" or part.startswith(".") for part in p.relative_to(root).parts[:-1]))


def discover(roots: Iterable[Path]) -> dict[str, Runspec]:
    """Every runspec under `roots`, by name; two scripts with one name raise RunspecError."""
    found: dict[str, Runspec] = {}
    for root in map(lambda r: Path(r).absolute(), roots):
        for script in _scripts(root):
            spec = parse_file(script, root)
            if spec is None:
                continue
            if spec.name in found:
                first = found[spec.name]
                raise RunspecError(spec.script, spec.line, "tool.runspec.name",
                                   f"name {spec.name!r} is already used by {first.script}:{first.line}",
                                   "give each recipe a unique name")
            found[spec.name] = spec
    return dict(sorted(found.items()))
