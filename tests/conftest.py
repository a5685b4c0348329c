"""Shared test helpers. Tests run single-threaded: tiny workloads are 5-12x faster that way here."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
