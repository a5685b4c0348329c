"""The ``qplug`` command. Exit codes: 0 pass, 1 a quality gate failed, 2 an input or the setup failed.

User errors print one line and no traceback; ``QPLUG_DEBUG=1`` shows the traceback anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any, Sequence

from . import __version__
from .errors import QplugError, Terminated, UsageError

EXIT_OK, EXIT_GATE, EXIT_ERROR = 0, 1, 2


def _time(text: str) -> float:
    from .timecode import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least {least}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    return value


def _shard(text: str) -> tuple[int, int]:
    index, slash, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N (for example 0/4)") from None
    if not slash or not 0 <= shard[0] < shard[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= I < N in I/N (the shards of 4 are 0/4 ... 3/4)")
    return shard


def _read_list(name: str) -> list[str]:
    """Paths from a list file, one per line (bytes kept exact: a name need not be UTF-8)."""
    try:
        if name == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(name, "rb") as stream:
                data = stream.read()
    except OSError as exc:
        raise UsageError(f"--from-list {name}: {exc.strerror or exc}") from None
    return [os.fsdecode(line.rstrip(b"\r")) for line in data.split(b"\n") if line.strip()]


def _component_option(text: str) -> tuple[str, str, Any]:
    """``NAME.KEY=VALUE``: an option for one scorer's, describer's or asker's factory. VALUE is read as
    JSON when it parses (3, 0.5, true, "x", [1, 2]) and kept as text otherwise."""
    target, equals, raw = text.partition("=")
    name, dot, key = target.rpartition(".")
    if not equals or not dot or not name or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME.KEY=VALUE (for example qalign.windows=3)")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name, key, value


def _common_options() -> argparse.ArgumentParser:
    """Options shared by score, describe and ask: inputs, sampling, model, reports."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("paths", nargs="*", metavar="PATH",
                        help="image or video file, directory (searched recursively) or glob pattern")
    common.add_argument("--from-list", metavar="FILE", help="also read inputs from FILE, one path per line "
                        "(- for standard input), so that a million paths never pass through the command line")
    common.add_argument("--shard", type=_shard, metavar="I/N", help="take only shard I of N (0 <= I < N) of "
                        "the inputs, chosen by a hash of each path: N jobs with I = 0..N-1 cover every input once")
    sampling = common.add_mutually_exclusive_group()
    sampling.add_argument("--fps", type=_positive_float, metavar="N", help="sample N frames per second of video")
    sampling.add_argument("--every", type=_positive_int, metavar="N", help="take every Nth frame")
    common.add_argument("--start", type=_time, metavar="T", help="start time (seconds or HH:MM:SS.mmm)")
    common.add_argument("--end", type=_time, metavar="T", help="end time (seconds or HH:MM:SS.mmm)")
    common.add_argument("--max-frames", type=_positive_int, metavar="N", help="at most N frames per input")
    common.add_argument("--max-side", type=_positive_int, metavar="PX", help="downscale so the longer side is at most PX")
    common.add_argument("--batch-size", type=_positive_int, metavar="N", help="frames per batch")
    common.add_argument("--max-frame-errors", type=_non_negative_int, default=0, metavar="N",
                        help="frames a scorer, describer or asker may fail on before the run exits 2 (default 0: "
                        "any frame that could not be scored is an error of the run)")
    common.add_argument("--jobs", "-j", type=_positive_int, default=1, metavar="N",
                        help="score inputs in N worker processes (each loads its own model); same results as 1")
    common.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="score inputs on a Ray cluster (no ADDRESS: a local Ray instance) with --jobs actors "
                        "(default: one per core); needs pip install 'qplug[ray]'")
    common.add_argument("--ray-gpus", type=float, default=0.0, metavar="N", help="GPUs per Ray actor (e.g. 1)")
    common.add_argument("--model", metavar="DIR", help="model directory for model-backed components "
                        "(default: $QPLUG_MODEL, else the model shipped with qplug)")
    common.add_argument("--adapter", metavar="DIR", help="LoRA adapter directory applied on top of the model")
    common.add_argument("--device", metavar="DEV", help="cpu, cuda, cuda:1, mps (default: the best available)")
    common.add_argument("--endpoint", metavar="URL", help="run model-backed components on this OpenAI-compatible "
                        "server (qplug serve, vLLM) instead of loading a model here (default: $QPLUG_ENDPOINT)")
    common.add_argument("--format", "-f", metavar="WRITER", help="report writer for every --out, or for the report "
                        "on standard output (jsonl, json, csv, html; see `qplug writers`); without it each --out "
                        "takes the writer of its extension, and an unknown extension is refused")
    common.add_argument("--out", "-o", action="append", default=[], metavar="FILE",
                        help="write a report to FILE, format from its extension (repeatable)")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary on stderr")
    common.add_argument("--option", action="append", default=[], type=_component_option, metavar="NAME.KEY=VALUE",
                        help="an option for one component's factory, e.g. qalign.windows=3 (repeatable; each "
                        "plugin's docs list its options)")
    return common


