"""qplug-example-plugin: what a third-party qplug plugin looks like, end to end.

This module is the plugin: the ``qplug`` entry point ``example = "qplug_example"`` points here, and
qplug registers it with pluggy, which finds the functions marked ``@hookimpl`` below.

It must stay cheap to import: ``qplug plugins`` and ``qplug --help`` import every plugin. So it
imports nothing but qplug's registry, and names each component's class by import path
(``"qplug_example.edge_density:EdgeDensity"``); that module, and numpy with it, is imported only
when a run actually uses the scorer.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Generator, Sequence

from qplug import DescriberInfo, ScorerInfo, hookimpl

__version__ = "0.1.0"

#: Set ``QPLUG_EXAMPLE_TIMING=1`` to collect per-scorer timings in :data:`STATS`.
TIMING_ENV = "QPLUG_EXAMPLE_TIMING"

#: scorer name -> {"batches", "frames", "seconds"}, filled by the ``score_batch`` wrapper below.
STATS: dict[str, dict[str, float]] = {}


@hookimpl
def register_scorers(register: Callable[[ScorerInfo], None]) -> None:
    """Offer ``example.edge_density``."""
    register(ScorerInfo(
        name="example.edge_density",
        factory="qplug_example.edge_density:EdgeDensity",
        description="fraction of pixels on a luma edge: detail and focus (noise raises it too)",
        range=(0.0, 1.0),
        higher_is_better=True,
        inputs=("luma",),
        batch_size=16,  # cheap per frame: bigger batches only amortise the hook call
        unit="fraction",
    ))


@hookimpl
def register_describers(register: Callable[[DescriberInfo], None]) -> None:
    """Offer ``example.brightness_words``."""
    register(DescriberInfo(
        name="example.brightness_words",
        factory="qplug_example.brightness:BrightnessWords",
        description="brightness, contrast and clipping in a few words, from luma statistics",
        batch_size=16,
        needs_model=False,  # a model-backed describer would also receive --model/--adapter/--device
    ))


@hookimpl(wrapper=True)
def score_batch(scorer_name: str, scorer: Any, frames: Sequence[Any]) -> Generator[None, Any, Any]:
    """Time every scorer's batches (all plugins', not only ours) when ``QPLUG_EXAMPLE_TIMING=1``.

    A wrapper runs around qplug's own implementation: the code before ``yield`` runs before the
    scorer, ``yield`` returns its values (or raises its exception), and what we return is what
    the run stores. We return the values unchanged.
    """
    if os.environ.get(TIMING_ENV) != "1":
        return (yield)  # the common case costs one environment lookup per batch
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        entry = STATS.setdefault(scorer_name, {"batches": 0, "frames": 0, "seconds": 0.0})
        entry["batches"] += 1
        entry["frames"] += len(frames)
        entry["seconds"] += time.perf_counter() - started
