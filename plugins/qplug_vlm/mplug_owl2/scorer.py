"""``qalign`` and ``qalign-aesthetics`` on an mPLUG-Owl2 checkpoint (Q-Align, OneAlign).

The generic backend loads checkpoints through transformers' auto classes; mPLUG-Owl2 has none, so
:func:`qplug_vlm.scorers.build` hands ``model_type: mplug_owl2`` directories to this scorer, which
runs qplug's own implementation with Q-Align's prompt and read-out (``qbench`` and the describer and
asker go through :mod:`.adapter` instead). The model is loaded once per process and shared with them.
:meth:`MplugQAlignScorer.score_video` is Q-Align's video mode: a whole clip in one prompt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from qplug.errors import UsageError
from qplug.types import Score

from ..images import DEFAULT_MAX_SIDE, to_pil
from ..prompts import ScoringMethod

if TYPE_CHECKING:
    from qplug.types import Frame


def _load(model: str, device: str, dtype: str) -> tuple[Any, Any, Any]:
    from .adapter import load_shared

    return load_shared(model, device, dtype)


class MplugQAlignScorer:
    """Q-Align's expected level (1-5) from an mPLUG-Owl2 checkpoint, one forward pass per batch, and
    Q-Align's video score of each video source as a whole.

    Per frame (:meth:`score`): the image prompt (or the video prompt with ``medium="video"``), one frame
    per prompt. Per source (:meth:`score_source`, which the pipeline asks once a source's frames are
    all scored; :meth:`reset` starts the next source): Q-Align's video mode, the source's frames at one
    per second all in one prompt (:meth:`score_video`), so ``qplug score clip.mp4 -s qalign`` reports
    both the frames' scores and, as ``pooled["qalign"]["source"]``, the clip's.

    :param model: the checkpoint directory; :param device: and :param dtype: as resolved by the backend.
    :param method: the scoring method (Q-Align's prompt, level words and weights).
    :param aspect: ``quality`` or ``aesthetics``; :param medium: ``image`` or ``video`` (per-frame prompt).
    :param image_max_side: frames are shrunk to this long side before the model's own 448-px
        pad-and-resize, so a 4K frame is not converted whole.
    :param video: the whole-source video score: ``"auto"`` for sources whose frames have times
        (videos; stills get none), ``True`` for every source (a folder of stills read as one clip is
        not a thing qplug makes, so this mostly serves image sequences with times), ``False`` never.
    """

    def __init__(self, model: str, device: str, dtype: str, method: ScoringMethod, aspect: str = "quality",
                 medium: str = "image", image_max_side: int | None = DEFAULT_MAX_SIDE,
                 video: bool | str = "auto") -> None:
        loaded = _load(model, device, dtype)
        self._setup(*loaded, method=method, aspect=aspect, medium=medium, image_max_side=image_max_side, video=video)

    @classmethod
    def from_parts(cls, model: Any, tokenizer: Any, image_processor: Any, method: ScoringMethod,
                   aspect: str = "quality", medium: str = "image",
                   image_max_side: int | None = DEFAULT_MAX_SIDE, video: bool | str = "auto") -> "MplugQAlignScorer":
        """The scorer on a model already in memory (benchmarks, training-time evaluation)."""
        scorer = cls.__new__(cls)
        scorer._setup(model, tokenizer, image_processor, method=method, aspect=aspect, medium=medium,
                      image_max_side=image_max_side, video=video)
        return scorer

    def _setup(self, model: Any, tokenizer: Any, image_processor: Any, *, method: ScoringMethod, aspect: str,
               medium: str, image_max_side: int | None, video: bool | str) -> None:
        if video not in (True, False, "auto"):
            raise UsageError(f"video must be auto, true or false, not {video!r}")
        self.model, self.tokenizer, self.image_processor = model, tokenizer, image_processor
        self.method, self.aspect, self.medium = method, aspect, medium
        self.image_max_side = image_max_side
        self.video = video
        positions = int(getattr(model.config, "max_position_embeddings", 4096) or 4096)
        #: The most frames one video prompt holds: 65 positions each, the prompt's words kept clear.
        self.max_video_frames = max(1, (positions - 64) // int(model.config.num_visual_tokens))
        self.reset()

    def score(self, frames: Sequence["Frame"]) -> list[Score]:
        from .scoring import score_qalign

        images = [to_pil(frame, self.image_max_side) for frame in frames]
        scored = score_qalign(self.model, self.tokenizer, self.image_processor, images, aspect=self.aspect,
                              medium=self.medium, method=self.method, batch_size=max(1, len(images)))
        if self.video is not False:
            self.add_frames(frames)
        return [Score(value=s.value, levels=s.levels, extra={"normalised": s.normalised}) for s in scored]

    # -- Q-Align's video mode, one source at a time ----------------------------------------------

    def reset(self) -> None:
        """Forget the frames kept for the whole-source score: a new source starts (the pipeline calls this)."""
        self._kept: list[tuple[int, Any]] = []
        self._seen = 0
        self._next_second = 0
        self._stride = 1
        self._stills = 0

    begin_source = reset

    def add_frames(self, frames: Sequence["Frame"]) -> None:
        """Keep the frames Q-Align's video mode reads: the first at or after each whole second
        (``q_align/load_video.py`` takes frame ``int(fps * i)`` of each second ``i``), as the 448-px
        square the model sees (~0.6 MB each). Memory stays bounded on long sources: past twice
        :attr:`max_video_frames` kept, every other one is dropped and only every 2nd (4th...) second
        is kept from then on, so what is kept stays evenly spaced. With ``video="auto"`` frames
        without a time (stills) are not kept; with ``video=True`` they are, one per "second"."""
        for frame in frames:
            self._seen += 1
            if frame.pts is None:
                if self.video is not True:  # "auto": stills have no whole-source video score
                    continue
                second = self._stills
                self._stills += 1
            else:
                second = int(frame.pts + 1e-9)
                if second < self._next_second:
                    continue
                self._next_second = second + 1
            if second % self._stride:
                continue
            image = self.image_processor.square(to_pil(frame, self.image_max_side).convert("RGB"))
            side = self.image_processor.size
            self._kept.append((second, image.resize((side, side), resample=self.image_processor.resample)))
            if len(self._kept) > 2 * self.max_video_frames:
                self._stride *= 2
                self._kept = [(t, kept) for t, kept in self._kept if t % self._stride == 0]

    def score_source(self) -> Score | None:
        """The source's Q-Align video score (None when no frame was kept: stills with ``video="auto"``).

        The kept frames fill one video prompt; more than :attr:`max_video_frames` (about 62 for the
        4,096-position 7B releases) are read evenly spaced. ``extra``: ``seen`` frames, ``kept`` at 1 fps
        (or every ``stride`` seconds), ``used`` in the prompt."""
        kept, seen, stride = self._kept, self._seen, self._stride
        self.reset()
        if not kept or self.video is False:
            return None
        limit, total = self.max_video_frames, len(kept)
        if len(kept) > limit:
            kept = [kept[round(i * (len(kept) - 1) / (limit - 1))] for i in range(limit)] if limit > 1 else kept[:1]
        from .scoring import score_qalign_video

        [scored] = score_qalign_video(self.model, self.tokenizer, self.image_processor, [[image for _, image in kept]],
                                      aspect=self.aspect, method=self.method)
        return Score(value=scored.value, levels=scored.levels,
                     extra={"normalised": scored.normalised, "seen": seen, "kept": total,
                            "used": len(kept), "stride": stride, "seconds": [t for t, _ in kept]})

    finish_source = score_source

    def score_video(self, clips: Sequence[Sequence["Frame"]], batch_size: int = 1) -> list[Score]:
        """Q-Align's video score of each clip: all its frames in one prompt (the video prompt, one
        ``<|image|>`` filled by every frame in order), one :class:`Score` per clip.

        Q-Align samples clips at 1 frame per second (``q_align/load_video.py``): pass frames sampled
        that way (``qplug score --fps 1``). ``extra`` holds ``frames`` (how many were seen together).
        """
        from .scoring import score_qalign_video

        videos = [[to_pil(frame, self.image_max_side) for frame in clip] for clip in clips]
        scored = score_qalign_video(self.model, self.tokenizer, self.image_processor, videos, aspect=self.aspect,
                                    method=self.method, batch_size=batch_size)
        return [Score(value=s.value, levels=s.levels, extra={"normalised": s.normalised, "frames": len(clip)})
                for s, clip in zip(scored, clips)]


def refuse_unsupported(method: ScoringMethod, options: dict[str, Any]) -> None:
    """Q-Align's read-out on mPLUG-Owl2 is the reference's: it takes none of the generic scorer's
    per-frame options (Q-Boost synonyms, windows, presets, unpadded frames); say so rather than ignore them."""
    if method.name != "qalign":
        raise UsageError(f"{method.name}: the Q-Align scorer of mPLUG-Owl2 checkpoints reads Q-Align's levels only")
    neutral = {"synonyms": (False,), "pad_square": (None, True), "windows": (1,), "window_pool": ("mean",),
               "preset": ("auto", "none", None)}
    # By type and value: True == 1 in Python, so synonyms=True must not pass for windows=1.
    unsupported = sorted(k for k, v in options.items()
                         if not any(type(v) is type(ok) and v == ok for ok in neutral.get(k, (None,))))
    if unsupported:
        raise UsageError(f"qalign on an mPLUG-Owl2 checkpoint takes no {', '.join(unsupported)} option")
