"""``--jobs N``: a run's inputs spread over N worker processes of this machine.

Each worker is a whole qplug pipeline (its own plugins, decoder thread and scorers, so a model is
loaded once per worker) fed one input at a time by this process, which alone writes the reports.
Every input is scored entirely inside one worker, so temporal scorers and per-source pooling see
exactly what a single process would: per-frame results equal ``--jobs 1``. Frames are held here
until their source's summary arrives and then passed on together, so a JSON Lines report keeps each
source's frames in one block, in whole lines.

A worker that dies (a crash, the OOM killer, SIGKILL) costs only the inputs it held: each is given
to another worker once more, and if that fails too it becomes an error record (exit 2) after the
frames that were scored. Ctrl-C or SIGTERM stops the workers and passes on every frame already
scored, so ``--resume`` continues from there.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Sequence

from .errors import QplugError
from .pipeline import Result, Run, RunOptions
from .types import ErrorRecord, FrameResult, SourceSummary

#: How often an idle parent looks for workers that died, in seconds.
_POLL = 0.2
#: Attempts per input: the first, and one more in another worker after a crash.
ATTEMPTS = 2


#: Environment variables that size the thread pools of numerical libraries (torch, OpenCV's OpenMP, BLAS).
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _worker(number: int, options: RunOptions, tasks: Any, results: Any, threads: int = 0) -> None:
    """A worker process: score the paths it is given, send every result back, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if threads:
        # N workers each sizing torch's pool to every core oversubscribe the machine N times over
        # (measured: --jobs 2 with the default model ran 2.5x slower than one process). Set before any
        # plugin imports torch; a value the user set wins.
        for name in _THREAD_VARIABLES:
            os.environ.setdefault(name, str(threads))
    from .plugins import load_host

    def paths() -> Iterator[str]:
        while True:
            results.put(("ready", number, None))
            path = tasks.get()
            if path is None:
                return
            results.put(("took", number, path))
            yield path

    try:
        run = Run([], options, load_host())
        for item in run.iterate_paths(paths()):
            if isinstance(item, FrameResult):
                item = replace(item, frame=None)  # pixels stay here; reports get scores
            results.put(("result", number, item))
    except QplugError as exc:  # a setup error (a model that does not load): the parent stops the run
        results.put(("failed", number, str(exc)))
    except BaseException as exc:
        results.put(("failed", number, f"worker {number}: {type(exc).__name__}: {exc}"))
    results.put(("done", number, None))


@dataclass
class _Worker:
    number: int
    process: Any
    tasks: Any
    ready: int = 0  # how many paths it has asked for and not yet been given
    held: list[str] = field(default_factory=list)  # taken, summary not yet received
    done: bool = False


