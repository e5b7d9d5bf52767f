"""`python -m cli`: the same as the `ocr` console script."""

from cli.app import main

raise SystemExit(main())
