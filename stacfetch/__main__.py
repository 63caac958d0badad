"""``python -m stacfetch`` runs the command-line interface."""

from stacfetch._cli import main

raise SystemExit(main())
