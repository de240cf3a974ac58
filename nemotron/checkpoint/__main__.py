"""`python -m nemotron.checkpoint import-hf|export-hf ...`: see nemotron.hf.cli."""

from nemotron.common.shutdown import exit_quickly
from nemotron.hf.cli import main

exit_quickly(main())
