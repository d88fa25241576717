"""``python -m service``: serve, or any ``mscc-cds`` subcommand (``python -m service seed ...``)."""

from __future__ import annotations

import sys

from service.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["serve"]))
