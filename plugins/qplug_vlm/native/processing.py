"""Images and prompts to model inputs: the LLaVA processor of a FastVLM checkpoint, without transformers.

Pixels as transformers' PIL CLIP image processor computes them with ``do_resize: false``: RGB, channels
first, the centre ``crop_size`` window (an image smaller than the window is zero-padded around it, as
``transformers.image_transforms.center_crop`` does), ``uint8 * rescale_factor`` in float64 then float32,
``(x - mean) / std`` in float32. The same operations in the same order, so the values are identical.

Prompts: each ``<image>`` placeholder becomes ``image_seq_length`` copies of itself (one per image
token), the text is tokenized without special tokens and the batch is left-padded.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .config import FastVlmConfig, ImageSpec, Unsupported
from .text import ChatTemplate, Tokenizer

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["ImageProcessor", "Processor"]


class ImageProcessor:
    """Centre crop at native resolution, rescale, normalise; the attributes qplug reads of a transformers one."""

    do_resize = False
    do_center_crop = True

    def __init__(self, spec: ImageSpec) -> None:
        self.spec = spec
        self.crop_size = {"height": spec.crop_height, "width": spec.crop_width}
        self.image_mean = list(spec.image_mean)
        self.image_std = list(spec.image_std)

    def array(self, image: "Image.Image") -> np.ndarray:
        """One image as float32 (3, crop height, crop width)."""
        spec = self.spec
        if spec.do_convert_rgb and image.mode != "RGB":
            image = image.convert("RGB")
        pixels = np.asarray(image)
        pixels = pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)
        pixels = _centre_crop(pixels, spec.crop_height, spec.crop_width)
        if spec.do_rescale:
            pixels = (pixels.astype(np.float64) * spec.rescale_factor).astype(np.float32)
        if spec.do_normalize:
            if not np.issubdtype(pixels.dtype, np.floating):
                pixels = pixels.astype(np.float32)
            mean = np.array(spec.image_mean, dtype=pixels.dtype)
            std = np.array(spec.image_std, dtype=pixels.dtype)
            pixels = ((pixels.T - mean) / std).T
        return pixels

    def __call__(self, images: Sequence["Image.Image"]) -> "torch.Tensor":
        """(batch, 3, crop height, crop width) float32."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(np.stack([self.array(i) for i in images])))


def _centre_crop(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """The centre ``height`` x ``width`` window of (C, H, W) pixels, zero-padded where the image is smaller."""
    rows, cols = pixels.shape[-2:]
    top, left = (rows - height) // 2, (cols - width) // 2
    if top >= 0 and left >= 0:
        return pixels[..., top:top + height, left:left + width]
    canvas_rows, canvas_cols = max(height, rows), max(width, cols)
    canvas = np.zeros(pixels.shape[:-2] + (canvas_rows, canvas_cols), dtype=pixels.dtype)
    pad_top, pad_left = math.ceil((canvas_rows - rows) / 2), math.ceil((canvas_cols - cols) / 2)
    canvas[..., pad_top:pad_top + rows, pad_left:pad_left + cols] = pixels
    top, left = top + pad_top, left + pad_left
    return canvas[..., max(0, top):min(canvas_rows, top + height), max(0, left):min(canvas_cols, left + width)]


class Processor:
    """The checkpoint's processor: ``apply_chat_template`` (text), and ``processor(images=, text=)`` (tensors).

    :param spec: the checkpoint's configuration.
    :param tokenizer: its tokenizer.
    """

    def __init__(self, spec: FastVlmConfig, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.image_processor = ImageProcessor(spec.image)
        self.chat_template = spec.chat_template
        self.image_token = spec.image_token
        self.image_token_id = spec.image_token_id
        self.image_seq_length = spec.image_seq_length
        self._template = ChatTemplate(spec.chat_template)
        if tokenizer.convert_tokens_to_ids(spec.image_token) != spec.image_token_id:
            raise Unsupported(f"the image token {spec.image_token!r} is not token {spec.image_token_id} of the "
                              "tokenizer")

    def apply_chat_template(self, conversation: Sequence[Any], tokenize: bool = False,
                            add_generation_prompt: bool = False, continue_final_message: bool = False,
                            **kwargs: Any) -> Any:
        """The prompt text of one conversation (a list of messages), or one per conversation of a list of them."""
        if tokenize:
            raise ValueError("this processor renders text only (tokenize=False); prepare() tokenizes prompts")
        other = kwargs.pop("chat_template", None)  # a template passed in replaces the checkpoint's, as in transformers
        template = ChatTemplate(other) if other else self._template
        batched = bool(conversation) and isinstance(conversation[0], (list, tuple))
        rendered = [template.render(messages, self.tokenizer.special_tokens_map,
                                          add_generation_prompt=add_generation_prompt,
                                          continue_final_message=continue_final_message, **kwargs)
                    for messages in (conversation if batched else [conversation])]
        return rendered if batched else rendered[0]

    def token_ids(self, text: str) -> list[int]:
        """A prompt's ids, each image placeholder expanded to the image's tokens, no special tokens added."""
        expanded = text.replace(self.image_token, self.image_token * self.image_seq_length)
        return self.tokenizer.encode(expanded, add_special_tokens=False)

    def __call__(self, images: Sequence["Image.Image"], text: Sequence[str], **_: Any) -> Mapping[str, "torch.Tensor"]:
        """``input_ids`` and ``attention_mask`` (left-padded) and ``pixel_values`` for one image per placeholder."""
        import torch

        flat = [image for item in images for image in (item if isinstance(item, (list, tuple)) else [item])]
        placeholders = sum(t.count(self.image_token) for t in text)
        if placeholders != len(flat):
            raise ValueError(f"The total number of {self.image_token} tokens in the prompts should be the same as "
                             f"the number of images passed. Found total {placeholders} {self.image_token} tokens "
                             f"and {len(flat)} images.")
        ids, mask = self.tokenizer.pad([self.token_ids(t) for t in text])
        return {"input_ids": torch.tensor(ids, dtype=torch.long),
                "attention_mask": torch.tensor(mask, dtype=torch.long), "pixel_values": self.image_processor(flat)}
