"""``python -m immodel`` is the same as the ``immodel`` console script."""

from immodel.cli import main

raise SystemExit(main())
