"""The `nemotron` command surface is frozen (as torchtitan's test_no_new_cli_options.py freezes its flags):
every command of the tree, its positional arguments and flags, in tests/cli/cli_surface.txt.

A new command or flag is a deliberate change: regenerate the file and commit it with the change,

    python tests/cli/test_cli_surface.py          # rewrites tests/cli/cli_surface.txt

Recipe commands (`nemotron <family> <stage>`) come from the recipes' runspec blocks and are listed as
one line with the flags every one of them takes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nemotron.cookbook.completion import surface

FROZEN = Path(__file__).with_name("cli_surface.txt")
REGENERATE = "python tests/cli/test_cli_surface.py"


def test_the_command_surface_is_the_frozen_one():
    now, frozen = surface(), FROZEN.read_text(encoding="utf-8").splitlines()
    added = sorted(set(now) - set(frozen))
    removed = sorted(set(frozen) - set(now))
    assert now == frozen, (
        f"the nemotron command surface changed (if on purpose, run `{REGENERATE}` and commit {FROZEN.name}):\n"
        + "".join(f"  + {line}\n" for line in added)
        + "".join(f"  - {line}\n" for line in removed)
    )


if __name__ == "__main__":
    FROZEN.write_text("\n".join(surface()) + "\n", encoding="utf-8")
    print(f"wrote {FROZEN}", file=sys.stderr)
