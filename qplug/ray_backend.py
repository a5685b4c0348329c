"""``--ray [ADDRESS]``: a run's inputs scored by a Ray cluster, through Ray Data.

The inputs become a Ray dataset, one row per input; an actor pool (``concurrency`` actors, each a
whole qplug pipeline holding its own plugins and models, ``num_gpus`` each for model-backed
scorers) scores each row and returns its results; Ray's streaming execution bounds what is in
flight, and retries the work of actors that die. This process alone writes the reports, in the
same formats as any run, so pooled scores, events, gates and ``--resume`` behave as everywhere.

Ray is optional (``pip install 'qplug[ray]'``); without it ``--ray`` says how to install it.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from dataclasses import replace
from typing import Any, Iterator

from .errors import UsageError
from .pipeline import Result, Run, RunOptions
from .types import FrameResult


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError("--ray needs Ray Data: pip install 'qplug[ray]' (or pip install 'ray[data]')") from None
    return ray


class _Scorer:
    """A Ray actor: one qplug pipeline, built once, scoring the inputs of each batch it is handed."""

    def __init__(self, options: RunOptions) -> None:
        from .plugins import load_host

        self.run = Run([], options, load_host())

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        out = []
        for path in batch["path"]:
            items = []
            for item in self.run.iterate_paths([str(path)]):
                items.append(replace(item, frame=None) if isinstance(item, FrameResult) else item)
            out.append(pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL))
        return {"results": out}


class RayPool:
    """Iterate it like a :class:`Run`: each input's frames, then its summary, as Ray finishes them.

    :param run: the run as set up in this process (options checked, inputs expanded).
    :param address: a Ray cluster's address, or None/"local" for a local Ray instance.
    :param workers: actors in the pool.
    :param num_gpus: GPUs per actor (for model-backed scorers on a GPU cluster).
    :param batch_size: inputs per Ray task.
    """

    def __init__(self, run: Run, address: str | None, workers: int, num_gpus: float = 0.0, batch_size: int = 8) -> None:
        self.run, self.address, self.workers, self.num_gpus = run, address, max(1, workers), num_gpus
        #: inputs per Ray task: several, because a task costs ~20 ms, more than scoring a small still
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[Result]:
        ray = _ray()
        started = time.perf_counter()
        paths = [item.path for item in self.run.inputs()]
        if not ray.is_initialized():
            local = self.address in (None, "", "local")
            ray.init(address=None if local else self.address, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True, configure_logging=False,
                     **({"num_cpus": max(self.workers, 1)} if local else {}))
        for name in ("ray", "ray.data"):  # qplug's stderr carries its own lines, not Ray's progress chatter
            logging.getLogger(name).setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        options = replace(self.run.options, progress=None, shard=None)
        blocks = max(1, -(-len(paths) // self.batch_size))
        dataset = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
        scored = dataset.map_batches(_Scorer, fn_constructor_args=(options,), batch_size=self.batch_size,
                                     concurrency=min(self.workers, max(1, len(paths))), num_gpus=self.num_gpus,
                                     num_cpus=1)
        try:
            for row in scored.iter_rows():
                for item in pickle.loads(row["results"]):
                    if not isinstance(item, FrameResult):
                        self.run.summary.sources.append(item)
                        self.run.summary.frames += item.frames if not item.resumed else 0
                    yield item
        finally:
            self.run.summary.wall_seconds = time.perf_counter() - started


def ray_workers(jobs: int) -> int:
    """Actors for ``--ray``: ``--jobs`` when given above 1, else the cores of this machine."""
    if jobs > 1:
        return jobs
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
