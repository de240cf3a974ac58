"""`python -m nemotron.tracking ...`: see nemotron.tracking.cli."""

from nemotron.tracking.cli import main
from nemotron.common.shutdown import exit_quickly

exit_quickly(main())
