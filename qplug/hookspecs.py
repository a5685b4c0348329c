"""The hooks a qplug plugin can implement.

Registration hooks receive a ``register`` callback and call it once per component with a
:mod:`qplug.registry` record. Records name their factory by import path so that loading a plugin
stays cheap; the heavy module is imported only when the component is used.

Every hook here is documented in ``docs/hooks.md``; ``tests/test_hook_docs.py`` fails when one is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import pluggy

if TYPE_CHECKING:
    from .registry import AskerInfo, CommandInfo, ConverterInfo, DescriberInfo, ScorerInfo, SourceInfo, WriterInfo
    from .types import Frame, Score

PROJECT = "qplug"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_sources(register: Callable[["SourceInfo"], None]) -> None:
    """Register sources that turn input files into frames.

    :param register: call with a :class:`qplug.registry.SourceInfo` for each source.
    """


@hookspec
def register_scorers(register: Callable[["ScorerInfo"], None]) -> None:
    """Register scorers that give each frame a number.

    :param register: call with a :class:`qplug.registry.ScorerInfo` for each scorer.
    """


@hookspec
def register_describers(register: Callable[["DescriberInfo"], None]) -> None:
    """Register describers that write a low-level quality description of each frame.

    :param register: call with a :class:`qplug.registry.DescriberInfo` for each describer.
    """


@hookspec
def register_askers(register: Callable[["AskerInfo"], None]) -> None:
    """Register askers that answer a question about each frame (yes/no, multiple choice or free text).

    :param register: call with a :class:`qplug.registry.AskerInfo` for each asker.
    """


@hookspec
def register_writers(register: Callable[["WriterInfo"], None]) -> None:
    """Register report writers (output formats).

    :param register: call with a :class:`qplug.registry.WriterInfo` for each format.
    """


@hookspec
def register_converters(register: Callable[["ConverterInfo"], None]) -> None:
    """Register converters that turn a downloaded model release into a directory qplug loads
    (``qplug convert NAME SOURCE OUTPUT``).

    :param register: call with a :class:`qplug.registry.ConverterInfo` for each converter.
    """


@hookspec
def register_commands(register: Callable[["CommandInfo"], None]) -> None:
    """Register extra ``qplug`` sub-commands (``qplug serve``).

    :param register: call with a :class:`qplug.registry.CommandInfo` for each command.
    """


@hookspec(firstresult=True)
def find_reference(source_id: str, reference: str) -> "str | None":
    """Name the reference (source master) an input is compared with by full-reference scorers.

    qplug's own implementation (``trylast``) fills the ``--reference`` template (``masters/{stem}.mov``)
    or returns the single reference file; implement it to look references up elsewhere (a media-asset
    database). Return None to let the next implementation answer.

    :param source_id: the input's path.
    :param reference: the ``--reference`` value as given.
    :return: the reference file's path.
    """


@hookspec(firstresult=True)
def score_batch(scorer_name: str, scorer: object, frames: Sequence["Frame"]) -> Sequence["float | Score | None"]:
    """Score one batch of frames with one scorer.

    qplug's own implementation (``trylast``) calls ``scorer.score(frames)``. Implement it as a
    ``wrapper=True`` hook to time, cache or trace scoring (``result = yield``), or as a plain
    ``tryfirst`` hook returning a non-None list to answer from a cache without running the scorer.

    :param scorer_name: the registered name of the scorer.
    :param scorer: the object its factory built.
    :param frames: the frames of the batch, all from one source, in order.
    :return: one value per frame.
    """
