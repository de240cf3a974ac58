"""`python -m nemotron.jobs list|follow|cancel|resubmit`: kept as the short entry point; the code is
`nemotron.launchers.jobs` (launchers/jobs.py)."""

import sys

from nemotron.launchers.jobs import main

if __name__ == "__main__":
    sys.exit(main())
