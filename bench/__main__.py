"""``python -m bench``: run every benchmark and print the table (see bench/run.py)."""

from bench.run import main

raise SystemExit(main())
