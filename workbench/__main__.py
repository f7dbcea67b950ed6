"""`python -m workbench ...` runs the headless command line."""

from workbench.cli import main

raise SystemExit(main())
