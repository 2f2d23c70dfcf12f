"""`python -m cnnc`: the command line, as the `cnnc` script runs it."""

import sys

from cnnc.cli import main

sys.exit(main())
