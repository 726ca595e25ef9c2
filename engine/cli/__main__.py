"""`python -m engine.cli`: the `policy` command without its console script."""

from engine.cli import main

raise SystemExit(main())
