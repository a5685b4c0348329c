"""Reading and validating instruction datasets without ever crashing mid-epoch.

Every problem is turned into a *skip* with a reason, counted in a :class:`SkipReport` together
with a few examples (file and line, record id, detail). A bad line costs one record, not the run:
training jobs read millions of records and one stray line at 3 a.m. should not end them.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .records import (
    IMAGE_MARKER,
    ROLE_ALIASES,
    Record,
    Turn,
    count_markers,
    is_jsonl_name,
    normalise_marker,
    open_text,
)

PathLike = str | os.PathLike[str]


class Reason(str, Enum):
    """Why a record (or a whole file) was skipped."""

    UNREADABLE_FILE = "unreadable_file"
    BROKEN_JSON = "broken_json"
    NOT_AN_OBJECT = "not_an_object"
    BAD_FIELD = "bad_field"
    MISSING_CONVERSATIONS = "missing_conversations"
    BAD_TURN = "bad_turn"
    UNKNOWN_ROLE = "unknown_role"
    EMPTY_TURN = "empty_turn"
    NOT_STARTING_WITH_HUMAN = "not_starting_with_human"
    NOT_ALTERNATING = "not_alternating"
    ENDS_WITH_HUMAN = "ends_with_human"
    MARKER_WITHOUT_IMAGE = "marker_without_image"
    IMAGE_WITHOUT_MARKER = "image_without_marker"
    MULTIPLE_MARKERS = "multiple_markers"
    MARKER_IN_ANSWER = "marker_in_answer"
    MISSING_IMAGE_FILE = "missing_image_file"
    UNREADABLE_IMAGE = "unreadable_image"
    EMPTY_FEEDBACK = "empty_feedback"


#: One line per reason, used in printed reports and the docs.
REASON_TEXT: dict[str, str] = {
    "unreadable_file": "the file is missing, unreadable or not UTF-8 (counts files, not records)",
    "broken_json": "a JSON Lines line, or a whole JSON document, does not parse",
    "not_an_object": "the item is not a JSON object",
    "bad_field": "`id` is not a string/integer, `image` not a non-empty string "
                 "(feedback: also bad `level`/`attributes`)",
    "missing_conversations": "`conversations` is missing, not a list, or empty",
    "bad_turn": "a turn is not an object with string `from` and `value`",
    "unknown_role": "a turn's `from` is not human/user or gpt/assistant",
    "empty_turn": "a turn's `value` is empty or whitespace",
    "not_starting_with_human": "the conversation does not start with a human turn",
    "not_alternating": "two consecutive turns have the same role",
    "ends_with_human": "the last human turn has no answer",
    "marker_without_image": "an image marker appears but the record has no `image`",
    "image_without_marker": "the record has an `image` but no turn carries the marker",
    "multiple_markers": "more than one image marker in a single-image record",
    "marker_in_answer": "an image marker appears in a gpt turn",
    "missing_image_file": "`image` does not exist under the image root",
    "unreadable_image": "`image` exists but cannot be opened as an image (--verify-images)",
    "empty_feedback": "a feedback item has no non-empty text (feedback files only)",
}

#: Things worth knowing that do not cost the record.
NOTE_TEXT: dict[str, str] = {
    "missing_id": "no `id`: one was generated from the file name and position",
    "duplicate_id": "the `id` was already seen (kept: mixes legitimately reuse ids)",
    "added_marker": "an image record had no marker; `<image>\\n` was prepended to the first question",
}


class InvalidRecord(ValueError):
    """A record that fails validation; ``reason`` is a :class:`Reason`."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Example:
    """Where a skip (or note) happened: ``file:line`` or ``file[index]``."""

    where: str
    id: str | None
    detail: str


