"""The ``qscore-text`` scorer: models that write their score as text (VisualQuality-R1, Q-Insight).

Some quality models were trained with reinforcement learning to reason and then *write* a number,
``<think>...</think><answer>3.75</answer>`` (VisualQuality-R1) or ``<answer>{"rating": 3.75}</answer>``
(Q-Insight), instead of putting probability on level words. There are no level logits to read, so
this scorer generates the answer and parses it (:func:`parse_rating`).

A model can write anything, so a frame whose answer has no closed answer tag, no number, or a number
outside the method's range is a **frame error**, never a guess: the reference scripts substitute a
random score there, which would put noise into a QC report unannounced. The frame's ``Score`` then has
the value NaN, which the pipeline records as an error for that frame only (its score is left empty),
and ``extra`` carries the reason and the tail of the model's output. Other frames of the batch keep
their scores.

Generation is greedy by default, so a frame always gets the same answer (the reference code samples
with top-k 50; ``do_sample=True, seed=N`` does that repeatably).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Sequence

from qplug.errors import UsageError
from qplug.types import Score

from .images import DEFAULT_MAX_SIDE, to_pil
from .presets import AUTO, PRESETS, Preset, rating_method, select
from .prompts import RatingMethod

if TYPE_CHECKING:
    from qplug.types import Frame

    from .backend import Backend

__all__ = ["RatingError", "parse_rating", "TextScorer", "build"]

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
#: How much of an unusable answer ``extra["output"]`` keeps (its end, where the answer should be).
OUTPUT_TAIL = 300


class RatingError(ValueError):
    """The generated text holds no usable rating; the message says why, in one sentence."""


def parse_rating(text: str, method: RatingMethod) -> tuple[float, str]:
    """The rating in ``text`` and the answer block it came from.

    The last closed ``<answer>...</answer>`` block counts (the reference scripts take the last one too;
    reasoning before it may quote numbers). Inside it, ``"rating": x`` wins when present (Q-Insight's
    JSON), else the block's first number (VisualQuality-R1's bare score).

    :raises RatingError: no closed answer block (e.g. cut off at ``max_new_tokens``), an empty block,
        no number in it, or a number outside ``[method.low, method.high]``.
    """
    tag = re.escape(method.answer_tag)
    blocks = re.findall(rf"<\s*{tag}\s*>(.*?)<\s*/\s*{tag}\s*>", text, flags=re.DOTALL | re.IGNORECASE)
    if not blocks:
        opened = re.search(rf"<\s*{tag}\s*>", text, flags=re.IGNORECASE)
        raise RatingError(f"no <{method.answer_tag}>...</{method.answer_tag}> block in the output"
                          + (" (it was cut off: raise max_new_tokens)" if opened else ""))
    # A tag quoted in the reasoning opens the match early: keep what follows the block's last opening tag.
    answer = re.split(rf"<\s*{tag}\s*>", blocks[-1], flags=re.IGNORECASE)[-1].strip()
    if not answer:
        raise RatingError(f"the <{method.answer_tag}> block is empty")
    keyed = re.search(rf"[\"']?{re.escape(method.json_key)}[\"']?\s*:\s*[\"']?({_NUMBER})", answer, flags=re.IGNORECASE)
    found = keyed or re.search(_NUMBER, answer)
    if found is None:
        raise RatingError(f"no number in the answer {_short(answer)}")
    value = float(found.group(1) if keyed else found.group(0))
    if not method.low <= value <= method.high:
        raise RatingError(f"the rating {value:g} is outside {method.low:g}-{method.high:g}")
    return value, answer


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


class TextScorer:
    """Scores frames by generating a model's written rating and parsing it.

    :param backend: the loaded model.
    :param method: what to ask and how to read it (:data:`qplug_vlm.prompts.RATING_METHODS`), or
        ``None`` for the preset's.
    :param preset: a :class:`Preset`, its name, ``"auto"`` (from the backend's config) or ``None``.
    :param max_new_tokens: longest answer; default: the method's (reasoning comes before the number).
    :param do_sample: sample instead of greedy decoding; ``temperature``, ``top_p``, ``seed`` as for the describer.
    :param image_max_side: shrink frames whose long side is larger, before the processor (None: never).
    :param pad_square: pad frames to a square first; None pads when the processor would centre-crop.
    """

    def __init__(self, backend: "Backend", method: RatingMethod | None = None, preset: "Preset | str | None" = AUTO,
                 max_new_tokens: int | None = None, do_sample: bool = False, temperature: float = 1.0,
                 top_p: float | None = None, seed: int | None = None,
                 image_max_side: int | None = DEFAULT_MAX_SIDE, pad_square: bool | None = None) -> None:
        from .backend import GenerationSettings

        self.backend = backend
        self.preset = preset if isinstance(preset, Preset) or preset is None else \
            select(preset, backend.model_type, backend.architectures)
        self.method = method or rating_method(self.preset)
        self.low, self.high = self.method.range
        self.settings = GenerationSettings(max_new_tokens=max_new_tokens or self.method.max_new_tokens,
                                           do_sample=do_sample, temperature=temperature, top_p=top_p, seed=seed)
        self.prompt = backend.render(self.method.question, system=self.method.system,
                                     image_first=self.method.image_first,
                                     template_kwargs=self.preset.chat_template_kwargs if self.preset else None)
        self.image_max_side = image_max_side
        self.pad_fill = backend.pad_fill(pad_square)

    def score(self, frames: Sequence["Frame"]) -> list[Score]:
        """One :class:`Score` per frame; an unusable answer is a NaN score with the reason in ``extra``."""
        if not frames:
            return []
        images = [to_pil(frame, self.image_max_side, self.pad_fill, self.backend.native_crop) for frame in frames]
        texts = self.backend.generate(images, [self.prompt] * len(images), self.settings)
        return [self.read(text) for text in texts]

    def read(self, text: str) -> Score:
        """The :class:`Score` for one generated answer."""
        try:
            value, answer = parse_rating(text, self.method)
        except RatingError as exc:
            return Score(value=math.nan, extra={"error": f"{self.method.name} answer unusable: {exc}",
                                                "output": text[-OUTPUT_TAIL:]})
        return Score(value=value, extra={"normalised": (value - self.low) / (self.high - self.low), "answer": answer})


def build(*, preset: str = AUTO, max_new_tokens: int | None = None, do_sample: bool = False,
          temperature: float = 1.0, top_p: float | None = None, seed: int | None = None,
          image_max_side: int | None = DEFAULT_MAX_SIDE, pad_square: bool | None = None,
          **load_options: Any) -> TextScorer:
    """The ``qscore-text`` scorer on the shared backend; ``load_options`` go to
    :func:`~qplug_vlm.backend.load_backend`. An unknown ``preset`` fails before any weights are read."""
    import os

    from .backend import load_backend

    if load_options.pop("endpoint", None) or os.environ.get("QPLUG_ENDPOINT"):
        raise UsageError("qscore-text runs only with the model in this process, not through an endpoint: "
                         "unset QPLUG_ENDPOINT / drop --endpoint for it (qalign, qbench, the describer and "
                         "the asker run remotely)")
    chosen = select(preset)
    if chosen is not None and chosen.rating is None:
        raise UsageError(f"preset {preset!r} has no written-score method; qscore-text presets: "
                         + ", ".join(name for name, p in PRESETS.items() if p.rating is not None))
    return TextScorer(load_backend(**load_options), preset=preset, max_new_tokens=max_new_tokens,
                      do_sample=do_sample, temperature=temperature, top_p=top_p, seed=seed,
                      image_max_side=image_max_side, pad_square=pad_square)
