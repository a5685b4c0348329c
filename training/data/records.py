"""Typed instruction records in the LLaVA / Q-Instruct layout.

On disk a record is ``{"id", "image", "conversations": [{"from": "human", "value": "<image>\\n..."},
{"from": "gpt", "value": "..."}, ...]}``. In memory it is a :class:`Record` holding :class:`Turn`
objects whose roles and image marker are normalised, so that code downstream never has to know
whether a file came from LLaVA (``<image>``, human/gpt) or mPLUG-Owl2 (``<|image|>``) or an
OpenAI-style export (user/assistant).
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Literal, Mapping

#: The one marker used internally (LLaVA's). Everything read is normalised to it.
IMAGE_MARKER = "<image>"
#: mPLUG-Owl2's marker, accepted on input and available on output.
MPLUG_MARKER = "<|image|>"
#: Output marker names accepted by :meth:`Record.to_dict` and the CLI.
MARKERS: dict[str, str] = {"llava": IMAGE_MARKER, "mplug": MPLUG_MARKER}

Role = Literal["human", "gpt"]
#: Accepted spellings of the two roles. OpenAI-style exports say user/assistant.
ROLE_ALIASES: dict[str, Role] = {
    "human": "human",
    "user": "human",
    "gpt": "gpt",
    "assistant": "gpt",
}


def normalise_marker(text: str) -> str:
    """Rewrite mPLUG-Owl2's ``<|image|>`` to the internal ``<image>``."""
    return text.replace(MPLUG_MARKER, IMAGE_MARKER)


def count_markers(text: str) -> int:
    """Number of image markers in an already normalised string."""
    return text.count(IMAGE_MARKER)


@dataclass(frozen=True)
class Turn:
    """One message of a conversation; ``value`` uses the internal marker."""

    role: Role
    value: str

    def to_dict(self, marker: str = IMAGE_MARKER) -> dict[str, str]:
        value = self.value if marker == IMAGE_MARKER else self.value.replace(IMAGE_MARKER, marker)
        return {"from": self.role, "value": value}


@dataclass(frozen=True)
class Record:
    """One training sample: an optional image and an alternating human/gpt conversation.

    ``image`` is the path as written in the file (relative to an image root, or absolute);
    ``None`` for text-only samples such as the language-only part of LLaVA's mix665k.
    ``meta`` keeps any other top-level keys of the source record (``task``, ``source``...) so
    that reading and writing a file is lossless for fields we do not interpret.
    """

    id: str
    turns: tuple[Turn, ...]
    image: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_image(self) -> bool:
        return self.image is not None

    @property
    def task(self) -> str | None:
        """The conversion kind for generated records (``pathway``, ``yes_no``...), if known."""
        task = self.meta.get("task")
        return task if isinstance(task, str) else None

    def pairs(self) -> list[tuple[Turn, Turn]]:
        """(question, answer) pairs; valid records always have an even number of turns."""
        return [(self.turns[i], self.turns[i + 1]) for i in range(0, len(self.turns) - 1, 2)]

    def to_dict(self, marker: str = IMAGE_MARKER) -> dict[str, Any]:
        """The on-disk form; ``marker`` picks ``<image>`` (LLaVA) or ``<|image|>`` (mPLUG-Owl2)."""
        out: dict[str, Any] = {"id": self.id}
        if self.image is not None:
            out["image"] = self.image
        out["conversations"] = [t.to_dict(marker) for t in self.turns]
        for key, value in self.meta.items():
            out.setdefault(key, value)
        return out


def make_record(
    id: str,
    qa: Iterable[tuple[str, str]],
    image: str | None,
    meta: Mapping[str, Any] | None = None,
) -> Record:
    """Build a record from (question, answer) pairs, placing the marker as LLaVA does.

    The marker goes at the start of the first question, followed by a newline, and only when the
    record has an image; this is the placement Q-Instruct's released files use.
    """
    turns: list[Turn] = []
    for i, (question, answer) in enumerate(qa):
        if i == 0 and image is not None:
            question = f"{IMAGE_MARKER}\n{question}"
        turns.append(Turn("human", question))
        turns.append(Turn("gpt", answer))
    return Record(id=id, turns=tuple(turns), image=image, meta=dict(meta or {}))


# --------------------------------------------------------------------------- files


def open_text(path: str | os.PathLike[str], mode: str = "r") -> IO[str]:
    """Open a text file, transparently gzip-compressed when the name ends in ``.gz``."""
    p = Path(path)
    if p.suffix == ".gz":
        return gzip.open(p, "wt" if mode == "w" else "rt", encoding="utf-8")
    return open(p, mode, encoding="utf-8")


def is_jsonl_name(path: str | os.PathLike[str]) -> bool:
    """True when the file name says JSON Lines (``.jsonl``, ``.ndjson``, optionally ``.gz``)."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith((".jsonl", ".ndjson"))


def write_records(
    records: Iterable[Record],
    path: str | os.PathLike[str],
    marker: str = IMAGE_MARKER,
    jsonl: bool | None = None,
) -> int:
    """Write records as a JSON array (LLaVA training scripts ``json.load`` one) or JSON Lines.

    The format follows the file name unless ``jsonl`` is given. The file is written to a
    temporary name and renamed, so an interrupted write never leaves half a dataset behind.
    Returns the number of records written.
    """
    target = Path(path)
    as_lines = is_jsonl_name(target) if jsonl is None else jsonl
    tmp = target.with_name(f".part-{target.name}")  # keeps the .gz suffix
    n = 0
    with open_text(tmp, "w") as fh:
        if as_lines:
            for rec in records:
                fh.write(json.dumps(rec.to_dict(marker), ensure_ascii=False) + "\n")
                n += 1
        else:
            fh.write("[")
            for rec in records:
                fh.write(",\n" if n else "\n")
                fh.write(json.dumps(rec.to_dict(marker), ensure_ascii=False))
                n += 1
            fh.write("\n]\n")
    os.replace(tmp, target)
    return n
