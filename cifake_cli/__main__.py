"""`python -m cifake_cli ...` (and `accelerate launch -m cifake_cli train ...`): the `cifake` command."""

import sys

from cifake_cli import main

sys.exit(main())
