"""``python -m stacfetch._cli`` runs the command line, like ``stacfetch``."""

import sys

from stacfetch._cli import main

sys.exit(main())
