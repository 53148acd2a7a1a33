"""``python -m deepbox``: the ``deepbox`` command."""
from __future__ import annotations

import sys

from deepbox.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
