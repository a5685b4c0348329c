"""Level scorers: the model's next-token probabilities over level words, turned into a number.

For a method with level words w_i and weights s_i (:mod:`qplug_vlm.prompts`), the score of a frame is

    p_i = softmax_i(logit(w_i))       over the level words only, at the position after the prefix
    score = sum_i p_i * s_i

Q-Align: five words weighted 5..1 → [1, 5]; Q-Bench: P(good) against poor → [0, 1]; with
``synonyms=True`` (Q-Boost) the scores of several synonym triads are averaged. A whole batch is one
prefill: no generation.

A model that looks at a native-resolution window of each frame (qplug's default model: 224x224) sees
2.4% of a 1080p frame. By default that window goes where the frame has the most detail
(``window="detail"``, :func:`~.images.detailed_origin`: the centre is often sky or bokeh, where no
defect shows), its corner kept in ``extra["window"]``; ``window="centre"`` keeps it central. ``windows=N`` scores an N x N grid of windows spread over
the frame instead (N^2 times the model work) and pools them: ``window_pool="mean"`` for an overall
figure, ``"min"`` for QC that must catch a local defect. Each window's value and the worst window's
position are kept in ``extra``.

A released checkpoint is asked the way it was trained (:mod:`qplug_vlm.presets`): ``preset="auto"``
(what :func:`build` uses) picks its family's prompt, prefix, level words and chat-template switches
from its config; ``preset="none"`` keeps the generic method.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Sequence

from qplug.errors import UsageError
from qplug.types import Score

from .images import (DEFAULT_MAX_SIDE, native_windows, placed_window, resolve_window, to_pil, window_origins,
                     with_window)
from .presets import AUTO, Preset, level_method, select
from .backend import resolve_options
from .prompts import ScoringMethod, method as lookup_method

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
    :param windows: windows per side of the grid scored in each frame (models with a native-resolution
        window only); 1 is the centre window.
    :param window_pool: ``"mean"`` or ``"min"`` of the windows' scores.
    :param window: where the one window goes (``windows=1``, native-resolution models): ``"centre"``, or
        ``"detail"``, the most detailed of a 5 x 5 grid of positions (:func:`~.images.detailed_origin`);
        ``"auto"`` is ``"detail"`` for a native-resolution model and means nothing for the others.
    :param preset: a model family's settings (:mod:`qplug_vlm.presets`): a :class:`Preset`, its name,
        ``"auto"`` (chosen from the backend's config) or ``None``/``"none"`` (``method`` as given).
        The preset's own method replaces ``method`` when it has one of the same name.
    """

    def __init__(self, backend: "Backend", method: ScoringMethod, aspect: str = "quality", medium: str = "image",
                 synonyms: bool = False, image_max_side: int | None = DEFAULT_MAX_SIDE,
                 pad_square: bool | None = None, windows: int = 1, window_pool: str = "mean",
                 preset: "Preset | str | None" = None, window: str = "auto") -> None:
        if isinstance(windows, bool) or not isinstance(windows, int) or not 1 <= windows <= 8:
            raise UsageError(f"windows must be a whole number from 1 to 8 (windows per side), not {windows!r}")
        if window_pool not in ("mean", "min"):
            raise UsageError(f"window_pool must be 'mean' or 'min', not {window_pool!r}")
        if windows > 1 and backend.native_crop is None:
            raise UsageError(f"windows={windows} needs a model that looks at a native-resolution window of each "
                             f"frame; {backend.name} resizes the whole frame, so there is nothing to move")
        self.windows, self.window_pool = windows, window_pool
        self.window = resolve_window(window, backend.native_crop, windows, backend.name)
        self.backend = backend
        self.preset = preset if isinstance(preset, Preset) or preset is None else \
            select(preset, backend.model_type, backend.architectures)
        method = level_method(method, self.preset)
        self.method = method
        question, prefix = method.prompt(aspect, medium)
        self.prompt = backend.render(question, prefix, image_first=method.image_first,
                                     template_kwargs=self.preset.chat_template_kwargs if self.preset else None)
        self.sets = method.level_sets(synonyms)
        # Resolved now, so a checkpoint whose tokenizer cannot tell the words apart fails at load time.
        self.token_ids = [backend.first_tokens(self.prompt, s.words, f"{method.name} scoring",
                                               bare=method.word_start == "bare") for s in self.sets]
        self.low, self.high = self.sets[0].low, self.sets[0].high
        self.image_max_side = image_max_side
        self.pad_fill = backend.pad_fill(pad_square)

    def score(self, frames: Sequence["Frame"]) -> list[Score]:
        """One :class:`Score` per frame: value, probabilities of the level words, normalised value."""
        if not frames:
            return []
        if self.window is not None:  # one native-resolution window, placed (resolve_window)
            crop = self.backend.native_crop
            assert crop is not None
            placed = [placed_window(frame, crop, self.window) for frame in frames]
            scored = self._score_images([image for image, _ in placed])
            return [with_window(self._score(*one), origin) for one, (_, origin) in zip(scored, placed)]
        if self.windows == 1:
            images = [to_pil(frame, self.image_max_side, self.pad_fill, self.backend.native_crop) for frame in frames]
            return [self._score(*scored) for scored in self._score_images(images)]
        crop = self.backend.native_crop
        assert crop is not None  # checked in __init__
        per_frame = [native_windows(frame, crop, self.windows) for frame in frames]
        scored = self._score_images([image for images in per_frame for image in images])
        out, start = [], 0
        for frame, images in zip(frames, per_frame):
            origins = window_origins(frame.width, frame.height, crop[1], crop[0], self.windows)
            out.append(self._pool(scored[start:start + len(images)], origins))
            start += len(images)
        return out

    def _score_images(self, images: Sequence[Any]) -> list[tuple[float, dict[str, float], list[float]]]:
        """(value, level probabilities, value per synonym set) of each image: one prefill."""
        logits = self.backend.next_token_logits(images, [self.prompt] * len(images)).double()
        per_set = []
        for level_set, ids in zip(self.sets, self.token_ids):
            probabilities = logits[:, ids].softmax(dim=-1)
            weights = logits.new_tensor(level_set.weights)
            per_set.append((probabilities, probabilities @ weights))
        # With synonyms the levels are the triads' position-wise mean, named after the first triad.
        words = self.sets[0].words
        out = []
        for row in range(len(images)):
            values = [float(value[row]) for _, value in per_set]
            levels = {word: sum(float(p[row, i]) for p, _ in per_set) / len(per_set) for i, word in enumerate(words)}
            out.append((sum(values) / len(values), levels, values))
        return out

    def _score(self, value: float, levels: dict[str, float], values: list[float]) -> Score:
        extra: dict[str, Any] = {"normalised": (value - self.low) / (self.high - self.low)}
        if len(self.sets) > 1:
            extra["synonyms"] = {"/".join(s.words): v for s, v in zip(self.sets, values)}
        return Score(value=value, levels=levels, extra=extra)

    def _pool(self, scored: Sequence[tuple[float, dict[str, float], list[float]]],
              origins: Sequence[tuple[int, int]]) -> Score:
        values = [value for value, _, _ in scored]
        worst = min(range(len(values)), key=values.__getitem__)
        pooled = min(values) if self.window_pool == "min" else sum(values) / len(values)
        chosen = [scored[worst]] if self.window_pool == "min" else scored
        levels = {word: sum(s[1][word] for s in chosen) / len(chosen) for word in scored[0][1]}
        score = self._score(pooled, levels, [sum(s[2][i] for s in chosen) / len(chosen)
                                             for i in range(len(self.sets))])
        left, top = origins[worst]
        extra = dict(score.extra or {}, windows=values,
                     worst_window={"left": left, "top": top, "value": values[worst]})
        return Score(value=score.value, levels=score.levels, extra=extra)


