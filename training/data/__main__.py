"""Entry point for ``python -m qplug_training.data``."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