def build_parser(converter_options: dict[str, str] | None = None,
                 plugin_commands: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    """The command line. ``converter_options`` (name -> help) are the options every registered
    converter accepts; :func:`main` reads them from the plugins only for ``qplug convert``.
    ``plugin_commands`` are the :class:`~qplug.registry.CommandInfo` plugins registered."""
    parser = argparse.ArgumentParser(
        prog="qplug", description="Frame-level image and video quality: score frames, find bad stretches, gate pipelines.",
        epilog="Exit codes: 0 pass, 1 a --fail-under/--fail-over gate failed, 2 an input or a report could not be "
               "read or written (or the command was misused), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).")
    parser.add_argument("--version", action="version", version=f"qplug {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common_options()

    score = commands.add_parser("score", parents=[common], help="score images and videos", description=(
        "Score every frame (or a sample) of each input. Without --out the JSON Lines report goes to "
        "standard output and a summary to standard error."))
    score.add_argument("--scorer", "-s", action="append", dest="scorers", metavar="NAME",
                       help="scorer to run (repeatable; default: the default scorers, see `qplug scorers`)")
    score.add_argument("--describer", action="append", dest="describers", default=[], metavar="NAME",
                       help="also describe each frame with this describer (repeatable)")
    score.add_argument("--fail-under", action="append", default=[], metavar="NAME[.POOL]=VALUE",
                       help="fail (exit 1) when a source's pooled score is under VALUE (pool: mean, min, p5, p10...)")
    score.add_argument("--fail-over", action="append", default=[], metavar="NAME[.POOL]=VALUE",
                       help="fail (exit 1) when a source's pooled score is over VALUE")
    score.add_argument("--reference", metavar="REF", help="the source each input is compared with by "
                       "full-reference scorers (psnr, ssim, vmaf): a file, or a template such as "
                       "'masters/{stem}.mov' ({stem}, {name}, {ext}, {dir}, {path} of each input)")
    score.add_argument("--fail-on-event", action="append", default=[], metavar="NAME[=SECONDS]",
                       help="fail (exit 1) a source with a NAME event (a scorer's, or decode_gap) lasting at "
                       "least SECONDS (default: any)")
    score.add_argument("--event", action="append", default=[], metavar="NAME=THRESHOLD[:SECONDS]",
                       help="report stretches where NAME is past THRESHOLD for at least SECONDS")
    score.add_argument("--no-events", action="store_true", help="do not detect events")
    score.add_argument("--resume", action="store_true",
                       help="skip what the JSON Lines report given with --out already holds, and append to it")
    score.set_defaults(handler=_cmd_score)

    describe = commands.add_parser("describe", parents=[common], help="describe the low-level quality of frames",
                                   description="Write a description of each frame's low-level quality.")
    describe.add_argument("--describer", action="append", dest="describers", metavar="NAME",
                          help="describer to use (default: vlm)")
    describe.set_defaults(handler=_cmd_describe)

    ask = commands.add_parser("ask", parents=[common], help="ask a question about each frame",
                              description="Ask a question about each frame, e.g. qplug ask img.jpg "
                              "\"Is this image blurry?\" --choices yes no")
    ask.add_argument("question", help="the question (give it after the paths)")
    ask.add_argument("--choices", nargs="+", metavar="OPTION", help="the answer must be one of these options")
    ask.add_argument("--asker", action="append", dest="askers", metavar="NAME", help="asker to use (default: vlm)")
    ask.set_defaults(handler=_cmd_ask)

    convert = commands.add_parser(
        "convert", help="turn a downloaded model release into a directory qplug loads",
        description="Convert a model release as published (e.g. an original-layout LLaVA) into a directory "
        "that --model loads. `qplug converters` lists the converters and their options.",
        epilog="Each converter has its own options, e.g. qplug convert llava SRC --vision-tower CLIP_DIR OUT")
    convert.add_argument("converter", metavar="NAME", help="converter name (see `qplug converters`)")
    convert.add_argument("source", metavar="SOURCE", help="the release as downloaded (a directory or file)")
    convert.add_argument("output", metavar="OUTPUT", help="the directory to write (must not exist yet)")
    for name, helptext in sorted((converter_options or {}).items()):
        convert.add_argument(f"--{name.replace('_', '-')}", dest=f"option_{name}", metavar="VALUE", help=helptext)
    convert.set_defaults(handler=_cmd_convert)

    for info in sorted((plugin_commands or {}).values(), key=lambda i: i.name):
        _add_plugin_command(commands, info)

    plugins = commands.add_parser("plugins", help="list loaded plugins as JSON")
    plugins.set_defaults(handler=_cmd_plugins)
    for name, helptext in (("scorers", "list scorers"), ("sources", "list sources"), ("describers", "list describers"),
                           ("askers", "list askers"), ("writers", "list report writers (the values of --format)"),
                           ("converters", "list model converters (qplug convert)")):
        # "formats" was this command's first name; kept so scripts written against it still work.
        sub = commands.add_parser(name, help=helptext, aliases=["formats"] if name == "writers" else [])
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
        sub.set_defaults(handler=_cmd_listing, kind=name)
    return parser


def _warn_problems(catalog: Any) -> None:
    """Every plugin that failed to load or register, one line each on stderr, on every command."""
    for problem in catalog.problems:
        if problem.startswith("error: "):
            print(f"qplug: {problem}", file=sys.stderr)
        else:
            print(f"qplug: warning: {problem}", file=sys.stderr)


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import get_host

    host = get_host()
    catalog = host.catalog()
    payload = [record.to_dict() for record in host.plugins()]
    print(json.dumps(payload, indent=2))
    _warn_problems(catalog)
    return EXIT_OK


def _cmd_listing(args: argparse.Namespace) -> int:
    from .plugins import get_host

    host = get_host()
    catalog = host.catalog()
    table = {"scorers": catalog.scorers, "sources": catalog.sources, "describers": catalog.describers,
             "askers": catalog.askers, "writers": catalog.writers, "converters": catalog.converters}[args.kind]
    owner_kind = args.kind
    rows = [dict(info.to_dict(), plugin=catalog.owners.get((owner_kind, name))) for name, info in sorted(table.items())]
    if args.json:
        print(json.dumps(rows, indent=2))
        _warn_problems(catalog)
        return EXIT_OK
    width = max([len(row["name"]) for row in rows] + [12]) + 2  # long names must not break the columns
    for row in rows:
        detail = ""
        if args.kind == "scorers":
            low, high = row["range"]
            detail = f"[{low:g}, {high:g}] {catalog.scorers[row['name']].direction}"
            if row["default"]:
                detail += ", default"
        elif args.kind in ("sources", "writers"):
            detail = " ".join(row["extensions"])
        elif args.kind == "converters":
            detail = " ".join(f"--{name.replace('_', '-')}" + ("" if name in row["required"] else "?")
                              for name in row["options"])
        print(f"{row['name']:<{width}}{row['description']}" + (f"  ({detail})" if detail else "") + f"  [{row['plugin']}]")
    _warn_problems(catalog)
    return EXIT_OK


def _parse_events(specs: Sequence[str]) -> dict[str, Any]:
    from .events import EventRule

    rules: dict[str, Any] = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        threshold_text, _, seconds_text = rest.partition(":")
        try:
            if not sep or not name:
                raise ValueError
            rules[name] = EventRule(float(threshold_text), float(seconds_text) if seconds_text else 0.0)
        except ValueError:
            raise UsageError(f"--event {spec!r} must look like NAME=THRESHOLD or NAME=THRESHOLD:SECONDS") from None
    return rules


def _run_options(args: argparse.Namespace, **fields: Any) -> Any:
    from .pipeline import RunOptions
    from .types import Sampling

    try:
        sampling = Sampling(fps=args.fps, every=args.every, start=args.start, end=args.end,
                            max_frames=args.max_frames, max_side=args.max_side)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    model_options = {key: value for key, value in (("model", args.model), ("adapter", args.adapter),
                                                   ("device", args.device), ("endpoint", args.endpoint)) if value}
    if args.endpoint and (args.model or args.adapter or args.device):
        raise UsageError("--endpoint runs the model on the server: drop --model, --adapter and --device")
    component_options: dict[str, dict[str, Any]] = {}
    for name, key, value in args.option:
        component_options.setdefault(name, {})[key] = value
    return RunOptions(sampling=sampling, batch_size=args.batch_size, model_options=model_options,
                      scorer_options=component_options, shard=args.shard,
                      max_frame_errors=args.max_frame_errors, **fields)


_STATUS = {"passed": "PASS", "gate_failed": "FAIL (quality gate)", "errors": "ERRORS (some inputs or frames could not be scored)",
           "failed": "FAILED (see the errors above)", "interrupted": "INTERRUPTED", "terminated": "TERMINATED"}


def _execute(args: argparse.Namespace, options: Any, outputs: list[Any], on_frame: Any = None) -> int:
    """Run, feed every report, print the human lines; return the exit code.

    However the run ends (finished, a gate failed, Ctrl-C, SIGTERM, a setup error, a report that
    cannot be written), the reports are closed with ``RunSummary`` saying so, and the exit code
    matches what they say.
    """
    from .pipeline import Run
    from .plugins import get_host
    from .progress import Progress
    from .registry import WriterContext
    from .reporting import Reporter
    from .resume import prepare_resume
    from .types import FrameResult

    host = get_host()
    catalog = host.catalog()
    _warn_problems(catalog)
    writer_options = _take_writer_options(options.scorer_options, outputs, catalog)
    paths = list(args.paths) + (_read_list(args.from_list) if args.from_list else [])
    if not paths:
        raise UsageError("no input: give at least one PATH, or --from-list FILE")
    run = Run(paths, options, host)
    resume = bool(getattr(args, "resume", False))
    context = WriterContext(scorers={s.name: s for s in run.scorer_infos}, title="qplug report")
    reporter = Reporter(outputs, catalog, context, resume=resume, inputs=[item.path for item in run.inputs()],
                        writer_options=writer_options)
    if resume:
        try:  # read and repair the report only once this process holds its lock
            options.resume = prepare_resume(outputs, catalog, [s.name for s in run.scorer_infos])
        except BaseException:
            reporter.abandon()
            raise
    progress = Progress(sys.stderr) if not args.quiet and sys.stderr.isatty() else None
    if progress is not None:
        options.progress = progress.update
    summary = run.summary
    try:
        for item in _results(run, args):
            if isinstance(item, FrameResult):
                reporter.frame(item)
                if on_frame is not None:
                    if progress is not None:
                        progress.clear()
                    on_frame(item)
            else:
                reporter.source(item)
                if progress is not None:
                    progress.clear()
                _print_source(item, args.quiet)
            if reporter.all_failed:
                summary.stopped = "failed"  # nothing can be recorded any more: stop scoring
                break
    except KeyboardInterrupt:
        summary.stopped = "interrupted"
    except Terminated:
        summary.stopped = "terminated"
    except QplugError as exc:
        summary.failures.append(str(exc))
    finally:
        # From here the reports are being closed with this ending: a late Ctrl-C or SIGTERM must
        # neither leave them half written nor change the exit code they state.
        held = _hold_signals()
        if progress is not None:
            progress.clear()
        reporter.close(summary)
    try:
        for failure in summary.failures:
            print(f"qplug: error: {failure}", file=sys.stderr)
        if summary.stopped in ("interrupted", "terminated"):
            print(f"qplug: {summary.stopped}; the reports cover what was scored before", file=sys.stderr)
        if not args.quiet:
            print(f"qplug: {len(summary.sources)} input(s), {summary.frames} frame(s) in "
                  f"{summary.wall_seconds:.1f} s: {_STATUS[summary.outcome]}", file=sys.stderr)
        return summary.exit_code
    finally:
        if not _AS_PROGRAM:  # the qplug program exits with these signals still held
            _release_signals(held)


def _results(run: Any, args: argparse.Namespace) -> Any:
    """Where the run's results come from: this process, N worker processes, or a Ray cluster."""
    from .parallel import parallel_results

    if getattr(args, "ray", None):
        from .ray_backend import RayPool, ray_workers

        return RayPool(run, args.ray, ray_workers(args.jobs), args.ray_gpus)
    return parallel_results(run, args.jobs)


def _take_writer_options(component_options: dict[str, Any], outputs: list[Any], catalog: Any) -> dict[str, Any]:
    """Move ``--option WRITER.KEY=VALUE`` entries for the writers of this run's outputs out of the
    component options (``writer:NAME`` when a scorer has the same name)."""
    from .reporting import choose_writer

    in_use = {choose_writer(output, catalog).name for output in outputs}
    components = set(catalog.scorers) | set(catalog.describers) | set(catalog.askers)
    taken: dict[str, Any] = {}
    for name in list(component_options):
        kind, colon, bare = name.partition(":")
        writer = bare if colon and kind == "writer" else (name if not colon and name not in components else None)
        if writer is not None and writer in in_use:
            taken[writer] = component_options.pop(name)
    return taken


def _cmd_score(args: argparse.Namespace) -> int:
    from .gates import EventGate, Gate

    gates = [Gate.parse(t, under=True) for t in args.fail_under] + [Gate.parse(t, under=False) for t in args.fail_over]
    event_gates = [EventGate.parse(t) for t in args.fail_on_event]
    if event_gates and args.no_events:
        raise UsageError("--fail-on-event needs events: drop --no-events")
    events = {} if args.no_events else _parse_events(args.event)
    options = _run_options(args, scorers=args.scorers, describers=args.describers, gates=gates, events=events,
                           event_gates=event_gates, detect_events=not args.no_events, reference=args.reference)
    return _execute(args, options, _outputs(args, default_to_stdout=True))


def _outputs(args: argparse.Namespace, default_to_stdout: bool = False) -> list[Any]:
    from .reporting import Output

    outputs = [Output(path, args.format) for path in args.out]
    return outputs or ([Output(None, args.format)] if default_to_stdout else [])


_BUILT_IN_COMMANDS = {"score", "describe", "ask", "convert", "plugins", "scorers", "sources", "describers",
                      "askers", "writers", "formats", "converters"}


def _add_plugin_command(commands: Any, info: Any) -> None:
    """A plugin's sub-command; a broken one is reported and left out, never fatal to the others."""
    from .registry import resolve

    if info.name in _BUILT_IN_COMMANDS:
        print(f"qplug: warning: a plugin's command {info.name!r} would hide qplug's own; ignored", file=sys.stderr)
        return
    parser = commands.add_parser(info.name, help=info.description, description=info.description)
    try:
        handler = resolve(info.setup)(parser)
    except Exception as exc:
        print(f"qplug: warning: command {info.name!r} could not be set up: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return
    parser.set_defaults(handler=handler)


def _plugin_commands() -> dict[str, Any]:
    from .plugins import get_host

    return dict(get_host().catalog().commands)


def _converter_options() -> dict[str, str]:
    """Every option any registered converter takes, for ``qplug convert``'s parser."""
    from .plugins import get_host

    options: dict[str, str] = {}
    for info in get_host().catalog().converters.values():
        for name, helptext in info.options.items():
            options.setdefault(name, f"{helptext} ({info.name})")
    return options


def _cmd_convert(args: argparse.Namespace) -> int:
    """Parse the converter's own options from what follows OUTPUT, then run it."""
    from .plugins import get_host
    from .registry import resolve

    catalog = get_host().catalog()
    _warn_problems(catalog)
    info = catalog.converter(args.converter)
    given = {key[len("option_"):]: value for key, value in vars(args).items()
             if key.startswith("option_") and value is not None}
    foreign = sorted(set(given) - set(info.options))
    if foreign:
        raise UsageError(f"convert {info.name}: it takes no " + ", ".join(f"--{n.replace('_', '-')}" for n in foreign)
                         + (f" (its options: {', '.join('--' + n.replace('_', '-') for n in info.options)})"
                            if info.options else ""))
    missing = [name for name in info.required if name not in given]
    if missing:
        raise UsageError(f"convert {info.name} needs " + ", ".join(f"--{n.replace('_', '-')}" for n in missing))
    options = given
    if os.path.lexists(args.output):
        raise UsageError(f"{args.output}: already exists; give a new directory to write the converted model to")
    if not os.path.exists(args.source):
        raise UsageError(f"{args.source}: no such file or directory")
    converter = resolve(info.factory)()
    message = converter.convert(args.source, args.output, **{k: v for k, v in options.items() if v is not None})
    print(f"qplug: {message}", file=sys.stderr)
    return EXIT_OK


def _frame_label(result: Any) -> str:
    where = result.timecode or (f"frame {result.index}" if result.pts is not None else "")
    return f"{result.source_id}" + (f" [{where}]" if where else "")


def _cmd_describe(args: argparse.Namespace) -> int:
    options = _run_options(args, scorers=[], describers=args.describers or ["vlm"])

    def show(result: Any) -> None:
        for name, text in result.descriptions.items():
            print(f"{_frame_label(result)}: {text}", flush=True)

    return _execute(args, options, _outputs(args), on_frame=show)


def _cmd_ask(args: argparse.Namespace) -> int:
    options = _run_options(args, scorers=[], askers=args.askers or ["vlm"], question=args.question,
                           choices=args.choices)

    def show(result: Any) -> None:
        for name, answer in result.answers.items():
            probability = (answer.get("probabilities") or {}).get(answer.get("choice"))
            suffix = f" (p={probability:.2f})" if probability is not None else ""
            print(f"{_frame_label(result)}: {answer['text']}{suffix}", flush=True)

    return _execute(args, options, _outputs(args), on_frame=show)


def _print_source(summary: Any, quiet: bool = False) -> None:
    """One human line per source on stderr (the report itself may be on stdout).

    Error lines are printed even when quiet: ``--quiet`` drops progress and summaries, never errors.
    """
    err = sys.stderr
    for error in summary.errors:
        where = f" frame {error.index}" if error.index is not None else ""
        print(f"qplug: error: {error.source_id}{where}: {error.reason}", file=err)
    if quiet or not summary.frames:
        return
    parts = []
    for name, pooled in summary.pooled.items():
        mean = pooled.get("mean")
        parts.append(f"{name} {mean:.3g}" if mean is not None else f"{name} -")
    line = f"{summary.source_id}: {summary.frames} frame(s)" + ("; mean " + ", ".join(parts) if parts else "")
    if summary.events:
        line += f"; {len(summary.events)} event(s): " + ", ".join(
            f"{e.scorer} {e.start_timecode}-{e.end_timecode}" for e in summary.events[:5])
        if len(summary.events) > 5:
            line += ", ..."
    for failure in summary.gate_failures:
        line += f"; FAIL {failure}"
    print(line, file=err)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Plugins' commands are looked up only when the first word is not one of qplug's own (or for
    # --help), so `qplug score` never pays for them.
    wanted = argv[:1] and argv[0] not in _BUILT_IN_COMMANDS
    parser = build_parser(_converter_options() if argv[:1] == ["convert"] else None,
                          _plugin_commands() if wanted else None)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_OK
    debug = os.environ.get("QPLUG_DEBUG", "") not in ("", "0")
    previous = _terminate_on_sigterm()
    try:
        return int(args.handler(args))
    except QplugError as exc:
        if debug:
            raise
        print(f"qplug: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("qplug: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("qplug: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:
        # `qplug score ... | head`: the reader left; nothing more to say.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def _terminate_on_sigterm() -> Any:
    """SIGTERM (a farm stopping a job) ends the run like Ctrl-C: reports closed and saying so."""
    if threading.current_thread() is not threading.main_thread():
        return None  # signal handlers can only be set from the main thread (main() called from a worker)
    return signal.signal(signal.SIGTERM, _raise_terminated)


def _redeliver_swallowed_interrupts() -> None:
    """Make a Ctrl-C or SIGTERM that lands inside a finalizer still end the run.

    Python raises KeyboardInterrupt wherever the signal arrives; when that is a weakref callback or a
    ``__del__`` (importlib's module-lock cleanup, during start-up, is the usual one) the exception cannot
    propagate: Python prints "Exception ignored ... Traceback" and the run goes on as if nothing had
    been asked. Here the swallowed interrupt is sent again a moment later from a helper thread (sent
    from the hook itself it would be raised inside the hook, and swallowed again), so it is raised once
    the finalizer has returned, in ordinary code, where :func:`main` turns it into "qplug: interrupted"
    and exit 130. Landing in another finalizer only sends it once more.
    """
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        kind = unraisable.exc_type
        if kind is not None and issubclass(kind, (KeyboardInterrupt, Terminated)):
            signum = signal.SIGINT if issubclass(kind, KeyboardInterrupt) else signal.SIGTERM
            resend = threading.Timer(0.01, os.kill, (os.getpid(), signum))
            resend.daemon = True
            resend.start()
        else:
            previous(unraisable)

    sys.unraisablehook = hook


def _hold_signals() -> dict[int, Any]:
    """Ignore SIGINT and SIGTERM (reports are being closed; the exit code already says how the run
    ended); return the handlers to put back with :func:`_release_signals`."""
    if threading.current_thread() is not threading.main_thread():
        return {}  # handlers can only be changed from the main thread
    return {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}


def _release_signals(held: dict[int, Any]) -> None:
    for sig, handler in held.items():
        signal.signal(sig, handler)


_AS_PROGRAM = False


def program() -> None:
    """The ``qplug`` command: :func:`main`, then exit with its code.

    Once a run's reports are closed, SIGINT and SIGTERM stay held until the process ends, so the
    exit status is the one the reports state.
    """
    global _AS_PROGRAM
    _AS_PROGRAM = True
    _terminate_on_sigterm()  # before anything heavy is imported: a signal at start-up is no traceback either
    _redeliver_swallowed_interrupts()
    try:
        code = main()
    except KeyboardInterrupt:
        print("qplug: interrupted", file=sys.stderr)
        code = 130
    except Terminated:
        print("qplug: terminated", file=sys.stderr)
        code = 143
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    program()
