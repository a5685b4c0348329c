"""Q-Align's read-out on an mPLUG-Owl2: one forward pass, no generation.

The prompt, as Q-Align scores (``q_align/evaluate/scorer.py``, ``QAlignScorer``; the same string in
``MPLUGOwl2LlamaForCausalLM.score``, Q-Future/Q-Align commit 14dfdff)::

    USER: How would you rate the quality of this image?\\n<|image|>\\nASSISTANT: The quality of the image is

``quality`` becomes ``aesthetics`` for ``QAlignAestheticScorer`` and ``image`` becomes ``video`` for
videos. The question and the assistant prefix are qplug's ``qalign`` method
(:data:`qplug_vlm.prompts.METHODS`), placed in mPLUG-Owl2's ``USER: ...\\nASSISTANT: ...`` turn.

The level words are ``excellent, good, fair, poor, bad`` (``bad``, not ``low``) weighted 5, 4, 3, 2, 1
(``MPLUGOwl2LlamaForCausalLM.score``; ``scorer.py`` uses 1, 0.75, 0.5, 0.25, 0 = (score - 1) / 4).
Each word is read as its first token when it starts a text (``tokenizer(word)`` without the BOS: the
reference's ``input_ids[1]``, i.e. ``▁excellent`` for LLaMA). The score is the softmax over those
five logits at the last position, times the weights, summed; probabilities in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from qplug.errors import UsageError

from ..prompts import METHODS, ScoringMethod
from .processing import IMAGE_TOKEN, MPLUGOwl2ImageProcessor, prepare_batch

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["QAlignScore", "qalign_prompt", "level_token_ids", "score_qalign", "score_qalign_video", "level_logits",
           "to_device"]


@dataclass(frozen=True)
class QAlignScore:
    """One frame's Q-Align rating.

    :param value: expected level, in [low, high] of the method (1..5 for Q-Align).
    :param levels: each level word's probability (they sum to 1).
    :param normalised: ``(value - low) / (high - low)``, in [0, 1].
    """

    value: float
    levels: dict[str, float] = field(default_factory=dict)
    normalised: float = 0.0


def qalign_prompt(aspect: str = "quality", medium: str = "image", method: ScoringMethod = METHODS["qalign"]) -> str:
    """The full mPLUG-Owl2 prompt of a scoring method: user turn with the image, assistant prefix."""
    question, prefix = method.prompt(aspect, medium)
    return f"USER: {question}\n{IMAGE_TOKEN}\nASSISTANT: {prefix}"


def level_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """First token of each word at the start of a text (the reference's rule), checked to be distinct."""
    ids = []
    for word in words:
        pieces = tokenizer(word, add_special_tokens=False).input_ids
        if not pieces:
            raise UsageError(f"the tokenizer gives no token for the level word {word!r}")
        ids.append(int(pieces[0]))
    unk = getattr(tokenizer, "unk_token_id", None)
    for word, token in zip(words, ids):
        if unk is not None and token == unk:
            raise UsageError(f"the tokenizer has no token for the level word {word!r} (it maps to the unknown token)")
    if len(set(ids)) != len(ids):
        raise UsageError(f"the level words {', '.join(words)} do not all start with different tokens ({ids})")
    return ids


def to_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    """A :func:`prepare_batch` result with its tensors on ``device`` (other entries as they are)."""
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}


def level_logits(model: Any, tokenizer: Any, image_processor: MPLUGOwl2ImageProcessor,
                 images: "Sequence[Image.Image] | Sequence[Sequence[Image.Image]]", prompt: str,
                 token_ids: Sequence[int]) -> "torch.Tensor":
    """Next-token logits of ``token_ids`` after ``prompt``, one row per image (or per list of frames,
    which then fill the prompt's placeholder together), float32 on the CPU, one forward."""
    import torch

    batch = to_device(prepare_batch(tokenizer, image_processor, images, [prompt] * len(images)), model.device)
    with torch.inference_mode():
        logits = model(**batch, logits_to_keep=1).logits[:, -1]
    return logits[:, list(token_ids)].float().cpu()


def score_qalign(model: Any, tokenizer: Any, image_processor: MPLUGOwl2ImageProcessor,
                 images: "Sequence[Image.Image]", *, aspect: str = "quality", medium: str = "image",
                 method: ScoringMethod = METHODS["qalign"], batch_size: int = 8) -> list[QAlignScore]:
    """Q-Align scores of frames (PIL images), ``batch_size`` frames per forward pass.

    :param aspect: ``quality`` or ``aesthetics``.
    :param medium: ``image`` or ``video`` (the word in the prompt; one frame per prompt either way).
    :param method: a scoring method of :mod:`qplug_vlm.prompts` (default ``qalign``).
    """
    return _score(model, tokenizer, image_processor, list(images), qalign_prompt(aspect, medium, method), method,
                  batch_size)


def score_qalign_video(model: Any, tokenizer: Any, image_processor: MPLUGOwl2ImageProcessor,
                       videos: "Sequence[Sequence[Image.Image]]", *, aspect: str = "quality",
                       method: ScoringMethod = METHODS["qalign"], batch_size: int = 1) -> list[QAlignScore]:
    """Q-Align's video score: all frames of a clip in one prompt, one score per clip.

    As Q-Align's ``QAlignVideoScorer`` and ``score(..., input_="video")`` (Q-Future/Q-Align
    ``q_align/evaluate/scorer.py``): the video prompt ("How would you rate the quality of this video?"
    ... "The quality of the video is") holds **one** ``<|image|>`` placeholder, and the clip's frames
    (sampled at 1 fps by ``q_align/load_video.py``) fill it one after another, 65 tokens each, all
    read as image tokens. The level words are read as for images.

    :param videos: one list of frames (PIL images, in time order) per clip.
    :param batch_size: clips per forward pass (a clip of F frames costs F x 65 positions).
    """
    if any(len(frames) == 0 for frames in videos):
        raise UsageError("a video needs at least one frame to be scored")
    return _score(model, tokenizer, image_processor, [list(frames) for frames in videos],
                  qalign_prompt(aspect, "video", method), method, batch_size)


def _score(model: Any, tokenizer: Any, image_processor: MPLUGOwl2ImageProcessor, items: list[Any], prompt: str,
           method: ScoringMethod, batch_size: int) -> list[QAlignScore]:
    import torch

    if batch_size < 1:
        raise UsageError("batch_size must be >= 1")
    words, weights = method.levels.words, method.levels.weights
    token_ids = level_token_ids(tokenizer, words)
    low, high = method.levels.low, method.levels.high
    weight = torch.tensor(weights, dtype=torch.float64)
    out: list[QAlignScore] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        probabilities = torch.softmax(level_logits(model, tokenizer, image_processor, chunk, prompt, token_ids)
                                      .double(), dim=-1)
        for row in probabilities:
            value = float(row @ weight)
            out.append(QAlignScore(value=value, levels={w: float(p) for w, p in zip(words, row)},
                                   normalised=(value - low) / (high - low)))
    return out
