"""`python -m nemotron.pipe pipeline=<name> ...` (see nemotron/pipe/cli.py)."""

import sys

from nemotron.pipe.cli import main

if __name__ == "__main__":
    sys.exit(main())
