"""One module per CLI subcommand; each exposes `register(subparsers)` that sets `func` on its parser."""
