"""Feeding results to report writers: choosing formats, opening outputs safely, closing them honestly.

What this module guarantees, because a QC tool's report is what people act on:

- an output that is (or links to) one of the inputs is refused before anything is opened for writing;
- each output file is locked for the run, so two processes never interleave records in one file;
- non-streaming reports (JSON, CSV, HTML) are written to a temporary file beside the target and
  renamed into place only when complete, so an interrupted or failed run never leaves a truncated
  report nor destroys the previous one;
- a write or close that fails (disk full, unwritable path) becomes a run failure (exit 2) named in
  every report that could still be written, never a traceback and never a pass.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
from dataclasses import dataclass, replace
from typing import IO, Any, Iterable, Mapping

from .errors import QplugError, UsageError
from .registry import Catalog, WriterContext, WriterInfo, resolve
from .types import FrameResult, RunSummary, SourceSummary


@dataclass(frozen=True)
class Output:
    """One report to write: a path (None: standard output) and a format name (None: from the extension)."""

    path: str | None = None
    format: str | None = None


def choose_writer(output: Output, catalog: Catalog, default: str = "jsonl") -> WriterInfo:
    """The writer for ``output``: its ``format``, else its extension, else ``default`` for standard output.

    A file whose extension no writer claims is refused rather than silently written as JSON Lines.
    """
    if output.format:
        return catalog.writer(output.format)
    if output.path:
        lower = output.path.lower()
        for info in catalog.writers.values():
            if any(lower.endswith(ext) for ext in info.extensions):
                return info
        known = " ".join(sorted(ext for info in catalog.writers.values() for ext in info.extensions))
        raise UsageError(f"{output.path}: no report format has this extension (known: {known}); "
                         f"rename it or give --format")
    return catalog.writer(default)


def refuse_inputs_as_outputs(outputs: Iterable[Output], inputs: Iterable[str]) -> None:
    """Raise :class:`UsageError` when an output is one of the inputs, through links or hard links.

    Checked before any output is opened: opening for writing would already have destroyed the input.
    """
    targets: dict[tuple[int, int], str] = {}
    for output in outputs:
        if output.path is None:
            continue
        try:
            info = os.stat(output.path)
        except OSError:
            continue  # does not exist yet, so it cannot be an input
        targets[(info.st_dev, info.st_ino)] = output.path
    if not targets:
        return
    for path in inputs:
        try:
            info = os.stat(path)
        except OSError:
            continue
        clash = targets.get((info.st_dev, info.st_ino))
        if clash is not None:
            raise UsageError(f"--out {clash} is the input {path}: refusing to overwrite an input")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _lock_holder(fd: int) -> int | None:
    """The pid holding a lock on the file behind ``fd``, from Linux's /proc/locks (None elsewhere)."""
    try:
        inode = os.fstat(fd).st_ino
        with open("/proc/locks", encoding="ascii", errors="replace") as stream:
            for line in stream:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" ("->" marks a blocked waiter)
                if "->" in fields or len(fields) < 6:
                    continue
                if fields[5].rsplit(":", 1)[-1] == str(inode):
                    return int(fields[4])
    except (OSError, ValueError):
        return None
    return None


def _lock(fd: int, path: str) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks here, the rename still protects
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(fd)
        who = f" (pid {holder})" if holder is not None else ""
        raise UsageError(f"{path}: another qplug process{who} is writing this report; "
                         f"wait for it or choose another --out") from None
    except OSError:
        pass  # a file system without locks (some network mounts): go on unlocked


