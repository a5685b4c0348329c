"""mPLUG-Owl2's inputs: Q-Align's image pre-processing and prompts with an image placeholder.

Images (Q-Align ``mm_utils.process_images`` with ``image_aspect_ratio: pad``): pad to a square with
the mean colour (each channel ``int(mean * 255)``, truncated as the reference does), the image
centred; bicubic resize to 448 x 448; scale to 0..1; normalise with CLIP's mean and standard
deviation. Values come from the checkpoint's ``preprocessor_config.json`` when it has one.

Prompts: ``<|image|>`` in the text marks where an image goes. It is not a token of the LLaMA
vocabulary: the text around it is tokenized piece by piece (the tokenizer's BOS kept once, at the
start) and each placeholder becomes the id :data:`IMAGE_TOKEN_INDEX` (-200), which the model swaps
for the image's 65 tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from qplug.errors import UsageError

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["IMAGE_TOKEN", "IMAGE_TOKEN_INDEX", "CLIP_MEAN", "CLIP_STD", "MPLUGOwl2ImageProcessor", "tokenize_prompt",
           "prepare_batch"]

IMAGE_TOKEN = "<|image|>"
IMAGE_TOKEN_INDEX = -200
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_BICUBIC = 3


def _size(value: Any, default: int) -> int:
    if isinstance(value, dict):
        value = value.get("shortest_edge") or value.get("height") or value.get("width")
    return int(value) if value else default


class MPLUGOwl2ImageProcessor:
    """Pad to a square, resize, normalise: frames in, ``pixel_values`` (N, 3, size, size) out.

    :param size: side of the square the model sees (448 for every released mPLUG-Owl2).
    :param image_mean: per-channel mean (0..1); also the padding colour.
    :param image_std: per-channel standard deviation (0..1).
    :param resample: PIL resampling filter (3 = bicubic).
    :param pad_to_square: pad instead of stretching a non-square frame (Q-Align's ``pad``).
    """

    def __init__(self, size: int = 448, image_mean: Sequence[float] = CLIP_MEAN, image_std: Sequence[float] = CLIP_STD,
                 resample: int = _BICUBIC, pad_to_square: bool = True) -> None:
        self.size = int(size)
        self.image_mean = tuple(float(m) for m in image_mean)
        self.image_std = tuple(float(s) for s in image_std)
        self.resample = int(resample)
        self.pad_to_square = bool(pad_to_square)

    @classmethod
    def from_dir(cls, model_dir: str | Path) -> "MPLUGOwl2ImageProcessor":
        """Settings from ``preprocessor_config.json`` (CLIP image processor format), defaults without one."""
        path = Path(model_dir) / "preprocessor_config.json"
        if not path.is_file():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UsageError(f"{path} is not valid JSON: {exc}") from exc
        return cls(size=_size(raw.get("crop_size") or raw.get("size"), 448),
                   image_mean=raw.get("image_mean") or CLIP_MEAN, image_std=raw.get("image_std") or CLIP_STD,
                   resample=int(raw.get("resample", _BICUBIC)))

    @property
    def pad_colour(self) -> tuple[int, int, int]:
        """The mean colour in 0..255, truncated (``int(m * 255)``) as Q-Align pads."""
        return tuple(int(m * 255) for m in self.image_mean)  # type: ignore[return-value]

    def square(self, image: "Image.Image") -> "Image.Image":
        """The frame centred on a square of the pad colour (unchanged when already square)."""
        from PIL import Image

        width, height = image.size
        if width == height or not self.pad_to_square:
            return image
        side = max(width, height)
        canvas = Image.new(image.mode, (side, side), self.pad_colour)
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        return canvas

    def to_array(self, image: "Image.Image") -> np.ndarray:
        """One frame as a normalised float32 array (3, size, size)."""
        square = self.square(image.convert("RGB"))
        resized = square.resize((self.size, self.size), resample=self.resample)
        # Same arithmetic as CLIP's processor: scale in float64, then float32 for the normalisation.
        values = (np.asarray(resized, dtype=np.uint8) * (1 / 255)).astype(np.float32)
        values = (values - np.asarray(self.image_mean, np.float32)) / np.asarray(self.image_std, np.float32)
        return np.ascontiguousarray(values.transpose(2, 0, 1))

    def __call__(self, images: "Sequence[Image.Image] | Image.Image") -> "torch.Tensor":
        """``pixel_values`` (N, 3, size, size), float32."""
        import torch
        from PIL import Image

        if isinstance(images, Image.Image):
            images = [images]
        return torch.from_numpy(np.stack([self.to_array(image) for image in images]))


def tokenize_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of a prompt whose images are marked ``<|image|>``: each mark becomes :data:`IMAGE_TOKEN_INDEX`.

    Each stretch of text is tokenized on its own with the tokenizer's special tokens; a BOS that the
    tokenizer puts in front of every stretch is kept only before the first one.
    """
    bos = tokenizer.bos_token_id
    chunks = [tokenizer(text).input_ids if text else [] for text in prompt.split(IMAGE_TOKEN)]
    adds_bos = bool(chunks[0]) and bos is not None and chunks[0][0] == bos
    ids: list[int] = []
    for index, chunk in enumerate(chunks):
        if index:
            ids.append(IMAGE_TOKEN_INDEX)
            if adds_bos and chunk[:1] == [bos]:
                chunk = chunk[1:]
        ids.extend(chunk)
    return ids


def prepare_batch(tokenizer: Any, image_processor: MPLUGOwl2ImageProcessor,
                  images: "Sequence[Image.Image] | Sequence[Sequence[Image.Image]]", prompts: Sequence[str]
                  ) -> dict[str, Any]:
    """Model inputs for one image placeholder per prompt: ``input_ids`` and ``attention_mask``
    (left-padded), ``pixel_values``.

    ``images`` holds one image per prompt, or one list of frames per prompt (Q-Align's video mode:
    the frames fill the prompt's one placeholder together, in order); then the batch also carries
    ``frames_per_image``, the number of frames of each prompt.
    """
    import torch
    from PIL import Image

    if len(images) != len(prompts):
        raise ValueError("one image (or one list of frames) per prompt")
    grouped = [not isinstance(item, Image.Image) for item in images]
    if any(grouped) and not all(grouped):
        raise ValueError("give either one image per prompt or one list of frames per prompt, not both")
    rows = [tokenize_prompt(tokenizer, prompt) for prompt in prompts]
    for prompt, row in zip(prompts, rows):
        if row.count(IMAGE_TOKEN_INDEX) != 1:
            raise ValueError(f"each prompt needs exactly one {IMAGE_TOKEN}: {prompt!r}")
    length = max(len(row) for row in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), length), int(pad), dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, length - len(row):] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, length - len(row):] = 1
    if not any(grouped):
        return {"input_ids": input_ids, "attention_mask": attention_mask, "pixel_values": image_processor(images)}
    frames = [list(item) for item in images]  # type: ignore[arg-type]
    if any(not group for group in frames):
        raise ValueError("a video needs at least one frame")
    return {"input_ids": input_ids, "attention_mask": attention_mask,
            "pixel_values": image_processor([frame for group in frames for frame in group]),
            "frames_per_image": [len(group) for group in frames]}