@dataclass
class SkipReport:
    """Counts of skipped records per reason, with up to ``max_examples`` examples each."""

    max_examples: int = 5
    seen: int = 0
    kept: int = 0
    files: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Example]] = field(default_factory=dict)
    note_examples: dict[str, list[Example]] = field(default_factory=dict)

    def skip(self, reason: Reason | str, where: str, detail: str, record_id: str | None = None) -> None:
        key = Reason(reason).value
        self.skipped[key] += 1
        bucket = self.examples.setdefault(key, [])
        if len(bucket) < self.max_examples:
            bucket.append(Example(where, record_id, detail))

    def note(self, name: str, where: str, detail: str, record_id: str | None = None) -> None:
        self.notes[name] += 1
        bucket = self.note_examples.setdefault(name, [])
        if len(bucket) < self.max_examples:
            bucket.append(Example(where, record_id, detail))

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def ok(self) -> bool:
        """True when nothing was skipped (notes do not count)."""
        return not self.skipped

    def merge(self, other: SkipReport) -> SkipReport:
        """Fold another report into this one (e.g. one report per source of a mix)."""
        self.seen += other.seen
        self.kept += other.kept
        self.files.extend(other.files)
        self.skipped.update(other.skipped)
        self.notes.update(other.notes)
        for src, dst in ((other.examples, self.examples), (other.note_examples, self.note_examples)):
            for key, exs in src.items():
                bucket = dst.setdefault(key, [])
                bucket.extend(exs[: max(0, self.max_examples - len(bucket))])
        return self

    def to_dict(self) -> dict[str, Any]:
        def section(counts: Counter[str], exs: dict[str, list[Example]], text: Mapping[str, str]) -> dict:
            return {
                key: {
                    "count": counts[key],
                    "meaning": text.get(key, ""),
                    "examples": [asdict(e) for e in exs.get(key, [])],
                }
                for key in sorted(counts)
            }

        return {
            "files": list(self.files),
            "seen": self.seen,
            "kept": self.kept,
            "skipped_total": self.total_skipped,
            "skipped": section(self.skipped, self.examples, REASON_TEXT),
            "notes": section(self.notes, self.note_examples, NOTE_TEXT),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def __str__(self) -> str:
        lines = [f"{self.seen} records read, {self.kept} kept, {self.total_skipped} skipped"]
        for title, counts, exs in (("skipped", self.skipped, self.examples),
                                   ("notes", self.notes, self.note_examples)):
            if not counts:
                continue
            lines.append(f"{title}:")
            for key in sorted(counts, key=lambda k: (-counts[k], k)):
                lines.append(f"  {key:<24} {counts[key]:>8}")
                for ex in exs.get(key, []):
                    ident = f" id={ex.id}" if ex.id is not None else ""
                    lines.append(f"      {ex.where}{ident}: {ex.detail}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- raw items


def iter_json_items(path: PathLike, report: SkipReport) -> Iterator[tuple[str, Any]]:
    """Yield ``(where, item)`` for each item of a JSON array file or a JSON Lines file.

    The format is sniffed rather than trusted from the name: a document starting with ``[`` is
    an array, anything else is read line by line (a pretty-printed single object in a ``.json``
    file is accepted too). Broken lines are reported and skipped; a broken array document can
    only be skipped whole, because JSON has no way to resynchronise after an error.
    """
    name = str(path)
    try:
        fh = open_text(path)
    except OSError as exc:
        report.skip(Reason.UNREADABLE_FILE, name, exc.strerror or type(exc).__name__)
        return
    report.files.append(name)
    try:
        with fh:
            head = ""
            while True:
                ch = fh.read(1)
                if not ch or not ch.isspace():
                    head = ch
                    break
            if not head:
                return
            if head == "[" or (head == "{" and not is_jsonl_name(path)):
                text = head + fh.read()
                try:
                    doc = json.loads(text)
                except json.JSONDecodeError as exc:
                    if head == "{" and exc.msg == "Extra data":
                        # A ".json" file that is really JSON Lines: read it line by line.
                        yield from _iter_lines(name, io_lines(text), report)
                        return
                    report.seen += 1
                    report.skip(Reason.BROKEN_JSON, f"{name}:{exc.lineno}", f"{exc.msg} (whole document skipped)")
                    return
                if isinstance(doc, list):
                    for i, item in enumerate(doc):
                        yield f"{name}[{i}]", item
                else:
                    yield f"{name}[0]", doc
                return
            rest = head + fh.readline()
            yield from _iter_lines(name, _chain_first(rest, fh), report)
    except (OSError, UnicodeDecodeError) as exc:
        report.skip(Reason.UNREADABLE_FILE, name, f"{type(exc).__name__}: {exc}")


def io_lines(text: str) -> Iterator[str]:
    return iter(text.splitlines(keepends=True))


def _chain_first(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


def _iter_lines(name: str, lines: Iterable[str], report: SkipReport) -> Iterator[tuple[str, Any]]:
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            report.seen += 1
            report.skip(Reason.BROKEN_JSON, f"{name}:{lineno}", f"{exc.msg} (column {exc.colno})")
            continue
        yield f"{name}:{lineno}", item


# --------------------------------------------------------------------------- validation


@dataclass
class Validator:
    """Turns raw items into :class:`Record` objects, or says why not.

    ``image_root``: where relative ``image`` paths live. When it is ``None`` image files are not
    checked unless ``check_images`` is forced on (then paths resolve against the current
    directory). ``verify_images`` also opens each image header with Pillow (slower).
    ``add_missing_marker``: repair image records that lack a marker instead of skipping them.
    """

    image_root: PathLike | None = None
    check_images: bool | None = None
    verify_images: bool = False
    add_missing_marker: bool = False
    report: SkipReport = field(default_factory=SkipReport)
    _ids: set[str] = field(default_factory=set, repr=False)
    _image_ok: dict[str, Reason | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.check_images is None:
            self.check_images = self.image_root is not None or self.verify_images

    def feed(self, items: Iterable[tuple[str, Any]]) -> Iterator[Record]:
        """Validate ``(where, item)`` pairs, yielding the valid records and reporting the rest."""
        for where, item in items:
            self.report.seen += 1
            rid = _peek_id(item)
            try:
                record = self.check(item, where)
            except InvalidRecord as exc:
                self.report.skip(exc.reason, where, exc.detail, rid)
                continue
            if record.id in self._ids:
                self.report.note("duplicate_id", where, "id seen before", record.id)
            self._ids.add(record.id)
            self.report.kept += 1
            yield record

    def check(self, item: Any, where: str = "<memory>") -> Record:
        """Validate one raw item; raise :class:`InvalidRecord` with the first problem found."""
        if isinstance(item, Record):
            item = item.to_dict()
        if not isinstance(item, dict):
            raise InvalidRecord(Reason.NOT_AN_OBJECT, f"got {type(item).__name__}")

        rid = item.get("id")
        if rid is None:
            rid = where
            self.report.note("missing_id", where, "generated id from position", rid)
        elif isinstance(rid, bool) or not isinstance(rid, (str, int)):
            raise InvalidRecord(Reason.BAD_FIELD, f"`id` is {type(rid).__name__}")
        rid = str(rid)

        image = item.get("image")
        if image is not None and (not isinstance(image, str) or not image.strip()):
            what = "empty" if isinstance(image, str) else type(image).__name__
            raise InvalidRecord(Reason.BAD_FIELD, f"`image` is {what}")

        convs = item.get("conversations")
        if not isinstance(convs, list) or not convs:
            raise InvalidRecord(Reason.MISSING_CONVERSATIONS, "no non-empty `conversations` list")

        turns: list[Turn] = []
        for i, raw in enumerate(convs):
            if not (isinstance(raw, dict) and isinstance(raw.get("from"), str) and isinstance(raw.get("value"), str)):
                raise InvalidRecord(Reason.BAD_TURN, f"turn {i} lacks string `from`/`value`")
            role = ROLE_ALIASES.get(raw["from"].strip().lower())
            if role is None:
                raise InvalidRecord(Reason.UNKNOWN_ROLE, f"turn {i} from {raw['from']!r}")
            if not raw["value"].strip():
                raise InvalidRecord(Reason.EMPTY_TURN, f"turn {i} ({role}) is empty")
            turns.append(Turn(role, normalise_marker(raw["value"])))

        if turns[0].role != "human":
            raise InvalidRecord(Reason.NOT_STARTING_WITH_HUMAN, f"first turn is {turns[0].role}")
        for i in range(1, len(turns)):
            if turns[i].role == turns[i - 1].role:
                raise InvalidRecord(Reason.NOT_ALTERNATING, f"turns {i - 1} and {i} are both {turns[i].role}")
        if turns[-1].role == "human":
            raise InvalidRecord(Reason.ENDS_WITH_HUMAN, f"turn {len(turns) - 1} is an unanswered question")

        markers = sum(count_markers(t.value) for t in turns)
        if any(count_markers(t.value) for t in turns if t.role == "gpt"):
            raise InvalidRecord(Reason.MARKER_IN_ANSWER, "image marker inside an answer")
        if image is None and markers:
            raise InvalidRecord(Reason.MARKER_WITHOUT_IMAGE, f"{markers} marker(s), no `image`")
        if image is not None and markers > 1:
            raise InvalidRecord(Reason.MULTIPLE_MARKERS, f"{markers} markers for one image")
        if image is not None and markers == 0:
            if not self.add_missing_marker:
                raise InvalidRecord(Reason.IMAGE_WITHOUT_MARKER, "image given but no marker in any turn")
            turns[0] = Turn("human", f"{IMAGE_MARKER}\n{turns[0].value}")
            self.report.note("added_marker", where, "prepended <image> to the first question", rid)

        if image is not None and self.check_images:
            problem = self._image_problem(image)
            if problem is not None:
                raise InvalidRecord(problem, image)

        meta = {k: v for k, v in item.items() if k not in ("id", "image", "conversations")}
        return Record(id=rid, turns=tuple(turns), image=image, meta=meta)

    def resolve(self, image: str) -> Path:
        p = Path(image)
        if p.is_absolute() or self.image_root is None:
            return p
        return Path(self.image_root) / p

    def _image_problem(self, image: str) -> Reason | None:
        # Q-Instruct has several records per image: stat (and open) each file once.
        if image in self._image_ok:
            return self._image_ok[image]
        path = self.resolve(image)
        problem: Reason | None = None
        if not path.is_file():
            problem = Reason.MISSING_IMAGE_FILE
        elif self.verify_images:
            try:
                from PIL import Image

                with Image.open(path) as im:
                    im.verify()
            except Exception:  # Pillow raises many types for corrupt files
                problem = Reason.UNREADABLE_IMAGE
        self._image_ok[image] = problem
        return problem


def _peek_id(item: Any) -> str | None:
    if isinstance(item, Record):
        return item.id
    if isinstance(item, dict) and isinstance(item.get("id"), (str, int)):
        return str(item["id"])
    return None


def validate_records(
    items: Iterable[Record | Mapping[str, Any]],
    image_root: PathLike | None = None,
    **options: Any,
) -> tuple[list[Record], SkipReport]:
    """Validate in-memory records or dicts with the same rules as :func:`load_records`."""
    validator = Validator(image_root=image_root, **options)
    pairs = ((f"<memory>[{i}]", item) for i, item in enumerate(items))
    records = list(validator.feed(pairs))
    return records, validator.report


def load_records(
    paths: PathLike | Sequence[PathLike],
    image_root: PathLike | None = None,
    **options: Any,
) -> tuple[list[Record], SkipReport]:
    """Read JSON array and/or JSON Lines files into validated records.

    Never raises for bad data: missing files, broken lines and invalid records are skipped and
    counted in the returned :class:`SkipReport`. ``options`` go to :class:`Validator`
    (``check_images``, ``verify_images``, ``add_missing_marker``, ``report``).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    validator = Validator(image_root=image_root, **options)
    records: list[Record] = []
    for path in paths:
        records.extend(validator.feed(iter_json_items(path, validator.report)))
    return records, validator.report