def build(method: str = "qalign", *, aspect: str = "quality", medium: str = "image", synonyms: bool = False,
          image_max_side: int | None = DEFAULT_MAX_SIDE, pad_square: bool | None = None, windows: int = 1,
          window_pool: str = "mean", preset: str = AUTO, endpoint: str | None = None,
          endpoint_model: str | None = None, api_key: str | None = None, concurrency: int = 8,
          timeout: float = 60.0, retries: int = 3, prefill: bool = True, video: bool | str = "auto",
          window: str = "auto", **load_options: Any) -> LevelScorer:
    """A :class:`LevelScorer` on the shared backend; ``load_options`` go to :func:`~qplug_vlm.backend.load_backend`.

    ``preset`` (``"auto"``, ``"none"`` or a name from :data:`qplug_vlm.presets.PRESETS`) is checked
    before the model is loaded, so a misspelt name costs no load.

    With ``endpoint`` (or ``$QPLUG_ENDPOINT``) no model is loaded: frames go to that OpenAI-compatible
    server (:mod:`qplug_vlm.remote`; ``endpoint_model``, ``api_key``, ``concurrency``, ``timeout``,
    ``retries`` and ``prefill`` apply there) and the loading options are not used.

    ``video`` (mPLUG-Owl2 checkpoints and ``qalign`` only: Q-Align's video mode): ``"auto"`` gives each
    video source a whole-source score from its frames at 1 fps in one prompt
    (``pooled["qalign"]["source"]``), ``False`` turns it off; other checkpoints refuse ``video=True``.
    """
    import os

    from .backend import checked_options, load_backend
    from .mplug_owl2 import is_mplug_owl2

    chosen = lookup_method(method)
    select(preset)  # a UsageError for an unknown name, before any weights are read
    endpoint = endpoint or os.environ.get("QPLUG_ENDPOINT") or None
    if endpoint:
        from . import remote

        known = inspect.signature(resolve_options).parameters
        unknown = sorted(set(load_options) - set(known))
        if unknown:
            raise UsageError(f"unknown option(s) {', '.join(unknown)}")
        return remote.build(endpoint, chosen, aspect=aspect, medium=medium, synonyms=synonyms,  # type: ignore[return-value]
                            image_max_side=image_max_side, pad_square=pad_square, windows=windows,
                            window_pool=window_pool, window=window, preset=preset, endpoint_model=endpoint_model,
                            api_key=api_key,
                            concurrency=concurrency, timeout=timeout, retries=retries, prefill=prefill)
    resolved = checked_options(**load_options)
    if is_mplug_owl2(resolved.model) and chosen.name == "qalign":
        # Q-Align's own prompt and read-out, as its scorer.py (question first, then the image); other
        # methods (qbench) run through the mPLUG-Owl2 backend adapter below like any checkpoint.
        from .mplug_owl2.scorer import MplugQAlignScorer, refuse_unsupported

        refuse_unsupported(chosen, {"synonyms": synonyms, "pad_square": pad_square, "windows": windows,
                                    "window_pool": window_pool, "preset": preset,
                                    "window": None if window == "auto" else window})
        return MplugQAlignScorer(resolved.model, resolved.device, resolved.dtype, chosen, aspect=aspect,
                                 medium=medium, image_max_side=image_max_side,
                                 video=video)  # type: ignore[return-value]
    if video is True:
        raise UsageError("video=True (Q-Align's whole-video score, all frames in one prompt) needs an mPLUG-Owl2 "
                         "checkpoint (Q-Align, OneAlign) and the qalign scorer")
    return LevelScorer(load_backend(**load_options), chosen, aspect=aspect, medium=medium, synonyms=synonyms,
                       image_max_side=image_max_side, pad_square=pad_square, windows=windows,
                       window_pool=window_pool, preset=preset, window=window)


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
