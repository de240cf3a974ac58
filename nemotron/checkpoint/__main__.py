"""`python -m nemotron.checkpoint import-hf|export-hf ...`: see nemotron.hf.cli."""

import sys

from nemotron.hf.cli import main

sys.exit(main())
