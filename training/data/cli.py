"""``python -m qplug_training.data``: validate, convert and mix instruction datasets.

Exit codes follow the rest of qplug: 0 all good, 1 finished but something was skipped or failed
(the report says what), 2 usage or input error (message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from .converters.base import KINDS, ConversionError, Converter
from .feedback import load_feedback
from .mix import MixSource, mix
from .records import MARKERS, write_records
from .validate import Reason, load_records, validate_records

PROG = "python -m qplug_training.data"
EXIT_OK, EXIT_ISSUES, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """A problem with the command line or the inputs; printed without a traceback."""


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(f"kinds are a comma list of {', '.join(KINDS)}")
    return kinds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Validate, convert and mix Q-Instruct-style data.")
    p.add_argument("-v", "--verbose", action="store_true", help="log retries and progress")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check JSON / JSON Lines datasets and report what would be skipped")
    v.add_argument("paths", nargs="+", help="dataset files (.json array or .jsonl, optionally .gz)")
    v.add_argument("--image-root", help="folder image paths are relative to; enables the image-file check")
    v.add_argument("--verify-images", action="store_true", help="also open every image header (slower)")
    v.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    v.add_argument("--examples", type=_positive_int, default=5, help="examples kept per reason (default 5)")

    c = sub.add_parser("convert", help="turn Q-Pathway-style feedback (JSON Lines) into instruction records")
    c.add_argument("paths", nargs="+", help="feedback files: {id?, image, text, level?, attributes?} per line")
    c.add_argument("-o", "--output", required=True, help="records out: .json (array) or .jsonl")
    c.add_argument("--converter", choices=("rule", "openai"), default="rule")
    c.add_argument("--kinds", type=_kinds, default=KINDS, help=f"comma list (default {','.join(KINDS)})")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--yes-no", type=_positive_int, default=None, help="yes/no questions per feedback")
    c.add_argument("--what-how", type=_positive_int, default=None, help="what/how questions per feedback")
    c.add_argument("--image-root", help="skip feedback whose image is missing under this folder")
    c.add_argument("--marker", choices=sorted(MARKERS), default="llava", help="image marker written out")
    c.add_argument("--stats", help="write conversion statistics (JSON) here")
    o = c.add_argument_group("openai converter (key from QPLUG_OPENAI_API_KEY or OPENAI_API_KEY)")
    o.add_argument("--model", help="model name (default $QPLUG_OPENAI_MODEL)")
    o.add_argument("--base-url", help="endpoint, e.g. http://localhost:8000/v1 (default $QPLUG_OPENAI_BASE_URL, "
                                      "$OPENAI_BASE_URL, else OpenAI)")
    o.add_argument("--cache", help="SQLite response cache (default OUTPUT.cache.sqlite); re-runs resume from it")
    o.add_argument("--no-cache", action="store_true", help="do not read or write a cache")
    o.add_argument("--concurrency", type=_positive_int, default=None, help="requests in flight (default 4)")
    o.add_argument("--retries", type=_positive_int, default=None, help="retries per request (default 4)")
    o.add_argument("--timeout", type=float, default=None, help="seconds per request (default 60)")
    o.add_argument("--backoff", type=float, default=None, help="first retry wait, doubles each time (default 1)")
    o.add_argument("--give-up-after", type=_positive_int, default=None,
                   help="stop after N feedbacks in a row got no answer (default 20, 0 = never)")
    o.add_argument("--no-json-mode", action="store_true", help="do not send response_format=json_object")
    o.add_argument("--retry-rejected", action="store_true", help="re-ask when a cached answer was rejected")

    m = sub.add_parser("mix", help="sample several datasets by weight into one (the paper's 'mix' strategy)")
    m.add_argument("--source", nargs="+", action="append", required=True, metavar="ARG",
                   help="PATH WEIGHT [IMAGE_PREFIX]; repeat per source")
    m.add_argument("-o", "--output", required=True, help="records out: .json (array) or .jsonl")
    m.add_argument("--total", type=_positive_int, default=None,
                   help="records wanted; weights become shares (default: weights are repeat factors)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--replacement", action="store_true", help="independent draws instead of without replacement")
    m.add_argument("--no-shuffle", action="store_true", help="keep sources in order instead of shuffling")
    m.add_argument("--image-root", help="check image files under this folder (after prefixes are applied)")
    m.add_argument("--marker", choices=sorted(MARKERS), default="llava", help="image marker written out")
    m.add_argument("--report", help="write the mix report (JSON) here")
    return p


# ---------------------------------------------------------------------------- commands


def _need_files(paths: Sequence[str]) -> None:
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")


def cmd_validate(args: argparse.Namespace) -> int:
    _need_files(args.paths)
    from .validate import SkipReport

    records, report = load_records(args.paths, image_root=args.image_root, verify_images=args.verify_images,
                                   report=SkipReport(max_examples=args.examples))
    if args.json:
        print(report.to_json())
    else:
        print(report)
    if report.skipped.get(Reason.UNREADABLE_FILE.value):
        return EXIT_ERROR
    return EXIT_OK if report.ok else EXIT_ISSUES


def _make_converter(args: argparse.Namespace) -> Converter:
    if args.converter == "rule":
        from .converters.rule import RuleConverter

        extra = {k: v for k, v in (("yes_no", args.yes_no), ("what_how", args.what_how)) if v is not None}
        return RuleConverter(kinds=args.kinds, seed=args.seed, **extra)
    from .converters.openai_api import OpenAIConfig, OpenAIConverter

    config = OpenAIConfig.from_env(
        model=args.model, base_url=args.base_url, concurrency=args.concurrency, max_retries=args.retries,
        timeout=args.timeout, backoff=args.backoff, yes_no=args.yes_no, what_how=args.what_how,
        json_mode=False if args.no_json_mode else None, give_up_after=args.give_up_after,
    )
    cache = None if args.no_cache else (args.cache or f"{args.output}.cache.sqlite")
    return OpenAIConverter(config, cache=cache, kinds=args.kinds, seed=args.seed, retry_rejected=args.retry_rejected)


def cmd_convert(args: argparse.Namespace) -> int:
    _need_files(args.paths)
    converter = _make_converter(args)
    feedbacks, in_report = load_feedback(args.paths, image_root=args.image_root)
    if in_report.total_skipped:
        print(f"feedback input: {in_report}", file=sys.stderr)
    try:
        records = converter.convert_many(feedbacks)
    finally:
        close = getattr(converter, "close", None)
        if close is not None:
            close()
    # The converters' output goes through the same validator as any training file.
    records, out_report = validate_records(records)
    n = write_records(records, args.output, marker=MARKERS[args.marker])
    stats = converter.stats
    print(f"{args.output}: {n} records; {stats}", file=sys.stderr)
    if out_report.total_skipped:
        print(f"generated records dropped by the validator: {out_report}", file=sys.stderr)
    if args.stats:
        doc = {"conversion": stats.to_dict(), "input": in_report.to_dict(), "output": out_report.to_dict()}
        Path(args.stats).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    problems = stats.failed or in_report.total_skipped or out_report.total_skipped
    return EXIT_ISSUES if problems else EXIT_OK


def cmd_mix(args: argparse.Namespace) -> int:
    sources: list[MixSource] = []
    for spec in args.source:
        if len(spec) not in (2, 3):
            raise UsageError(f"--source takes PATH WEIGHT [IMAGE_PREFIX], got {' '.join(spec)!r}")
        try:
            weight = float(spec[1])
        except ValueError:
            raise UsageError(f"--source {spec[0]}: weight {spec[1]!r} is not a number") from None
        sources.append(MixSource(data=spec[0], weight=weight, image_prefix=spec[2] if len(spec) == 3 else ""))
    _need_files([s.data for s in sources])  # type: ignore[misc]
    try:
        records, report = mix(sources, seed=args.seed, total=args.total, replacement=args.replacement,
                              shuffle=not args.no_shuffle)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    problems = report.skips.total_skipped
    if args.image_root:
        # Images are checked after rebasing, against the root the training run will use.
        records, img_report = validate_records(records, image_root=args.image_root)
        problems += img_report.total_skipped
        if img_report.total_skipped:
            print(f"records dropped for their images: {img_report}", file=sys.stderr)
    n = write_records(records, args.output, marker=MARKERS[args.marker])
    print(f"{args.output}: {n} records\n{report}", file=sys.stderr)
    if report.skips.total_skipped:
        print(report.skips, file=sys.stderr)
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return EXIT_ISSUES if problems else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # The HTTP client logs every request at INFO; only our own summary matters by default.
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    handler = {"validate": cmd_validate, "convert": cmd_convert, "mix": cmd_mix}[args.command]
    try:
        return handler(args)
    except (UsageError, ConversionError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"{PROG} {args.command}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted (the response cache keeps what was done)", file=sys.stderr)
        return 130
