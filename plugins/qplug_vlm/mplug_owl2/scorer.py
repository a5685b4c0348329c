"""``qalign`` and ``qalign-aesthetics`` on an mPLUG-Owl2 checkpoint (Q-Align, OneAlign).

The generic backend loads checkpoints through transformers' auto classes; mPLUG-Owl2 has none, so
:func:`qplug_vlm.scorers.build` hands ``model_type: mplug_owl2`` directories to this scorer, which
runs qplug's own implementation with Q-Align's prompt and read-out. The model is loaded once per
process and shared, like the backend's.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Sequence

from qplug.errors import UsageError
from qplug.types import Score

from ..images import DEFAULT_MAX_SIDE, to_pil
from ..prompts import ScoringMethod

if TYPE_CHECKING:
    from qplug.types import Frame

_cache: dict[tuple[str, str, str], tuple[Any, Any, Any]] = {}
_lock = threading.Lock()


def _load(model: str, device: str, dtype: str) -> tuple[Any, Any, Any]:
    from .loading import load_mplug_owl2

    key = (model, device, dtype)
    with _lock:
        if key not in _cache:
            _cache[key] = load_mplug_owl2(model, device=device, dtype=dtype)
        return _cache[key]


class MplugQAlignScorer:
    """Q-Align's expected level (1-5) from an mPLUG-Owl2 checkpoint, one forward pass per batch.

    :param model: the checkpoint directory; :param device: and :param dtype: as resolved by the backend.
    :param method: the scoring method (Q-Align's prompt, level words and weights).
    :param aspect: ``quality`` or ``aesthetics``; :param medium: ``image`` or ``video``.
    :param image_max_side: frames are shrunk to this long side before the model's own 448-px
        pad-and-resize, so a 4K frame is not converted whole.
    """

    def __init__(self, model: str, device: str, dtype: str, method: ScoringMethod, aspect: str = "quality",
                 medium: str = "image", image_max_side: int | None = DEFAULT_MAX_SIDE) -> None:
        self.model, self.tokenizer, self.image_processor = _load(model, device, dtype)
        self.method, self.aspect, self.medium = method, aspect, medium
        self.image_max_side = image_max_side

    def score(self, frames: Sequence["Frame"]) -> list[Score]:
        from .scoring import score_qalign

        images = [to_pil(frame, self.image_max_side) for frame in frames]
        scored = score_qalign(self.model, self.tokenizer, self.image_processor, images, aspect=self.aspect,
                              medium=self.medium, method=self.method, batch_size=max(1, len(images)))
        return [Score(value=s.value, levels=s.levels, extra={"normalised": s.normalised}) for s in scored]


def refuse_unsupported(method: ScoringMethod, options: dict[str, Any]) -> None:
    """mPLUG-Owl2 checkpoints answer Q-Align's question only; say so rather than score something else."""
    if method.name != "qalign":
        raise UsageError(f"{method.name} does not run on mPLUG-Owl2 checkpoints yet (Q-Align, OneAlign): use "
                         "qalign or qalign-aesthetics")
    unsupported = sorted(k for k, v in options.items() if v not in (None, False, 1, "mean", "auto", "none"))
    if unsupported:
        raise UsageError(f"qalign on an mPLUG-Owl2 checkpoint takes no {', '.join(unsupported)} option")
