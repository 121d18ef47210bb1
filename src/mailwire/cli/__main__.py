"""``python -m mailwire.cli``."""

from mailwire.cli.app import main

raise SystemExit(main())
