"""env.toml, the Nemotron cookbook's file of execution profiles: found, parsed, `extends` resolved.

Found as the cookbook finds it: `$NEMOTRON_ENV_FILE` if set, else `env.toml` in the working directory
or a parent, stopping at the project root (the first directory holding `pyproject.toml`). Every section
except the reserved ones (`[wandb]`, `[artifacts]`, `[cache]`, `[cli]`) is a profile; `extends = "other"`
inherits from another profile (chains allowed). Every mistake is an `EnvFileError`: one line naming the
file, the line and the key. Stdlib only (tomllib), so the compose/launch layer stays light.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from nemotron.config.config_error import ConfigError
from nemotron.config.keys import closest

ENV_FILE_VAR = "NEMOTRON_ENV_FILE"
"""Names the env.toml to use instead of searching for one."""
FILE_NAME = "env.toml"
RESERVED = ("wandb", "artifacts", "cache", "cli")
"""Sections that are not profiles (the cookbook's own settings)."""
_HEADER = re.compile(r"""^\s*\[\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*\]""")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")
_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


class EnvFileError(ConfigError):
    """A mistake in env.toml; str() is one line: '<file>:<line>: <what>; <what would be right>'."""


@dataclass
class EnvFile:
    """A parsed env.toml: its sections and the line of every section header and key."""

    path: Path
    sections: Dict[str, Dict[str, Any]]
    lines: Dict[Tuple[str, Optional[str]], int] = field(default_factory=dict)

    def line(self, section: str, key: Optional[str] = None) -> int:
        """Line of `key` in `section` (else of the section header; 1 if unknown)."""
        return self.lines.get((section, key)) or self.lines.get((section, None)) or 1

    def where(self, section: str, key: Optional[str] = None) -> str:
        """'<file>:<line>' of a key or section."""
        return f"{self.path}:{self.line(section, key)}"

    def profiles(self) -> List[str]:
        """Profile names, in file order."""
        return [name for name, body in self.sections.items() if name not in RESERVED and isinstance(body, dict)]

    def resolve(self, name: str) -> "Profile":
        """The profile with its `extends` chain merged (child wins); one-line errors for bad chains."""
        if name not in self.profiles():
            raise EnvFileError(
                f"{self.path}: no profile {name!r}{closest(name, self.profiles())}; "
                f"profiles: {', '.join(self.profiles()) or '(none)'}"
            )
        chain = self.chain(name)
        values: Dict[str, Any] = {}
        origin: Dict[str, str] = {}
        for section in reversed(chain):
            for key, value in self.sections[section].items():
                if key != "extends":
                    values[key], origin[key] = value, section
        return Profile(name=name, values=values, origin=origin, file=self)

    def chain(self, name: str) -> List[str]:
        """[name, its parent, ...]: a cycle or a missing parent is one line at the `extends` key."""
        chain = [name]
        while "extends" in self.sections[chain[-1]]:
            child, parent = chain[-1], self.sections[chain[-1]]["extends"]
            if not isinstance(parent, str) or parent not in self.profiles():
                raise EnvFileError(
                    f"{self.where(child, 'extends')}: profile {child!r} extends {parent!r}, which "
                    f"is not a profile{closest(str(parent), self.profiles())}; profiles: "
                    f"{', '.join(self.profiles())}"
                )
            if parent in chain:
                loop = " -> ".join([*chain[chain.index(parent) :], parent])
                raise EnvFileError(
                    f"{self.where(child, 'extends')}: profile {child!r} extends {parent!r}, a cycle "
                    f"({loop}); remove one `extends`"
                )
            chain.append(parent)
        return chain


@dataclass
class Profile:
    """One resolved profile: merged values and the section each value came from (for error lines)."""

    name: str
    values: Dict[str, Any]
    origin: Dict[str, str]
    file: EnvFile

    def where(self, key: str) -> str:
        """'<file>:<line>' of the key as written (in this profile or the one it was inherited from)."""
        return self.file.where(self.origin.get(key, self.name), key)


def find_env_file(start: Optional[Path] = None) -> Optional[Path]:
    """$NEMOTRON_ENV_FILE, else env.toml in `start` (the working directory) or a parent up to the project root."""
    named = os.environ.get(ENV_FILE_VAR)
    if named:
        return Path(named).expanduser().absolute()
    here = (start or Path.cwd()).absolute()
    for folder in [here, *here.parents]:
        if (folder / FILE_NAME).is_file():
            return folder / FILE_NAME
        if (folder / "pyproject.toml").exists():
            break
    return None


def load_env_file(path: Path) -> EnvFile:
    """Parse env.toml at `path`; a missing file or a TOML error is one line with file and line."""
    if not path.is_file():
        raise EnvFileError(f"{path}: no such env.toml (named by ${ENV_FILE_VAR}); point it at a file or unset it")
    text = path.read_text(encoding="utf-8")
    try:
        sections = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        found = _AT.search(str(err))
        line = found.group(1) if found else "1"
        raise EnvFileError(
            f"{path}:{line}: TOML syntax error: {_AT.sub('', str(err)).strip()}; "
            "fix the TOML there (quote strings, close brackets)"
        ) from None
    for name, body in sections.items():
        if not isinstance(body, dict):
            raise EnvFileError(
                f"{path}: top-level key {name!r} is not in a section; put profile keys under a [profile-name] header"
            )
    return EnvFile(path=path, sections=sections, lines=index_lines(text))


def index_lines(text: str) -> Dict[Tuple[str, Optional[str]], int]:
    """(section, key) -> line and (section, None) -> header line, first occurrence wins."""
    lines: Dict[Tuple[str, Optional[str]], int] = {}
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        if header := _HEADER.match(raw):
            section = header.group(1).strip("\"'")
            lines.setdefault((section, None), number)
        elif key := _KEY.match(raw):
            lines.setdefault((section, key.group(1).strip("\"'")), number)
    return lines


def current_env_file() -> Optional[EnvFile]:
    """The env.toml that applies here, parsed; None when there is none."""
    path = find_env_file()
    return None if path is None else load_env_file(path)
