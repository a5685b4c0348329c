"""Level scorers: the model's next-token probabilities over level words, turned into a number.

For a method with level words w_i and weights s_i (:mod:`qplug_vlm.methods`), the score of a frame is

    p_i = softmax_i(logit(w_i))       over the level words only, at the position after the prefix
    score = sum_i p_i * s_i

Q-Align: five words weighted 5..1 → [1, 5]; Q-Bench: P(good) against poor → [0, 1]; with
``synonyms=True`` (Q-Boost) the scores of several synonym triads are averaged. A whole batch is one
prefill: no generation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from qplug.types import Score

from .images import DEFAULT_MAX_SIDE, to_pil
from .methods import ScoringMethod, method as lookup_method

if TYPE_CHECKING:
    from qplug.types import Frame

    from .backend import Backend


class LevelScorer:
    """Scores frames with one scoring method on one backend.

    :param backend: the loaded model.
    :param method: the scoring method (prompt, prefix, level words, weights).
    :param aspect: ``"quality"`` or ``"aesthetics"``.
    :param medium: ``"image"`` or ``"video"`` (how the prompt calls the frame).
    :param synonyms: average over the method's synonym triads (Q-Boost) instead of its own levels.
    :param image_max_side: shrink frames whose long side is larger, before the processor (None: never).
    :param pad_square: pad frames to a square first; None pads when the processor would centre-crop.
    """

    def __init__(self, backend: "Backend", method: ScoringMethod, aspect: str = "quality", medium: str = "image",
                 synonyms: bool = False, image_max_side: int | None = DEFAULT_MAX_SIDE,
                 pad_square: bool | None = None) -> None:
        self.backend = backend
        self.method = method
        question, prefix = method.prompt(aspect, medium)
        self.prompt = backend.render(question, prefix)
        self.sets = method.level_sets(synonyms)
        # Resolved now, so a checkpoint whose tokenizer cannot tell the words apart fails at load time.
        self.token_ids = [backend.first_tokens(self.prompt, s.words, f"{method.name} scoring") for s in self.sets]
        self.low, self.high = self.sets[0].low, self.sets[0].high
        self.image_max_side = image_max_side
        self.pad_fill = backend.pad_fill(pad_square)

    def score(self, frames: Sequence["Frame"]) -> list[Score]:
        """One :class:`Score` per frame: value, probabilities of the level words, normalised value."""
        if not frames:
            return []
        images = [to_pil(frame, self.image_max_side, self.pad_fill, self.backend.native_crop) for frame in frames]
        logits = self.backend.next_token_logits(images, [self.prompt] * len(images)).double()
        per_set = []
        for level_set, ids in zip(self.sets, self.token_ids):
            probabilities = logits[:, ids].softmax(dim=-1)
            weights = logits.new_tensor(level_set.weights)
            per_set.append((probabilities, probabilities @ weights))
        return [self._score(row, per_set) for row in range(len(frames))]

    def _score(self, row: int, per_set: list[Any]) -> Score:
        values = [float(value[row]) for _, value in per_set]
        value = sum(values) / len(values)
        normalised = (value - self.low) / (self.high - self.low)
        # With synonyms the levels are the triads' position-wise mean, named after the first triad.
        words = self.sets[0].words
        levels = {word: sum(float(p[row, i]) for p, _ in per_set) / len(per_set) for i, word in enumerate(words)}
        extra: dict[str, Any] = {"normalised": normalised}
        if len(self.sets) > 1:
            extra["synonyms"] = {"/".join(s.words): v for s, v in zip(self.sets, values)}
        return Score(value=value, levels=levels, extra=extra)


def build(method: str = "qalign", *, aspect: str = "quality", medium: str = "image", synonyms: bool = False,
          image_max_side: int | None = DEFAULT_MAX_SIDE, pad_square: bool | None = None,
          **load_options: Any) -> LevelScorer:
    """A :class:`LevelScorer` on the shared backend; ``load_options`` go to :func:`~qplug_vlm.backend.load_backend`."""
    from .backend import load_backend

    chosen = lookup_method(method)
    return LevelScorer(load_backend(**load_options), chosen, aspect=aspect, medium=medium, synonyms=synonyms,
                       image_max_side=image_max_side, pad_square=pad_square)


def qalign(**options: Any) -> LevelScorer:
    """The ``qalign`` scorer: Q-Align's five levels → [1, 5]."""
    return build("qalign", **options)


def qalign_aesthetics(**options: Any) -> LevelScorer:
    """The ``qalign-aesthetics`` scorer: Q-Align's aesthetics prompt → [1, 5]."""
    options.setdefault("aspect", "aesthetics")
    return build("qalign", **options)


def qbench(**options: Any) -> LevelScorer:
    """The ``qbench`` scorer: Q-Bench's P(good) → [0, 1] (Q-Boost triads with ``synonyms=True``)."""
    return build("qbench", **options)
