"""qplug's default model layout in plain torch: FastVLM = EfficientNet tower + projector + Llama, no transformers.

Why: importing transformers and its auto classes costs about 2 s of a CPU process's start (its
processing and model-loading modules pull in ``torch.distributed.tensor`` and more), five times what
loading the default model's 16 MB of weights takes. For the one architecture qplug ships, this package
runs the model with torch, ``safetensors``, ``tokenizers`` and ``jinja2`` only, so ``qplug score IMG -s
qalign`` reaches its first scored frame in well under half the time.

When it is used: :func:`qplug_vlm.backend.load_backend` asks :func:`load_native` first. A checkpoint takes
this path when its ``config.json`` is a ``fast_vlm`` with an ``efficientnet`` tower and a ``llama``
text model, its processor centre-crops at native resolution, its tokenizer is a plain ``tokenizer.json``,
and every other value is one this package implements (:func:`~.config.read_spec` lists them); and no
option needs transformers (a peft ``adapter``). Anything else goes to transformers as before.
``QPLUG_NATIVE=0`` sends every checkpoint to transformers; ``QPLUG_NATIVE=1`` makes a checkpoint the
native path cannot take an error that says why. Left to itself (auto), a checkpoint of qplug's own
layout that the native path cannot take still loads, through transformers, with a warning on the
``qplug.vlm`` logger saying why (its start-up is slower); other architectures go there silently.

What it guarantees: the same numbers as the transformers path (next-token logits within 1e-4, the same
greedy tokens; ``tests/test_native_backend.py`` compares both on the shipped model and on random tiny
checkpoints of the layout), and the same load guard: a tensor the model lacks, a tensor the file lacks,
a wrong shape or an unreadable file is a one-line error naming the checkpoint or the file.

Modules: ``config`` (which checkpoints qualify; no torch), ``efficientnet`` (the tower), ``llama``
(the text model and its key/value cache), ``model`` (FastVLM, checked loading), ``text`` (tokenizer,
chat template), ``processing`` (pixels and token ids), ``generation`` (decoding), ``adapter``
(:class:`~.adapter.NativeBackend`, the backend interface).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from qplug.errors import UsageError

from .config import Unsupported, read_spec

if TYPE_CHECKING:
    from ..backend import Backend, LoadOptions

__all__ = ["ENV_NATIVE", "mode", "load_native", "Unsupported", "read_spec"]

ENV_NATIVE = "QPLUG_NATIVE"
_log = logging.getLogger("qplug.vlm")
_OFF, _ON = ("0", "false", "no", "off"), ("1", "true", "yes", "on")


def mode() -> str:
    """``"auto"`` (native when the checkpoint qualifies), ``"off"`` or ``"on"`` (native or an error), from
    ``$QPLUG_NATIVE``."""
    value = os.environ.get(ENV_NATIVE, "").strip().lower()
    if value in ("", "auto"):
        return "auto"
    if value in _OFF:
        return "off"
    if value in _ON:
        return "on"
    raise UsageError(f"{ENV_NATIVE}={value!r}: use 0 (always transformers), 1 (always the native path) or auto")


def load_native(options: "LoadOptions") -> "Backend | None":
    """The checkpoint of ``options`` on the native path, or None when it belongs to transformers.

    :raises UsageError: with ``QPLUG_NATIVE=1`` when the native path cannot take it; for weights that do
        not fit the model or an unreadable weights file (never silently handed to transformers).
    """
    chosen = mode()
    if chosen == "off":
        return None
    try:
        if options.adapter:
            raise Unsupported("a peft adapter is applied through transformers", ours=False)
        from .adapter import build

        return build(options, read_spec(options.model))
    except Unsupported as exc:
        if chosen == "on":
            raise UsageError(f"{ENV_NATIVE}=1 but {options.model} cannot take the native path: {exc}") from None
        if exc.ours:
            _log.warning("%s: loading through transformers, a slower start-up (the native path does not "
                         "implement %s; %s=0 silences this)", options.model, exc, ENV_NATIVE)
        return None