class _OpenOutput:
    """One output while the run lasts: its writer, the stream it writes, and how to finish the file."""

    def __init__(self, output: Output, info: WriterInfo) -> None:
        self.output, self.info = output, info
        self.stream: IO[Any] | None = None
        self.writer: Any = None
        self.owned = False
        self.lock_fd: int | None = None
        self.created = False  # the lock created the target, which must not stay behind empty
        self.temporary: str | None = None  # written here, renamed onto the target when complete
        self.failed: str | None = None

    @property
    def where(self) -> str:
        return self.output.path or "standard output"

    def open(self, append: bool) -> None:
        path = self.output.path
        if path is None:
            self.stream = sys.stdout.buffer if self.info.binary else sys.stdout
            return
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise UsageError(f"{path}: the folder {directory} does not exist")
        try:
            existing = os.stat(path)
        except FileNotFoundError:
            existing = None
        except OSError as exc:
            raise UsageError(f"{path}: cannot write the report: {exc.strerror or exc}") from exc
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise UsageError(f"{path}: is a folder, not a report file")
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            # /dev/stdout, a FIFO, /dev/full: written straight through, nothing to lock or rename.
            self.stream, self.owned = self._open_path(path, "a" if append else "w"), True
            return
        try:
            self.lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise UsageError(f"{path}: cannot write the report: {exc.strerror or exc}") from exc
        self.created = existing is None
        _lock(self.lock_fd, path)
        if self.info.streaming:
            # Streaming reports are read while they grow (tail -f, --resume): written in place.
            if not append:
                os.ftruncate(self.lock_fd, 0)
            self.stream, self.owned = self._open_path(path, "a"), True
            return
        fd = self._create_temporary(directory, os.path.basename(path))
        os.fchmod(fd, (existing.st_mode & 0o777) if existing is not None else 0o666 & ~_umask())
        self.stream = os.fdopen(fd, "wb" if self.info.binary else "w",
                                **({} if self.info.binary else {"encoding": "utf-8", "newline": ""}))
        self.owned = True

    def _create_temporary(self, directory: str, name: str) -> int:
        """Create ``.NAME.RANDOM.part`` beside the target and return its descriptor.

        The name is chosen and remembered before the file exists, so a Ctrl-C that lands between
        creating it and returning (as one inside ``tempfile.mkstemp`` could) still has it removed.
        """
        for _ in range(100):
            self.temporary = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.part")
            try:
                return os.open(self.temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            except FileExistsError:
                continue
        raise UsageError(f"{os.path.join(directory, name)}: cannot create a temporary file beside it")

    def _open_path(self, path: str, mode: str) -> IO[Any]:
        try:
            if self.info.binary:
                return open(path, mode + "b")
            return open(path, mode, encoding="utf-8", newline="")
        except OSError as exc:
            raise UsageError(f"{path}: cannot write the report: {exc.strerror or exc}") from exc

    def finish(self, complete: bool) -> str | None:
        """Close the stream; rename a temporary file into place when ``complete``. Returns a failure or None."""
        failure = None
        if self.stream is not None:
            try:
                if self.owned:
                    self.stream.close()
                else:
                    self.stream.flush()
            except BrokenPipeError:
                raise
            except OSError as exc:
                failure = f"{self.where}: closing the {self.info.name} report failed: {exc.strerror or exc}"
            self.stream = None
        if self.temporary is not None:
            keep = complete and failure is None and self.failed is None
            try:
                if keep:
                    os.replace(self.temporary, self.output.path or "")
                else:
                    os.unlink(self.temporary)
            except FileNotFoundError:
                if keep:  # the temporary vanished under us: the report is not in place
                    failure = failure or f"{self.where}: the {self.info.name} report's temporary file disappeared"
            except OSError as exc:
                failure = failure or f"{self.where}: could not put the {self.info.name} report in place: {exc.strerror or exc}"
            self.temporary = None
            if keep:
                self.created = False
        if self.lock_fd is not None:
            if self.created and self.output.path and os.fstat(self.lock_fd).st_size == 0:
                try:  # the lock made this empty file; no report was completed, so leave no trace
                    if os.path.samestat(os.fstat(self.lock_fd), os.stat(self.output.path)):
                        os.unlink(self.output.path)
                except OSError:
                    pass
            os.close(self.lock_fd)
            self.lock_fd = None
        return failure


class Reporter:
    """Opens every output, hands each result to each writer, and closes them in order.

    :param outputs: the reports to write.
    :param catalog: where writers are looked up.
    :param context: the run's scorers and title, handed to every writer's factory.
    :param resume: append to resumable outputs instead of starting them afresh.
    :param inputs: the input files of the run; an output that is one of them is refused.
    :param writer_options: options by writer name (``{"html": {"thumbnails": 12}}``), handed to that
        writer only, in its context's ``options``.
    """

    def __init__(self, outputs: Iterable[Output], catalog: Catalog, context: WriterContext | None = None,
                 resume: bool = False, default_format: str = "jsonl", inputs: Iterable[str] = (),
                 writer_options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        context = context or WriterContext()
        writer_options = writer_options or {}
        outputs = list(outputs)
        chosen = [(o, choose_writer(o, catalog, default_format)) for o in outputs]
        if sum(1 for o, _ in chosen if o.path is None) > 1:
            raise UsageError("only one report can go to standard output")
        paths = [os.path.abspath(o.path) for o in outputs if o.path is not None]
        if len(set(paths)) != len(paths):
            raise UsageError("the same --out file is given twice")
        refuse_inputs_as_outputs(outputs, inputs)
        self.failures: list[str] = []
        self._open: list[_OpenOutput] = []
        try:
            for output, info in chosen:
                out = _OpenOutput(output, info)
                self._open.append(out)
                out.open(append=resume and info.resumable and output.path is not None)
                try:
                    own = replace(context, options=dict(writer_options.get(info.name, {})))
                    out.writer = resolve(info.factory)(out.stream, own)
                except QplugError:
                    raise
                except Exception as exc:
                    raise QplugError(f"{out.where}: the {info.name} writer could not start: "
                                     f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            self.abandon()
            raise

    def frame(self, result: FrameResult) -> None:
        for out in self._open:
            self._guard(out, out.writer.write_frame, result)

    def source(self, summary: SourceSummary) -> None:
        for out in self._open:
            if summary.resumed and out.info.resumable:
                continue  # its record is already in the resumed file
            self._guard(out, out.writer.write_source, summary)

    @property
    def all_failed(self) -> bool:
        return bool(self._open) and all(out.failed for out in self._open)

    def close(self, run: RunSummary) -> None:
        """Finish every report. Failures are added to ``run.failures`` (exit code 2), never raised.

        Reports renamed into place go first, streaming ones last, so the last record a JSON Lines
        reader sees already counts any report that could not be completed.
        """
        try:
            for out in self._open:  # flush first: a full disk shows up before any run record is written
                if out.failed is None and out.stream is not None:
                    self._guard(out, out.stream.flush)
            run.failures.extend(f for f in self.failures if f not in run.failures)
            for out in sorted(self._open, key=lambda o: o.info.streaming):
                if out.failed is None:
                    self._guard(out, out.writer.close, run)
                failure = out.finish(complete=out.failed is None)
                for message in (out.failed, failure):
                    if message and message not in run.failures:
                        run.failures.append(message)
        finally:
            for out in self._open:
                if out.stream is not None or out.lock_fd is not None or out.temporary is not None:
                    out.finish(complete=False)
            self._open = []

    def abandon(self) -> None:
        """Close every output without completing it: earlier reports stay as they were."""
        for out in self._open:
            out.finish(complete=False)
        self._open = []

    def _guard(self, out: _OpenOutput, call: Any, *args: Any) -> None:
        """Run one writer call; a failure disables that output and is remembered, the run goes on."""
        if out.failed is not None:
            return
        try:
            call(*args)
        except BrokenPipeError:
            raise
        except OSError as exc:
            out.failed = f"{out.where}: writing the {out.info.name} report failed: {exc.strerror or exc}"
            self.failures.append(out.failed)
        except Exception as exc:  # a writer plugin's bug costs that report only
            detail = str(exc) if isinstance(exc, QplugError) else f"{type(exc).__name__}: {exc}"
            out.failed = f"{out.where}: the {out.info.name} report failed: {detail}"
            self.failures.append(out.failed)
