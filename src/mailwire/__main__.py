"""``python -m mailwire``: the command line."""

from mailwire.cli import main

raise SystemExit(main())
