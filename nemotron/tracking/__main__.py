"""`python -m nemotron.tracking ...`: see nemotron.tracking.cli."""

import sys

from nemotron.tracking.cli import main

sys.exit(main())
