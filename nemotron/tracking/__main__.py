"""`python -m nemotron.tracking ...`: see nemotron.tracking.cli."""

from nemotron.tracking.cli import main
from nemotron.shutdown import exit_quickly

exit_quickly(main())
