"""`python -m hf_reason.cli`: the `hf-reason` command line."""

import sys

from . import main


sys.exit(main())
