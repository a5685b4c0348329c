"""The converter interface shared by the offline and the LLM-backed converters."""

from __future__ import annotations

import json
import random
import threading
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..feedback import Feedback
from ..records import Record

#: The kinds of records a conversion produces, after the paper's Q-Instruct subsets.
KINDS: tuple[str, ...] = ("pathway", "yes_no", "what_how", "conversation")

#: Questions that ask for the pathway itself (a description ending in a verdict). Shared by both
#: converters: the answer is the human feedback verbatim, so no model is needed for this subset.
PATHWAY_QUESTIONS: tuple[str, ...] = (
    "Describe the quality of this image.",
    "Evaluate the low-level quality of this image and explain your reasoning.",
    "How is the quality of this image? Please describe it in detail.",
    "Assess the visual quality of this image, considering clarity, noise, exposure and colour.",
    "Give a detailed evaluation of this image's quality, then state your overall judgement.",
    "What do you think of the technical quality of this picture? Explain step by step.",
    "Can you describe the low-level attributes of this image and rate its overall quality?",
)


class ConversionError(RuntimeError):
    """A conversion that cannot go on (bad credentials, unknown model...); message is safe to show."""


@dataclass
class ConversionStats:
    """Counters for a conversion run; safe to update from several threads."""

    feedbacks: int = 0
    converted: int = 0
    failed: int = 0
    records: Counter[str] = field(default_factory=Counter)
    #: Model outputs (or parts of them) thrown away, by reason: not_json, bad_schema, ...
    rejected: Counter[str] = field(default_factory=Counter)
    #: Transport failures after the last retry, by kind: timeout, connection, http_500, ...
    errors: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    balance_dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def count(self, counter: str, key: str, n: int = 1) -> None:
        with self._lock:
            getattr(self, counter)[key] += n

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "feedbacks": self.feedbacks,
                "converted": self.converted,
                "failed": self.failed,
                "records": dict(sorted(self.records.items())),
                "records_total": sum(self.records.values()),
                "rejected": dict(sorted(self.rejected.items())),
                "rejected_total": sum(self.rejected.values()),
                "errors": dict(sorted(self.errors.items())),
                "requests": self.requests,
                "retries": self.retries,
                "cache_hits": self.cache_hits,
                "cache_misses": self.cache_misses,
                "balance_dropped": self.balance_dropped,
            }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        d = self.to_dict()
        parts = [f"{d['converted']}/{d['feedbacks']} feedbacks converted, {d['records_total']} records"]
        if d["records"]:
            parts.append("(" + ", ".join(f"{k} {v}" for k, v in d["records"].items()) + ")")
        if d["requests"] or d["cache_hits"]:
            parts.append(f"; {d['requests']} requests, {d['retries']} retries, {d['cache_hits']} cache hits")
        if d["rejected_total"]:
            parts.append("; rejected: " + ", ".join(f"{k} {v}" for k, v in d["rejected"].items()))
        if d["errors"]:
            parts.append("; errors: " + ", ".join(f"{k} {v}" for k, v in d["errors"].items()))
        if d["balance_dropped"]:
            parts.append(f"; {d['balance_dropped']} yes/no records dropped to balance answers")
        return " ".join(parts)


def yes_no_answer(record: Record) -> str | None:
    """``"yes"``/``"no"`` for a single-turn yes/no record, else ``None``."""
    if record.task != "yes_no" or len(record.turns) != 2:
        return None
    head = record.turns[1].value.strip().lower()
    for word in ("yes", "no"):
        if head == word or (head.startswith(word) and not head[len(word)].isalpha()):
            return word
    return None


def balance_yes_no(records: list[Record], seed: int = 0) -> tuple[list[Record], int]:
    """Drop randomly chosen yes/no records of the majority answer until |yes - no| <= 1.

    A model trained on mostly-"yes" questions learns to say yes; the paper balances the two.
    Order of the kept records is preserved. Returns (records, number dropped).
    """
    yes = [i for i, r in enumerate(records) if yes_no_answer(r) == "yes"]
    no = [i for i, r in enumerate(records) if yes_no_answer(r) == "no"]
    major = yes if len(yes) > len(no) else no
    excess = abs(len(yes) - len(no)) - 1  # each drop closes the gap by one; a gap of 1 is fine
    if excess <= 0:
        return records, 0
    drop = set(random.Random(seed).sample(major, excess))
    return [r for i, r in enumerate(records) if i not in drop], excess


class Converter(ABC):
    """Turns one :class:`Feedback` into Q-Instruct records.

    Subclasses implement :meth:`convert`; :meth:`convert_many` is the dataset-level entry point
    (it may batch, run concurrently and balance yes/no answers across the whole set).
    """

    #: Short name used by the CLI (``--converter NAME``).
    name: str = "base"

    def __init__(self, kinds: Iterable[str] = KINDS, seed: int = 0) -> None:
        kinds = tuple(kinds)
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kind(s) {unknown}; choose from {', '.join(KINDS)}")
        self.kinds = kinds
        self.seed = seed
        self.stats = ConversionStats()

    @abstractmethod
    def convert(self, feedback: Feedback) -> list[Record]:
        """Records for one feedback; never raises for bad data (failures go to :attr:`stats`)."""

    def convert_many(self, feedbacks: Iterable[Feedback]) -> list[Record]:
        """Records for a whole set of feedback, in input order, yes/no answers balanced."""
        out: list[Record] = []
        for fb in feedbacks:
            out.extend(self.convert(fb))
        return self._balance(out)

    def _balance(self, records: list[Record]) -> list[Record]:
        records, dropped = balance_yes_no(records, self.seed)
        if dropped:
            self.stats.add("balance_dropped", dropped)
            self.stats.count("records", "yes_no", -dropped)
        return records