class WorkerPool:
    """Iterate it like a :class:`Run`: ``FrameResult`` per frame (a source's frames together), then
    its ``SourceSummary``. ``run.summary`` is kept up to date as in a single-process run.

    :param run: the run as set up in this process (options checked, inputs expanded).
    :param jobs: number of worker processes (at most one per input).
    """

    def __init__(self, run: Run, jobs: int) -> None:
        self.run = run
        self.jobs = max(1, jobs)
        self._context = multiprocessing.get_context("spawn")  # no fork of a process with threads

    def __iter__(self) -> Iterator[Result]:
        started = time.perf_counter()
        pending = [item.path for item in self.run.inputs()]
        attempts: dict[str, int] = {}
        buffered: dict[str, list[FrameResult]] = {}
        results = self._context.Queue()
        workers: list[_Worker] = []
        options = replace(self.run.options, progress=None, shard=None)  # the shard was taken here
        try:
            for number in range(min(self.jobs, len(pending)) or 1):
                workers.append(self._start(number, options, results))
            failure: str | None = None
            while any(not w.done for w in workers):
                try:
                    kind, number, payload = results.get(timeout=_POLL)
                except queue.Empty:
                    yield from self._reap(workers, pending, attempts, buffered, options, results)
                    self._dispatch(workers, pending)
                    continue
                worker = workers[number]
                if kind == "ready":
                    worker.ready += 1
                elif kind == "took":
                    worker.held.append(payload)
                    buffered.setdefault(payload, [])
                elif kind == "result":
                    if isinstance(payload, FrameResult):
                        buffered.setdefault(payload.source_id, []).append(payload)
                        continue
                    yield from self._finish(payload, buffered)
                    if payload.source_id in worker.held:
                        worker.held.remove(payload.source_id)
                elif kind == "failed":
                    failure = failure or payload
                    pending.clear()
                elif kind == "done":
                    worker.done = True
                self._dispatch(workers, pending)
                if failure is not None and all(not w.held for w in workers):
                    break
            if failure is not None:
                raise QplugError(failure)
        except BaseException:
            # Ctrl-C, SIGTERM, a setup failure: what was scored still goes to the reports (for --resume).
            for frames in buffered.values():
                yield from frames
            buffered.clear()
            raise
        finally:
            for worker in workers:
                if worker.process.is_alive():
                    worker.process.terminate()
            for worker in workers:
                worker.process.join(timeout=10)
            results.close()
            self.run.summary.wall_seconds = time.perf_counter() - started

    def _start(self, number: int, options: RunOptions, results: Any) -> _Worker:
        tasks = self._context.Queue()
        threads = max(1, cpu_count() // self.jobs)
        process = self._context.Process(target=_worker, args=(number, options, tasks, results, threads),
                                        name=f"qplug-worker-{number}", daemon=True)
        process.start()
        return _Worker(number, process, tasks)

    def _dispatch(self, workers: list[_Worker], pending: list[str]) -> None:
        """Give each waiting worker its next path, or tell it to stop when there is none left."""
        for worker in workers:
            while worker.ready and not worker.done:
                worker.ready -= 1
                worker.tasks.put(pending.pop(0) if pending else None)

    def _finish(self, summary: SourceSummary, buffered: dict[str, list[FrameResult]]) -> Iterator[Result]:
        yield from buffered.pop(summary.source_id, [])
        self.run.summary.sources.append(summary)
        self.run.summary.frames += summary.frames if not summary.resumed else 0
        yield summary

    def _reap(self, workers: list[_Worker], pending: list[str], attempts: dict[str, int],
              buffered: dict[str, list[FrameResult]], options: RunOptions, results: Any) -> Iterator[Result]:
        """Find workers that died; retry what they held once, elsewhere; replace them while work remains."""
        for index, worker in enumerate(workers):
            if worker.done or worker.process.is_alive():
                continue
            worker.done = True
            code = worker.process.exitcode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            if worker.held:
                # Even when a retry succeeds, a worker that dies (out of memory, killed) is news for the
                # operator: the run says so and exits 2.
                self.run.summary.failures.append(
                    f"worker {worker.number} died ({how}) while scoring {', '.join(worker.held)}; "
                    + ("scored again by another worker" if all(attempts.get(p, 1) < ATTEMPTS for p in worker.held)
                       else "see the errors of those inputs"))
            for path in worker.held:
                attempts[path] = attempts.get(path, 1) + 1
                if attempts[path] <= ATTEMPTS:
                    buffered.pop(path, None)  # scored again from the start by another worker
                    pending.insert(0, path)
                    continue
                error = ErrorRecord(path, f"the worker scoring it died ({how}), twice", None, "read")
                frames = buffered.get(path, [])
                yield from self._finish(SourceSummary(source_id=path, media=None, frames=len(frames), pooled={},
                                                      errors=[error]), buffered)
            worker.held.clear()
            if pending:
                workers[index] = self._start(worker.number, options, results)


def parallel_results(run: Run, jobs: int) -> Sequence[Any] | Iterator[Result]:
    """``run`` itself for one job, else a :class:`WorkerPool` over ``jobs`` processes."""
    return run if jobs <= 1 else WorkerPool(run, jobs)


def cpu_count() -> int:
    """Cores this process may use (its affinity, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
