"""Q-Pathway feedback -> Q-Instruct records: one interface, an offline and an LLM-backed converter."""

from __future__ import annotations

from .base import KINDS, ConversionError, ConversionStats, Converter, balance_yes_no, yes_no_answer
from .rule import RuleConverter

__all__ = [
    "KINDS",
    "ConversionError",
    "ConversionStats",
    "Converter",
    "OpenAIConfig",
    "OpenAIConverter",
    "RuleConverter",
    "Secret",
    "balance_yes_no",
    "yes_no_answer",
]


def __getattr__(name: str):  # the openai-backed converter is imported only when asked for
    if name in ("OpenAIConfig", "OpenAIConverter", "Secret", "RESPONSE_SCHEMA"):
        from . import openai_api

        return getattr(openai_api, name)
    raise AttributeError(name)
