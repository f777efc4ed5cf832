"""`python -m ivr`: the `hamta-ivr` command (ivr.cli)."""

import sys

from ivr.cli import main

sys.exit(main())
