"""Start the Workbench GUI from a source checkout: `python main.py [PROJECT] [--demo]`."""

from workbench.app import main

raise SystemExit(main())
