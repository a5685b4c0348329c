"""Q-Pathway-style feedback: one free-text low-level judgement of one image."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .attributes import ATTRIBUTES, normalise_level
from .validate import InvalidRecord, Reason, SkipReport, iter_json_items

PathLike = str | os.PathLike[str]

# Accepted spellings in feedback files; the first of each tuple is the canonical one.
_TEXT_KEYS = ("text", "feedback", "description", "caption", "gt_caption")
_IMAGE_KEYS = ("image", "img_path", "image_path")


@dataclass(frozen=True)
class Feedback:
    """A human (or model) feedback on the low-level quality of ``image``.

    ``text`` walks through what is seen, the low-level attributes and the reasoning to a verdict.
    ``level`` is the overall verdict on the five-level scale when known separately (it wins over
    what the text says); ``attributes`` optionally pins attribute states, using the vocabulary
    of :data:`qplug_training.data.attributes.ATTRIBUTES` (e.g. ``{"sharpness": "blurry"}``).
    ``id`` defaults to a digest of image and text, so the same feedback always gets the same id
    (the converters derive record ids and cache keys from it).
    """

    image: str | None
    text: str
    level: str | None = None
    attributes: Mapping[str, str] | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            digest = hashlib.sha1(f"{self.image}\0{self.text}".encode()).hexdigest()[:12]
            object.__setattr__(self, "id", f"fb-{digest}")
        if self.level is not None:
            level = normalise_level(self.level)
            if level is None:
                raise ValueError(f"unknown level {self.level!r}")
            object.__setattr__(self, "level", level)

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Feedback:
        """Build from one JSON object (the keys :func:`load_feedback` reads); raises ``ValueError``."""
        return feedback_from_dict(dict(item))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "image": self.image, "text": self.text}
        if self.level is not None:
            out["level"] = self.level
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        return out


def feedback_from_dict(item: Any, where: str = "<memory>") -> Feedback:
    """Build a :class:`Feedback` from a JSON object; raise :class:`InvalidRecord` if unusable."""
    if not isinstance(item, dict):
        raise InvalidRecord(Reason.NOT_AN_OBJECT, f"got {type(item).__name__}")
    text = next((item[k] for k in _TEXT_KEYS if k in item), None)
    if not isinstance(text, str) or not text.strip():
        raise InvalidRecord(Reason.EMPTY_FEEDBACK, f"no non-empty {'/'.join(_TEXT_KEYS)}")
    image = next((item[k] for k in _IMAGE_KEYS if k in item), None)
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise InvalidRecord(Reason.BAD_FIELD, "`image` is not a non-empty string")
    fid = item.get("id")
    if fid is not None and (isinstance(fid, bool) or not isinstance(fid, (str, int))):
        raise InvalidRecord(Reason.BAD_FIELD, f"`id` is {type(fid).__name__}")
    level = item.get("level")
    if level is not None and (not isinstance(level, str) or normalise_level(level) is None):
        raise InvalidRecord(Reason.BAD_FIELD, f"`level` {level!r} is not one of excellent/good/fair/poor/bad")
    attrs = item.get("attributes")
    if attrs is not None:
        if not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values()):
            raise InvalidRecord(Reason.BAD_FIELD, "`attributes` must map names to state strings")
        unknown = [f"{k}={v}" for k, v in attrs.items() if v not in ATTRIBUTES.get(k, ())]
        if unknown:
            raise InvalidRecord(Reason.BAD_FIELD, f"unknown attribute state(s): {', '.join(unknown)}")
    return Feedback(image=image, text=" ".join(text.split()), level=level, attributes=attrs,
                    id=str(fid) if fid is not None else "")


def load_feedback(
    paths: PathLike | Sequence[PathLike],
    image_root: PathLike | None = None,
    report: SkipReport | None = None,
) -> tuple[list[Feedback], SkipReport]:
    """Read feedback from JSON Lines (or a JSON array); bad items are skipped and counted.

    With ``image_root`` set, feedback whose image file is missing is skipped too: there is no
    point paying an LLM to convert feedback about an image training cannot load.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    report = report or SkipReport()
    out: list[Feedback] = []
    seen: dict[str, bool] = {}
    for path in paths:
        for where, item in iter_json_items(path, report):
            report.seen += 1
            try:
                fb = feedback_from_dict(item, where)
                if image_root is not None and fb.image is not None:
                    if fb.image not in seen:
                        p = Path(fb.image)
                        seen[fb.image] = (p if p.is_absolute() else Path(image_root) / p).is_file()
                    if not seen[fb.image]:
                        raise InvalidRecord(Reason.MISSING_IMAGE_FILE, fb.image)
            except InvalidRecord as exc:
                rid = item.get("id") if isinstance(item, dict) else None
                report.skip(exc.reason, where, exc.detail, str(rid) if rid is not None else None)
                continue
            report.kept += 1
            out.append(fb)
    return out, report
