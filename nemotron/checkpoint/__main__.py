"""`python -m nemotron.checkpoint import-hf|export-hf ...`: see nemotron.hf.cli."""

from nemotron.hf.cli import main
from nemotron.shutdown import exit_quickly

exit_quickly(main())
