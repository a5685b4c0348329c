"""Instruction data for low-level visual tuning: read, validate, convert, mix.

- :mod:`.records`: the :class:`Record`/:class:`Turn` types and the LLaVA / Q-Instruct file layout.
- :mod:`.validate`: :func:`load_records` (JSON and JSON Lines) with a :class:`SkipReport`.
- :mod:`.feedback`: Q-Pathway-style :class:`Feedback` and :func:`load_feedback`.
- :mod:`.converters`: :class:`RuleConverter` (offline) and ``OpenAIConverter`` (any
  OpenAI-compatible endpoint) behind one :class:`Converter` interface.
- :mod:`.mix`: weighted, seeded mixing of sources (the paper's "mix" strategy).

Command line: ``python -m qplug_training.data {validate,convert,mix} --help``.
"""

from __future__ import annotations

from .converters import ConversionError, ConversionStats, Converter, RuleConverter, balance_yes_no
from .feedback import Feedback, load_feedback
from .mix import MixReport, MixSource, mix
from .records import IMAGE_MARKER, MPLUG_MARKER, Record, Turn, make_record, write_records
from .validate import InvalidRecord, Reason, SkipReport, Validator, load_records, validate_records

__all__ = [
    "IMAGE_MARKER",
    "MPLUG_MARKER",
    "ConversionError",
    "ConversionStats",
    "Converter",
    "Feedback",
    "InvalidRecord",
    "MixReport",
    "MixSource",
    "Reason",
    "Record",
    "RuleConverter",
    "SkipReport",
    "Turn",
    "Validator",
    "balance_yes_no",
    "load_feedback",
    "load_records",
    "make_record",
    "mix",
    "validate_records",
    "write_records",
]
